//! Statuses converge after quick back-to-back changes: a Customer deleted and re-created under
//! the same name, an Owner moved between subscriptions and back, a role switched away and back,
//! a subscription deleted and re-created. Each is repeated, as the races are timing-dependent.

use crate::support::Env;
use crate::support::poll;
use csp_operator::api::{AzureSubscription, Customer, RoleAssignment};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "convergence";
const ROUNDS: usize = 8;

fn customer(name: &str) -> Customer {
    serde_json::from_value(json!({
        "apiVersion": "csp.operator.dev/v1alpha1", "kind": "Customer",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"tenantId": "1a2b3c4d-0000-4000-8000-0000000000c1", "companyName": "Quick Co"}
    }))
    .expect("customer")
}

fn subscription(name: &str, id_suffix: u8) -> AzureSubscription {
    serde_json::from_value(json!({
        "apiVersion": "csp.operator.dev/v1alpha1", "kind": "AzureSubscription",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"customerRef": {"name": "quick"}, "offer": "AzurePlan",
                 "subscriptionId": format!("2b3c4d5e-0000-4000-8000-0000000000{id_suffix:02x}")}
    }))
    .expect("subscription")
}

fn owner_on(subscription: &str) -> RoleAssignment {
    serde_json::from_value(json!({
        "apiVersion": "csp.operator.dev/v1alpha1", "kind": "RoleAssignment",
        "metadata": {"name": "owner", "namespace": NS},
        "spec": {"subscriptionRef": {"name": subscription}, "role": "Owner",
                 "principal": {"id": "3c4d5e6f-0000-4000-8000-0000000000a1"}}
    }))
    .expect("role assignment")
}

async fn setup() -> Env {
    let env = Env::with_controllers().await;
    env.ok(&["create", "namespace", NS]).await;
    let customers: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    customers
        .create(&PostParams::default(), &customer("quick"))
        .await
        .expect("create");
    let subs: Api<AzureSubscription> = Api::namespaced(env.client.clone(), NS);
    for (name, id) in [("plan-a", 1), ("plan-b", 2)] {
        subs.create(&PostParams::default(), &subscription(name, id))
            .await
            .expect("create");
    }
    env
}

async fn wait_subscription(env: &Env, name: &str, want: &str) {
    env.wait_for(
        &format!("azsub/{name}"),
        NS,
        r#"{.status.conditions[?(@.type=="Ready")].reason}/{.status.owners}"#,
        want,
    )
    .await;
}

/// Deletes and creates again at once, retrying the create while the old object is still going.
async fn recreate<K>(api: &Api<K>, obj: &K, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.delete(name, &DeleteParams::default())
        .await
        .expect("delete");
    poll::eventually(&format!("{name} created again"), || async {
        api.create(&PostParams::default(), obj).await.map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_recreated_under_the_same_name_is_found_again() {
    let env = setup().await;
    let customers: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    wait_subscription(&env, "plan-a", "Registered/0").await;
    for _ in 0..ROUNDS {
        recreate(&customers, &customer("quick"), "quick").await;
        wait_subscription(&env, "plan-a", "Registered/0").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_moved_away_and_back_is_counted_where_it_is() {
    let env = setup().await;
    let roles: Api<RoleAssignment> = Api::namespaced(env.client.clone(), NS);
    roles
        .create(&PostParams::default(), &owner_on("plan-a"))
        .await
        .expect("create");
    wait_subscription(&env, "plan-a", "Registered/1").await;
    let move_to = |s: &str| Patch::Merge(json!({"spec": {"subscriptionRef": {"name": s}}}));
    let role_to = |r: &str| Patch::Merge(json!({"spec": {"role": r}}));
    let pp = PatchParams::default();
    for _ in 0..ROUNDS {
        roles
            .patch("owner", &pp, &move_to("plan-b"))
            .await
            .expect("move");
        roles
            .patch("owner", &pp, &move_to("plan-a"))
            .await
            .expect("move back");
        roles
            .patch("owner", &pp, &role_to("Reader"))
            .await
            .expect("reader");
        roles
            .patch("owner", &pp, &role_to("Owner"))
            .await
            .expect("owner again");
        wait_subscription(&env, "plan-a", "Registered/1").await;
        wait_subscription(&env, "plan-b", "Registered/0").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_recreated_under_the_same_name_is_found_again() {
    let env = setup().await;
    let roles: Api<RoleAssignment> = Api::namespaced(env.client.clone(), NS);
    let subs: Api<AzureSubscription> = Api::namespaced(env.client.clone(), NS);
    roles
        .create(&PostParams::default(), &owner_on("plan-a"))
        .await
        .expect("create");
    let ready = r#"{.status.conditions[?(@.type=="Ready")].reason}"#;
    env.wait_for("azrole/owner", NS, ready, "Assigned").await;
    for _ in 0..ROUNDS {
        recreate(&subs, &subscription("plan-a", 1), "plan-a").await;
        env.wait_for("azrole/owner", NS, ready, "Assigned").await;
        wait_subscription(&env, "plan-a", "Registered/1").await;
    }
}
