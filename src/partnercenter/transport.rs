//! HTTP for the clients: hyper over rustls, request ids, timeouts, retries with jittered backoff, budgets, URL checks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request as HttpRequest, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::Rng;

use super::budget::{BudgetKey, Budgets};
use super::error::{PartnerCenterError, Service};
use super::tokens::SecretString;
use super::{CallCounts, ClientOptions, RetryOptions};

/// Answers larger than this are refused (a page of customers or audit records is far smaller).
const BODY_LIMIT: usize = 32 * 1024 * 1024;
/// A 429 without a readable Retry-After pauses this long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

/// One request as the operations build it; the transport adds ids, auth and retries.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub service: Service,
    pub budget: BudgetKey,
    pub method: Method,
    pub url: String,
    /// Extra headers, e.g. a page's `MS-ContinuationToken`.
    pub headers: Vec<(String, String)>,
    /// Content type and body.
    pub body: Option<(&'static str, Vec<u8>)>,
    /// One per operation: every page and retry of it carries the same.
    pub correlation_id: String,
}

impl Request {
    pub fn new(service: Service, budget: BudgetKey, method: Method, url: String) -> Self {
        Request {
            service,
            budget,
            method,
            url,
            headers: Vec::new(),
            body: None,
            correlation_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn json(mut self, body: &impl serde::Serialize) -> Self {
        // Serializing our own wire types cannot fail (string keys only).
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.body = Some(("application/json", bytes));
        self
    }
}

/// An answer: status, headers, the whole body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        service: Service,
    ) -> Result<T, PartnerCenterError> {
        serde_json::from_slice(&self.body).map_err(|e| PartnerCenterError::Invalid {
            service,
            status: self.status,
            code: "UnparsableBody".into(),
            description: e.to_string(),
        })
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    partner_center: AtomicU64,
    resource_manager: AtomicU64,
    login: AtomicU64,
    throttled: AtomicU64,
    retried: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            partner_center: self.partner_center.load(Ordering::Relaxed),
            resource_manager: self.resource_manager.load(Ordering::Relaxed),
            login: self.login.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
        }
    }

    fn sent(&self, service: Service) {
        let counter = match service {
            Service::Login => &self.login,
            Service::PartnerCenter => &self.partner_center,
            Service::ResourceManager => &self.resource_manager,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The HTTP side of one connection.
pub(crate) struct Transport {
    http: HttpClient,
    options: ClientOptions,
    pub budgets: Budgets,
    pub counters: Counters,
}

/// How one HTTP exchange ended.
enum Attempt {
    Answered(Response),
    TimedOut,
    Failed { connect: bool, message: String },
}

impl Transport {
    pub fn new(options: ClientOptions) -> Self {
        Transport {
            http: Client::builder(TokioExecutor::new()).build(https_connector()),
            budgets: Budgets::new(options.requests_per_minute),
            counters: Counters::default(),
            options,
        }
    }

    /// Sends `request` until it gets an answer worth returning: retries timeouts (same
    /// MS-RequestId, so a write is never done twice), 5xx and connect errors (with backoff), and
    /// 429s (pausing the request's budget). Any other status, 401 included, is returned.
    pub async fn send(
        &self,
        request: &Request,
        bearer: Option<&SecretString>,
    ) -> Result<Response, PartnerCenterError> {
        let retry = &self.options.retry;
        let mut request_id = uuid::Uuid::new_v4().to_string();
        let (mut failures, mut throttles) = (0u32, 0u32);
        loop {
            self.wait_for_budget(request).await?;
            self.counters.sent(request.service);
            let attempt = self.exchange(request, bearer, &request_id).await;
            let status = match &attempt {
                Attempt::Answered(response) => response.status,
                _ => 0,
            };
            match attempt {
                Attempt::Answered(response) if response.status == 429 => {
                    self.counters.throttled.fetch_add(1, Ordering::Relaxed);
                    let until = self
                        .budgets
                        .pause_for(&request.budget, retry_after(&response.headers));
                    throttles += 1;
                    if throttles >= retry.max_attempts.max(1) {
                        return Err(PartnerCenterError::Throttled {
                            service: request.service,
                            until,
                        });
                    }
                    request_id = uuid::Uuid::new_v4().to_string();
                }
                Attempt::Answered(response)
                    if !(response.status >= 500 || response.status == 408) =>
                {
                    return Ok(response);
                }
                Attempt::Answered(_) | Attempt::TimedOut | Attempt::Failed { .. } => {
                    failures += 1;
                    if failures >= retry.max_attempts.max(1) {
                        return Err(gave_up(request.service, attempt, status, failures));
                    }
                    // A timeout may have done the work: resend it as the same request.
                    if !matches!(attempt, Attempt::TimedOut) && status != 408 {
                        request_id = uuid::Uuid::new_v4().to_string();
                    }
                    tokio::time::sleep(backoff(retry, failures)).await;
                }
            }
            self.counters.retried();
        }
    }

    async fn wait_for_budget(&self, request: &Request) -> Result<(), PartnerCenterError> {
        let max_wait = self.options.max_throttle_wait;
        self.budgets
            .acquire(&request.budget, max_wait)
            .await
            .map_err(|until| PartnerCenterError::Throttled {
                service: request.service,
                until,
            })
    }

    /// One HTTP request and its whole answer, within the per-request timeout.
    async fn exchange(
        &self,
        request: &Request,
        bearer: Option<&SecretString>,
        request_id: &str,
    ) -> Attempt {
        let http_request = match build(request, bearer, request_id) {
            Ok(r) => r,
            Err(message) => {
                return Attempt::Failed {
                    connect: false,
                    message,
                };
            }
        };
        tracing::debug!(service = %request.service, method = %request.method, url = %request.url, request_id, "request");
        let exchange = async {
            let response = self
                .http
                .request(http_request)
                .await
                .map_err(|e| Attempt::Failed {
                    connect: e.is_connect(),
                    message: error_chain(&e),
                })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| Attempt::Failed {
                    connect: false,
                    message: format!("reading the answer: {e}"),
                })?;
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        match tokio::time::timeout(self.options.timeout, exchange).await {
            Err(_) => Attempt::TimedOut,
            Ok(Err(failed)) => failed,
            Ok(Ok(response)) => {
                tracing::debug!(service = %request.service, status = response.status, request_id, "answer");
                Attempt::Answered(response)
            }
        }
    }
}

fn build(
    request: &Request,
    bearer: Option<&SecretString>,
    request_id: &str,
) -> Result<HttpRequest<Full<Bytes>>, String> {
    let mut builder = HttpRequest::builder()
        .method(request.method.clone())
        .uri(&request.url)
        .header("Accept", "application/json")
        .header("MS-RequestId", request_id)
        .header("MS-CorrelationId", &request.correlation_id);
    if let Some(token) = bearer {
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| "the access token is not a valid header value".to_string())?;
        value.set_sensitive(true);
        builder = builder.header("Authorization", value);
    }
    for (name, value) in &request.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        if name == hyper::header::AUTHORIZATION || name == hyper::header::HOST {
            continue;
        }
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|_| format!("invalid value for header {name}"))?;
        builder = builder.header(name, value);
    }
    let body = match &request.body {
        Some((content_type, bytes)) => {
            builder = builder.header("Content-Type", *content_type);
            Full::new(Bytes::from(bytes.clone()))
        }
        None => Full::new(Bytes::new()),
    };
    builder
        .body(body)
        .map_err(|e| format!("building the request: {e}"))
}

fn gave_up(service: Service, attempt: Attempt, status: u16, attempts: u32) -> PartnerCenterError {
    match attempt {
        Attempt::TimedOut => PartnerCenterError::Timeout { service, attempts },
        Attempt::Answered(_) if status == 408 => PartnerCenterError::Timeout { service, attempts },
        Attempt::Answered(_) => PartnerCenterError::Unavailable {
            service,
            status,
            attempts,
        },
        Attempt::Failed { connect, message } => PartnerCenterError::Unreachable {
            service,
            message: if connect {
                message
            } else {
                format!("{message} (after {attempts} attempts)")
            },
        },
    }
}

/// Full jitter: a random wait between zero and min(cap, base * 2^(failures-1)).
fn backoff(retry: &RetryOptions, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    let ceiling = retry.base.saturating_mul(1u32 << exponent).min(retry.cap);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

/// `Retry-After` in seconds (fractions allowed); a default when absent or unreadable.
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(|secs| Duration::from_secs_f64(secs.min(3600.0)))
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// HTTPS with the system's roots via ring (as kube); plain HTTP is possible only because
/// endpoints are checked first (loopback only).
fn https_connector() -> HttpsConnector<HttpConnector> {
    let provider = rustls::crypto::ring::default_provider();
    let builder = HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no system root certificates: HTTPS calls will fail");
            HttpsConnectorBuilder::new().with_tls_config(no_roots_config())
        });
    builder.https_or_http().enable_http1().build()
}

fn no_roots_config() -> rustls::ClientConfig {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let roots = rustls::RootCertStore::empty();
    match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        Err(_) => rustls::ClientConfig::builder_with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .with_root_certificates(roots)
            .with_no_client_auth(),
    }
}

/// A base URL the client may send tokens to: `https://`, or `http://` on loopback only.
/// Returned without a trailing slash.
pub(crate) fn check_endpoint(base: &str) -> Result<String, PartnerCenterError> {
    let refuse = |why: &str| PartnerCenterError::InvalidEndpoint {
        endpoint: base.to_string(),
        why: why.to_string(),
    };
    let uri: Uri = base.parse().map_err(|_| refuse("not a URL"))?;
    let host = uri.host().ok_or_else(|| refuse("no host"))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback(host) => {}
        Some("http") => {
            return Err(refuse(
                "plain http is allowed only on loopback (tokens would travel in clear)",
            ));
        }
        _ => return Err(refuse("the scheme must be https")),
    }
    if uri.query().is_some() {
        return Err(refuse("a base URL takes no query"));
    }
    Ok(base.trim_end_matches('/').to_string())
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Whether `url` lies under `base` (same scheme, host and port, path below): paging links elsewhere are not followed.
pub(crate) fn is_under(url: &str, base: &str) -> bool {
    url.get(..base.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(base))
        && matches!(url.as_bytes().get(base.len()), Some(b'/' | b'?'))
}
