//! `bench --backend partner-center`: the controllers with the Partner Center backend against the
//! simulator in process, counting what the first sync of N customers costs in calls and time,
//! and the calls made once everything is settled (the target is none).
//!
//! The simulator's world is built from the same numbers as the bench's Kubernetes objects
//! (customer i: tenant `guid(1,i)`, Azure subscription `guid(2,i)`, Owner `guid(3,i)`).

use super::{
    AnyError, BenchOptions, bench_server, count_correct, create_all, customer_objects, guid,
    peak_rss_mib, resource,
};
use crate::backend::BackendChoice;
use crate::controller::{Metrics, RunOptions};
use crate::simulator::world::{
    Application, AzureEntitlement, Customer, Partner, PartnerRole, PartnerUser, Secret,
    SeedRefreshToken, SeedRoleAssignment, Subscription,
};
use crate::simulator::{Limits, Simulator, SimulatorOptions, Stats, World};
use kube::core::ApiResource;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTNER_TENANT: &str = "9a8b7c6d-0000-4000-8000-0000000be4c0";
const CLIENT_ID: &str = "1f2e3d4c-0000-4000-8000-0000000be4c0";
const CLIENT_SECRET: &str = "bench-client-secret";
const ADMIN_USER: &str = "0a1b2c3d-0000-4000-8000-0000000be4c0";
const REFRESH_TOKEN: &str = "bench-refresh-token";
/// Owner, as ARM names it.
const OWNER_ROLE_DEFINITION: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

/// The limits of a Partner Center bench.
#[derive(Clone, Debug)]
pub struct PartnerCenterOptions {
    /// The simulator's Partner Center limit per partner tenant (the real service: 500).
    pub simulator_per_minute: u32,
    /// The connection's `requestsPerMinute`: the client's own budget.
    pub requests_per_minute: u32,
    /// How long calls are counted once every permission is Enabled.
    pub settle: Duration,
}

impl Default for PartnerCenterOptions {
    fn default() -> Self {
        PartnerCenterOptions {
            simulator_per_minute: 500,
            requests_per_minute: 300,
            settle: Duration::from_secs(60),
        }
    }
}

/// What a Partner Center bench measured; `Display` is the summary line.
#[derive(Clone, Debug, PartialEq)]
pub struct PartnerCenterSummary {
    pub customers: usize,
    /// Kubernetes objects the bench created (4 per customer).
    pub objects: usize,
    /// From the first create until every permission was Enabled.
    pub ready_s: f64,
    /// The operator's writes to the API server per object, until ready.
    pub writes_per_object: f64,
    pub peak_rss_mib: f64,
    /// Permissions Enabled (with Ready True) when the bench stopped waiting.
    pub enabled: usize,
    /// Requests the simulator received until ready, by kind: Partner Center (`/v1/...`), ARM
    /// (`/subscriptions/...`) and sign-in (`/{tenant}/oauth2/token`); 429s included.
    pub pc_calls: u64,
    pub arm_calls: u64,
    pub login_calls: u64,
    pub total_calls: u64,
    /// 429 answers until ready.
    pub throttled_calls: u64,
    /// Requests in the settle window after ready.
    pub calls_after_settling: u64,
    pub settle_secs: u64,
    /// The connection's budget, and the burst the client's limiter grants up front.
    pub requests_per_minute: u32,
    pub burst: u32,
    /// The time the client's budget alone needs for `pc_calls`.
    pub floor_secs: f64,
}

impl PartnerCenterSummary {
    fn per_customer(&self, calls: u64) -> f64 {
        calls as f64 / self.customers.max(1) as f64
    }

    pub fn pc_calls_per_customer(&self) -> f64 {
        self.per_customer(self.pc_calls)
    }

    pub fn arm_calls_per_customer(&self) -> f64 {
        self.per_customer(self.arm_calls)
    }

    /// Every call of the first sync, sign-ins included.
    pub fn calls_per_customer(&self) -> f64 {
        self.per_customer(self.total_calls)
    }

    /// Elapsed time over the floor (0 when the calls fit in the burst).
    pub fn vs_floor(&self) -> f64 {
        if self.floor_secs > 0.0 {
            self.ready_s / self.floor_secs
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for PartnerCenterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "customers={} objects={} ready_s={:.2} objects_per_s={:.0} writes_per_object={:.2} peak_rss_mib={:.0} \
             pc_calls_per_customer={:.2} arm_calls_per_customer={:.2} login_calls={} calls_per_customer={:.2} \
             throttled_calls={} calls_after_settling={} requests_per_minute={} floor_secs={:.1} vs_floor={:.2}",
            self.customers,
            self.objects,
            self.ready_s,
            self.objects as f64 / self.ready_s.max(f64::EPSILON),
            self.writes_per_object,
            self.peak_rss_mib,
            self.pc_calls_per_customer(),
            self.arm_calls_per_customer(),
            self.login_calls,
            self.calls_per_customer(),
            self.throttled_calls,
            self.calls_after_settling,
            self.requests_per_minute,
            self.floor_secs,
            self.vs_floor(),
        )
    }
}

/// The burst the client's Partner Center limiter grants before it spaces calls evenly: a tenth
/// of the budget, at least 1 (as `partnercenter::budget::Budgets::new` sets it).
pub fn burst_of(requests_per_minute: u32) -> u32 {
    (requests_per_minute / 10).max(1)
}

/// The least time a budget of `requests_per_minute` needs for `calls`: the burst goes at once,
/// the rest one every `60 / requests_per_minute` seconds.
pub fn floor_secs(calls: u64, requests_per_minute: u32) -> f64 {
    let spaced = calls.saturating_sub(u64::from(burst_of(requests_per_minute)));
    spaced as f64 * 60.0 / f64::from(requests_per_minute.max(1))
}

/// The simulated partner: N customers as the bench's objects describe them, each with an Azure
/// plan whose one Azure subscription has the customer's Owner, and an Admin Agent with MFA.
pub fn world(customers: usize) -> World {
    let customers = (0..customers)
        .map(|i| Customer {
            tenant_id: guid(1, i),
            company_name: format!("Customer {i}"),
            domain: None,
            relationship: "reseller".into(),
            subscriptions: vec![azure_plan(i)],
        })
        .collect();
    World {
        partner: Partner {
            tenant_id: PARTNER_TENANT.into(),
            name: "Bench Partner".into(),
        },
        applications: vec![Application {
            client_id: CLIENT_ID.into(),
            client_secret: Secret(CLIENT_SECRET.into()),
        }],
        users: vec![PartnerUser {
            id: ADMIN_USER.into(),
            upn: "admin@bench-partner.example".into(),
            roles: vec![PartnerRole::AdminAgent],
            mfa: true,
            refresh_tokens: vec![SeedRefreshToken {
                token: Secret(REFRESH_TOKEN.into()),
                client_id: Some(CLIENT_ID.into()),
                expires_at: None,
                revoked: false,
            }],
        }],
        customers,
        self_serve_policies: Vec::new(),
    }
}

/// Customer i's Azure plan (Partner Center subscription `guid(4,i)`) with its Azure subscription.
fn azure_plan(i: usize) -> Subscription {
    Subscription {
        id: guid(4, i),
        offer_id: "DZH318Z0BPS6:0001".into(),
        offer_name: "Azure plan".into(),
        friendly_name: None,
        quantity: 1,
        unit_type: None,
        billing_type: "usage".into(),
        status: "active".into(),
        creation_date: "2025-01-01T00:00:00Z".into(),
        billing_cycle: "monthly".into(),
        term_duration: None,
        auto_renew_enabled: false,
        azure_entitlements: vec![AzureEntitlement {
            id: guid(2, i),
            friendly_name: "Azure plan".into(),
            status: "active".into(),
            role_assignments: vec![SeedRoleAssignment {
                name: guid(5, i),
                principal_id: guid(3, i),
                principal_type: "User".into(),
                role_definition: OWNER_ROLE_DEFINITION.into(),
            }],
        }],
    }
}

/// The Secret and the PartnerCenterConnection of the bench namespace, pointed at `url`.
fn connection_objects(url: &str, requests_per_minute: u32) -> [(ApiResource, Value); 2] {
    let secret = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    let connection = resource("PartnerCenterConnection", "partnercenterconnections");
    [
        (
            secret,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "pc-credentials"},
                   "stringData": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                                  "refreshToken": REFRESH_TOKEN}}),
        ),
        (
            connection,
            json!({"apiVersion": "csp.operator.dev/v1alpha1", "kind": "PartnerCenterConnection",
                   "metadata": {"name": "partner-center"},
                   "spec": {"partnerTenantId": PARTNER_TENANT,
                            "credentialsSecretRef": {"name": "pc-credentials"},
                            "endpoints": {"partnerCenter": url, "login": url, "resourceManager": url},
                            "requestsPerMinute": requests_per_minute}}),
        ),
    ]
}

/// Requests by kind, from the simulator's per-route counters.
#[derive(Clone, Copy, Debug, Default)]
struct Calls {
    partner_center: u64,
    arm: u64,
    login: u64,
}

fn calls_of(stats: &Stats) -> Calls {
    let mut calls = Calls::default();
    for (key, n) in &stats.requests {
        // "METHOD /route/template"
        let route = key.split_once(' ').map_or(key.as_str(), |(_, r)| r);
        if route.starts_with("/v1/") {
            calls.partner_center += n;
        } else if route.starts_with("/subscriptions/") {
            calls.arm += n;
        } else if route.ends_with("/oauth2/token") {
            calls.login += n;
        }
    }
    calls
}

/// Requests per route made between two snapshots.
fn requests_since(before: &Stats, after: &Stats) -> BTreeMap<String, u64> {
    after
        .requests
        .iter()
        .map(|(k, n)| (k.clone(), n - before.requests.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// `csp-operator bench --backend partner-center --customers N`.
pub async fn run(opts: &BenchOptions) -> Result<PartnerCenterSummary, AnyError> {
    let customers = opts.customers;
    let limits = &opts.partner_center;
    if customers == 0 {
        return Err("--customers must be at least 1".into());
    }
    if limits.requests_per_minute == 0 || limits.simulator_per_minute == 0 {
        return Err("requests per minute must be at least 1".into());
    }
    let simulator = Simulator::start(
        world(customers),
        SimulatorOptions {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            limits: Limits {
                partner_center_per_minute: limits.simulator_per_minute,
                ..Limits::default()
            },
        },
    )
    .await?;
    let (server, client) = bench_server(20_000, opts.server_thread, None).await?;
    let metrics = Arc::new(Metrics::default());
    let run_options = RunOptions {
        metrics: Some(metrics),
        concurrency: 64,
        debounce: opts.debounce,
        // As `run` does by default: a re-check of every object each hour, which must cost no call.
        resync: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let controllers = tokio::spawn(crate::controller::run(
        client.clone(),
        BackendChoice::PartnerCenter.build(),
        run_options,
        futures::future::pending(),
    ));

    let writes_before = server.stats().writes;
    let objects = customers * 4;
    let started = Instant::now();
    let connection = connection_objects(&simulator.base_url(), limits.requests_per_minute);
    let creator = client.clone();
    let clients = opts.clients;
    tokio::spawn(async move {
        create_all(&creator, connection.into_iter(), 1).await?;
        create_all(&creator, (0..customers).flat_map(customer_objects), clients).await
    })
    .await??;
    eprintln!(
        "created the connection and {objects} objects in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let enabled = wait_until_enabled(&server, &simulator, opts, started).await?;
    let ready_s = started.elapsed().as_secs_f64();
    let at_ready = simulator.stats();
    let operator_writes = server.stats().writes - writes_before - objects as u64 - 2;
    eprintln!("calls until ready: {:?}", at_ready.requests);

    // Settled: nothing changes, so nothing should be called.
    tokio::time::sleep(limits.settle).await;
    let after = simulator.stats();
    let idle = requests_since(&at_ready, &after);
    if !idle.is_empty() {
        eprintln!("calls after settling: {idle:?}");
    }
    controllers.abort();
    server.shutdown();
    simulator.shutdown().await;

    let calls = calls_of(&at_ready);
    Ok(PartnerCenterSummary {
        customers,
        objects,
        ready_s,
        writes_per_object: operator_writes as f64 / objects as f64,
        peak_rss_mib: peak_rss_mib(),
        enabled,
        pc_calls: calls.partner_center,
        arm_calls: calls.arm,
        login_calls: calls.login,
        total_calls: at_ready.total,
        throttled_calls: at_ready.throttled,
        calls_after_settling: after.total - at_ready.total,
        settle_secs: limits.settle.as_secs(),
        requests_per_minute: limits.requests_per_minute,
        burst: burst_of(limits.requests_per_minute),
        floor_secs: floor_secs(calls.partner_center, limits.requests_per_minute),
    })
}

/// Waits until every permission is Enabled (Ready True), reporting progress every 5 s; gives up
/// after twice the time the slower limit needs for 4 calls per customer, 30 minutes at least.
async fn wait_until_enabled(
    server: &crate::apiserver::ApiServer,
    simulator: &Simulator,
    opts: &BenchOptions,
    started: Instant,
) -> Result<usize, AnyError> {
    let customers = opts.customers;
    let per_minute = opts
        .partner_center
        .requests_per_minute
        .min(opts.partner_center.simulator_per_minute);
    let patience = Duration::from_secs(1800).max(Duration::from_secs_f64(
        customers as f64 * 8.0 * 60.0 / f64::from(per_minute),
    ));
    let mut last_report = Instant::now();
    loop {
        let enabled = count_correct(server, "purchasepermissions", |s| {
            s.state.as_deref() == Some("Enabled") && s.ready_is("True", "PermissionEnabled")
        });
        if enabled == customers {
            return Ok(enabled);
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            let stats = simulator.stats();
            let calls = calls_of(&stats);
            eprintln!(
                "{enabled}/{customers} permissions enabled after {:.1} s; calls: {} Partner Center, {} ARM, {} sign-in, {} throttled",
                started.elapsed().as_secs_f64(),
                calls.partner_center,
                calls.arm,
                calls.login,
                stats.throttled
            );
            last_report = Instant::now();
        }
        if started.elapsed() > patience {
            return Err(format!(
                "only {enabled}/{customers} permissions enabled after {:.0} s",
                patience.as_secs_f64()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(if customers > 2_000 {
            250
        } else {
            50
        }))
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_leaves_out_the_burst() {
        assert_eq!(burst_of(500), 50);
        assert_eq!(burst_of(5), 1);
        assert_eq!(floor_secs(50, 500), 0.0);
        assert_eq!(floor_secs(550, 500), 60.0);
        assert_eq!(floor_secs(6600, 6000), 60.0);
    }

    #[test]
    fn calls_are_told_apart_by_route() {
        let mut stats = Stats::default();
        for (k, n) in [
            ("POST /v1/SelfServePolicy", 3),
            ("GET /v1/customers/{customerId}/subscriptions", 2),
            ("POST /{tenantId}/oauth2/token", 4),
            (
                "GET /subscriptions/{subscriptionId}/providers/Microsoft.Authorization/roleAssignments",
                5,
            ),
        ] {
            stats.requests.insert(k.into(), n);
        }
        let calls = calls_of(&stats);
        assert_eq!((calls.partner_center, calls.arm, calls.login), (5, 5, 4));
    }

    #[test]
    fn the_world_matches_the_bench_objects() {
        let w = world(3);
        assert_eq!(w.customers.len(), 3);
        let c = &w.customers[2];
        assert_eq!(c.tenant_id, guid(1, 2));
        let e = &c.subscriptions[0].azure_entitlements[0];
        assert_eq!(e.id, guid(2, 2));
        assert_eq!(e.role_assignments[0].principal_id, guid(3, 2));
    }
}
