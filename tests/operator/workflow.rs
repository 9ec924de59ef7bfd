//! The article's workflow end to end: the real operator against the embedded API server,
//! driven with the real kubectl as a partner would.

use crate::support::clients::{free_port, http_get};
use crate::support::kubectl::patch_enabled;
use crate::support::paths::EXAMPLES;
use crate::support::{Env, spawn_controllers};
use csp_operator::api::GrantBackend;
use csp_operator::backend::{Backend, BackendError, BackendFuture, Grant, Readiness};
use csp_operator::policy::GrantMade;
use std::sync::Arc;
use std::time::Duration;

const NS: &str = "partner-a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_walkthrough_and_fixing_each_blocked_customer() {
    let env = Env::with_controllers().await;
    let applied = env.ok(&["apply", "-f", EXAMPLES]).await;
    assert!(
        applied.contains("purchasepermission.csp.operator.dev/contoso created"),
        "{applied}"
    );

    env.ok(&[
        "wait",
        "--for=condition=Ready",
        "cspperm/contoso",
        "-n",
        NS,
        "--timeout=20s",
    ])
    .await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_permission(NS, "adatum", "Blocked/False/NoEligibleSubscription")
        .await;
    env.wait_for_permission(NS, "fabrikam", "Blocked/False/NoEligibleSubscription")
        .await;
    env.wait_for_permission(NS, "northwind", "Blocked/False/OwnerRoleMissing")
        .await;
    env.wait_for(
        "cspperm/contoso",
        NS,
        "{.status.eligibleSubscriptions[0]}",
        "2b3c4d5e-0000-4000-8000-000000000004",
    )
    .await;

    // The summaries a dashboard shows.
    env.wait_for(
        "cspcust/contoso",
        NS,
        "{.status.purchasePermission}/{.status.subscriptions}/{.status.eligibleSubscriptions}",
        "Enabled/1/1",
    )
    .await;
    env.wait_for(
        "cspcust/fabrikam",
        NS,
        "{.status.purchasePermission}/{.status.subscriptions}/{.status.eligibleSubscriptions}",
        "Disabled/1/0",
    )
    .await;
    env.wait_for(
        "azsub/contoso-plan",
        NS,
        "{.status.eligible}/{.status.owners}",
        "true/1",
    )
    .await;
    env.wait_for(
        "azsub/fabrikam-license",
        NS,
        r#"{.status.conditions[?(@.type=="ReservationEligible")].reason}"#,
        "NotUsageBased",
    )
    .await;
    env.wait_for(
        "azrole/contoso-plan-alice-owner",
        NS,
        "{.status.roleDefinitionId}",
        "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    )
    .await;

    // The activity log.
    env.wait_for_event(
        NS,
        "PermissionEnabled/CreateCustomerPurchasePermissions/contoso",
    )
    .await;
    env.wait_for_event(NS, "NoEligibleSubscription/CheckPrerequisites/adatum")
        .await;
    env.wait_for_event(NS, "OwnerRoleMissing/CheckPrerequisites/northwind")
        .await;
    let describe = env.ok(&["describe", "cspperm", "contoso", "-n", NS]).await;
    assert!(
        describe.contains("PermissionEnabled") && describe.contains("not notified"),
        "{describe}"
    );

    // kubectl get csp lists every kind with its columns.
    let all = env.ok(&["get", "csp", "-n", NS]).await;
    for needle in [
        "TENANT",
        "SUBSCRIPTION-ID",
        "PRINCIPAL",
        "REASON",
        "OwnerRoleMissing",
        "PermissionEnabled",
    ] {
        assert!(all.contains(needle), "missing {needle} in\n{all}");
    }

    // northwind: a Contributor does not help; assigning Owner enables it.
    let owner = env.manifest(
        "northwind-owner.yaml",
        "apiVersion: csp.operator.dev/v1alpha1\nkind: RoleAssignment\nmetadata: {name: northwind-plan-carol-owner, namespace: partner-a}\nspec:\n  subscriptionRef: {name: northwind-plan}\n  principal: {id: 3c4d5e6f-0000-4000-8000-0000000000aa}\n  role: Owner\n",
    );
    env.ok(&["apply", "-f", &owner]).await;
    env.wait_for_permission(NS, "northwind", "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_event(
        NS,
        "PermissionEnabled/CreateCustomerPurchasePermissions/northwind",
    )
    .await;

    // fabrikam: moving the subscription to usage billing leaves only the Owner missing.
    env.ok(&[
        "patch",
        "azsub",
        "fabrikam-license",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"billingType":"Usage"}}"#,
    ])
    .await;
    env.wait_for_permission(NS, "fabrikam", "Blocked/False/OwnerRoleMissing")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_owner_keeps_grant_then_disabling_withdraws_it() {
    let env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    let since = env
        .jsonpath("cspperm/contoso", NS, "{.status.enabledSince}")
        .await;

    env.ok(&["delete", "azrole", "contoso-plan-alice-owner", "-n", NS])
        .await;
    env.wait_for_permission(NS, "contoso", "Enabled/False/OwnerRoleMissing")
        .await;
    env.wait_for_event(NS, "OwnerRoleMissing/CheckPrerequisites/contoso")
        .await;
    let msg = env
        .jsonpath(
            "cspperm/contoso",
            NS,
            r#"{.status.conditions[?(@.type=="Ready")].message}"#,
        )
        .await;
    assert!(msg.contains("Azure portal"), "{msg}");
    env.wait_for("cspperm/contoso", NS, "{.status.enabledSince}", &since)
        .await;
    env.wait_for(
        "cspcust/contoso",
        NS,
        "{.status.purchasePermission}",
        "Enabled",
    )
    .await;
    // The grant remembers the tenant it was made for.
    env.wait_for(
        "cspperm/contoso",
        NS,
        "{.status.grantedTenantId}",
        "1a2b3c4d-0000-4000-8000-000000000004",
    )
    .await;

    env.ok(&patch_enabled(NS, "contoso", false)).await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    env.wait_for("cspperm/contoso", NS, "{.status.observedGeneration}", "2")
        .await;
    env.wait_for_event(
        NS,
        "PermissionDisabled/DeleteCustomerPurchasePermissions/contoso",
    )
    .await;
    env.wait_for(
        "cspcust/contoso",
        NS,
        "{.status.purchasePermission}",
        "Disabled",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_states_and_off_by_default() {
    let env = Env::with_controllers().await;
    let yaml = r#"
apiVersion: v1
kind: Namespace
metadata: {name: partner-a}
---
apiVersion: csp.operator.dev/v1alpha1
kind: Customer
metadata: {name: c1, namespace: partner-a}
spec: {tenantId: 00000000-0000-4000-8000-000000000001, companyName: C1}
---
apiVersion: csp.operator.dev/v1alpha1
kind: AzureSubscription
metadata: {name: c1-other, namespace: partner-a}
spec: {customerRef: {name: c1}, subscriptionId: 00000000-0000-4000-8000-0000000000a1, offer: Other}
---
apiVersion: csp.operator.dev/v1alpha1
kind: AzureSubscription
metadata: {name: c1-suspended, namespace: partner-a}
spec: {customerRef: {name: c1}, subscriptionId: 00000000-0000-4000-8000-0000000000a2, offer: AzurePlan, state: Suspended}
---
apiVersion: csp.operator.dev/v1alpha1
kind: RoleAssignment
metadata: {name: c1-other-owner, namespace: partner-a}
spec: {subscriptionRef: {name: c1-other}, principal: {id: 00000000-0000-4000-8000-0000000000b1}, role: Owner}
---
apiVersion: csp.operator.dev/v1alpha1
kind: RoleAssignment
metadata: {name: c1-suspended-owner, namespace: partner-a}
spec: {subscriptionRef: {name: c1-suspended}, principal: {id: 00000000-0000-4000-8000-0000000000b1}, role: Owner}
---
apiVersion: csp.operator.dev/v1alpha1
kind: PurchasePermission
metadata: {name: c1, namespace: partner-a}
spec: {customerRef: {name: c1}}
"#;
    let f = env.manifest("c1.yaml", yaml);
    env.ok(&["apply", "-f", &f]).await;
    // Off by default, with readiness shown first.
    env.wait_for_permission(NS, "c1", "Disabled/True/PermissionDisabled")
        .await;
    env.wait_for(
        "cspperm/c1",
        NS,
        r#"{.status.conditions[?(@.type=="SubscriptionEligible")].reason}"#,
        "NoEligibleSubscription",
    )
    .await;
    env.wait_for(
        "azsub/c1-other",
        NS,
        r#"{.status.conditions[?(@.type=="ReservationEligible")].reason}"#,
        "OfferNotEligible",
    )
    .await;
    env.wait_for(
        "azsub/c1-suspended",
        NS,
        r#"{.status.conditions[?(@.type=="ReservationEligible")].reason}"#,
        "NotActive",
    )
    .await;

    env.ok(&patch_enabled(NS, "c1", true)).await;
    env.wait_for_permission(NS, "c1", "Blocked/False/NoEligibleSubscription")
        .await;

    // An Azure Global subscription with an Owner counts.
    let global = env.manifest(
        "global.yaml",
        "apiVersion: csp.operator.dev/v1alpha1\nkind: AzureSubscription\nmetadata: {name: c1-global, namespace: partner-a}\nspec: {customerRef: {name: c1}, subscriptionId: 00000000-0000-4000-8000-0000000000a3, offer: AzureGlobal}\n---\napiVersion: csp.operator.dev/v1alpha1\nkind: RoleAssignment\nmetadata: {name: c1-global-owner, namespace: partner-a}\nspec: {subscriptionRef: {name: c1-global}, principal: {id: 00000000-0000-4000-8000-0000000000b1}, role: Owner}\n",
    );
    env.ok(&["apply", "-f", &global]).await;
    env.wait_for_permission(NS, "c1", "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for(
        "cspperm/c1",
        NS,
        "{.status.eligibleSubscriptions}",
        r#"["00000000-0000-4000-8000-0000000000a3"]"#,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_unknown_customer_and_deletion() {
    let env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;

    let dup = env.manifest(
        "dup.yaml",
        "apiVersion: csp.operator.dev/v1alpha1\nkind: PurchasePermission\nmetadata: {name: contoso-again, namespace: partner-a}\nspec: {customerRef: {name: contoso}, enabled: true}\n---\napiVersion: csp.operator.dev/v1alpha1\nkind: Customer\nmetadata: {name: contoso-copy, namespace: partner-a}\nspec: {tenantId: 1a2b3c4d-0000-4000-8000-000000000004, companyName: Contoso again}\n---\napiVersion: csp.operator.dev/v1alpha1\nkind: AzureSubscription\nmetadata: {name: contoso-plan-copy, namespace: partner-a}\nspec: {customerRef: {name: contoso}, subscriptionId: 2b3c4d5e-0000-4000-8000-000000000004, offer: AzurePlan}\n---\napiVersion: csp.operator.dev/v1alpha1\nkind: PurchasePermission\nmetadata: {name: nobody, namespace: partner-a}\nspec: {customerRef: {name: nobody}, enabled: true}\n---\napiVersion: csp.operator.dev/v1alpha1\nkind: RoleAssignment\nmetadata: {name: dangling, namespace: partner-a}\nspec: {subscriptionRef: {name: missing}, principal: {id: 00000000-0000-4000-8000-0000000000b1}, role: Owner}\n",
    );
    env.ok(&["apply", "-f", &dup]).await;
    env.wait_for_permission(NS, "contoso-again", "Blocked/False/DuplicatePermission")
        .await;
    env.wait_for(
        "cspcust/contoso-copy",
        NS,
        r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
        "DuplicateTenant",
    )
    .await;
    env.wait_for(
        "azsub/contoso-plan-copy",
        NS,
        r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
        "DuplicateSubscription",
    )
    .await;
    env.wait_for_permission(NS, "nobody", "Blocked/False/CustomerNotFound")
        .await;
    env.wait_for(
        "azrole/dangling",
        NS,
        r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
        "SubscriptionNotFound",
    )
    .await;
    // The oldest keeps winning.
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;

    // Deleting an enabled permission turns it off first, then lets it go.
    env.ok(&["delete", "cspperm", "contoso", "-n", NS, "--wait=false"])
        .await;
    env.ok(&[
        "wait",
        "--for=delete",
        "cspperm/contoso",
        "-n",
        NS,
        "--timeout=20s",
    ])
    .await;
    env.wait_for_event(
        NS,
        "PermissionDisabled/DeleteCustomerPurchasePermissions/contoso",
    )
    .await;
    // The duplicate is now the only one: it takes over.
    env.wait_for_permission(NS, "contoso-again", "Enabled/True/PermissionEnabled")
        .await;
    // A blocked one goes at once, with no withdrawal logged.
    env.ok(&["delete", "cspperm", "adatum", "-n", NS, "--timeout=20s"])
        .await;
    assert!(
        !env.activity_log(NS)
            .await
            .iter()
            .any(|l| l == "PermissionDisabled/DeleteCustomerPurchasePermissions/adatum")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_objects_cause_no_writes_even_after_restart() {
    let mut env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_permission(NS, "northwind", "Blocked/False/OwnerRoleMissing")
        .await;
    let last = env.settled_writes().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.server.stats().writes, last, "writes after settling");

    env.stop_controllers();
    env.start_controllers();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = env.server.stats();
    assert_eq!(
        stats.writes, last,
        "a restarted operator over settled objects writes nothing: {stats:?}"
    );
    // ... but still reacts.
    env.ok(&patch_enabled(NS, "northwind", false)).await;
    env.wait_for_permission(NS, "northwind", "Disabled/True/PermissionDisabled")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_leader_and_handover() {
    use csp_operator::controller::{LeaderElection, Metrics, RunOptions, metrics::Kind};
    use std::sync::Arc;

    let env = Env::new().await;
    let replica = |id: &str, metrics: Arc<Metrics>| RunOptions {
        leader_election: Some(LeaderElection::new("default", "csp-operator-leader", id)),
        metrics: Some(metrics),
        ..Default::default()
    };
    let (ma, mb) = (Arc::new(Metrics::default()), Arc::new(Metrics::default()));
    let (stop_a, stopped_a) = tokio::sync::oneshot::channel::<()>();
    let a = spawn_controllers(
        env.client.clone(),
        replica("replica-a", ma.clone()),
        async move {
            let _ = stopped_a.await;
        },
    );
    env.wait_for(
        "lease/csp-operator-leader",
        "default",
        "{.spec.holderIdentity}",
        "replica-a",
    )
    .await;
    let b_addr = free_port();
    let b = spawn_controllers(
        env.client.clone(),
        RunOptions {
            metrics_addr: Some(b_addr),
            ..replica("replica-b", mb.clone())
        },
        futures::future::pending(),
    );
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    assert!(
        ma.reconcile_count(Kind::purchasepermission) > 0,
        "the leader reconciles: {}\n{}",
        ma.encode(),
        mb.encode()
    );
    assert_eq!(
        mb.reconcile_count(Kind::purchasepermission),
        0,
        "the follower does not"
    );
    assert_eq!(mb.leader.get(), 0);
    // The standby is ready (its caches are warm) and queues no work while it waits.
    let (ready, _) = http_get(b_addr, "/readyz").await;
    assert_eq!(ready, 200, "a standby with synced caches is ready");
    for kind in [Kind::customer, Kind::purchasepermission] {
        let pending = mb
            .triggers_pending
            .get_or_create(&csp_operator::controller::metrics::KindLabels { kind })
            .get();
        assert_eq!(pending, 0, "the standby queues nothing for {kind:?}");
    }

    // SIGTERM on the leader: in-flight work finishes, the Lease is released, the other takes over.
    let _ = stop_a.send(());
    a.await.expect("join").expect("leader stops cleanly");
    env.wait_for(
        "lease/csp-operator-leader",
        "default",
        "{.spec.holderIdentity}",
        "replica-b",
    )
    .await;
    env.ok(&patch_enabled(NS, "northwind", false)).await;
    env.wait_for_permission(NS, "northwind", "Disabled/True/PermissionDisabled")
        .await;
    assert!(
        mb.reconcile_count(Kind::purchasepermission) > 0,
        "the new leader reconciles"
    );
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_endpoints() {
    let mut env = Env::new().await;
    let addr = env.start_controllers_with_metrics();
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    let (health, _) = http_get(addr, "/healthz").await;
    assert_eq!(health, 200);
    let (ready, _) = http_get(addr, "/readyz").await;
    assert_eq!(ready, 200, "ready once the caches synced");
    let (code, body) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    for needle in [
        r#"csp_operator_purchase_permissions{state="Enabled"} 1"#,
        r#"csp_operator_purchase_permissions{state="Blocked"} 3"#,
        r#"csp_operator_reconciles_total{kind="purchasepermission",result="ok"}"#,
        "csp_operator_reconcile_duration_seconds_bucket",
        r#"csp_operator_api_writes_total{kind="purchasepermission",write="event"}"#,
        // A sample, not just the family's HELP/TYPE lines.
        r#"csp_operator_triggers_pending{kind="purchasepermission"}"#,
        "csp_operator_leader 1",
    ] {
        assert!(body.contains(needle), "missing {needle} in\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_failures_are_retried_and_shown_as_a_warning_once() {
    let env = Env::with_controllers().await;
    // The API server fails the next status writes of permissions (500 is not retried by the client).
    env.server
        .fail_next("patch", "purchasepermissions", 3, 500, None);
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    let failures: Vec<String> = env
        .activity_log(NS)
        .await
        .into_iter()
        .filter(|l| {
            l.starts_with("KubernetesApiError/Reconcile/")
                || l.starts_with("FinalizerError/Reconcile/")
        })
        .collect();
    assert!(
        !failures.is_empty(),
        "the failure is visible on the object: {:?}",
        env.activity_log(NS).await
    );
    // One Warning per object and run of failures, not one per retry.
    let mut objects: Vec<&str> = failures
        .iter()
        .filter_map(|l| l.rsplit('/').next())
        .collect();
    let n = objects.len();
    objects.sort();
    objects.dedup();
    assert_eq!(n, objects.len(), "{failures:?}");
}

/// A backend whose calls fail while `down` is set, as Partner Center does during an outage.
#[derive(Default)]
struct OutageBackend {
    down: std::sync::atomic::AtomicBool,
}

impl Backend for OutageBackend {
    fn name(&self) -> &'static str {
        "outage"
    }

    fn kind(&self) -> GrantBackend {
        GrantBackend::Cluster
    }

    fn readiness(&self, _namespace: &str) -> Readiness {
        Readiness::Ready
    }

    fn grant<'a>(&'a self, _grant: &'a Grant) -> BackendFuture<'a, GrantMade> {
        Box::pin(async { self.answer().map(|()| GrantMade::default()) })
    }

    fn revoke<'a>(&'a self, _ns: &'a str, _customer_tenant_id: &'a str) -> BackendFuture<'a, ()> {
        Box::pin(async { self.answer() })
    }

    fn verify<'a>(&'a self, _grant: &'a Grant, _enabled: bool) -> BackendFuture<'a, bool> {
        Box::pin(async { self.answer().map(|()| false) })
    }
}

impl OutageBackend {
    fn answer(&self) -> Result<(), BackendError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(BackendError::new("BackendError", "503 Service Unavailable"))
        } else {
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kstatus_conditions_show_a_blocked_switch_and_a_grant_in_flight() {
    let mut env = Env::new().await;
    let backend = Arc::new(OutageBackend::default());
    backend
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    env.start_controllers_with(backend.clone());
    env.ok(&["apply", "-f", EXAMPLES]).await;

    // Blocked waits for a human: Stalled, with the blocking reason (what Flux's kstatus reads).
    let stalled = r#"{.status.conditions[?(@.type=="Stalled")].status}/{.status.conditions[?(@.type=="Stalled")].reason}"#;
    env.wait_for(
        "cspperm/fabrikam",
        NS,
        stalled,
        "True/NoEligibleSubscription",
    )
    .await;
    env.ok(&[
        "wait",
        "--for=condition=Stalled",
        "cspperm/adatum",
        "-n",
        NS,
        "--timeout=20s",
    ])
    .await;

    // The backend is down: contoso's grant is in flight, and says so; nothing is claimed.
    let reconciling = r#"{.status.conditions[?(@.type=="Reconciling")].status}/{.status.conditions[?(@.type=="Reconciling")].reason}"#;
    env.wait_for("cspperm/contoso", NS, reconciling, "True/GrantPending")
        .await;
    let message = env
        .jsonpath(
            "cspperm/contoso",
            NS,
            r#"{.status.conditions[?(@.type=="Reconciling")].message}"#,
        )
        .await;
    assert!(message.contains("503 Service Unavailable"), "{message}");
    let state = env.jsonpath("cspperm/contoso", NS, "{.status.state}").await;
    assert_ne!(
        state, "Enabled",
        "no grant is claimed before the backend made it"
    );

    // The backend recovers: the retry makes the grant, Reconciling clears, one activity-log entry.
    backend
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    // Both are absent once nothing is in flight and nothing waits (kstatus reads that as False).
    env.wait_for("cspperm/contoso", NS, reconciling, "/").await;
    env.wait_for("cspperm/contoso", NS, stalled, "/").await;
    let enabled: Vec<String> = env
        .activity_log(NS)
        .await
        .into_iter()
        .filter(|l| l == "PermissionEnabled/CreateCustomerPurchasePermissions/contoso")
        .collect();
    assert_eq!(enabled.len(), 1, "{enabled:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_changed_by_someone_else_heals() {
    let env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "adatum", "Blocked/False/NoEligibleSubscription")
        .await;
    // A person (or a stale replica) writes a false status: the dashboard would show a grant.
    let lie = r#"{"status":{"state":"Enabled","enabledSince":"2026-01-01T00:00:00Z"}}"#;
    env.ok(&[
        "patch",
        "cspperm",
        "adatum",
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        lie,
    ])
    .await;
    env.wait_for_permission(NS, "adatum", "Blocked/False/NoEligibleSubscription")
        .await;
    // (The forged enabledSince stays, as on a real API server: server-side apply removes only
    // fields its manager owned, and the operator never set one on a permission never enabled.)
    // A grant the operator made is not lost to a forged Disabled either.
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.ok(&[
        "patch",
        "cspperm",
        "contoso",
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"state":"Disabled"}}"#,
    ])
    .await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    // Healing is not a transition: the activity log records no grant for adatum and only the
    // one real grant for contoso.
    let log = env.activity_log(NS).await;
    let grants = |who: &str| {
        log.iter()
            .filter(|l| l.starts_with("PermissionEnabled/") && l.ends_with(&format!("/{who}")))
            .count()
    };
    assert_eq!((grants("adatum"), grants("contoso")), (0, 1), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_resync_rechecks_everything_without_writing() {
    use csp_operator::controller::{Metrics, RunOptions, metrics::Kind};

    let env = Env::new().await;
    let metrics = Arc::new(Metrics::default());
    let run = spawn_controllers(
        env.client.clone(),
        RunOptions {
            metrics: Some(metrics.clone()),
            resync: Some(Duration::from_millis(500)),
            ..Default::default()
        },
        futures::future::pending(),
    );
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    let writes = env.settled_writes().await;
    let before = metrics.reconcile_count(Kind::purchasepermission);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = metrics.reconcile_count(Kind::purchasepermission);
    // Four permissions, re-checked about every half second.
    assert!(after >= before + 8, "resync re-checks: {before} -> {after}");
    assert_eq!(env.server.stats().writes, writes, "a resync writes nothing");
    run.abort();
}
