//! Secrets and tokens: the refresh-token grant, cached access tokens per tenant and resource, rotation, the MFA claim.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use hyper::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::budget::BudgetKey;
use super::error::{PartnerCenterError, Service, classify, parse_service_error};
use super::transport::{Request, Transport};

/// A secret (client secret, refresh or access token): no `Display`, and `Debug` shows no content.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(secret: String) -> Self {
        SecretString(secret)
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// App+User credentials of a Partner Center connection (the Secret's clientId, clientSecret, refreshToken).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretString,
    pub refresh_token: SecretString,
}

/// The real resource URIs, sent whatever the endpoint base URLs are.
pub(crate) const PARTNER_CENTER_RESOURCE: &str = "https://api.partnercenter.microsoft.com";
pub(crate) const RESOURCE_MANAGER_RESOURCE: &str = "https://management.azure.com";
/// A cached access token is renewed this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);
/// A refresh token lives this long after it was issued.
pub(crate) const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

/// Whom an access token is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Audience {
    /// Partner Center, issued by the partner tenant.
    PartnerCenter,
    /// ARM on a customer's subscriptions, issued by that customer's tenant.
    CustomerResourceManager(String),
}

/// The claims the client reads from an access token (no signature check: the service does that).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Claims {
    pub tid: String,
    pub upn: Option<String>,
    pub unique_name: Option<String>,
    pub amr: Vec<String>,
    pub exp: Option<u64>,
}

impl Claims {
    pub fn user(&self) -> Option<String> {
        self.upn.clone().or_else(|| self.unique_name.clone())
    }

    pub fn has_mfa(&self) -> bool {
        self.amr
            .iter()
            .any(|method| method.eq_ignore_ascii_case("mfa"))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct AccessToken {
    pub token: SecretString,
    pub expires_at: SystemTime,
    /// None when the token is not a readable JWT.
    pub claims: Option<Claims>,
}

impl AccessToken {
    fn is_fresh(&self) -> bool {
        SystemTime::now() + EXPIRY_MARGIN < self.expires_at
    }

    /// A Partner Center token must show MFA in `amr`: refused before any call is made with it.
    pub fn require_mfa(&self) -> Result<&Claims, PartnerCenterError> {
        let claims = self
            .claims
            .as_ref()
            .ok_or_else(|| PartnerCenterError::Invalid {
                service: Service::Login,
                status: 200,
                code: "UnreadableAccessToken".into(),
                description: "the access token is not a JWT whose claims can be read".into(),
            })?;
        if claims.has_mfa() {
            Ok(claims)
        } else {
            Err(PartnerCenterError::MfaRequired {
                user: claims.user(),
            })
        }
    }
}

/// The newest refresh token and whether the caller has seen it.
struct RefreshState {
    token: SecretString,
    expires_at: Option<SystemTime>,
    untaken: bool,
}

type Slot = Arc<tokio::sync::Mutex<Option<AccessToken>>>;

/// Token grants and the cache of one connection.
pub(crate) struct Tokens {
    partner_tenant_id: String,
    login: String,
    client_id: String,
    client_secret: SecretString,
    refresh: std::sync::Mutex<RefreshState>,
    /// One slot per audience; its async lock makes concurrent callers share one grant.
    slots: std::sync::Mutex<HashMap<Audience, Slot>>,
}

impl Tokens {
    pub fn new(
        partner_tenant_id: &str,
        login: String,
        credentials: Credentials,
    ) -> Result<Self, PartnerCenterError> {
        let missing: Vec<&str> = [
            ("clientId", credentials.client_id.trim().is_empty()),
            (
                "clientSecret",
                credentials.client_secret.expose().is_empty(),
            ),
            (
                "refreshToken",
                credentials.refresh_token.expose().is_empty(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, empty)| empty.then_some(name))
        .collect();
        if !missing.is_empty() {
            return Err(PartnerCenterError::CredentialsMissing(format!(
                "empty {}",
                missing.join(", ")
            )));
        }
        Ok(Tokens {
            partner_tenant_id: partner_tenant_id.to_string(),
            login,
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
            refresh: std::sync::Mutex::new(RefreshState {
                token: credentials.refresh_token,
                expires_at: None,
                untaken: false,
            }),
            slots: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// A fresh access token for `audience`, from the cache or a grant. `stale` is a token the
    /// service just refused with 401: if it is still the cached one, a new one is granted.
    pub async fn get(
        &self,
        transport: &Transport,
        audience: &Audience,
        stale: Option<&SecretString>,
    ) -> Result<AccessToken, PartnerCenterError> {
        let slot = self.slot(audience);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref() {
            let refused = stale.is_some_and(|s| *s == token.token);
            if token.is_fresh() && !refused {
                return Ok(token.clone());
            }
        }
        *cached = None;
        let token = self.grant(transport, audience).await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    fn slot(&self, audience: &Audience) -> Slot {
        let key = match audience {
            Audience::CustomerResourceManager(tenant) => {
                Audience::CustomerResourceManager(tenant.to_ascii_lowercase())
            }
            other => other.clone(),
        };
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key).or_default().clone()
    }

    /// The refresh-token grant at the audience's tenant; keeps the rotated refresh token.
    async fn grant(
        &self,
        transport: &Transport,
        audience: &Audience,
    ) -> Result<AccessToken, PartnerCenterError> {
        let (tenant, resource) = match audience {
            Audience::PartnerCenter => (self.partner_tenant_id.as_str(), PARTNER_CENTER_RESOURCE),
            Audience::CustomerResourceManager(tenant) => {
                (tenant.as_str(), RESOURCE_MANAGER_RESOURCE)
            }
        };
        let url = format!("{}/{}/oauth2/token", self.login, encode(tenant));
        let mut request = Request::new(Service::Login, BudgetKey::Login, Method::POST, url);
        request.body = Some((
            "application/x-www-form-urlencoded",
            self.form(resource).into_bytes(),
        ));
        let response = transport.send(&request, None).await?;
        if !response.is_success() {
            return Err(grant_error(
                response.status,
                &response.body,
                tenant != self.partner_tenant_id,
            ));
        }
        let mut granted: GrantResponse = response.json(Service::Login)?;
        let issued = SystemTime::now();
        if let Some(rotated) = granted.refresh_token.take().filter(|t| !t.is_empty()) {
            self.keep_refresh_token(SecretString::new(rotated), issued);
        }
        let claims = read_claims(&granted.access_token);
        let expires_at = expiry(&granted, claims.as_ref(), issued);
        Ok(AccessToken {
            token: SecretString::new(granted.access_token),
            expires_at,
            claims,
        })
    }

    fn form(&self, resource: &str) -> String {
        let refresh = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        [
            ("grant_type", "refresh_token"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
            ("refresh_token", refresh.token.expose()),
            ("resource", resource),
            ("scope", "openid"),
        ]
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
    }

    fn keep_refresh_token(&self, token: SecretString, issued: SystemTime) {
        let mut refresh = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        refresh.untaken |= refresh.token != token;
        refresh.token = token;
        refresh.expires_at = Some(issued + REFRESH_TOKEN_LIFETIME);
    }

    /// The newest refresh token and its expiry, once per rotation.
    pub fn take_rotated(&self) -> Option<(SecretString, SystemTime)> {
        let mut refresh = self.refresh.lock().unwrap_or_else(|e| e.into_inner());
        let expires_at = refresh.expires_at?;
        std::mem::take(&mut refresh.untaken).then(|| (refresh.token.clone(), expires_at))
    }

    /// When the newest refresh token expires, known once a grant has succeeded.
    pub fn refresh_token_expires_at(&self) -> Option<SystemTime> {
        self.refresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expires_at
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("login", &self.login)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The v1 token answer; numbers may come as strings. Holds secrets: no Debug.
#[derive(Deserialize)]
struct GrantResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn seconds(value: Option<&serde_json::Value>) -> Option<u64> {
    match value? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `expires_on` (unix seconds), else `expires_in` from now, else the JWT's `exp`; else already expired.
fn expiry(granted: &GrantResponse, claims: Option<&Claims>, issued: SystemTime) -> SystemTime {
    if let Some(on) = seconds(granted.expires_on.as_ref()) {
        return SystemTime::UNIX_EPOCH + Duration::from_secs(on);
    }
    if let Some(within) = seconds(granted.expires_in.as_ref()) {
        return issued + Duration::from_secs(within);
    }
    match claims.and_then(|c| c.exp) {
        Some(exp) => SystemTime::UNIX_EPOCH + Duration::from_secs(exp),
        None => issued,
    }
}

/// The payload claims of a JWT, without checking its signature.
pub(crate) fn read_claims(jwt: &str) -> Option<Claims> {
    let payload = jwt.split('.').nth(1)?.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Login refusals: bad client or refresh token -> CredentialsInvalid; MFA demanded by
/// conditional access -> MfaRequired; a customer tenant without a relationship -> Forbidden.
fn grant_error(status: u16, body: &[u8], customer_tenant: bool) -> PartnerCenterError {
    let error = parse_service_error(body);
    let has = |code: &str| error.description.contains(code);
    if has("AADSTS50076") || has("AADSTS50079") {
        return PartnerCenterError::MfaRequired { user: None };
    }
    if customer_tenant && has("AADSTS50020") {
        return PartnerCenterError::Forbidden {
            service: Service::Login,
            code: error.code,
            description: error.description,
        };
    }
    let credentials_refused = matches!(
        error.code.as_str(),
        "invalid_grant" | "invalid_client" | "unauthorized_client"
    );
    if status == 401 || (status == 400 && credentials_refused) {
        return PartnerCenterError::CredentialsInvalid {
            service: Service::Login,
            status,
            code: error.code,
            description: error.description,
        };
    }
    classify(Service::Login, status, body)
}

/// Everything but RFC 3986's unreserved characters (GUIDs stay readable).
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a form value, a query value or a path segment.
pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, RESERVED).to_string()
}
