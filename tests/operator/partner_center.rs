//! The Partner Center backend end to end: the real controllers against the embedded API server
//! and the Partner Center simulator over real HTTP. Grants become SelfServePolicies; existing
//! ones are adopted; drift made "in the dashboard" is put back; credentials that cannot switch
//! the permission hold the grants; faults and a crash never make a policy twice.

use crate::support::kubectl::patch_enabled;
use crate::support::paths::EXAMPLES;
use crate::support::{Env, poll};
use csp_operator::backend::BackendChoice;
use csp_operator::partnercenter::{
    ClientOptions, Credentials, Endpoints, PartnerCenter, SecretString, SelfServePolicy,
};
use csp_operator::simulator::{FaultAction, FaultRule, Simulator, SimulatorOptions, World};
use std::time::Duration;

const NS: &str = "partner-a";
const PARTNER: &str = "9a8b7c6d-0000-4000-8000-000000000001";
const CONTOSO: &str = "1a2b3c4d-0000-4000-8000-000000000004";
const CLIENT_ID: &str = "1f2e3d4c-0000-4000-8000-00000000c11e";
const CLIENT_SECRET: &str = "fake-client-secret-for-the-simulator-only";
const ADMIN_TOKEN: &str = "fake-refresh-token-admin-0001";
const NO_MFA_TOKEN: &str = "fake-refresh-token-nomfa-0003";
const CREATE: (&str, &str) = ("POST", "/v1/SelfServePolicy");

/// A simulator of `world`, the embedded server with the operator (Partner Center backend), the
/// examples, and their connection signing in with `refresh_token`.
async fn started(world: World, refresh_token: &str, audit_interval: &str) -> (Simulator, Env) {
    let sim = simulator_of(world).await;
    let env = operator_for(&connection(&sim, refresh_token, audit_interval)).await;
    (sim, env)
}

/// The embedded server with the operator (Partner Center backend), the examples, and `connection`.
async fn operator_for(connection: &str) -> Env {
    let mut env = Env::new().await;
    env.start_controllers_with(BackendChoice::PartnerCenter.build());
    apply_examples(&env).await;
    let conn = env.manifest("conn.yaml", connection);
    env.ok(&["apply", "-f", &conn]).await;
    env
}

async fn simulator() -> Simulator {
    simulator_of(World::examples()).await
}

async fn simulator_of(world: World) -> Simulator {
    let options = SimulatorOptions {
        addr: "127.0.0.1:0".parse().expect("address"),
        ..SimulatorOptions::default()
    };
    Simulator::start(world, options)
        .await
        .expect("simulator starts")
}

/// The Secret and PartnerCenterConnection of partner-a, pointed at the simulator.
fn connection(sim: &Simulator, refresh_token: &str, audit_interval: &str) -> String {
    connection_observing(sim, refresh_token, audit_interval, true)
}

fn connection_observing(
    sim: &Simulator,
    refresh_token: &str,
    audit_interval: &str,
    observe: bool,
) -> String {
    let url = sim.base_url();
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: pc-credentials, namespace: {NS}}}
stringData: {{clientId: {CLIENT_ID}, clientSecret: {CLIENT_SECRET}, refreshToken: {refresh_token}}}
---
apiVersion: csp.operator.dev/v1alpha1
kind: PartnerCenterConnection
metadata: {{name: partner-center, namespace: {NS}}}
spec:
  partnerTenantId: {PARTNER}
  credentialsSecretRef: {{name: pc-credentials}}
  endpoints: {{partnerCenter: "{url}", login: "{url}", resourceManager: "{url}"}}
  auditInterval: {audit_interval}
  observe: {observe}
"#
    )
}

/// The examples (customers, subscriptions, roles, permissions) without their connection.
async fn apply_examples(env: &Env) {
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
}

/// Another Partner Center client: the partner's dashboard, or another tool.
fn dashboard(sim: &Simulator) -> PartnerCenter {
    let url = sim.base_url();
    PartnerCenter::new(
        PARTNER,
        Endpoints {
            partner_center: url.clone(),
            login: url.clone(),
            resource_manager: url,
        },
        Credentials {
            client_id: CLIENT_ID.into(),
            client_secret: SecretString::new(CLIENT_SECRET.into()),
            refresh_token: SecretString::new(ADMIN_TOKEN.into()),
        },
        ClientOptions::default(),
    )
    .expect("client")
}

/// The resources of the customer's policy in the simulator (None: no policy).
fn policy_resources(sim: &Simulator, customer: &str) -> Option<Vec<String>> {
    let policies = sim.self_serve_policies();
    let policy = policies
        .iter()
        .find(|p| p["selfServeEntity"]["tenantID"] == customer)?;
    let mut r: Vec<String> = policy["permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["resource"].as_str().map(String::from))
        .collect();
    r.sort();
    Some(r)
}

async fn wait_for_policy(sim: &Simulator, customer: &str, want: Option<&[&str]>) {
    let want: Option<Vec<String>> = want.map(|w| w.iter().map(|s| s.to_string()).collect());
    poll::eventually(&format!("policy of {customer} = {want:?}"), || async {
        let seen = policy_resources(sim, customer);
        if seen == want {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await
}

fn creates(sim: &Simulator) -> u64 {
    sim.stats().self_serve_policy_creates.values().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_creates_the_policy_changing_resources_updates_it_disabling_deletes_it() {
    let (sim, env) = started(World::examples(), ADMIN_TOKEN, "1h").await;

    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    wait_for_policy(&sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
    let policy_id = format!("{PARTNER}_{CONTOSO}");
    env.wait_for("cspperm/contoso", NS, "{.status.policyId}", &policy_id)
        .await;
    env.wait_for(
        "pcconn/partner-center",
        NS,
        r#"{.status.conditions[?(@.type=="Ready")].reason}/{.status.signedInAs}"#,
        "Connected/admin@partner-a.example",
    )
    .await;
    // Blocked customers get no policy; the rotated refresh token went back to the Secret.
    assert_eq!(sim.self_serve_policies().len(), 1);
    let token = env
        .ok(&[
            "get",
            "secret",
            "pc-credentials",
            "-n",
            NS,
            "-o",
            "jsonpath={.data.refreshToken}",
        ])
        .await;
    assert!(
        !token.is_empty() && token != base64(ADMIN_TOKEN),
        "rotated token written back"
    );

    // Savings plans too: the policy is updated (PUT with its etag), not made again.
    env.ok(&[
        "patch",
        "cspperm",
        "contoso",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"spec":{"resources":["AzureReservations","AzureSavingsPlan"]}}"#,
    ])
    .await;
    wait_for_policy(
        &sim,
        CONTOSO,
        Some(&["AzureReservedInstances", "AzureSavingsPlan"]),
    )
    .await;
    env.wait_for_event(
        NS,
        "PermissionUpdated/UpdateCustomerPurchasePermissions/contoso",
    )
    .await;
    assert_eq!(creates(&sim), 1);

    // Settled: no call to Partner Center while nothing changes.
    let calls = settled_calls(&sim).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sim.stats().total, calls, "no calls after settling");

    env.ok(&patch_enabled(NS, "contoso", false)).await;
    wait_for_policy(&sim, CONTOSO, None).await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    env.wait_for_event(
        NS,
        "PermissionDisabled/DeleteCustomerPurchasePermissions/contoso",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_policy_is_adopted_and_a_change_in_the_dashboard_is_put_back() {
    let sim = simulator().await;
    let dashboard = dashboard(&sim);
    let existing = SelfServePolicy::for_customer(PARTNER, CONTOSO, &["AzureReservedInstances"]);
    dashboard
        .create_self_serve_policy(&existing)
        .await
        .expect("the partner switched it on in the dashboard");
    let env = operator_for(&connection(&sim, ADMIN_TOKEN, "2s")).await;

    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_event(
        NS,
        "PermissionAdopted/AdoptCustomerPurchasePermissions/contoso",
    )
    .await;
    assert_eq!(creates(&sim), 1, "adopted, not made again");
    assert!(
        !env.activity_log(NS)
            .await
            .iter()
            .any(|l| l.starts_with("PermissionEnabled/")),
        "an adopted grant is not logged as a new one"
    );

    // An Admin Agent switches it off in the dashboard: the activity log shows it, and the
    // operator puts it back as declared.
    let id = format!("{PARTNER}_{CONTOSO}");
    dashboard
        .delete_self_serve_policy(&id)
        .await
        .expect("deleted");
    assert_eq!(policy_resources(&sim, CONTOSO), None);
    wait_for_policy(&sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
    env.wait_for_event(
        NS,
        "DriftCorrected/CreateCustomerPurchasePermissions/contoso",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_without_mfa_hold_the_grants_until_they_are_replaced() {
    let (sim, env) = started(World::examples(), NO_MFA_TOKEN, "1h").await;

    env.wait_for(
        "pcconn/partner-center",
        NS,
        r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
        "MfaRequired",
    )
    .await;
    env.wait_for_permission(NS, "contoso", "Blocked/False/ConnectionNotReady")
        .await;
    assert_eq!(sim.self_serve_policies().len(), 0);
    let message = env
        .jsonpath(
            "cspperm/contoso",
            Some(NS),
            r#"{.status.conditions[?(@.type=="Ready")].message}"#,
        )
        .await;
    assert!(message.contains("MfaRequired"), "{message}");
    assert!(
        !message.contains(NO_MFA_TOKEN),
        "no secret in a status: {message}"
    );

    // An Admin Agent signs in again with MFA and replaces the Secret: the grant goes through.
    let fixed = env.manifest("fixed.yaml", &connection(&sim, ADMIN_TOKEN, "1h"));
    env.ok(&["apply", "-f", &fixed]).await;
    env.ok(&[
        "annotate",
        "pcconn",
        "partner-center",
        "-n",
        NS,
        "checked=again",
    ])
    .await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    wait_for_policy(&sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_a_crash_between_the_call_and_the_status_never_make_a_policy_twice() {
    let sim = simulator().await;
    // 5xx and a 429 storm first: the client retries them, the grant is made once.
    sim.faults().add(
        FaultRule::new(FaultAction::Status(503))
            .method("POST")
            .path("/SelfServePolicy")
            .times(2),
    );
    sim.faults().add(
        FaultRule::new(FaultAction::Throttle {
            retry_after_secs: 1,
        })
        .method("POST")
        .path("/SelfServePolicy")
        .times(2),
    );
    let mut env = operator_for(&connection(&sim, ADMIN_TOKEN, "1h")).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    assert_eq!(creates(&sim), 1);
    assert!(sim.stats().throttled >= 2);

    // Disable, then crash while the create of the next enable hangs after Partner Center made it.
    lose_the_create_answer(&mut env, &sim).await;
    let made = creates(&sim);
    // The restarted operator finds the policy its predecessor made and adopts it.
    env.start_controllers_with(BackendChoice::PartnerCenter.build());
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_event(
        NS,
        "PermissionAdopted/AdoptCustomerPurchasePermissions/contoso",
    )
    .await;
    assert_eq!(creates(&sim), made, "never made twice");
    assert_eq!(sim.self_serve_policies().len(), 1);
}

/// Waits until the simulator's request count stands still; returns it.
async fn settled_calls(sim: &Simulator) -> u64 {
    let previous = std::cell::Cell::new(None);
    poll::eventually("Partner Center calls to stop", || {
        let now = sim.stats().total;
        let settled = previous.replace(Some(now)) == Some(now);
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if settled {
                Ok(now)
            } else {
                Err(format!("{now} calls"))
            }
        }
    })
    .await
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_center_and_azure_are_the_truth_for_subscriptions_and_owner_roles() {
    let (sim, env) = started(World::examples(), ADMIN_TOKEN, "2s").await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    let in_sync = r#"{.status.conditions[?(@.type=="InSync")].status}/{.status.conditions[?(@.type=="InSync")].reason}"#;
    env.wait_for("azsub/contoso-plan", NS, in_sync, "True/Observed")
        .await;
    env.wait_for(
        "azsub/contoso-plan",
        NS,
        "{.status.observed.state}",
        "Active",
    )
    .await;
    // The example calls fabrikam's license subscription an Azure plan; Partner Center disagrees.
    env.wait_for("azsub/fabrikam-license", NS, in_sync, "False/DriftDetected")
        .await;
    env.wait_for("cspcust/contoso", NS, in_sync, "True/Observed")
        .await;
    env.wait_for(
        "azrole/contoso-plan-alice-owner",
        NS,
        in_sync,
        "True/Observed",
    )
    .await;

    // An Owner in YAML that Azure does not list does not count.
    let ghost = env.manifest(
        "ghost.yaml",
        &format!(
            r#"apiVersion: csp.operator.dev/v1alpha1
kind: RoleAssignment
metadata: {{name: northwind-plan-ghost-owner, namespace: {NS}}}
spec:
  subscriptionRef: {{name: northwind-plan}}
  principal: {{id: 9f9f9f9f-0000-4000-8000-000000000009}}
  role: Owner
"#
        ),
    );
    env.ok(&["apply", "-f", &ghost]).await;
    env.wait_for(
        "azrole/northwind-plan-ghost-owner",
        NS,
        in_sync,
        "False/NotFoundInAzure",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    env.wait_for_permission(NS, "northwind", "Blocked/False/OwnerRoleMissing")
        .await;

    // Partner Center suspends contoso's Azure plan (as an Admin Agent would in the dashboard):
    // the activity log names it, the subscription is observed again, and the grant, which stays
    // in effect, shows the lost prerequisite.
    let dashboard = dashboard(&sim);
    let mut plan = dashboard
        .subscriptions(CONTOSO)
        .await
        .expect("subscriptions")
        .into_iter()
        .find(|s| s.is_azure_plan())
        .expect("contoso has an Azure plan");
    plan.status = "suspended".into();
    dashboard
        .update_subscription(CONTOSO, &plan)
        .await
        .expect("suspended");
    env.wait_for(
        "azsub/contoso-plan",
        NS,
        "{.status.observed.state}",
        "Suspended",
    )
    .await;
    env.wait_for_permission(NS, "contoso", "Enabled/False/NoEligibleSubscription")
        .await;
    env.wait_for("azsub/contoso-plan", NS, in_sync, "False/DriftDetected")
        .await;
    let log = env.activity_log(NS).await;
    assert!(
        log.contains(&"NoEligibleSubscription/CheckPrerequisites/contoso".to_string()),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_owner_role_is_assigned_in_azure_and_removed_with_its_object() {
    let (sim, env) = started(World::examples(), ADMIN_TOKEN, "1h").await;
    env.wait_for_permission(NS, "northwind", "Blocked/False/OwnerRoleMissing")
        .await;
    const NORTHWIND: &str = "1a2b3c4d-0000-4000-8000-000000000003";
    const NORTHWIND_SUB: &str = "2b3c4d5e-0000-4000-8000-000000000003";
    const CAROL: &str = "3c4d5e6f-0000-4000-8000-00000000000c";
    let owner = env.manifest(
        "owner.yaml",
        &format!(
            r#"apiVersion: csp.operator.dev/v1alpha1
kind: RoleAssignment
metadata: {{name: northwind-plan-carol-owner, namespace: {NS}}}
spec:
  subscriptionRef: {{name: northwind-plan}}
  principal: {{id: {CAROL}}}
  role: Owner
  management: Manage
"#
        ),
    );
    env.ok(&["apply", "-f", &owner]).await;
    let in_sync = r#"{.status.conditions[?(@.type=="InSync")].status}/{.status.conditions[?(@.type=="InSync")].reason}"#;
    env.wait_for(
        "azrole/northwind-plan-carol-owner",
        NS,
        in_sync,
        "True/Observed",
    )
    .await;
    env.wait_for_permission(NS, "northwind", "Enabled/True/PermissionEnabled")
        .await;
    let dashboard = dashboard(&sim);
    let owners_in_azure = || async {
        dashboard
            .role_assignments_at(NORTHWIND, NORTHWIND_SUB)
            .await
            .expect("list")
            .into_iter()
            .filter(|a| a.properties.principal_id == CAROL)
            .count()
    };
    assert_eq!(owners_in_azure().await, 1);
    // Azure cannot change an assignment: admission says so.
    let refused = env
        .fails(&[
            "patch",
            "azrole",
            "northwind-plan-carol-owner",
            "-n",
            NS,
            "--type=merge",
            "-p",
            r#"{"spec":{"role":"Reader"}}"#,
        ])
        .await;
    assert!(refused.contains("immutable"), "{refused}");

    // Deleting the object removes the assignment from Azure; the grant stays, its prerequisite lost.
    env.ok(&[
        "delete",
        "azrole",
        "northwind-plan-carol-owner",
        "-n",
        NS,
        "--wait=true",
    ])
    .await;
    assert_eq!(owners_in_azure().await, 0);
    env.wait_for_permission(NS, "northwind", "Enabled/False/OwnerRoleMissing")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_permission_changes_nothing_and_refresh_asks_again_now() {
    let (sim, env) = started(World::examples(), ADMIN_TOKEN, "1h").await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;

    let paused = r#"{.status.conditions[?(@.type=="Paused")].status}/{.status.conditions[?(@.type=="Paused")].reason}"#;
    env.ok(&[
        "annotate",
        "cspperm",
        "contoso",
        "-n",
        NS,
        "csp.operator.dev/paused=true",
    ])
    .await;
    env.wait_for("cspperm/contoso", NS, paused, "True/ReconcilePaused")
        .await;
    env.wait_for_event(NS, "ReconcilePaused/Pause/contoso")
        .await;
    let calls = sim.stats().total;
    env.ok(&patch_enabled(NS, "contoso", false)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        policy_resources(&sim, CONTOSO),
        Some(vec!["AzureReservedInstances".to_string()])
    );
    assert_eq!(sim.stats().total, calls, "no call for a paused object");
    env.ok(&[
        "annotate",
        "cspperm",
        "contoso",
        "-n",
        NS,
        "csp.operator.dev/paused-",
    ])
    .await;
    wait_for_policy(&sim, CONTOSO, None).await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    env.wait_for("cspperm/contoso", NS, paused, "/").await;

    // Partner Center suspends northwind's plan; nothing tells the operator until `refresh`.
    let dashboard = dashboard(&sim);
    const NORTHWIND: &str = "1a2b3c4d-0000-4000-8000-000000000003";
    let mut plan = dashboard
        .subscriptions(NORTHWIND)
        .await
        .expect("subscriptions")
        .into_iter()
        .find(|s| s.is_azure_plan())
        .expect("an Azure plan");
    plan.status = "suspended".into();
    dashboard
        .update_subscription(NORTHWIND, &plan)
        .await
        .expect("suspended");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let state = "{.status.observed.state}";
    assert_eq!(
        env.jsonpath("azsub/northwind-plan", Some(NS), state).await,
        "Active"
    );
    env.ok(&[
        "annotate",
        "azsub",
        "northwind-plan",
        "-n",
        NS,
        "csp.operator.dev/refresh=1",
    ])
    .await;
    env.wait_for("azsub/northwind-plan", NS, state, "Suspended")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sales_agent_can_read_but_the_switch_waits_for_an_admin_agent() {
    let (sim, env) = started(World::examples(), "fake-refresh-token-sales-0002", "1h").await;
    // A sales agent reads Partner Center, but Azure refuses it the customers' role assignments
    // (delegated Azure access comes with the Admin Agent role): each role says so, and no Owner
    // counts.
    let in_sync = r#"{.status.conditions[?(@.type=="InSync")].status}/{.status.conditions[?(@.type=="InSync")].reason}"#;
    env.wait_for(
        "azrole/contoso-plan-alice-owner",
        NS,
        in_sync,
        "False/AzureError",
    )
    .await;
    env.wait_for("azsub/contoso-plan", NS, in_sync, "True/Observed")
        .await;
    env.wait_for_permission(NS, "contoso", "Blocked/False/OwnerRoleMissing")
        .await;
    assert_eq!(sim.self_serve_policies().len(), 0);
    // No secret anywhere a user looks.
    let everything = env.ok(&["get", "csp,events", "-n", NS, "-o", "yaml"]).await;
    for secret in [CLIENT_SECRET, "fake-refresh-token-sales-0002"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_credentials_are_shown_on_the_connection_and_hold_the_grants() {
    let mut world = World::examples();
    for token in world
        .users
        .iter_mut()
        .flat_map(|u| u.refresh_tokens.iter_mut())
    {
        token.revoked = true;
    }
    let (sim, env) = started(world, ADMIN_TOKEN, "1h").await;
    env.wait_for(
        "pcconn/partner-center",
        NS,
        r#"{.status.conditions[?(@.type=="Ready")].reason}"#,
        "CredentialsInvalid",
    )
    .await;
    env.wait_for_permission(NS, "contoso", "Blocked/False/ConnectionNotReady")
        .await;
    let message = env
        .jsonpath(
            "pcconn/partner-center",
            Some(NS),
            r#"{.status.conditions[?(@.type=="Ready")].message}"#,
        )
        .await;
    assert!(
        !message.contains(ADMIN_TOKEN) && !message.contains(CLIENT_SECRET),
        "{message}"
    );
    assert_eq!(sim.self_serve_policies().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_while_switching_off_delete_the_policy_once() {
    let (sim, env) = started(World::examples(), ADMIN_TOKEN, "1h").await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    sim.faults().add(
        FaultRule::new(FaultAction::Status(500))
            .method("DELETE")
            .path("/SelfServePolicy")
            .times(2),
    );
    sim.faults().add(
        FaultRule::new(FaultAction::Throttle {
            retry_after_secs: 1,
        })
        .method("DELETE")
        .path("/SelfServePolicy")
        .times(1),
    );
    env.ok(&patch_enabled(NS, "contoso", false)).await;
    wait_for_policy(&sim, CONTOSO, None).await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    let log = env.activity_log(NS).await;
    let withdrawn = log
        .iter()
        .filter(|l| *l == "PermissionDisabled/DeleteCustomerPurchasePermissions/contoso")
        .count();
    assert_eq!(withdrawn, 1, "{log:?}");
    assert_eq!(creates(&sim), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_keeps_the_connection_admin_agent_required_until_new_credentials() {
    // Without observations the YAML is trusted, so the sales agent's create reaches Partner
    // Center, which refuses it (403, code 900).
    let sim = simulator().await;
    let sales = "fake-refresh-token-sales-0002";
    let env = operator_for(&connection_observing(&sim, sales, "1h", false)).await;
    let ready = r#"{.status.conditions[?(@.type=="Ready")].reason}"#;
    env.wait_for("pcconn/partner-center", NS, ready, "AdminAgentRequired")
        .await;
    env.wait_for_permission(NS, "contoso", "Blocked/False/ConnectionNotReady")
        .await;
    // Checked again with the same credentials: signing in works, the refusal stands.
    env.ok(&[
        "annotate",
        "pcconn",
        "partner-center",
        "-n",
        NS,
        "checked=again",
    ])
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.jsonpath("pcconn/partner-center", Some(NS), ready).await,
        "AdminAgentRequired"
    );
    assert_eq!(sim.self_serve_policies().len(), 0);
    // An Admin Agent's credentials: the grant goes through.
    let admin = env.manifest(
        "admin.yaml",
        &connection_observing(&sim, ADMIN_TOKEN, "1h", false),
    );
    env.ok(&["apply", "-f", &admin]).await;
    env.ok(&[
        "annotate",
        "pcconn",
        "partner-center",
        "-n",
        NS,
        "checked=admin",
        "--overwrite",
    ])
    .await;
    env.wait_for("pcconn/partner-center", NS, ready, "Connected")
        .await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    wait_for_policy(&sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_policy_with_other_resources_is_aligned_through_a_stale_etag() {
    // The dashboard allows savings plans only; the declaration says reservations.
    let sim = simulator().await;
    let existing = SelfServePolicy::for_customer(PARTNER, CONTOSO, &["AzureSavingsPlan"]);
    dashboard(&sim)
        .create_self_serve_policy(&existing)
        .await
        .expect("made in the dashboard");
    // The first PUT meets a policy changed meanwhile (409, etag no longer valid).
    sim.faults().add(
        FaultRule::new(FaultAction::Status(409))
            .method("PUT")
            .path("/SelfServePolicy")
            .times(1),
    );
    let env = operator_for(&connection(&sim, ADMIN_TOKEN, "1h")).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    wait_for_policy(&sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
    env.wait_for_event(
        NS,
        "PermissionAdopted/AdoptCustomerPurchasePermissions/contoso",
    )
    .await;
    let stats = sim.stats();
    assert_eq!(
        stats.requests_to("PUT", "/v1/SelfServePolicy/{id}"),
        2,
        "{stats:?}"
    );
    assert_eq!(creates(&sim), 1, "only the dashboard's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_namespace_withdraws_its_grants_before_the_connection_goes() {
    let sim = simulator().await;
    let env = operator_for(&connection(&sim, ADMIN_TOKEN, "1h")).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    wait_for_policy(&sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
    env.wait_for(
        "pcconn/partner-center",
        NS,
        "{.metadata.finalizers}",
        r#"["csp.operator.dev/partner-center-connection"]"#,
    )
    .await;

    // The namespace controller deletes the connection and its Secret beside the permissions: the
    // connection (and its signed-in client) stays until the grants are withdrawn. Failures on
    // the way are retried soon (not after a not-ready connection's 30 s).
    env.server.fail_next("get", "secrets", 2, 500, None);
    env.ok(&["delete", "namespace", NS, "--wait=false"]).await;
    wait_for_policy(&sim, CONTOSO, None).await;
    wait_gone(&env, &["get", "namespace", NS]).await;
    assert!(sim.self_serve_policies().is_empty());
}

/// Waits until the kubectl `get` fails (the object is gone).
async fn wait_gone(env: &Env, what: &[&str]) {
    poll::eventually(&format!("{what:?} to be gone"), || async {
        let out = env.kubectl(what).await;
        if out.status.success() {
            Err(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_deleted_while_the_operator_was_down_still_has_its_grants_withdrawn() {
    let sim = simulator().await;
    let mut env = operator_for(&connection(&sim, ADMIN_TOKEN, "1h")).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    wait_for_policy(&sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
    // The Secret is held while the connection names it, as a PVC in use is.
    env.wait_for(
        "secret/pc-credentials",
        NS,
        "{.metadata.finalizers}",
        r#"["csp.operator.dev/partner-center-connection"]"#,
    )
    .await;

    // Deleted while no operator runs: the Secret stays (Terminating) for the restarted one,
    // which signs in with it, withdraws the grant, then lets the Secret and connection go.
    env.stop_controllers();
    env.ok(&["delete", "namespace", NS, "--wait=false"]).await;
    env.start_controllers_with(BackendChoice::PartnerCenter.build());
    wait_for_policy(&sim, CONTOSO, None).await;
    wait_gone(&env, &["get", "namespace", NS]).await;
    assert!(sim.self_serve_policies().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_the_connection_stops_naming_is_let_go() {
    let sim = simulator().await;
    let env = operator_for(&connection(&sim, ADMIN_TOKEN, "1h")).await;
    let held = r#"["csp.operator.dev/partner-center-connection"]"#;
    env.wait_for("secret/pc-credentials", NS, "{.metadata.finalizers}", held)
        .await;
    let renamed = connection(&sim, ADMIN_TOKEN, "1h").replace("pc-credentials", "pc-credentials-2");
    let file = env.manifest("renamed.yaml", &renamed);
    env.ok(&["apply", "-f", &file]).await;
    env.wait_for(
        "secret/pc-credentials-2",
        NS,
        "{.metadata.finalizers}",
        held,
    )
    .await;
    env.wait_for("secret/pc-credentials", NS, "{.metadata.finalizers}", "")
        .await;
    env.wait_for(
        "pcconn/partner-center",
        NS,
        "{.metadata.annotations.csp\\.operator\\.dev/credentials-secret}",
        "pc-credentials-2",
    )
    .await;
    // The Secret no longer named can be deleted at once.
    env.ok(&[
        "delete",
        "secret",
        "pc-credentials",
        "-n",
        NS,
        "--timeout=20s",
    ])
    .await;
}

/// Switches enabled contoso off, then on again while Partner Center's answer to the create is
/// lost after the policy was made, and stops the operator before it records the grant.
async fn lose_the_create_answer(env: &mut Env, sim: &Simulator) {
    env.ok(&patch_enabled(NS, "contoso", false)).await;
    wait_for_policy(sim, CONTOSO, None).await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    let posts = sim.stats().requests_to(CREATE.0, CREATE.1);
    sim.faults().add(
        FaultRule::new(FaultAction::Timeout {
            delay: Duration::from_secs(60),
            after_effect: true,
        })
        .method("POST")
        .path("/SelfServePolicy")
        .times(1),
    );
    env.ok(&patch_enabled(NS, "contoso", true)).await;
    poll::eventually("the create to reach Partner Center", || async {
        let now = sim.stats().requests_to(CREATE.0, CREATE.1);
        if now > posts {
            Ok(())
        } else {
            Err(format!("{now}"))
        }
    })
    .await;
    env.stop_controllers();
    wait_for_policy(sim, CONTOSO, Some(&["AzureReservedInstances"])).await;
}

/// The example operator with contoso's grant in doubt: made in Partner Center, its answer lost,
/// the operator stopped before recording it.
async fn grant_in_doubt(sim: &Simulator) -> Env {
    let mut env = operator_for(&connection(sim, ADMIN_TOKEN, "1h")).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    lose_the_create_answer(&mut env, sim).await;
    // The status says the grant is in doubt.
    let in_doubt = env
        .jsonpath(
            "cspperm/contoso",
            NS,
            "{.status.state}/{.status.grantedTenantId}",
        )
        .await;
    assert_eq!(in_doubt, format!("Disabled/{CONTOSO}"));
    env
}

/// The activity log's PermissionDisabled Events for contoso.
async fn withdrawals_logged(env: &Env) -> usize {
    let log = env.activity_log(NS).await;
    log.iter()
        .filter(|l| l.starts_with("PermissionDisabled/") && l.ends_with("/contoso"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_made_but_never_recorded_is_withdrawn_when_switched_off_meanwhile() {
    let sim = simulator().await;
    let mut env = grant_in_doubt(&sim).await;

    // Switched off while no operator runs: the restarted one withdraws the unrecorded grant.
    env.ok(&patch_enabled(NS, "contoso", false)).await;
    env.start_controllers_with(BackendChoice::PartnerCenter.build());
    wait_for_policy(&sim, CONTOSO, None).await;
    env.wait_for(
        "cspperm/contoso",
        NS,
        "{.status.state}/{.status.grantedTenantId}",
        "Disabled/",
    )
    .await;
    // No transition was logged for a grant never recorded: one Enabled, one Disabled in all.
    assert_eq!(withdrawals_logged(&env).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_made_but_never_recorded_is_withdrawn_when_deleted_meanwhile() {
    let sim = simulator().await;
    let mut env = grant_in_doubt(&sim).await;

    // Deleted while no operator runs: the restarted one withdraws the grant, then lets it go.
    env.ok(&["delete", "cspperm", "contoso", "-n", NS, "--wait=false"])
        .await;
    env.start_controllers_with(BackendChoice::PartnerCenter.build());
    wait_for_policy(&sim, CONTOSO, None).await;
    wait_gone(&env, &["get", "cspperm", "contoso", "-n", NS]).await;
    assert_eq!(withdrawals_logged(&env).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_made_but_never_recorded_is_withdrawn_when_its_customer_is_deleted_meanwhile() {
    let sim = simulator().await;
    let mut env = grant_in_doubt(&sim).await;

    // The Customer deleted while no operator runs: the tenant the operator recorded is trusted.
    env.ok(&["delete", "customer", "contoso", "-n", NS]).await;
    env.start_controllers_with(BackendChoice::PartnerCenter.build());
    wait_for_policy(&sim, CONTOSO, None).await;
    env.wait_for_permission(NS, "contoso", "Blocked/False/CustomerNotFound")
        .await;
    assert_eq!(withdrawals_logged(&env).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_made_but_never_recorded_is_withdrawn_when_it_and_its_customer_are_deleted() {
    let sim = simulator().await;
    let mut env = grant_in_doubt(&sim).await;

    env.ok(&["delete", "customer", "contoso", "-n", NS]).await;
    env.ok(&["delete", "cspperm", "contoso", "-n", NS, "--wait=false"])
        .await;
    env.start_controllers_with(BackendChoice::PartnerCenter.build());
    wait_for_policy(&sim, CONTOSO, None).await;
    wait_gone(&env, &["get", "cspperm", "contoso", "-n", NS]).await;
}
