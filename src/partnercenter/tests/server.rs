//! A scripted HTTP server for the client tests: answers a queue of canned responses and records every request.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One answer to give.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Wait this long before answering (to make the client time out).
    pub delay: Duration,
}

impl Canned {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Canned {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn empty(status: u16) -> Self {
        Canned {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: SystemTime,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn is_login(&self) -> bool {
        self.path.ends_with("/oauth2/token")
    }

    /// A form field of a token request, percent-decoded.
    pub fn form(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| {
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Canned>,
    recorded: Vec<Recorded>,
}

pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ScriptedServer { addr, state, task }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, canned: Canned) {
        self.state.lock().expect("state").script.push_back(canned);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("state").recorded.clone()
    }

    /// Requests that are not token grants.
    pub fn service_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| !r.is_login())
            .collect()
    }

    pub fn logins(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(Recorded::is_login)
            .collect()
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: SystemTime::now(),
    };
    let canned = {
        let mut state = state.lock().expect("state");
        state.recorded.push(recorded);
        state.script.pop_front()
    };
    let canned =
        canned.unwrap_or_else(|| Canned::json(599, serde_json::json!({"code": "Unscripted"})));
    tokio::time::sleep(canned.delay).await;
    let mut response = Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        response = response.header(name, value);
    }
    Ok(response
        .body(Full::new(Bytes::from(canned.body)))
        .expect("response"))
}

/// An unsigned JWT with the claims the client reads.
pub fn jwt(tenant: &str, audience: &str, amr: &[&str]) -> String {
    let encode = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = encode(serde_json::json!({"typ": "JWT", "alg": "RS256"}));
    let payload = encode(serde_json::json!({
        "aud": audience, "iss": format!("https://sts.windows.net/{tenant}/"), "tid": tenant,
        "oid": "0b5c2a8e-0000-4000-8000-0000000000aa", "upn": "admin@partner.example",
        "appid": "client-app", "amr": amr, "iat": now, "nbf": now, "exp": now + 3600,
        // A unique id so that two grants never give the same token.
        "uti": uuid::Uuid::new_v4().to_string(),
    }));
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

/// A v1 token answer (numbers as strings, as AAD v1 sends them).
pub fn grant(access_token: &str, refresh_token: &str) -> Canned {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    Canned::json(
        200,
        serde_json::json!({
            "token_type": "Bearer", "scope": "user_impersonation",
            "expires_in": "3599", "ext_expires_in": "3599",
            "expires_on": (now + 3599).to_string(), "not_before": now.to_string(),
            "resource": "https://api.partnercenter.microsoft.com",
            "access_token": access_token, "refresh_token": refresh_token, "id_token": "e30.e30.",
        }),
    )
}
