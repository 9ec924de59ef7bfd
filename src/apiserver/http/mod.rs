//! The HTTP side: the accept loop, one hyper service per connection, and each request read into
//! a [`Req`] and handed to [`route`]; answers are JSON (or a watch stream).

mod conns;
pub use conns::Connections;
mod delete_options;
mod guard;
mod list_options;
mod metadata_only;
mod route;
mod verbs;
mod watch;

use super::Shared;
use super::authn::{self, Authenticated};
use super::error::ApiError;
use super::rbac::User;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Accepts connections until `stopped` changes, at most the bound at once (see [`conns`]);
/// each is served until it closes, is asked to make room, or the server stops.
pub async fn serve(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let connections = shared.connections.clone();
    loop {
        let permit = tokio::select! {
            p = connections.room() => p,
            _ = stopped.changed() => break,
        };
        let Some(permit) = permit else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                connections.accept_failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(conns::ACCEPT_BACKOFF) => continue,
                    _ = stopped.changed() => break,
                }
            }
        };
        // Answers go out at once: no Nagle delay on small responses.
        let _ = stream.set_nodelay(true);
        let slot = connections.register(permit);
        tokio::spawn(serve_connection(
            stream,
            acceptor.clone(),
            shared.clone(),
            slot,
            stopped.clone(),
        ));
    }
}

/// One connection, until it closes, the server stops, or it is asked to make room (then it
/// finishes the request in flight, if any, and closes).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    slot: conns::Slot,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    // A client that never finishes its handshake holds its slot no longer than this (and, being
    // idle, is the first to make room).
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        h = handshake => match h {
            Ok(Ok(stream)) => stream,
            _ => return,
        },
        _ = stopped.changed() => return,
        _ = slot.close.notified() => return,
    };
    let busy = slot.busy.clone();
    let service = service_fn(move |req| {
        let in_flight = conns::InFlight::start(&busy);
        let shared = shared.clone();
        async move {
            let response = handle(shared, req).await?;
            Ok::<_, Infallible>(response.map(|body| conns::Tracked {
                body,
                _in_flight: in_flight,
            }))
        }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped.changed() => return,
        _ = slot.close.notified() => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped.changed() => {}
    }
}

const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(code: u16, v: &Value, warnings: &[String]) -> Response<Body> {
    let mut b = Response::builder()
        .status(code)
        .header("Content-Type", "application/json");
    for w in warnings {
        b = b.header("Warning", format!("299 - \"{}\"", w.replace('"', "'")));
    }
    b.body(full(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.status(), &[]);
    if let Some(secs) = e.retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        r.headers_mut().insert("Retry-After", v);
    }
    r
}

/// The parsed request.
struct Req {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    /// `If-None-Match`, for the OpenAPI v2 document's ETag.
    if_none_match: String,
    /// Names the field manager of a write that gives no `fieldManager`.
    user_agent: String,
    body: Bytes,
    /// The user the request acts as (a token user or the impersonated one), subject to RBAC;
    /// None is the all-powerful admin (the kubeconfig's token, in system:masters).
    user: Option<User>,
}

impl Req {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }

    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let declared_length = body.size_hint().exact();
    let user = match admit(&shared, &parts, declared_length) {
        Ok(u) => u,
        Err(e) => return Ok(error_response(&e)),
    };
    let body = match guard::read_body(body).await {
        Ok(b) => b,
        Err(e) => return Ok(error_response(&e)),
    };
    let query = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let header = |h: &str| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let r = Req {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query,
        accept: header("accept"),
        content_type: header("content-type"),
        if_none_match: header("if-none-match"),
        user_agent: header("user-agent"),
        body,
        user,
    };
    if let Some(d) = shared.faults.latency() {
        tokio::time::sleep(d).await;
    }
    let mutating = !matches!(r.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let resp = route::route(&shared, r).await;
    // With --state, a write is answered only once it is on disk (group commit: one sync for
    // every write made meanwhile).
    if mutating && let Some(p) = &shared.persistence {
        p.durable().await;
    }
    Ok(resp.unwrap_or_else(|e| error_response(&e)))
}

/// The checks before the body is read, in the real server's filter order where it has them:
/// the Host, authentication (the health endpoints are open), the body's size and type, then
/// impersonation. The user the request acts as; None is the admin.
fn admit(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    declared_length: Option<u64>,
) -> Result<Option<User>, ApiError> {
    guard::check_host(&parts.headers, &parts.uri)?;
    let authenticated = if is_health_path(parts.uri.path()) {
        // Anonymous, so that nothing but the health documents could ever be served this way.
        Authenticated::User(User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        })
    } else {
        shared.auth.authenticate(&parts.headers)?
    };
    guard::check_declared_length(declared_length)?;
    guard::check_content_type(&parts.method, &parts.headers, declared_length)?;
    let requester = match authenticated {
        Authenticated::Admin => None,
        Authenticated::User(u) => Some(u),
    };
    let Some((name, groups)) = impersonation(&parts.headers)? else {
        return Ok(requester);
    };
    // The admin is in system:masters, which may impersonate anyone.
    if let Some(requester) = &requester {
        authn::authorize_impersonation(&shared.store.rbac_objects(), requester, name, &groups)?;
    }
    User::impersonated(Some(name), groups)
}

/// `/healthz`, `/livez`, `/readyz` and their checks below them: open to anyone, as on the real
/// server (they tell nothing but "ok").
fn is_health_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(first, "healthz" | "livez" | "readyz")
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The user the `Impersonate-User` and (repeated) `Impersonate-Group` headers name, with the
/// groups asked for; None without impersonation.
fn impersonation(headers: &hyper::HeaderMap) -> Result<Option<(&str, Vec<String>)>, ApiError> {
    let user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .filter(|u| !u.is_empty());
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(String::from)
        .collect();
    match user {
        Some(name) => Ok(Some((name, groups))),
        // Groups without a user: the real server's error.
        None => User::impersonated(None, groups).map(|_| None),
    }
}
