//! The garbage collector: `kubectl delete --cascade=background|foreground|orphan` on owners
//! and their dependents (ownerReferences), blockOwnerDeletion, owners gone by uid, cluster-scoped
//! owners, the finalizers a DELETE's policy sets, and that watches and namespace deletion see
//! the collector's deletions as any other.

use crate::support::Env;
use crate::support::poll::eventually;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

const NS: &str = "default";

/// An ownerReference to `owner` (a ConfigMap or any other kind).
fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K, block: bool) -> Value {
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "name": owner.meta().name,
        "uid": owner.meta().uid,
        "blockOwnerDeletion": block,
    })
}

/// A ConfigMap `name` in `ns` with these ownerReferences and finalizers.
fn config_map(name: &str, ns: &str, owners: &[Value], finalizers: &[&str]) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": owners, "finalizers": finalizers},
        "data": {"k": "v"},
    }))
    .expect("a ConfigMap")
}

async fn create(api: &Api<ConfigMap>, cm: ConfigMap) -> ConfigMap {
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create")
}

async fn wait_gone(api: &Api<ConfigMap>, name: &str) {
    eventually(&format!("configmap {name} to be gone"), || async {
        match api.get_opt(name).await.expect("get") {
            None => Ok(()),
            Some(cm) => Err(format!("{:?}", cm.metadata)),
        }
    })
    .await
}

/// Names of the ConfigMaps in `ns`.
async fn names(api: &Api<ConfigMap>) -> Vec<String> {
    let list = api.list(&Default::default()).await.expect("list");
    list.items.iter().map(|c| c.name_any()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletes_the_dependents_and_their_dependents() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    let owner = create(&api, config_map("owner", NS, &[], &[])).await;
    let child = create(
        &api,
        config_map("child", NS, &[owner_ref(&owner, false)], &[]),
    )
    .await;
    create(
        &api,
        config_map("grandchild", NS, &[owner_ref(&child, false)], &[]),
    )
    .await;
    create(&api, config_map("bystander", NS, &[], &[])).await;

    // The watch sees the collector's deletions as DELETED events.
    let rv = api
        .list(&Default::default())
        .await
        .expect("list")
        .metadata
        .resource_version;
    let mut events = api
        .watch(&WatchParams::default(), &rv.unwrap_or_default())
        .await
        .expect("watch")
        .boxed();
    env.ok(&["delete", "configmap", "owner", "-n", NS]).await;
    wait_gone(&api, "grandchild").await;
    wait_gone(&api, "child").await;
    assert_eq!(names(&api).await, ["bystander"]);
    let mut deleted = Vec::new();
    while deleted.len() < 3 {
        match events.next().await {
            Some(Ok(WatchEvent::Deleted(cm))) => deleted.push(cm.name_any()),
            Some(Ok(_)) => {}
            other => panic!("watch ended: {other:?}"),
        }
    }
    deleted.sort();
    assert_eq!(deleted, ["child", "grandchild", "owner"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_waits_for_blocking_dependents_and_their_finalizers() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    let owner = create(&api, config_map("owner", NS, &[], &[])).await;
    create(
        &api,
        config_map(
            "held",
            NS,
            &[owner_ref(&owner, true)],
            &["example.com/hold"],
        ),
    )
    .await;
    create(
        &api,
        config_map("loose", NS, &[owner_ref(&owner, false)], &[]),
    )
    .await;

    env.ok(&[
        "delete",
        "cm",
        "owner",
        "-n",
        NS,
        "--cascade=foreground",
        "--wait=false",
    ])
    .await;
    // The owner stays, marked, with the finalizer, while its blocking dependent is held.
    wait_gone(&api, "loose").await;
    let held = api.get("held").await.expect("held");
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "{:?}",
        held.metadata
    );
    let marked = api.get("owner").await.expect("the owner waits");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.finalizers(), ["foregroundDeletion"]);

    // Its controller releases the dependent: it goes, and the owner with it.
    let release = json!({"metadata": {"finalizers": null}});
    api.patch("held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .expect("release");
    wait_gone(&api, "held").await;
    wait_gone(&api, "owner").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_without_dependents_and_kube_rs_delete_params() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    create(&api, config_map("alone", NS, &[], &[])).await;
    // The answer is the object, marked with the finalizer (the collector then removes it).
    let answer = api
        .delete("alone", &DeleteParams::foreground())
        .await
        .expect("delete");
    let marked = answer
        .left()
        .expect("the object is answered while it stays");
    assert_eq!(marked.finalizers(), ["foregroundDeletion"]);
    wait_gone(&api, "alone").await;

    // Orphan through kube-rs: the owner goes, its dependent stays without the reference.
    let owner = create(&api, config_map("owner", NS, &[], &[])).await;
    create(
        &api,
        config_map("child", NS, &[owner_ref(&owner, true)], &[]),
    )
    .await;
    api.delete("owner", &DeleteParams::orphan())
        .await
        .expect("delete");
    wait_gone(&api, "owner").await;
    let child = api.get("child").await.expect("the child stays");
    assert_eq!(child.metadata.owner_references, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_strips_the_reference_and_keeps_the_dependent() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    let owner = create(&api, config_map("owner", NS, &[], &[])).await;
    let other = create(&api, config_map("other", NS, &[], &[])).await;
    create(
        &api,
        config_map(
            "child",
            NS,
            &[owner_ref(&owner, true), owner_ref(&other, false)],
            &[],
        ),
    )
    .await;
    env.ok(&["delete", "cm", "owner", "-n", NS, "--cascade=orphan"])
        .await;
    wait_gone(&api, "owner").await;
    let child = api.get("child").await.expect("the child stays");
    let left: Vec<String> = child
        .owner_references()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(left, ["other"]);
    // With its last owner deleted in the background, it goes.
    env.ok(&["delete", "cm", "other", "-n", NS]).await;
    wait_gone(&api, "child").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_with_another_uid_is_gone() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    let owner = create(&api, config_map("owner", NS, &[], &[])).await;
    let mut stale = owner_ref(&owner, false);
    stale["uid"] = json!("00000000-0000-4000-8000-000000000000");
    // Only a stale reference: the dependent is collected.
    create(&api, config_map("orphaned", NS, &[stale.clone()], &[])).await;
    // A live owner too: only the stale reference goes.
    create(
        &api,
        config_map("kept", NS, &[stale, owner_ref(&owner, false)], &[]),
    )
    .await;
    wait_gone(&api, "orphaned").await;
    eventually("the stale reference to be removed", || async {
        let kept = api.get("kept").await.expect("kept");
        let uids: Vec<String> = kept
            .owner_references()
            .iter()
            .map(|r| r.uid.clone())
            .collect();
        if uids == [owner.uid().unwrap_or_default()] {
            Ok(())
        } else {
            Err(format!("{uids:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_owners_and_namespaces() {
    let env = Env::new().await;
    let client = env.client.clone();
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let role: ClusterRole =
        serde_json::from_value(json!({"metadata": {"name": "owner-role"}})).expect("a ClusterRole");
    let role = roles
        .create(&PostParams::default(), &role)
        .await
        .expect("create");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("a Namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("create");
    let team: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let in_default: Api<ConfigMap> = Api::namespaced(client.clone(), NS);

    // A namespaced owner of a cluster-scoped dependent never resolves: the dependent stays.
    let cm_owner = create(&in_default, config_map("cm-owner", NS, &[], &[])).await;
    let invalid: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": "invalid-dependent", "ownerReferences": [owner_ref(&cm_owner, false)]},
    }))
    .expect("a ClusterRole");
    roles
        .create(&PostParams::default(), &invalid)
        .await
        .expect("create");
    // A namespaced dependent of a cluster-scoped owner is collected with it.
    create(
        &team,
        config_map("of-role", "team", &[owner_ref(&role, false)], &[]),
    )
    .await;
    // A reference to an owner of another namespace resolves in the dependent's: it is gone.
    create(
        &team,
        config_map("cross", "team", &[owner_ref(&cm_owner, false)], &[]),
    )
    .await;
    wait_gone(&team, "cross").await;
    env.ok(&["delete", "clusterrole", "owner-role"]).await;
    wait_gone(&team, "of-role").await;
    assert!(
        roles
            .get_opt("invalid-dependent")
            .await
            .expect("get")
            .is_some()
    );

    // A namespace still empties and goes, GC finalizers of its objects included.
    create(
        &team,
        config_map("fg", "team", &[], &["foregroundDeletion"]),
    )
    .await;
    env.ok(&["delete", "namespace", "team", "--timeout=20s"])
        .await;
    assert!(namespaces.get_opt("team").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_options_are_checked_and_a_deletion_can_change_its_policy() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    let held = create(&api, config_map("held", NS, &[], &["example.com/hold"])).await;
    let child = config_map(
        "child",
        NS,
        &[owner_ref(&held, true)],
        &["example.com/hold"],
    );
    create(&api, child).await;
    let bad = format!("/api/v1/namespaces/{NS}/configmaps/held?propagationPolicy=Sideways");
    let err = env.fails(&["delete", "--raw", &bad]).await;
    assert!(err.contains("Unsupported value: \"Sideways\""), "{err}");
    // Foreground, then Orphan: the GC finalizer is swapped, the object's own one kept.
    env.ok(&[
        "delete",
        "cm",
        "held",
        "-n",
        NS,
        "--cascade=foreground",
        "--wait=false",
    ])
    .await;
    assert_eq!(
        api.get("held").await.expect("held").finalizers(),
        ["example.com/hold", "foregroundDeletion"]
    );
    let orphan = format!("/api/v1/namespaces/{NS}/configmaps/held?propagationPolicy=Orphan");
    env.ok(&["delete", "--raw", &orphan]).await;
    eventually("the orphan finalizer to be done", || async {
        let f = api.get("held").await.expect("held").finalizers().to_vec();
        if f == ["example.com/hold"] {
            Ok(())
        } else {
            Err(format!("{f:?}"))
        }
    })
    .await;
    // The dependent was marked by the foreground cascade and then orphaned.
    let child = api.get("child").await.expect("child");
    assert!(child.metadata.deletion_timestamp.is_some());
    assert_eq!(child.metadata.owner_references, None);
    // Both GC finalizers at once are refused.
    let both = config_map("both", NS, &[], &["orphan", "foregroundDeletion"]);
    let refused = api.create(&PostParams::default(), &both).await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("cannot be both set")),
        "{refused:?}"
    );
}
