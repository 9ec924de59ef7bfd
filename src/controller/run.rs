//! Running the controllers: options, the metrics endpoint, leader election, shutdown, and
//! [`Operator`], one instance running in this process (started, stopped as SIGTERM does, or
//! killed as SIGKILL does).

use super::fence::{self, FencedBackend};
use super::leader::LeaderElection;
use super::metrics::{self, Metrics};
use super::wiring::{self, Wiring};
use super::{Caches, Error};
use crate::api::PermissionState;
use crate::api::conditions::types;
use crate::backend::Backend;
use crate::policy::conditions::find;
use futures::FutureExt;
use kube::Client;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A stop signal every controller and task can wait on.
pub type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// How `run` behaves beyond the controllers themselves.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Serve `/metrics`, `/healthz` and `/readyz` here.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Reconcile only while holding this Lease.
    pub leader_election: Option<LeaderElection>,
    /// Reconciles running at once, per kind.
    pub concurrency: u16,
    /// Where to count (a fresh registry when None); lets tests and benchmarks read the metrics.
    pub metrics: Option<Arc<Metrics>>,
    /// Wait this long after a trigger for more before reconciling (merges bursts of related
    /// changes into one decision and one write).
    pub debounce: Duration,
    /// Re-check every object about this often (jittered), as controller-runtime's SyncPeriod
    /// does: a safety net for anything a watch missed. Costs no write when nothing changed.
    pub resync: Option<Duration>,
    /// Named points where a reconcile can be stopped (the chaos runner's); inert unless armed.
    pub crash_points: Option<Arc<super::CrashPoints>>,
}

/// Runs the controllers until `shutdown` resolves (then finishes in-flight reconciles and
/// releases the Lease), or until leadership is lost.
pub async fn run(
    client: Client,
    backend: Arc<dyn Backend>,
    opts: RunOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    tracing::info!(backend = backend.name(), "controllers starting");
    let metrics = opts.metrics.clone().unwrap_or_default();
    let ready = Arc::new(AtomicBool::new(false));
    let shutdown: Shutdown = shutdown.boxed().shared();
    let lease = match &opts.leader_election {
        Some(le) => Some(le.contend(client.clone()).await?),
        None => None,
    };
    // A replica that may lose the Lease writes only through its fence (its own Lease writes
    // aside); reads pass, so a standby's caches stay warm.
    let (client, backend) = match &lease {
        Some(l) => (
            fence::client(client, l.fence(), l.write_margin()),
            FencedBackend::wrap(backend, l.fence(), l.write_margin()),
        ),
        None => (client, backend),
    };
    let Wiring {
        caches,
        feeds,
        controllers,
    } = wiring::build(client, backend, metrics.clone(), ready.clone(), &opts);
    let _metrics_endpoint = opts
        .metrics_addr
        .map(|addr| serve_metrics(addr, &metrics, &caches, &ready));
    // Caches fill whether or not this replica leads, so a new leader starts warm; a replica is
    // ready (for its probe) once they have, leader or standby.
    let _feeds = AbortOnDrop(tokio::spawn(feeds));
    match lease {
        None => {
            metrics.leader.set(1);
            controllers(shutdown).await;
            Ok(())
        }
        Some(lease) => lease.lead(shutdown, &metrics, controllers).await,
    }
}

/// One operator instance running in this process, as `up`, the tests and the chaos runner
/// start it: [`Operator::shutdown`] stops it as SIGTERM does (in-flight reconciles finish, the
/// Lease is released), [`Operator::kill`] as SIGKILL does (everything stops where it is; the
/// Lease stays held until it expires). Dropping it asks for a shutdown without waiting.
pub struct Operator {
    task: tokio::task::JoinHandle<Result<(), Error>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Operator {
    /// Starts the controllers on `client` in a task of the current runtime.
    pub fn start(client: Client, backend: Arc<dyn Backend>, opts: RunOptions) -> Operator {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(client, backend, opts, async move {
            let _ = stopped.await;
        }));
        Operator {
            task,
            stop: Some(stop),
        }
    }

    /// Stops gracefully and waits: what `run` answered (an error when the Lease was lost).
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }

    /// Ends it at once, without cleanup: no reconcile finishes, the Lease is not released.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Whether it has stopped (by itself: e.g. it lost the Lease).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` until dropped.
fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: &Arc<Metrics>,
    caches: &Caches,
    ready: &Arc<AtomicBool>,
) -> AbortOnDrop {
    let (m, c) = (metrics.clone(), caches.clone());
    let refresh: Arc<dyn Fn() + Send + Sync> = Arc::new(move || refresh_gauges(&m, &c));
    let (m, r) = (metrics.clone(), ready.clone());
    AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = metrics::serve(addr, m, r, refresh).await {
            tracing::error!(error = %e, "metrics endpoint failed");
        }
    }))
}

/// Stops a spawned task when `run` ends, however it ends (also when its own task is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The permissions-by-state gauge, counted from the cache at each scrape.
fn refresh_gauges(metrics: &Metrics, caches: &Caches) {
    let mut counts = [0i64; 3];
    let mut prerequisites_lost = 0;
    for p in caches.permissions.state() {
        let state = p.status.as_ref().map(|s| s.state).unwrap_or_default();
        let i = match state {
            PermissionState::Enabled => 0,
            PermissionState::Disabled => 1,
            PermissionState::Blocked => 2,
        };
        counts[i] += 1;
        let ready = p
            .status
            .as_ref()
            .and_then(|s| find(&s.conditions, types::READY));
        if state == PermissionState::Enabled && ready.is_some_and(|c| c.status == "False") {
            prerequisites_lost += 1;
        }
    }
    metrics.prerequisites_lost.set(prerequisites_lost);
    for (state, n) in ["Enabled", "Disabled", "Blocked"].into_iter().zip(counts) {
        metrics
            .permissions
            .get_or_create(&metrics::StateLabels { state })
            .set(n);
    }
}
