//! The unmodified kube-rs 5 client and runtime against the embedded API server: typed CRUD,
//! optimistic concurrency, the three patch types and server-side apply, paging, watcher +
//! reflector through dropped watches and compaction, a Controller, the finalizer helper, the
//! events Recorder, fault injection and latency.

use crate::support::Env;
use crate::support::clients::client_for;
use crate::support::poll::{TIMEOUT, eventually};
use csp_operator::api::{Customer, CustomerSpec};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::api::events::v1::Event as NewEvent;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{self, finalizer};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NS: &str = "default";
const API_VERSION: &str = "csp.operator.dev/v1alpha1";

fn tenant(n: u64) -> String {
    format!("1a2b3c4d-0000-4000-8000-{n:012}")
}

fn customer(name: &str, n: u64) -> Customer {
    Customer::new(
        name,
        CustomerSpec {
            tenant_id: tenant(n),
            company_name: format!("Company {n}"),
            domain: None,
        },
    )
}

/// The HTTP code of an API error (panics on success or on any other error).
fn api_code<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> u16 {
    match r {
        Err(kube::Error::Api(s)) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// name -> companyName of every Customer the server holds in the namespace.
async fn truth(api: &Api<Customer>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .map(|c| (c.name_any(), c.spec.company_name))
        .collect()
}

/// name -> companyName of every Customer in a reflector store.
fn cached(store: &Store<Customer>) -> BTreeMap<String, String> {
    store
        .state()
        .iter()
        .map(|c| (c.name_any(), c.spec.company_name.clone()))
        .collect()
}

/// What a manually driven watcher stream has reported so far.
#[derive(Default, Debug)]
struct WatchLog {
    /// `Init` events: one per (re)list.
    inits: usize,
    /// 410 Gone from the watch.
    gone: usize,
    /// Any other errors.
    errors: Vec<String>,
}

/// Polls the stream (and nothing else polls it) until `cond` holds; panics after [`TIMEOUT`].
async fn pump_until<S>(stream: &mut S, log: &mut WatchLog, what: &str, cond: impl Fn() -> bool)
where
    S: Stream<Item = Result<watcher::Event<Customer>, watcher::Error>> + Unpin,
{
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(watcher::Event::Init))) => log.inits += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(watcher::Error::WatchError(s)))) if s.code == 410 => log.gone += 1,
            Ok(Some(Err(e))) => log.errors.push(e.to_string()),
            Ok(None) => panic!("watch stream ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}; log {log:?}"),
        }
    }
}

// --- 1. typed API -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_conflicts_and_patches() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    let pp = PostParams::default();

    let created = api.create(&pp, &customer("c1", 1)).await.expect("create");
    assert_eq!(created.metadata.namespace.as_deref(), Some(NS));
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.uid().is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1 = created.resource_version().expect("resourceVersion");

    let got = api.get("c1").await.expect("get");
    assert_eq!(got.spec, created.spec);
    assert_eq!(got.resource_version(), Some(rv1.clone()));
    assert_eq!(api_code(api.get("missing").await), 404);
    assert_eq!(api_code(api.create(&pp, &customer("c1", 1)).await), 409);

    // Schema validation and the CEL immutability rule answer 422.
    let mut invalid = customer("bad", 2);
    invalid.spec.tenant_id = "not-a-guid".into();
    assert_eq!(api_code(api.create(&pp, &invalid).await), 422);
    let immutable = Patch::Merge(json!({"spec": {"tenantId": tenant(99)}}));
    assert_eq!(
        api_code(api.patch("c1", &PatchParams::default(), &immutable).await),
        422
    );

    // replace (PUT) with the current resourceVersion, then with the stale one.
    let mut edit = got.clone();
    edit.spec.company_name = "Renamed".into();
    let replaced = api.replace("c1", &pp, &edit).await.expect("replace");
    assert_eq!(replaced.spec.company_name, "Renamed");
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_ne!(replaced.resource_version(), Some(rv1.clone()));
    let mut stale = got.clone();
    stale.spec.company_name = "Stale".into();
    assert_eq!(api_code(api.replace("c1", &pp, &stale).await), 409);
    assert_eq!(
        api.get("c1").await.expect("get").spec.company_name,
        "Renamed"
    );

    // Merge patch.
    let merged = api
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"domain": "c1.onmicrosoft.com"}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(merged.spec.domain.as_deref(), Some("c1.onmicrosoft.com"));
    assert_eq!(merged.spec.company_name, "Renamed");
    assert_eq!(merged.metadata.generation, Some(3));

    // JSON patch: a passing test op, then a failing one (nothing applied).
    let ok: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/companyName", "value": "Renamed"},
        {"op": "replace", "path": "/spec/companyName", "value": "Json"}
    ]))
    .expect("patch");
    let patched = api
        .patch("c1", &PatchParams::default(), &Patch::Json::<()>(ok))
        .await
        .expect("json patch");
    assert_eq!(patched.spec.company_name, "Json");
    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/companyName", "value": "Renamed"},
        {"op": "replace", "path": "/spec/companyName", "value": "Never"}
    ]))
    .expect("patch");
    assert_eq!(
        api_code(
            api.patch("c1", &PatchParams::default(), &Patch::Json::<()>(failing))
                .await
        ),
        422
    );
    let after = api.get("c1").await.expect("get");
    assert_eq!(after.spec.company_name, "Json");
    assert_eq!(after.resource_version(), patched.resource_version());

    // A write that changes nothing keeps the resourceVersion (and the generation).
    let noops_before = env.server.stats().noop_writes;
    let same = api
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"companyName": "Json"}})),
        )
        .await
        .expect("no-op patch");
    assert_eq!(same.resource_version(), patched.resource_version());
    assert_eq!(same.metadata.generation, patched.metadata.generation);
    let same = api.replace("c1", &pp, &same).await.expect("no-op replace");
    assert_eq!(same.resource_version(), patched.resource_version());
    assert!(env.server.stats().noop_writes >= noops_before + 2);

    // Status: through /status only; it does not bump the generation.
    let status = json!({
        "apiVersion": API_VERSION, "kind": "Customer", "metadata": {"name": "c1"},
        "status": {"subscriptions": 2, "purchasePermission": "Enabled"}
    });
    let with_status = api
        .patch_status(
            "c1",
            &PatchParams::apply("status-writer").force(),
            &Patch::Apply(&status),
        )
        .await
        .expect("patch_status");
    let st = with_status.status.clone().expect("status");
    assert_eq!(st.subscriptions, 2);
    assert_eq!(
        st.purchase_permission,
        csp_operator::api::CustomerPermission::Enabled
    );
    assert_eq!(with_status.metadata.generation, same.metadata.generation);
    assert_ne!(with_status.resource_version(), same.resource_version());
    let merged_status = api
        .patch_status(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"eligibleSubscriptions": 1}})),
        )
        .await
        .expect("merge patch_status");
    let st = merged_status.status.clone().expect("status");
    assert_eq!((st.subscriptions, st.eligible_subscriptions), (2, 1));
    assert_eq!(merged_status.metadata.generation, same.metadata.generation);
    // Status written through the main resource is ignored: a no-op.
    let ignored = api
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"subscriptions": 99}})),
        )
        .await
        .expect("status via main resource");
    assert_eq!(ignored.status.as_ref().expect("status").subscriptions, 2);
    assert_eq!(ignored.resource_version(), merged_status.resource_version());
    // A spec change does bump it.
    let respec = api
        .patch(
            "c1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"companyName": "Spec change"}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(
        respec.metadata.generation,
        merged_status.metadata.generation.map(|g| g + 1)
    );

    // generateName gives distinct names.
    let mut generated = customer("", 3);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let g1 = api.create(&pp, &generated).await.expect("generateName 1");
    let g2 = api.create(&pp, &generated).await.expect("generateName 2");
    assert!(g1.name_any().starts_with("gen-"), "{}", g1.name_any());
    assert!(g2.name_any().starts_with("gen-"), "{}", g2.name_any());
    assert_ne!(g1.name_any(), g2.name_any());

    // list, with and without a label selector.
    api.patch(
        "c1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"tier": "gold"}}})),
    )
    .await
    .expect("label");
    let all = api.list(&ListParams::default()).await.expect("list");
    let names: BTreeSet<String> = all.items.iter().map(|c| c.name_any()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["c1".to_string(), g1.name_any(), g2.name_any()])
    );
    assert!(all.metadata.resource_version.is_some());
    let gold = api
        .list(&ListParams::default().labels("tier=gold"))
        .await
        .expect("list by label");
    assert_eq!(
        gold.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        ["c1"]
    );

    // delete.
    api.delete("c1", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_code(api.get("c1").await), 404);
    assert_eq!(
        api_code(api.delete("c1", &DeleteParams::default()).await),
        404
    );
    assert_eq!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_and_force() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    let config = |company: &str| {
        json!({
            "apiVersion": API_VERSION, "kind": "Customer", "metadata": {"name": "applied"},
            "spec": {"tenantId": tenant(7), "companyName": company}
        })
    };

    // Apply creates.
    let a = api
        .patch(
            "applied",
            &PatchParams::apply("manager-a"),
            &Patch::Apply(config("From A")),
        )
        .await
        .expect("apply creates");
    assert_eq!(a.spec.company_name, "From A");
    assert_eq!(a.metadata.generation, Some(1));
    let managers: Vec<String> = a
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, ["manager-a"]);

    // The same configuration again changes nothing.
    let again = api
        .patch(
            "applied",
            &PatchParams::apply("manager-a"),
            &Patch::Apply(config("From A")),
        )
        .await
        .expect("re-apply");
    assert_eq!(again.resource_version(), a.resource_version());

    // Another manager, another value, no force: conflict, nothing written.
    let conflict = api
        .patch(
            "applied",
            &PatchParams::apply("manager-b"),
            &Patch::Apply(config("From B")),
        )
        .await;
    assert_eq!(api_code(conflict), 409);
    let unchanged = api.get("applied").await.expect("get");
    assert_eq!(unchanged.spec.company_name, "From A");
    assert_eq!(unchanged.resource_version(), a.resource_version());

    // Another manager applying the same value is no conflict (shared ownership).
    api.patch(
        "applied",
        &PatchParams::apply("manager-c"),
        &Patch::Apply(config("From A")),
    )
    .await
    .expect("same value, other manager");

    // With force it wins and takes the field.
    let forced = api
        .patch(
            "applied",
            &PatchParams::apply("manager-b").force(),
            &Patch::Apply(config("From B")),
        )
        .await
        .expect("forced apply");
    assert_eq!(forced.spec.company_name, "From B");
    assert_eq!(forced.metadata.generation, Some(2));
    let owns_company = |m: &str| {
        forced.managed_fields().iter().any(|e| {
            e.manager.as_deref() == Some(m)
                && e.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0.pointer("/f:spec/f:companyName").is_some())
        })
    };
    assert!(owns_company("manager-b"), "{:?}", forced.managed_fields());
    // The forced field moved to manager-b; manager-a still owns the field it shares.
    assert!(!owns_company("manager-a"), "{:?}", forced.managed_fields());
    assert!(
        forced.managed_fields().iter().any(|e| {
            e.manager.as_deref() == Some("manager-a")
                && e.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0.pointer("/f:spec/f:tenantId").is_some())
        }),
        "{:?}",
        forced.managed_fields()
    );
    // So the new owner changes it again without force, and manager-a now conflicts.
    let b2 = api
        .patch(
            "applied",
            &PatchParams::apply("manager-b"),
            &Patch::Apply(config("From B2")),
        )
        .await
        .expect("owner re-applies without force");
    assert_eq!(b2.spec.company_name, "From B2");
    let a_again = api
        .patch(
            "applied",
            &PatchParams::apply("manager-a"),
            &Patch::Apply(config("From A")),
        )
        .await;
    assert_eq!(api_code(a_again), 409);
}

// --- 2. paging ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_continue_tokens() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    for i in 0..25 {
        api.create(&PostParams::default(), &customer(&format!("p{i:02}"), i))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(10))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 10);
    let mut token = first.metadata.continue_.clone().filter(|t| !t.is_empty());
    assert!(token.is_some(), "first page has a continue token");
    let mut seen: Vec<String> = first.items.iter().map(|c| c.name_any()).collect();
    let mut pages = 1;
    while let Some(t) = token {
        let page = api
            .list(&ListParams::default().limit(10).continue_token(&t))
            .await
            .expect("next page");
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|c| c.name_any()));
        token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        pages += 1;
        assert!(pages <= 3, "too many pages: {seen:?}");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25, "{seen:?}");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 25, "{seen:?}");
}

// --- 3. watcher + reflector ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_follows_changes_dropped_watches_and_compaction() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    let pp = PostParams::default();
    for (name, n) in [("a", 1), ("b", 2)] {
        api.create(&pp, &customer(name, n)).await.expect("create");
    }
    let (store, writer) = reflector::store::<Customer>();
    let mut stream = Box::pin(reflector::reflector(
        writer,
        watcher(api.clone(), watcher::Config::default()),
    ));
    let mut log = WatchLog::default();

    pump_until(&mut stream, &mut log, "initial list", || {
        cached(&store).len() == 2
    })
    .await;
    assert_eq!(log.inits, 1);

    // Creates, updates and deletes arrive through the watch.
    api.create(&pp, &customer("c", 3)).await.expect("create c");
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"companyName": "A2"}})),
    )
    .await
    .expect("update a");
    api.delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    let want = truth(&api).await;
    assert_eq!(want.keys().collect::<Vec<_>>(), ["a", "c"]);
    pump_until(&mut stream, &mut log, "create/update/delete", || {
        cached(&store) == want
    })
    .await;

    // Dropped watches resume from the last resourceVersion: no relist.
    env.server.drop_watches();
    api.create(&pp, &customer("d", 4)).await.expect("create d");
    let want = truth(&api).await;
    pump_until(&mut stream, &mut log, "change after drop", || {
        cached(&store) == want
    })
    .await;
    assert_eq!((log.inits, log.gone), (1, 0), "{log:?}");

    // Disconnected (nothing polls the stream) while an object is deleted and another updated,
    // then the history is compacted: the resume gets 410, the watcher relists and converges.
    env.server.drop_watches();
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete a");
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"companyName": "C2"}})),
    )
    .await
    .expect("update c");
    env.server.compact();
    let want = truth(&api).await;
    assert_eq!(want.keys().collect::<Vec<_>>(), ["c", "d"]);
    pump_until(&mut stream, &mut log, "relist after 410", || {
        cached(&store) == want
    })
    .await;
    // The relist shows as a second Init, after a 410 from the resumed watch.
    assert!(log.gone >= 1, "{log:?}");
    assert_eq!(log.inits, 2, "{log:?}");
    assert_eq!(cached(&store), want);

    // And the watch after the relist is live again.
    api.create(&pp, &customer("e", 5)).await.expect("create e");
    let want = truth(&api).await;
    pump_until(&mut stream, &mut log, "change after relist", || {
        cached(&store) == want
    })
    .await;
    assert!(log.errors.is_empty(), "{log:?}");
}

// --- 4. Controller ------------------------------------------------------------------------

const CONTROLLER_MANAGER: &str = "kube-rs-test";

struct Ctx {
    client: kube::Client,
    reconciles: AtomicUsize,
    errors: AtomicUsize,
}

impl Ctx {
    fn new(client: kube::Client) -> Arc<Ctx> {
        Arc::new(Ctx {
            client,
            reconciles: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
        })
    }
}

/// Writes a status derived from the spec: observedGeneration and companyName's length.
async fn reconcile_status(c: Arc<Customer>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let api: Api<Customer> =
        Api::namespaced(ctx.client.clone(), &c.namespace().unwrap_or_default());
    let status = json!({
        "apiVersion": API_VERSION, "kind": "Customer", "metadata": {"name": c.name_any()},
        "status": {
            "observedGeneration": c.metadata.generation,
            "subscriptions": c.spec.company_name.len(),
        }
    });
    api.patch_status(
        &c.name_any(),
        &PatchParams::apply(CONTROLLER_MANAGER).force(),
        &Patch::Apply(&status),
    )
    .await?;
    Ok(Action::await_change())
}

fn count_error(_: Arc<Customer>, _: &kube::Error, ctx: Arc<Ctx>) -> Action {
    ctx.errors.fetch_add(1, Ordering::SeqCst);
    Action::requeue(Duration::from_millis(100))
}

fn start_status_controller(api: Api<Customer>, ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        Controller::new(api, watcher::Config::default())
            .run(reconcile_status, count_error, ctx)
            .for_each(|_| async {}),
    )
}

/// Whether every Customer's status reflects its current spec and generation.
async fn all_observed(api: &Api<Customer>) -> bool {
    let Ok(list) = api.list(&ListParams::default()).await else {
        return false;
    };
    !list.items.is_empty()
        && list.items.iter().all(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.observed_generation == c.metadata.generation
                    && usize::try_from(s.subscriptions).ok() == Some(c.spec.company_name.len())
            })
        })
}

fn controller_writes(env: &Env) -> u64 {
    env.server
        .stats()
        .writes_by_manager
        .get(CONTROLLER_MANAGER)
        .copied()
        .unwrap_or(0)
}

/// No write at all for 2 s.
async fn assert_quiet(env: &Env) {
    let before = env.server.stats().writes;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.server.stats().writes, before, "writes while idle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_converges_then_stays_quiet() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    for i in 0..3 {
        api.create(&PostParams::default(), &customer(&format!("k{i}"), i))
            .await
            .expect("create");
    }
    let ctx = Ctx::new(env.client.clone());
    let controller = start_status_controller(api.clone(), ctx.clone());

    eventually("status of every customer", || all_observed(&api)).await;
    assert_quiet(&env).await;
    // One status write per object: re-reconciling after its own status write is a no-op.
    assert_eq!(controller_writes(&env), 3);
    assert!(ctx.reconciles.load(Ordering::SeqCst) >= 3);

    // A spec change is reconciled once more, then quiet again.
    api.patch(
        "k1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"companyName": "A longer company name"}})),
    )
    .await
    .expect("spec change");
    eventually("status after a spec change", || all_observed(&api)).await;
    let k1 = api.get("k1").await.expect("get");
    assert_eq!(k1.metadata.generation, Some(2));
    assert_quiet(&env).await;
    assert_eq!(controller_writes(&env), 4);
    assert_eq!(ctx.errors.load(Ordering::SeqCst), 0);
    controller.abort();
}

// --- 5. finalizer -------------------------------------------------------------------------

const FINALIZER: &str = "kube-rs-test.csp.operator.dev/cleanup";

struct FinCtx {
    client: kube::Client,
    applied: AtomicUsize,
    cleaned: Mutex<Vec<String>>,
}

async fn reconcile_with_finalizer(
    c: Arc<Customer>,
    ctx: Arc<FinCtx>,
) -> Result<Action, finalizer::Error<kube::Error>> {
    let api: Api<Customer> =
        Api::namespaced(ctx.client.clone(), &c.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, c, |event| async move {
        match event {
            finalizer::Event::Apply(_) => {
                ctx.applied.fetch_add(1, Ordering::SeqCst);
            }
            finalizer::Event::Cleanup(c) => {
                ctx.cleaned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(c.name_any());
            }
        }
        Ok::<_, kube::Error>(Action::await_change())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_helper_adds_cleans_up_and_releases() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    api.create(&PostParams::default(), &customer("fin", 1))
        .await
        .expect("create");
    let ctx = Arc::new(FinCtx {
        client: env.client.clone(),
        applied: AtomicUsize::new(0),
        cleaned: Mutex::new(Vec::new()),
    });
    let controller = tokio::spawn(
        Controller::new(api.clone(), watcher::Config::default())
            .run(
                reconcile_with_finalizer,
                |_, _, _| Action::requeue(Duration::from_millis(100)),
                ctx.clone(),
            )
            .for_each(|_| async {}),
    );

    eventually("the finalizer and an Apply", || async {
        let c = api.get("fin").await.expect("get");
        c.finalizers().iter().any(|f| f == FINALIZER) && ctx.applied.load(Ordering::SeqCst) > 0
    })
    .await;
    assert!(ctx.cleaned.lock().expect("lock").is_empty());

    let deleted = api
        .delete("fin", &DeleteParams::default())
        .await
        .expect("delete");
    let deleting = deleted
        .left()
        .expect("delete answers the object while finalizers remain");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.finalizers(), [FINALIZER]);

    eventually("the object to go", || async {
        matches!(api.get("fin").await, Err(kube::Error::Api(s)) if s.code == 404)
    })
    .await;
    assert_eq!(*ctx.cleaned.lock().expect("lock"), ["fin"]);
    controller.abort();
}

// --- 6. events ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorder_events_and_series_in_both_apis() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    let c = api
        .create(&PostParams::default(), &customer("ev", 1))
        .await
        .expect("create");
    let recorder = Recorder::new(
        env.client.clone(),
        Reporter {
            controller: "kube-rs-test".into(),
            instance: Some("test-0".into()),
        },
    );
    let event = || Event {
        type_: EventType::Warning,
        reason: "Tested".into(),
        note: Some("hello from kube-rs".into()),
        action: "Testing".into(),
        secondary: None,
    };
    let new_api: Api<NewEvent> = Api::namespaced(env.client.clone(), NS);
    let core_api: Api<CoreEvent> = Api::namespaced(env.client.clone(), NS);

    recorder
        .publish(&event(), &c.object_ref(&()))
        .await
        .expect("publish");
    let news = new_api.list(&ListParams::default()).await.expect("list");
    assert_eq!(news.items.len(), 1);
    let first = &news.items[0];
    assert_eq!(
        first.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("ev")
    );
    assert_eq!(first.note.as_deref(), Some("hello from kube-rs"));
    assert_eq!(first.reason.as_deref(), Some("Tested"));
    assert_eq!(first.action.as_deref(), Some("Testing"));
    assert_eq!(first.type_.as_deref(), Some("Warning"));
    assert_eq!(first.reporting_controller.as_deref(), Some("kube-rs-test"));
    assert!(first.series.is_none());

    let cores = core_api.list(&ListParams::default()).await.expect("list");
    assert_eq!(cores.items.len(), 1);
    let core = &cores.items[0];
    assert_eq!(core.metadata.name, first.metadata.name);
    assert_eq!(core.involved_object.name.as_deref(), Some("ev"));
    assert_eq!(core.involved_object.kind.as_deref(), Some("Customer"));
    assert_eq!(core.involved_object.uid, c.metadata.uid);
    assert_eq!(core.message.as_deref(), Some("hello from kube-rs"));
    assert_eq!(core.reason.as_deref(), Some("Tested"));
    assert_eq!(core.count, Some(1));

    // The same event again becomes a series of 2 on the same object (PATCH, not a new one).
    recorder
        .publish(&event(), &c.object_ref(&()))
        .await
        .expect("publish again");
    let news = new_api.list(&ListParams::default()).await.expect("list");
    assert_eq!(news.items.len(), 1);
    assert_eq!(news.items[0].metadata.name, first.metadata.name);
    assert_eq!(news.items[0].series.as_ref().map(|s| s.count), Some(2));
    let cores = core_api.list(&ListParams::default()).await.expect("list");
    assert_eq!(cores.items.len(), 1);
    assert_eq!(cores.items[0].count, Some(2));
    assert_eq!(cores.items[0].involved_object.name.as_deref(), Some("ev"));
    assert_eq!(
        cores.items[0].message.as_deref(),
        Some("hello from kube-rs")
    );
}

// --- 7. fault injection -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_retries_injected_503s_through_its_error_policy() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    api.create(&PostParams::default(), &customer("flaky", 1))
        .await
        .expect("create");
    env.server.fail_next("patch", "customers", 2, 503, None);
    // Without kube's client-level retry, the 503s reach the controller's error policy.
    let client = client_for(&env.server).without_retries().build();
    let ctx = Ctx::new(client.clone());
    let controller = start_status_controller(Api::namespaced(client, NS), ctx.clone());
    eventually("status despite 503s", || all_observed(&api)).await;
    assert_eq!(ctx.errors.load(Ordering::SeqCst), 2);
    assert_eq!(controller_writes(&env), 1);
    controller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_fills_its_store_after_a_failed_list() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    for i in 0..3 {
        api.create(&PostParams::default(), &customer(&format!("w{i}"), i))
            .await
            .expect("create");
    }
    let want = truth(&api).await;
    env.server.fail_next("list", "customers", 1, 500, None);
    let (store, writer) = reflector::store::<Customer>();
    let mut stream = Box::pin(
        watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .reflect(writer),
    );
    let mut log = WatchLog::default();
    pump_until(&mut stream, &mut log, "store after a failed list", || {
        cached(&store) == want
    })
    .await;
    assert_eq!(log.errors.len(), 1, "{log:?}");
    assert!(log.errors[0].contains("initial object list"), "{log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_retry_policy_handles_503_and_429_with_retry_after() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    api.create(&PostParams::default(), &customer("r", 1))
        .await
        .expect("create");

    // kube 5 clients retry 429/503/504 by default (kube::client::retry::RetryPolicy::server_retry).
    env.server.fail_next("patch", "customers", 2, 503, None);
    let patched = api
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"companyName": "Retried"}})),
        )
        .await
        .expect("patch retried past two 503s");
    assert_eq!(patched.spec.company_name, "Retried");

    // Retry-After is honoured: the retry waits the server's 1 s.
    env.server.fail_next("get", "customers", 1, 429, Some(1));
    let start = Instant::now();
    api.get("r").await.expect("get retried after 429");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );

    // Without the retry layer the errors surface with their codes.
    let bare: Api<Customer> =
        Api::namespaced(client_for(&env.server).without_retries().build(), NS);
    env.server.fail_next("get", "customers", 1, 429, Some(1));
    assert_eq!(api_code(bare.get("r").await), 429);
    env.server.fail_next("get", "customers", 1, 503, None);
    assert_eq!(api_code(bare.get("r").await), 503);
    // Rules are spent: the next one succeeds.
    bare.get("r")
        .await
        .expect("get after the injected failures");
}

// --- 8. latency ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_latency_delays_requests() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    api.create(&PostParams::default(), &customer("slow", 1))
        .await
        .expect("create");
    let latency = Duration::from_millis(50);

    env.server.set_latency(Some(latency));
    let start = Instant::now();
    api.get("slow").await.expect("get");
    assert!(start.elapsed() >= latency, "{:?}", start.elapsed());
    let start = Instant::now();
    api.list(&ListParams::default()).await.expect("list");
    assert!(start.elapsed() >= latency, "{:?}", start.elapsed());

    // Removed: of ten gets at least one is faster than the latency was (a loopback get takes
    // about a millisecond).
    env.server.set_latency(None);
    let mut fastest = Duration::MAX;
    for _ in 0..10 {
        let start = Instant::now();
        api.get("slow").await.expect("get");
        fastest = fastest.min(start.elapsed());
    }
    assert!(fastest < latency, "{fastest:?}");
}
