//! Leader failover in one process: two operator instances ([`Operator`]) against the embedded
//! server and the Partner Center simulator. A killed leader (no cleanup, its Lease left held) is
//! replaced within one lease duration, never before its Lease could have run out, and no grant
//! is made twice; a leader that cannot renew stops before another could take the Lease.

use crate::support::paths::EXAMPLES;
use crate::support::{Env, poll};
use csp_operator::backend::BackendChoice;
use csp_operator::controller::{LeaderElection, LeaseTiming, Operator, RunOptions};
use csp_operator::simulator::{FaultAction, FaultRule, Simulator, SimulatorOptions, World};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use std::time::{Duration, Instant};

const NS: &str = "partner-a";
const LEASE: &str = "csp-operator-leader";
const CREATE: (&str, &str) = ("POST", "/v1/SelfServePolicy");

/// Short enough for a test, long enough for a busy 2-core machine to renew in time.
const TIMING: LeaseTiming = LeaseTiming {
    lease_duration: Duration::from_secs(3),
    retry_period: Duration::from_millis(500),
    write_margin: Duration::from_secs(1),
};

fn replica(identity: &str) -> RunOptions {
    RunOptions {
        leader_election: Some(LeaderElection {
            timing: TIMING,
            ..LeaderElection::new("default", LEASE, identity)
        }),
        ..Default::default()
    }
}

fn start(env: &Env, identity: &str) -> Operator {
    Operator::start(
        env.client.clone(),
        BackendChoice::PartnerCenter.build(),
        replica(identity),
    )
}

/// The Lease's holder now (None: nobody).
async fn holder(env: &Env) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "default");
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Waits (polling the Lease every 20 ms) until `identity` holds it.
async fn wait_for_holder(env: &Env, identity: &str) {
    let every = poll::Poll {
        timeout: poll::TIMEOUT,
        every: Duration::from_millis(20),
    };
    every
        .eventually(&format!("{identity} to hold the Lease"), || async {
            let now = holder(env).await;
            if now.as_deref() == Some(identity) {
                Ok(())
            } else {
                Err(format!("{now:?}"))
            }
        })
        .await
}

async fn simulator() -> Simulator {
    let options = SimulatorOptions {
        addr: "127.0.0.1:0".parse().expect("address"),
        ..SimulatorOptions::default()
    };
    Simulator::start(World::examples(), options)
        .await
        .expect("simulator starts")
}

/// The examples with their connection pointed at the simulator.
async fn apply_examples(env: &Env, sim: &Simulator) {
    let url = sim.base_url();
    let connection = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: pc-credentials, namespace: {NS}}}
stringData: {{clientId: 1f2e3d4c-0000-4000-8000-00000000c11e, clientSecret: fake-client-secret-for-the-simulator-only, refreshToken: fake-refresh-token-admin-0001}}
---
apiVersion: csp.operator.dev/v1alpha1
kind: PartnerCenterConnection
metadata: {{name: partner-center, namespace: {NS}}}
spec:
  partnerTenantId: 9a8b7c6d-0000-4000-8000-000000000001
  credentialsSecretRef: {{name: pc-credentials}}
  endpoints: {{partnerCenter: "{url}", login: "{url}", resourceManager: "{url}"}}
"#
    );
    for file in [
        "00-namespace.yaml",
        "10-customers.yaml",
        "20-subscriptions.yaml",
        "30-role-assignments.yaml",
        "40-purchase-permissions.yaml",
    ] {
        env.ok(&["apply", "-f", &format!("{EXAMPLES}/{file}")])
            .await;
    }
    let conn = env.manifest("conn.yaml", &connection);
    env.ok(&["apply", "-f", &conn]).await;
}

fn creates(sim: &Simulator) -> u64 {
    sim.stats().self_serve_policy_creates.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_a_lease_and_no_grant_is_made_twice() {
    let env = Env::new().await;
    let sim = simulator().await;
    let a = start(&env, "replica-a");
    wait_for_holder(&env, "replica-a").await;
    let b = start(&env, "replica-b");
    apply_examples(&env, &sim).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    assert_eq!(creates(&sim), 1);

    // The next grant is slow in Partner Center; the leader is killed while it is on its way.
    let posts = sim.stats().requests_to(CREATE.0, CREATE.1);
    env.ok(&crate::support::kubectl::patch_enabled(
        NS, "contoso", false,
    ))
    .await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    sim.faults().add(
        FaultRule::new(FaultAction::Latency(Duration::from_millis(800)))
            .method("POST")
            .path("/SelfServePolicy")
            .times(1),
    );
    env.ok(&crate::support::kubectl::patch_enabled(NS, "contoso", true))
        .await;
    poll::eventually("the grant to reach Partner Center", || async {
        let now = sim.stats().requests_to(CREATE.0, CREATE.1);
        if now > posts {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await;
    a.kill();
    let killed = Instant::now();
    assert_eq!(
        holder(&env).await.as_deref(),
        Some("replica-a"),
        "a kill releases nothing"
    );
    wait_for_holder(&env, "replica-b").await;
    let took = killed.elapsed();
    // A renewal may have landed just before the kill; the standby waits a whole lease after
    // the last renewal it saw, and no longer.
    assert!(
        took >= TIMING.lease_duration - TIMING.retry_period - Duration::from_millis(200),
        "took over after {took:?}: before the old Lease could have run out"
    );
    assert!(
        took <= TIMING.lease_duration + Duration::from_secs(1),
        "took over after {took:?}: more than one lease duration"
    );
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    // The old leader's grant was made once; the new leader found it (adopted), not made again.
    assert_eq!(
        creates(&sim),
        2,
        "{:?}",
        sim.stats().self_serve_policy_creates
    );
    assert_eq!(sim.self_serve_policies().len(), 1);
    b.shutdown().await.expect("the new leader stops cleanly");
    assert_eq!(holder(&env).await, None, "a shutdown releases the Lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_stops_before_its_lease_runs_out() {
    let env = Env::new().await;
    let a = start(&env, "replica-a");
    wait_for_holder(&env, "replica-a").await;
    // Every renewal from now on fails.
    env.server.fail_next("update", "leases", 1_000, 500, None);
    let failing = Instant::now();
    poll::eventually("the leader to stop", || async {
        if a.is_finished() {
            Ok(())
        } else {
            Err("still running")
        }
    })
    .await;
    let stopped = failing.elapsed();
    // It gives up once less than the write margin is left: before another replica could
    // take the Lease (a lease duration after its last renewal).
    assert!(
        stopped < TIMING.lease_duration,
        "stopped {stopped:?} after renewals began to fail"
    );
    let outcome = a.shutdown().await;
    assert!(
        outcome
            .as_ref()
            .is_err_and(|e| e.to_string().contains("lost the leader Lease")),
        "{outcome:?}"
    );
}
