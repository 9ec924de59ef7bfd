//! A Partner Center + Azure Resource Manager + Azure AD token endpoint simulator: one plain-HTTP
//! origin on loopback speaking the documented wire contract (paths, JSON, status codes, headers).
//!
//! Start one with [`Simulator::start`] on a [`World`] (see [`world`] for the YAML schema), point
//! the login, Partner Center and ARM base URLs at [`Simulator::base_url`], and drive it as the real
//! services. Tests read [`Simulator::stats`] and inject failures through [`Simulator::faults`].
//!
//! Decisions where the documentation is silent (each also noted where it is implemented):
//! - A stale etag on `PUT /v1/SelfServePolicy/{id}` is 400 with code 2055 ("Etag is no longer
//!   valid", a 400 in the documented error codes); a missing etag too.
//! - The MFA refusal is 403 with code 403 (not 900, which is the role refusal) and a description
//!   starting "MFA required".
//! - Suspending an Azure plan reports its Azure entitlements as `suspended`, and ARM refuses
//!   writes on those Azure subscriptions (409 `ReadOnlyDisabledSubscription`); reads still work.
//! - Paging: see [`paging`]. Idempotency: see [`partner_center`]. Paths are matched
//!   case-insensitively, as the real services do.

mod arm;
mod audit;
pub mod faults;
pub mod limits;
mod paging;
mod partner_center;
mod route;
mod state;
mod tokens;
pub mod world;

pub use faults::{FaultAction, FaultRule, Faults};
pub use limits::{Bucket, Limits};
pub use world::World;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use route::{Route, Service};
use serde_json::Value;
use state::{Answer, Req, State};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::net::TcpListener;

/// Why the simulator could not load its world or start.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("invalid world: {0}")]
    World(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Where to listen and which limits to enforce.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    pub addr: SocketAddr,
    pub limits: Limits,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 6551)),
            limits: Limits::default(),
        }
    }
}

/// Counters since start (a snapshot).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Every request received, answered or not.
    pub total: u64,
    /// Requests per `"METHOD /route/{template}"`, e.g. `"POST /v1/SelfServePolicy"`.
    pub requests: BTreeMap<String, u64>,
    /// Self-serve policies created, per policy id (a replayed create does not count).
    pub self_serve_policy_creates: BTreeMap<String, u64>,
    /// 429 answers (rate limits and injected storms).
    pub throttled: u64,
}

impl Stats {
    /// Requests to one route, e.g. `requests_to("POST", "/v1/SelfServePolicy")`.
    pub fn requests_to(&self, method: &str, template: &str) -> u64 {
        self.requests
            .get(&format!("{method} {template}"))
            .copied()
            .unwrap_or(0)
    }
}

/// What every connection shares.
pub(crate) struct Shared {
    state: Mutex<State>,
    faults: Faults,
    limits: Limits,
}

impl Shared {
    /// The state; a panic elsewhere while holding it does not stop the simulator.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulator.
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    pub async fn start(
        world: World,
        options: SimulatorOptions,
    ) -> Result<Simulator, SimulatorError> {
        let listener =
            TcpListener::bind(options.addr)
                .await
                .map_err(|source| SimulatorError::Bind {
                    addr: options.addr,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimulatorError::Bind {
                addr: options.addr,
                source,
            })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(world)),
            faults: Faults::default(),
            limits: options.limits,
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(serve(listener, shared.clone(), stopped));
        Ok(Simulator {
            addr,
            shared,
            stop,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the login, Partner Center and ARM base URL alike.
    pub fn base_url(&self) -> String {
        base_url_of(self.addr)
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    pub fn stats(&self) -> Stats {
        self.shared.state().stats.clone()
    }

    /// The self-serve policies as the wire JSON, ordered by id.
    pub fn self_serve_policies(&self) -> Vec<Value> {
        self.shared.state().policies.values().cloned().collect()
    }

    /// Stops accepting, closes every connection, and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn base_url_of(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => break,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: wait a little rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stopped.changed() => {}
            }
        });
    }
}

/// An injected timeout: the connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected timeout")
    }
}

impl std::error::Error for Dropped {}

const MAX_BODY: usize = 1 << 20;

/// One request: read it, count it, apply any fault, answer it.
async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(to_response(Answer::empty(413))),
    };
    let req = Req::new(parts, body);
    let route = Route::parse(&req.path);
    {
        let mut state = shared.state();
        state.stats.total += 1;
        let key = format!("{} {}", req.method, route.template());
        *state.stats.requests.entry(key).or_insert(0) += 1;
    }
    let (latency, action) = shared.faults.take(&req.method, &req.path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = match action {
        None => dispatch(&shared, &req, &route),
        Some(FaultAction::Timeout {
            delay,
            after_effect,
        }) => {
            if after_effect {
                dispatch(&shared, &req, &route);
            }
            tokio::time::sleep(delay).await;
            return Err(Dropped);
        }
        Some(FaultAction::Status(status)) => faults::status_answer(route.service(), status),
        Some(FaultAction::Throttle { retry_after_secs }) => {
            shared.state().stats.throttled += 1;
            faults::throttle_answer(route.service(), retry_after_secs)
        }
        Some(FaultAction::Latency(_)) => dispatch(&shared, &req, &route),
    };
    Ok(to_response(answer))
}

/// Hands the request to its service; all of them run under the state lock, without awaiting.
fn dispatch(shared: &Shared, req: &Req, route: &Route) -> Answer {
    let mut state = shared.state();
    let now = std::time::Instant::now();
    match route.service() {
        Service::Login => tokens::grant(&mut state, req, route),
        Service::PartnerCenter => {
            partner_center::handle(&mut state, &shared.limits, req, route, now)
        }
        Service::Arm => arm::handle(&mut state, &shared.limits, req, route, now),
        Service::Unknown => Answer::json(
            404,
            &serde_json::json!({"code": 404, "description": "Not found", "data": [], "source": "PartnerFD"}),
        ),
    }
}

fn to_response(answer: Answer) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(answer.status);
    if !answer.body.is_empty() {
        builder = builder.header("Content-Type", "application/json; charset=utf-8");
    }
    for (k, v) in &answer.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
