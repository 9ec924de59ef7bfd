//! Benchmarks that print numbers: the controllers at scale (`bench`, with the cluster backend
//! here and the Partner Center one in [`partner_center`]) and the embedded API server itself
//! (`bench-apiserver`, in [`apiserver`]). Nothing here asserts a time.

mod apiserver;
pub mod partner_center;

pub use apiserver::api_server;
pub use partner_center::{PartnerCenterOptions, PartnerCenterSummary};

use crate::apiserver::{ApiServer, Config};
use crate::backend::{BackendChoice, ClusterBackend};
use crate::controller::{Metrics, RunOptions};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

const NS: &str = "bench";
const GROUP: &str = "csp.operator.dev";

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1alpha1", kind), plural)
}

fn guid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

/// The four objects of customer `i`.
fn customer_objects(i: usize) -> [(ApiResource, Value); 4] {
    let c = format!("c{i}");
    [
        (
            resource("Customer", "customers"),
            json!({"apiVersion": "csp.operator.dev/v1alpha1", "kind": "Customer",
                   "metadata": {"name": c},
                   "spec": {"tenantId": guid(1, i), "companyName": format!("Customer {i}")}}),
        ),
        (
            resource("AzureSubscription", "azuresubscriptions"),
            json!({"apiVersion": "csp.operator.dev/v1alpha1", "kind": "AzureSubscription",
                   "metadata": {"name": format!("{c}-plan")},
                   "spec": {"customerRef": {"name": c}, "subscriptionId": guid(2, i), "offer": "AzurePlan"}}),
        ),
        (
            resource("RoleAssignment", "roleassignments"),
            json!({"apiVersion": "csp.operator.dev/v1alpha1", "kind": "RoleAssignment",
                   "metadata": {"name": format!("{c}-owner")},
                   "spec": {"subscriptionRef": {"name": format!("{c}-plan")},
                            "principal": {"id": guid(3, i)}, "role": "Owner"}}),
        ),
        (
            resource("PurchasePermission", "purchasepermissions"),
            json!({"apiVersion": "csp.operator.dev/v1alpha1", "kind": "PurchasePermission",
                   "metadata": {"name": c},
                   "spec": {"customerRef": {"name": c}, "enabled": true}}),
        ),
    ]
}

fn ready_reason(v: &Value) -> Option<(&str, &str)> {
    let conds = v.pointer("/status/conditions")?.as_array()?;
    let ready = conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))?;
    Some((
        ready.get("status")?.as_str()?,
        ready.get("reason")?.as_str()?,
    ))
}

/// The few fields of a stored object the bench checks, borrowed from its JSON (the check runs
/// over every object while the clock runs, so it parses nothing else).
#[derive(serde::Deserialize)]
struct Probe<'a> {
    metadata: ProbeMeta,
    #[serde(borrow, default)]
    status: Option<ProbeStatus<'a>>,
}

#[derive(serde::Deserialize)]
struct ProbeMeta {
    generation: Option<i64>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProbeStatus<'a> {
    observed_generation: Option<i64>,
    #[serde(borrow, default)]
    conditions: Vec<ProbeCondition<'a>>,
    #[serde(borrow)]
    state: Option<Cow<'a, str>>,
    #[serde(borrow)]
    purchase_permission: Option<Cow<'a, str>>,
    /// A count on a Customer, a list on a PurchasePermission.
    eligible_subscriptions: Option<Value>,
    eligible: Option<bool>,
    owners: Option<i64>,
}

#[derive(serde::Deserialize)]
struct ProbeCondition<'a> {
    #[serde(borrow, rename = "type")]
    type_: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    reason: Cow<'a, str>,
}

impl ProbeStatus<'_> {
    fn ready_is(&self, status: &str, reason: &str) -> bool {
        self.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == status && c.reason == reason)
    }
}

/// How many stored objects of `plural` have a current status satisfying `pred`.
fn count_correct(server: &ApiServer, plural: &str, pred: impl Fn(&ProbeStatus) -> bool) -> usize {
    let mut n = 0;
    server.for_each_stored(GROUP, plural, |b| {
        let ok = serde_json::from_slice::<Probe>(b).is_ok_and(|p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.observed_generation == p.metadata.generation && pred(s))
        });
        n += usize::from(ok);
    });
    n
}

/// How many objects have the status the bench expects.
fn correct(server: &ApiServer, customers: usize) -> usize {
    let perms = count_correct(server, "purchasepermissions", |s| {
        s.state.as_deref() == Some("Enabled") && s.ready_is("True", "PermissionEnabled")
    });
    if perms < customers {
        // Cheap early answer while the permissions (the last to settle) are not all done.
        return perms;
    }
    perms
        + count_correct(server, "customers", |s| {
            s.purchase_permission.as_deref() == Some("Enabled")
                && s.eligible_subscriptions.as_ref().and_then(Value::as_i64) == Some(1)
        })
        + count_correct(server, "azuresubscriptions", |s| {
            s.eligible == Some(true) && s.owners == Some(1)
        })
        + count_correct(server, "roleassignments", |s| {
            s.ready_is("True", "Assigned")
        })
}

/// A memory figure of this process from /proc/self/status, in MiB (Linux; 0 elsewhere).
fn proc_status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Peak resident set size of this process, in MiB.
pub fn peak_rss_mib() -> f64 {
    proc_status_mib("VmHWM:")
}

fn current_rss_mib() -> f64 {
    proc_status_mib("VmRSS:")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A fresh embedded server with our CRDs and the bench namespace.
async fn bench_server(
    history: usize,
    own_thread: bool,
    state: Option<std::path::PathBuf>,
) -> Result<(ApiServer, kube::Client), AnyError> {
    let config = Config {
        port: 0,
        history,
        state,
        ..Default::default()
    };
    let server = if own_thread {
        ApiServer::start_on_own_thread(config)?
    } else {
        ApiServer::start(config).await?
    };
    let client = server.client()?;
    crate::up::install_crds(&client).await?;
    let ns_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    ns_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
        )
        .await?;
    Ok((server, client))
}

/// Creates the objects with `clients` requests in flight, building each only when it is sent.
async fn create_all(
    client: &kube::Client,
    items: impl Iterator<Item = (ApiResource, Value)>,
    clients: usize,
) -> Result<(), AnyError> {
    let mut results = futures::stream::iter(items)
        .map(|(ar, obj)| {
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
            async move {
                // Sent as kubectl would; the answer is checked for errors but not parsed.
                let body = serde_json::to_vec(&obj).map_err(kube::Error::SerdeError)?;
                let request = kube::core::Request::new(api.resource_url())
                    .create(&PostParams::default(), body)
                    .map_err(kube::Error::BuildRequest)?;
                client.request_text(request).await.map(|_| ())
            }
        })
        .buffer_unordered(clients);
    while let Some(r) = results.next().await {
        r?;
    }
    Ok(())
}

/// What `csp-operator bench` runs.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub customers: usize,
    /// Concurrent HTTP clients creating the objects.
    pub clients: usize,
    /// Role changes timed for the latency figures (each timed twice).
    pub samples: usize,
    pub debounce: Duration,
    /// The embedded server on a thread and runtime of its own.
    pub server_thread: bool,
    /// Where grants live: `Cluster` (no external calls) or `PartnerCenter` (a simulator in
    /// process, see [`partner_center`]).
    pub backend: BackendChoice,
    /// The simulator's and the connection's limits (with the Partner Center backend only).
    pub partner_center: PartnerCenterOptions,
}

/// `csp-operator bench --customers N`: the controllers and the embedded server in one process.
pub async fn controllers(opts: BenchOptions) -> Result<String, AnyError> {
    if opts.backend == BackendChoice::PartnerCenter {
        return Ok(partner_center::run(&opts).await?.to_string());
    }
    let BenchOptions {
        customers,
        clients,
        samples,
        debounce,
        server_thread,
        ..
    } = opts;
    if customers == 0 {
        return Err("--customers must be at least 1".into());
    }
    let (server, client) = bench_server(20_000, server_thread, None).await?;
    let metrics = Arc::new(Metrics::default());
    let opts = RunOptions {
        metrics: Some(metrics.clone()),
        concurrency: 64,
        debounce,
        ..Default::default()
    };
    let controllers = tokio::spawn(crate::controller::run(
        client.clone(),
        Arc::new(ClusterBackend),
        opts,
        futures::future::pending(),
    ));

    let writes_before = server.stats().writes;
    let objects = customers * 4;
    let started = Instant::now();
    // A task of the runtime, like the controllers' own, not the thread that blocks on main.
    let creator = client.clone();
    tokio::spawn(async move {
        create_all(&creator, (0..customers).flat_map(customer_objects), clients).await
    })
    .await??;
    let created_s = started.elapsed().as_secs_f64();
    eprintln!("created {objects} objects in {created_s:.2} s");
    wait_until_correct(&server, customers, started).await?;
    let ready_s = started.elapsed().as_secs_f64();
    // Writes other than the bench's own creates, per object.
    let stats = server.stats();
    let operator_writes = stats.writes - writes_before - objects as u64;
    let mut by_resource: Vec<_> = stats.writes_by_resource.into_iter().collect();
    by_resource.sort();
    eprintln!("writes by resource (creates included): {by_resource:?}");
    let writes_per_object = operator_writes as f64 / objects as f64;

    // Steady state: a no-op period must write nothing.
    let settled = server.stats().writes;
    let settled_rss = current_rss_mib();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_writes = server.stats().writes - settled;

    let latencies = role_change_latencies(&server, &client, customers, samples).await?;
    let p50 = percentile(&latencies, 0.5);
    let p99 = percentile(&latencies, 0.99);
    let reconciles: u64 = [
        crate::controller::metrics::Kind::customer,
        crate::controller::metrics::Kind::azuresubscription,
        crate::controller::metrics::Kind::roleassignment,
        crate::controller::metrics::Kind::purchasepermission,
    ]
    .into_iter()
    .map(|k| metrics.reconcile_count(k))
    .sum();
    controllers.abort();
    server.shutdown();
    eprintln!(
        "latency role change -> permission status: samples={} p50_ms={:.2} p99_ms={:.2}",
        latencies.len(),
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    eprintln!("idle writes in 2 s after settling: {idle_writes}; reconciles: {reconciles}");
    eprintln!(
        "memory: peak RSS {:.0} MiB, {settled_rss:.0} MiB once settled",
        peak_rss_mib()
    );
    eprintln!(
        "server: {} objects, {:.1} MiB stored (LZ4-compressed JSON)",
        server.object_count(),
        server.stored_bytes() as f64 / 1048576.0
    );
    Ok(format!(
        "customers={customers} objects={objects} ready_s={ready_s:.2} objects_per_s={:.0} writes_per_object={writes_per_object:.2} peak_rss_mib={:.0}",
        objects as f64 / ready_s,
        peak_rss_mib()
    ))
}

/// Waits until every object's status is what the rules say (30 minutes at most), reporting
/// progress every 5 s.
async fn wait_until_correct(
    server: &ApiServer,
    customers: usize,
    started: Instant,
) -> Result<(), AnyError> {
    let objects = customers * 4;
    let mut last_report = Instant::now();
    loop {
        let done = correct(server, customers);
        if done == objects {
            return Ok(());
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "{done}/{objects} correct after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err(format!("only {done}/{objects} correct after 30 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(if customers > 20_000 {
            500
        } else {
            50
        }))
        .await;
    }
}

/// Change-to-status latency, sorted: flip an Owner to Contributor and back, timing each flip
/// until the permission's status shows it.
async fn role_change_latencies(
    server: &ApiServer,
    client: &kube::Client,
    customers: usize,
    samples: usize,
) -> Result<Vec<Duration>, AnyError> {
    let roles: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        NS,
        &resource("RoleAssignment", "roleassignments"),
    );
    let mut latencies = Vec::new();
    for k in 0..samples {
        let i = (k * 7919) % customers;
        for (role, want) in [
            ("Contributor", "OwnerRoleMissing"),
            ("Owner", "PermissionEnabled"),
        ] {
            let waiter = server.wait_for_change(
                GROUP,
                "purchasepermissions",
                NS,
                &format!("c{i}"),
                move |v| ready_reason(v).map(|r| r.1) == Some(want),
                Duration::from_secs(30),
            );
            let t0 = Instant::now();
            roles
                .patch(
                    &format!("c{i}-owner"),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"role": role}})),
                )
                .await?;
            match waiter.await {
                Some(t) => latencies.push(t.duration_since(t0)),
                None => return Err(format!("no status change for c{i} within 30 s").into()),
            }
        }
    }
    latencies.sort();
    Ok(latencies)
}

#[cfg(test)]
mod tests {
    use super::Probe;
    use serde_json::Value;

    #[test]
    fn probe_reads_the_checked_fields_of_each_kind() {
        // A permission: eligibleSubscriptions is a list, messages carry escapes.
        let permission = br#"{"metadata":{"name":"a","generation":2,"managedFields":[{"a":1}]},
            "spec":{"x":1},"status":{"observedGeneration":2,"state":"Enabled",
            "eligibleSubscriptions":["s"],"conditions":[{"type":"Ready","status":"True",
            "reason":"PermissionEnabled","message":"a \"b\""}]}}"#;
        let p: Probe = serde_json::from_slice(permission).unwrap();
        assert_eq!(p.metadata.generation, Some(2));
        let s = p.status.unwrap();
        assert_eq!(s.observed_generation, Some(2));
        assert!(s.ready_is("True", "PermissionEnabled"));
        assert!(!s.ready_is("False", "PermissionEnabled"));
        assert_eq!(s.state.as_deref(), Some("Enabled"));

        // A customer: eligibleSubscriptions is a count.
        let customer = br#"{"metadata":{"generation":1},"status":{"observedGeneration":1,
            "purchasePermission":"Enabled","eligibleSubscriptions":1}}"#;
        let s = serde_json::from_slice::<Probe>(customer)
            .unwrap()
            .status
            .unwrap();
        assert_eq!(
            s.eligible_subscriptions.as_ref().and_then(Value::as_i64),
            Some(1)
        );

        // No status yet.
        let fresh: Probe = serde_json::from_slice(br#"{"metadata":{"generation":1}}"#).unwrap();
        assert!(fresh.status.is_none());
    }
}
