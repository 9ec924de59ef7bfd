//! Prometheus metrics (prefixed `csp_operator_`), and the HTTP endpoint that serves them with
//! `/healthz` and `/readyz`.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The kinds, as metric label values.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Kind {
    customer,
    azuresubscription,
    roleassignment,
    purchasepermission,
    partnercenterconnection,
}

/// The metric label of a kind by its Kubernetes kind name.
pub fn kind_of(kind: &str) -> Kind {
    match kind {
        "Customer" => Kind::customer,
        "AzureSubscription" => Kind::azuresubscription,
        "RoleAssignment" => Kind::roleassignment,
        "PartnerCenterConnection" => Kind::partnercenterconnection,
        _ => Kind::purchasepermission,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: Kind,
    /// `ok`, or the error's metric label.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: Kind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: Kind,
    /// `status` or `event`.
    pub write: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabels {
    /// Where grants live (`cluster`, ...).
    pub backend: &'static str,
    /// `grant` or `revoke`.
    pub call: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

/// Every metric the operator exports.
#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub api_writes: Family<WriteLabels, Counter>,
    pub permissions: Family<StateLabels, Gauge>,
    /// Enabled permissions whose prerequisites were lost after the grant (Ready False).
    pub prerequisites_lost: Gauge,
    pub backend_calls: Family<BackendLabels, Counter>,
    pub in_flight: Family<KindLabels, Gauge>,
    pub triggers_pending: Family<KindLabels, Gauge>,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("csp_operator");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time a reconcile takes",
            reconcile_duration.clone(),
        );
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Writes to the Kubernetes API (status patches, Events)",
            api_writes.clone(),
        );
        let permissions = Family::<StateLabels, Gauge>::default();
        registry.register(
            "purchase_permissions",
            "PurchasePermissions by state (Enabled, Disabled, Blocked)",
            permissions.clone(),
        );
        let prerequisites_lost = Gauge::default();
        registry.register(
            "purchase_permissions_prerequisite_lost",
            "Enabled PurchasePermissions whose prerequisites were lost after the grant: the customer gets an error in the Azure portal when buying",
            prerequisites_lost.clone(),
        );
        let backend_calls = Family::<BackendLabels, Counter>::default();
        registry.register(
            "backend_calls",
            "Calls that switch a grant where it lives, by backend, call and result",
            backend_calls.clone(),
        );
        let in_flight = Family::<KindLabels, Gauge>::default();
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, by kind (the work queue's depth as far as it is visible)",
            in_flight.clone(),
        );
        let triggers_pending = Family::<KindLabels, Gauge>::default();
        registry.register(
            "triggers_pending",
            "Reconcile requests from related objects' changes waiting to enter a controller's queue",
            triggers_pending.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 when this instance holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_duration,
            api_writes,
            permissions,
            prerequisites_lost,
            backend_calls,
            in_flight,
            triggers_pending,
            leader,
        }
    }
}

impl Metrics {
    pub fn write(&self, kind: Kind, write: &'static str) {
        self.api_writes
            .get_or_create(&WriteLabels { kind, write })
            .inc();
    }

    /// Reconciles of a kind so far, whatever their result.
    pub fn reconcile_count(&self, kind: Kind) -> u64 {
        [
            "ok",
            "kube",
            "backend",
            "finalizer",
            "no_namespace",
            "leader",
        ]
        .iter()
        .map(|r| {
            self.reconciles
                .get_or_create(&ReconcileLabels {
                    kind,
                    result: r.to_string(),
                })
                .get()
        })
        .sum()
    }

    /// Starts measuring one reconcile of a kind: counted in flight until the measure is dropped,
    /// which also records its duration.
    pub fn reconcile_started(&self, kind: Kind) -> ReconcileTimer<'_> {
        let labels = KindLabels { kind };
        let in_flight = self.in_flight.get_or_create(&labels).clone();
        in_flight.inc();
        ReconcileTimer {
            metrics: self,
            kind,
            in_flight,
            started: std::time::Instant::now(),
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One reconcile being measured (see [`Metrics::reconcile_started`]).
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: Kind,
    in_flight: Gauge,
    started: std::time::Instant,
}

impl ReconcileTimer<'_> {
    /// Counts the reconcile under its result: `ok` or the error's metric label.
    pub fn finish(self, result: &str) {
        let labels = ReconcileLabels {
            kind: self.kind,
            result: result.to_string(),
        };
        self.metrics.reconciles.get_or_create(&labels).inc();
    }
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.in_flight.dec();
        let labels = KindLabels { kind: self.kind };
        let elapsed = self.started.elapsed().as_secs_f64();
        self.metrics
            .reconcile_duration
            .get_or_create(&labels)
            .observe(elapsed);
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` until the process ends. `before_scrape` refreshes
/// gauges computed from the caches.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    before_scrape: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    loop {
        let (stream, _) = listener.accept().await?;
        let metrics = metrics.clone();
        let ready = ready.clone();
        let before_scrape = before_scrape.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let metrics = metrics.clone();
                let ready = ready.clone();
                let before_scrape = before_scrape.clone();
                async move {
                    let (code, body, ct) = match req.uri().path() {
                        "/metrics" => {
                            before_scrape();
                            (
                                200,
                                metrics.encode(),
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                        }
                        "/healthz" | "/livez" => (200, "ok".to_string(), "text/plain"),
                        "/readyz" if ready.load(Ordering::Relaxed) => {
                            (200, "ok".to_string(), "text/plain")
                        }
                        "/readyz" => (503, "caches not synced".to_string(), "text/plain"),
                        _ => (404, "not found".to_string(), "text/plain"),
                    };
                    Ok::<_, Infallible>(
                        Response::builder()
                            .status(code)
                            .header("Content-Type", ct)
                            .body(Full::new(Bytes::from(body)))
                            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                    )
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
