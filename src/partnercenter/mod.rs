//! The Partner Center and Azure Resource Manager clients of one PartnerCenterConnection: tokens, budgets, paging.
//!
//! One [`PartnerCenter`] per connection. It signs in with the App+User refresh-token grant
//! (Partner Center tokens at the partner tenant, ARM tokens at each customer's tenant), keeps the
//! rotated refresh token for write-back, rate-limits with governor (a Partner Center budget per
//! connection, ARM's buckets per Azure subscription), pauses a budget on 429, and retries
//! timeouts and 5xx with jittered backoff.

mod arm;
mod budget;
mod customers;
mod error;
mod model;
mod self_serve;
mod tokens;
mod transport;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::Method;
use serde::de::DeserializeOwned;

pub use arm::{OWNER_ROLE, role_assignment_name, role_definition_guid, same_role};
pub use error::{PartnerCenterError, Service};
pub use model::{
    AZURE_RESERVED_INSTANCES, AZURE_SAVINGS_PLAN, Attributes, AuditQuery, AuditRecord,
    AzureEntitlement, CompanyProfile, Customer, Grantor, KeyValue, NewRoleAssignment, PURCHASE,
    Permission, RoleAssignment, RoleAssignmentProperties, SelfServeEntity, SelfServePolicy,
    Subscription,
};
pub use tokens::{Credentials, SecretString};

use budget::BudgetKey;
use error::classify;
use model::{ArmPage, Collection};
use tokens::{Audience, Tokens};
use transport::{Request, Response, Transport};

/// The offer id prefix (product) of the Azure plan.
pub const AZURE_PLAN_PRODUCT: &str = "DZH318Z0BPS6";

/// A collection longer than this many pages is refused (a paging loop, not data).
const MAX_PAGES: usize = 10_000;

/// Base URLs of the three services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub partner_center: String,
    pub login: String,
    pub resource_manager: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            partner_center: "https://api.partnercenter.microsoft.com".into(),
            login: "https://login.microsoftonline.com".into(),
            resource_manager: "https://management.azure.com".into(),
        }
    }
}

/// Retries of timeouts, connect errors and 5xx: full-jitter exponential backoff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryOptions {
    /// Attempts in all, the first included (also bounds how many 429s a call waits out).
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The connection's Partner Center budget (Partner Center allows 500/min per tenant).
    pub requests_per_minute: u32,
    /// Per HTTP request, answer included.
    pub timeout: Duration,
    pub retry: RetryOptions,
    /// A call waits out a 429 pause of its budget up to this long, else fails with `Throttled`
    /// at once. `Duration::ZERO` gives try-style calls.
    pub max_throttle_wait: Duration,
    /// The MS-CorrelationId of every Partner Center request (`None`: a new one). A connection
    /// keeps one across rebuilt clients, so the activity log's records of its changes stay its own.
    pub correlation_id: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            requests_per_minute: 300,
            timeout: Duration::from_secs(30),
            retry: RetryOptions::default(),
            max_throttle_wait: Duration::from_secs(120),
            correlation_id: None,
        }
    }
}

/// HTTP requests sent since the client was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub partner_center: u64,
    pub resource_manager: u64,
    pub login: u64,
    /// Answers that were 429.
    pub throttled: u64,
    /// Requests sent again (timeout, 5xx, 429, connect error, 401 refresh).
    pub retried: u64,
}

/// Who signed in, and until when the tokens hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    /// The partner user's UPN.
    pub user: Option<String>,
    pub mfa: bool,
    pub access_token_expires_at: SystemTime,
    pub refresh_token_expires_at: SystemTime,
}

/// The client of one PartnerCenterConnection. Cheap to clone; all clones share tokens and budgets.
#[derive(Clone)]
pub struct PartnerCenter {
    inner: Arc<Inner>,
}

struct Inner {
    partner_tenant_id: String,
    endpoints: Endpoints,
    tokens: Tokens,
    transport: Transport,
    /// The MS-CorrelationId of every Partner Center request of this client (as the SDK's request
    /// context keeps one): the activity log's `originalCorrelationId` tells our changes apart.
    correlation_id: String,
}

impl std::fmt::Debug for PartnerCenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerCenter")
            .field("partner_tenant_id", &self.inner.partner_tenant_id)
            .field("endpoints", &self.inner.endpoints)
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

impl PartnerCenter {
    /// Checks the endpoints (https, or http on loopback only) and the credentials; no call is made.
    pub fn new(
        partner_tenant_id: &str,
        endpoints: Endpoints,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Self, PartnerCenterError> {
        let endpoints = Endpoints {
            partner_center: transport::check_endpoint(&endpoints.partner_center)?,
            login: transport::check_endpoint(&endpoints.login)?,
            resource_manager: transport::check_endpoint(&endpoints.resource_manager)?,
        };
        if partner_tenant_id.trim().is_empty() {
            return Err(PartnerCenterError::CredentialsMissing(
                "empty partner tenant id".into(),
            ));
        }
        let tokens = Tokens::new(partner_tenant_id, endpoints.login.clone(), credentials)?;
        let correlation_id = options
            .correlation_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Ok(PartnerCenter {
            inner: Arc::new(Inner {
                partner_tenant_id: partner_tenant_id.to_string(),
                endpoints,
                tokens,
                transport: Transport::new(options),
                correlation_id,
            }),
        })
    }

    pub fn partner_tenant_id(&self) -> &str {
        &self.inner.partner_tenant_id
    }

    /// The MS-CorrelationId this client sends to Partner Center (activity-log records of its
    /// changes carry it as `originalCorrelationId`).
    pub fn correlation_id(&self) -> &str {
        &self.inner.correlation_id
    }

    /// Gets (or reuses) the Partner Center token; `Err(MfaRequired)` when the user signed in without MFA.
    pub async fn sign_in(&self) -> Result<SignIn, PartnerCenterError> {
        let token = self.token(&Audience::PartnerCenter, None).await?;
        let claims = token.require_mfa()?;
        let refresh_token_expires_at = self
            .inner
            .tokens
            .refresh_token_expires_at()
            .unwrap_or_else(|| SystemTime::now() + tokens::REFRESH_TOKEN_LIFETIME);
        Ok(SignIn {
            user: claims.user(),
            mfa: true,
            access_token_expires_at: token.expires_at,
            refresh_token_expires_at,
        })
    }

    /// The newest refresh token if it changed since last taken, and its expiry (write it back to the Secret).
    pub fn take_rotated_refresh_token(&self) -> Option<(SecretString, SystemTime)> {
        self.inner.tokens.take_rotated()
    }

    /// Until when the Partner Center budget is paused by a 429.
    pub fn throttled_until(&self) -> Option<SystemTime> {
        self.inner.transport.budgets.partner_center_paused_until()
    }

    /// Until when an Azure subscription's ARM budget is paused by a 429.
    pub fn subscription_throttled_until(&self, azure_subscription_id: &str) -> Option<SystemTime> {
        self.inner
            .transport
            .budgets
            .subscription_paused_until(azure_subscription_id)
    }

    pub fn calls(&self) -> CallCounts {
        self.inner.transport.counters.snapshot()
    }

    async fn token(
        &self,
        audience: &Audience,
        stale: Option<&SecretString>,
    ) -> Result<tokens::AccessToken, PartnerCenterError> {
        let inner = &self.inner;
        inner.tokens.get(&inner.transport, audience, stale).await
    }

    /// A Partner Center request for `path_and_query` (starting with `/v1/`).
    fn partner_center_request(&self, method: Method, path_and_query: &str) -> Request {
        let url = format!("{}{path_and_query}", self.inner.endpoints.partner_center);
        let mut request = Request::new(
            Service::PartnerCenter,
            BudgetKey::PartnerCenter,
            method,
            url,
        );
        request.correlation_id = self.inner.correlation_id.clone();
        request
    }

    /// Sends with the audience's token; on a 401 gets a new token once and sends once more.
    async fn call(
        &self,
        request: &Request,
        audience: &Audience,
    ) -> Result<Response, PartnerCenterError> {
        let token = self.authorized_token(audience, None).await?;
        let response = self.inner.transport.send(request, Some(&token)).await?;
        if response.status != 401 {
            return Ok(response);
        }
        self.inner.transport.counters.retried();
        let token = self.authorized_token(audience, Some(&token)).await?;
        let response = self.inner.transport.send(request, Some(&token)).await?;
        if response.status == 401 {
            return Err(refused_token(request.service, &response.body));
        }
        Ok(response)
    }

    /// A token for the audience; Partner Center tokens must carry MFA before they are used.
    async fn authorized_token(
        &self,
        audience: &Audience,
        stale: Option<&SecretString>,
    ) -> Result<SecretString, PartnerCenterError> {
        let token = self.token(audience, stale).await?;
        if *audience == Audience::PartnerCenter {
            token.require_mfa()?;
        }
        Ok(token.token)
    }

    /// Every item of a Partner Center collection, following `links.next` with its headers.
    async fn partner_center_pages<T: DeserializeOwned>(
        &self,
        mut request: Request,
    ) -> Result<Vec<T>, PartnerCenterError> {
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.call(&request, &Audience::PartnerCenter).await?;
            if !response.is_success() {
                return Err(classify(
                    Service::PartnerCenter,
                    response.status,
                    &response.body,
                ));
            }
            let page: Collection<T> = response.json(Service::PartnerCenter)?;
            items.extend(page.items);
            let Some(next) = page.links.next else {
                return Ok(items);
            };
            request.url = self.next_partner_center_page(&next.uri)?;
            request.headers = next.headers.into_iter().map(|h| (h.key, h.value)).collect();
        }
        Err(too_many_pages(Service::PartnerCenter))
    }

    /// `links.next.uri` is relative to the Partner Center base and its version: `/v1/...`, or
    /// `/customers?...` / `customers?...` (the documentation's examples), which mean `/v1/...`,
    /// as the SDK reads them.
    fn next_partner_center_page(&self, uri: &str) -> Result<String, PartnerCenterError> {
        let base = &self.inner.endpoints.partner_center;
        if uri.starts_with("https://") || uri.starts_with("http://") {
            return followable(uri, base, Service::PartnerCenter);
        }
        let path = uri.trim_start_matches('/');
        if path.len() >= 3 && path[..3].eq_ignore_ascii_case("v1/") {
            Ok(format!("{base}/{path}"))
        } else {
            Ok(format!("{base}/v1/{path}"))
        }
    }

    /// Every item of an ARM list as the customer's tenant, following `nextLink`.
    async fn resource_manager_pages<T: DeserializeOwned>(
        &self,
        mut request: Request,
        customer_tenant_id: &str,
    ) -> Result<Vec<T>, PartnerCenterError> {
        let audience = Audience::CustomerResourceManager(customer_tenant_id.to_string());
        let base = self.inner.endpoints.resource_manager.clone();
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let response = self.call(&request, &audience).await?;
            if !response.is_success() {
                return Err(classify(
                    Service::ResourceManager,
                    response.status,
                    &response.body,
                ));
            }
            let page: ArmPage<T> = response.json(Service::ResourceManager)?;
            items.extend(page.value);
            let Some(next) = page.next_link.filter(|l| !l.is_empty()) else {
                return Ok(items);
            };
            request.url = match next.strip_prefix('/') {
                Some(_) => format!("{base}{next}"),
                None => followable(&next, &base, Service::ResourceManager)?,
            };
        }
        Err(too_many_pages(Service::ResourceManager))
    }
}

/// A 401 after a fresh token: the credentials are no good, or (ARM) the subscription is in another tenant.
fn refused_token(service: Service, body: &[u8]) -> PartnerCenterError {
    let error = error::parse_service_error(body);
    if error.code == "InvalidAuthenticationTokenTenant" {
        return PartnerCenterError::Forbidden {
            service,
            code: error.code,
            description: error.description,
        };
    }
    classify(service, 401, body)
}

/// An absolute paging link is followed only under the service's own base URL (tokens go nowhere else).
fn followable(url: &str, base: &str, service: Service) -> Result<String, PartnerCenterError> {
    if transport::is_under(url, base) {
        Ok(url.to_string())
    } else {
        Err(PartnerCenterError::Invalid {
            service,
            status: 200,
            code: "ForeignNextLink".into(),
            description: "a paging link points outside the service's endpoint; not followed".into(),
        })
    }
}

fn too_many_pages(service: Service) -> PartnerCenterError {
    PartnerCenterError::Invalid {
        service,
        status: 200,
        code: "TooManyPages".into(),
        description: format!("more than {MAX_PAGES} pages; stopped"),
    }
}
