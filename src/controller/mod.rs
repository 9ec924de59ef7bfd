//! The four reconcilers. Each gathers facts from shared reflector caches, calls the pure
//! `policy` decision, then applies it: backend grant, status (only when changed), Events.
//!
//! One watch per kind feeds its cache; a fan-out task then triggers the kind's own controller
//! (when the object's spec, deletion or finalizers changed) and, through the relation indexes,
//! exactly the objects of other kinds that depend on it.
//! Because the cache is updated before the trigger goes out, a reconcile always sees the change
//! that triggered it.

mod events;
mod index;
pub mod metrics;

pub use metrics::Metrics;

use crate::api::{
    AzureSubscription, Customer, FINALIZER, PermissionState, PurchasePermission,
    PurchasePermissionStatus, Role, RoleAssignment,
};
use crate::backend::{Backend, Grant};
use crate::policy::{self, Seniority};
use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Name under which the operator writes (field manager, Event reporter).
pub const MANAGER: &str = "csp-operator";

/// Everything a reconcile can go wrong with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("object has no namespace")]
    NoNamespace,
    #[error("leader election: {0}")]
    Leader(String),
}

impl Error {
    /// The reason of the Warning Event a failed reconcile records (a short PascalCase category).
    pub fn event_reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Backend(_) => "BackendError",
            Error::Finalizer(_) => "FinalizerError",
            Error::NoNamespace => "InvalidObject",
            Error::Leader(_) => "LeaderElectionError",
        }
    }

    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Backend(_) => "backend",
            Error::Finalizer(_) => "finalizer",
            Error::NoNamespace => "no_namespace",
            Error::Leader(_) => "leader",
        }
    }
}

/// The read caches of all four kinds, and the relations between them.
#[derive(Clone)]
pub struct Caches {
    pub customers: Store<Customer>,
    pub subscriptions: Store<AzureSubscription>,
    pub roles: Store<RoleAssignment>,
    pub permissions: Store<PurchasePermission>,
    indexes: Arc<Indexes>,
}

#[derive(Default)]
struct Indexes {
    customers_by_tenant: index::RefIndex,
    subscriptions_by_customer: index::RefIndex,
    subscriptions_by_id: index::RefIndex,
    roles_by_subscription: index::RefIndex,
    permissions_by_customer: index::RefIndex,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    /// Who the activity-log Events are reported by.
    pub reporter: Reporter,
    pub caches: Caches,
    pub backend: Arc<dyn Backend>,
    pub metrics: Arc<Metrics>,
    /// Failed attempts per object since its last success, for exponential backoff.
    failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// The permission statuses this process wrote, by uid, with the resourceVersion they were
    /// based on: until the cache shows a newer object, that written status is the current one
    /// (so a reconcile racing the watch does not re-announce a transition it already made).
    written:
        std::sync::Mutex<std::collections::HashMap<String, (String, PurchasePermissionStatus)>>,
}

impl Context {
    /// The permission's status as this process last knows it: the cached one, or the one it
    /// wrote itself when the cache has not caught up with that write yet.
    fn known_status(&self, obj: &PurchasePermission) -> Option<PurchasePermissionStatus> {
        // Entries the cache has moved past are dropped by the watch feed (`forget_superseded`).
        let uid = obj.metadata.uid.as_deref().unwrap_or("");
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match written.get(uid) {
            Some((base, status))
                if obj.metadata.resource_version.as_deref() == Some(base.as_str()) =>
            {
                Some(status.clone())
            }
            _ => obj.status.clone(),
        }
    }

    fn remember_written(&self, obj: &PurchasePermission, status: &PurchasePermissionStatus) {
        if let (Some(uid), Some(rv)) = (&obj.metadata.uid, &obj.metadata.resource_version) {
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            written.insert(uid.clone(), (rv.clone(), status.clone()));
            // The watch may have brought the written object before this write returned.
            if let Some(cached) = self.caches.permissions.get(&ObjectRef::from_obj(obj))
                && cached.metadata.resource_version.as_ref() != Some(rv)
            {
                written.remove(uid);
            }
        }
    }

    /// Drops the remembered write once the cache holds a newer object than it was based on
    /// (called by the watch feed, so entries do not outlive their use).
    fn forget_superseded(&self, obj: &PurchasePermission) {
        let uid = obj.metadata.uid.as_deref().unwrap_or("");
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((base, _)) = written.get(uid)
            && obj.metadata.resource_version.as_deref() != Some(base.as_str())
        {
            written.remove(uid);
        }
    }
}

fn seniority<K: Resource>(o: &K) -> Seniority<'_> {
    Seniority::new(
        o.meta().creation_timestamp.as_ref().map(|t| t.0),
        o.meta().name.as_deref().unwrap_or(""),
    )
}

impl Caches {
    fn customer(&self, ns: &str, name: &str) -> Option<Arc<Customer>> {
        self.customers.get(&ObjectRef::new(name).within(ns))
    }

    fn subscription(&self, ns: &str, name: &str) -> Option<Arc<AzureSubscription>> {
        self.subscriptions.get(&ObjectRef::new(name).within(ns))
    }

    fn subscriptions_of(&self, ns: &str, customer: &str) -> Vec<Arc<AzureSubscription>> {
        lookup(
            &self.subscriptions,
            ns,
            self.indexes.subscriptions_by_customer.names(ns, customer),
        )
    }

    fn subscriptions_with_id(&self, ns: &str, id: &str) -> Vec<Arc<AzureSubscription>> {
        lookup(
            &self.subscriptions,
            ns,
            self.indexes.subscriptions_by_id.names(ns, id),
        )
    }

    fn customers_with_tenant(&self, ns: &str, tenant: &str) -> Vec<Arc<Customer>> {
        lookup(
            &self.customers,
            ns,
            self.indexes.customers_by_tenant.names(ns, tenant),
        )
    }

    fn roles_on(&self, ns: &str, subscription: &str) -> Vec<Arc<RoleAssignment>> {
        lookup(
            &self.roles,
            ns,
            self.indexes.roles_by_subscription.names(ns, subscription),
        )
    }

    fn owners_on(&self, ns: &str, subscription: &str) -> i32 {
        self.roles_on(ns, subscription)
            .iter()
            .filter(|r| r.spec.role == Role::Owner)
            .count() as i32
    }

    fn permissions_of(&self, ns: &str, customer: &str) -> Vec<Arc<PurchasePermission>> {
        lookup(
            &self.permissions,
            ns,
            self.indexes.permissions_by_customer.names(ns, customer),
        )
    }
}

/// The cached objects of the given names (stale index entries are skipped).
fn lookup<K>(store: &Store<K>, ns: &str, names: Vec<String>) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    names
        .into_iter()
        .filter_map(|n| store.get(&ObjectRef::new(&n).within(ns)))
        .collect()
}

fn now() -> Timestamp {
    Timestamp::now()
}

async fn write_status<K>(
    ctx: &Context,
    kind: metrics::Kind,
    obj: &K,
    status: impl Serialize,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let ns = obj.meta().namespace.as_deref().ok_or(Error::NoNamespace)?;
    let api: Api<K> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    // The answer (the whole object, managedFields and all) is not read: the watch brings the
    // object to the cache anyway, so parsing it into `K` here would be wasted work.
    let request = kube::core::Request::new(api.resource_url())
        .patch_subresource(
            "status",
            &obj.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .map_err(kube::Error::BuildRequest)?;
    ctx.client.request_text(request).await?;
    ctx.metrics.write(kind, "status");
    Ok(())
}

async fn reconcile_customer(obj: Arc<Customer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let name = obj.name_any();
    let c = &ctx.caches;
    let subs = c.subscriptions_of(&ns, &name);
    let eligible = subs
        .iter()
        .filter(|s| policy::subscription_eligibility(&s.spec, true).is_ok())
        .count() as i32;
    let granted = c.permissions_of(&ns, &name).iter().any(|p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.state == PermissionState::Enabled)
    });
    let others = c.customers_with_tenant(&ns, &obj.spec.tenant_id);
    let rivals = others.iter().map(|o| seniority(o.as_ref()));
    let duplicate_of = policy::older_claimant(seniority(obj.as_ref()), rivals);
    let status = policy::customer_status(
        &policy::CustomerFacts {
            spec: &obj.spec,
            generation: obj.metadata.generation,
            current: obj.status.as_ref(),
            duplicate_of,
            subscriptions: subs.len() as i32,
            eligible_subscriptions: eligible,
            permission_granted: granted,
        },
        now(),
    );
    if let Some(status) = policy::status_change(obj.status.as_ref(), status) {
        write_status(&ctx, metrics::Kind::customer, obj.as_ref(), status).await?;
    }
    Ok(Action::await_change())
}

async fn reconcile_subscription(
    obj: Arc<AzureSubscription>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let name = obj.name_any();
    let c = &ctx.caches;
    let others = c.subscriptions_with_id(&ns, &obj.spec.subscription_id);
    let rivals = others.iter().map(|o| seniority(o.as_ref()));
    let duplicate_of = policy::older_claimant(seniority(obj.as_ref()), rivals);
    let status = policy::subscription_status(
        &policy::SubscriptionFacts {
            spec: &obj.spec,
            generation: obj.metadata.generation,
            current: obj.status.as_ref(),
            customer_exists: c.customer(&ns, &obj.spec.customer_ref.name).is_some(),
            duplicate_of,
            owners: c.owners_on(&ns, &name),
        },
        now(),
    );
    if let Some(status) = policy::status_change(obj.status.as_ref(), status) {
        write_status(&ctx, metrics::Kind::azuresubscription, obj.as_ref(), status).await?;
    }
    Ok(Action::await_change())
}

async fn reconcile_role(obj: Arc<RoleAssignment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let status = policy::role_assignment_status(
        &policy::RoleAssignmentFacts {
            spec: &obj.spec,
            generation: obj.metadata.generation,
            current: obj.status.as_ref(),
            subscription_exists: ctx
                .caches
                .subscription(&ns, &obj.spec.subscription_ref.name)
                .is_some(),
        },
        now(),
    );
    if let Some(status) = policy::status_change(obj.status.as_ref(), status) {
        write_status(&ctx, metrics::Kind::roleassignment, obj.as_ref(), status).await?;
    }
    Ok(Action::await_change())
}

async fn reconcile_permission(
    obj: Arc<PurchasePermission>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<PurchasePermission> = Api::namespaced(ctx.client.clone(), &ns);
    let ctx2 = ctx.clone();
    let result = finalizer::finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            finalizer::Event::Apply(p) => apply_permission(p, ctx2).await,
            finalizer::Event::Cleanup(p) => cleanup_permission(p, ctx2).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        // The finalizer patch tests the finalizers it read from the cache; 422 means the cache
        // is behind our own previous write. Its watch event re-triggers this object.
        Err(
            finalizer::Error::AddFinalizer(kube::Error::Api(s))
            | finalizer::Error::RemoveFinalizer(kube::Error::Api(s)),
        ) if s.code == 422 => {
            tracing::debug!(message = %s.message, "finalizer patch raced the cache; waiting for the watch");
            Ok(Action::await_change())
        }
        Err(finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(other) => Err(Error::Finalizer(other.to_string())),
    }
}

/// The tenant an in-effect grant was made for (recorded in the status when it was granted).
fn granted_tenant(status: Option<&PurchasePermissionStatus>) -> String {
    status
        .and_then(|s| s.granted_tenant_id.clone())
        .unwrap_or_default()
}

async fn apply_permission(
    obj: Arc<PurchasePermission>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let c = &ctx.caches;
    let customer = &obj.spec.customer_ref.name;
    let subs = c.subscriptions_of(&ns, customer);
    let owners: Vec<bool> = subs
        .iter()
        .map(|s| c.owners_on(&ns, &s.name_any()) > 0)
        .collect();
    let names: Vec<String> = subs.iter().map(|s| s.name_any()).collect();
    let facts_subs = subs
        .iter()
        .zip(&names)
        .zip(&owners)
        .map(|((s, n), o)| policy::SubscriptionFact {
            name: n,
            spec: &s.spec,
            has_owner: *o,
        })
        .collect();
    let rivals = c.permissions_of(&ns, customer);
    let duplicate_of = policy::older_claimant(
        seniority(obj.as_ref()),
        rivals.iter().map(|o| seniority(o.as_ref())),
    );
    let known = ctx.known_status(&obj);
    let customer_obj = c.customer(&ns, customer);
    let decision = policy::permission_decision(
        &policy::PermissionFacts {
            spec: &obj.spec,
            generation: obj.metadata.generation,
            current: known.as_ref(),
            customer_tenant: customer_obj.as_ref().map(|c| c.spec.tenant_id.as_str()),
            subscriptions: facts_subs,
            duplicate_of,
        },
        now(),
    );
    match decision.grant {
        policy::GrantChange::Create => {
            let grant = Grant {
                customer_tenant_id: decision
                    .status
                    .granted_tenant_id
                    .clone()
                    .unwrap_or_default(),
                resources: obj
                    .spec
                    .resources
                    .iter()
                    .map(|r| r.partner_center_name().to_string())
                    .collect(),
            };
            ctx.backend.grant(&grant).await?;
        }
        policy::GrantChange::Delete => ctx.backend.revoke(&granted_tenant(known.as_ref())).await?,
        policy::GrantChange::None => {}
    }
    if let Some(status) = policy::status_change(known.as_ref(), decision.status) {
        write_status(
            &ctx,
            metrics::Kind::purchasepermission,
            obj.as_ref(),
            &status,
        )
        .await?;
        ctx.remember_written(&obj, &status);
    }
    for e in &decision.events {
        events::publish(&ctx, obj.as_ref(), e).await;
    }
    Ok(Action::await_change())
}

async fn cleanup_permission(
    obj: Arc<PurchasePermission>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let known = ctx.known_status(&obj);
    ctx.written
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(obj.metadata.uid.as_deref().unwrap_or(""));
    if let Some(event) = policy::withdraw_on_delete(known.as_ref()) {
        ctx.backend.revoke(&granted_tenant(known.as_ref())).await?;
        events::publish(&ctx, obj.as_ref(), &event).await;
    }
    Ok(Action::await_change())
}

fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

/// Per-object exponential backoff with jitter: 0.5 s doubling to 5 min, reset on success.
fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    // Refused as invalid: retrying the same write cannot help; wait for the object to change.
    let invalid = matches!(error, Error::Kube(kube::Error::Api(status)) if status.code == 422);
    let key = object_key(obj.as_ref());
    let attempts = if invalid {
        1
    } else {
        let mut failures = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    if attempts == 1 {
        // Tell the people looking at the object (kubectl describe), once per run of failures.
        let reference = obj.object_ref(&());
        let verb = if invalid {
            "refused as invalid; waiting for a change"
        } else {
            "retrying"
        };
        let (reason, note) = (
            error.event_reason(),
            format!("reconcile failed, {verb}: {error}"),
        );
        let kind = metrics::kind_of(K::kind(&()).as_ref());
        let ctx = ctx.clone();
        tokio::spawn(async move {
            events::publish_failure(&ctx, reference, kind, reason, note).await;
        });
    }
    if invalid {
        tracing::error!(error = %error, object = %key, "write refused as invalid; waiting for a change");
        return Action::await_change();
    }
    let base_ms = 500u64.saturating_mul(1u64 << attempts.min(11).saturating_sub(1));
    let delay = Duration::from_millis(base_ms.min(300_000));
    let jitter = Duration::from_millis(rand::random::<u64>() % (delay.as_millis() as u64 / 4 + 1));
    tracing::warn!(error = %error, category = error.metric_label(), object = %key, attempts, "reconcile failed; retrying");
    Action::requeue(delay + jitter)
}

/// Runs a reconcile with metrics, and forgets the object's failures on success.
async fn instrumented<K, F, Fut>(
    obj: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    let kind = metrics::kind_of(K::kind(&()).as_ref());
    let labels = metrics::KindLabels { kind };
    let in_flight = ctx.metrics.in_flight.get_or_create(&labels).clone();
    in_flight.inc();
    let started = std::time::Instant::now();
    let result = reconcile(obj.clone(), ctx.clone()).await;
    in_flight.dec();
    ctx.metrics
        .reconcile_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    let outcome = match &result {
        Ok(_) => {
            ctx.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&object_key(obj.as_ref()));
            "ok".to_string()
        }
        Err(e) => e.metric_label().to_string(),
    };
    ctx.metrics
        .reconciles
        .get_or_create(&metrics::ReconcileLabels {
            kind,
            result: outcome,
        })
        .inc();
    result
}

/// A watch of one kind that keeps its cache, stripped of the metadata no reconcile reads.
fn cached_stream<K>(
    client: &Client,
    writer: reflector::store::Writer<K>,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    watcher::watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|o| {
            // No reconcile reads these, and the cache holds every object of the kind: keep
            // only what the decisions and the writes use (managedFields and kubectl's
            // last-applied copy are often larger than the rest of the object).
            let m = o.meta_mut();
            m.managed_fields = None;
            m.annotations = None;
            m.labels = None;
            m.owner_references = None;
        })
        .reflect(writer)
}

/// What a feed does with one watch event: the object (borrowed from the event) and whether it
/// still exists; the end of a (re)list, after which every dependent is re-checked; or nothing.
enum Seen<'a, K> {
    Object(&'a K, bool),
    Relisted,
    Other,
}

fn seen<K>(ev: &Result<watcher::Event<K>, watcher::Error>) -> Seen<'_, K> {
    match ev {
        Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => Seen::Object(o, true),
        Ok(watcher::Event::Delete(o)) => Seen::Object(o, false),
        Ok(watcher::Event::InitDone) => Seen::Relisted,
        _ => Seen::Other,
    }
}

/// What a feed last saw of each object of its kind: the generation (a change of spec or of
/// existence is what other objects depend on; status-only writes are not) and the own-trigger
/// key (what makes the object's own reconcile necessary). One compact entry per object.
#[derive(Default)]
struct LastSeen(std::collections::HashMap<Box<str>, (Option<i64>, u64)>);

impl LastSeen {
    /// Records the object as seen now; returns whether its spec or existence changed, and
    /// whether its own reconcile is needed.
    fn observe<K: Resource>(&mut self, obj: &K, live: bool) -> (bool, bool) {
        let m = obj.meta();
        let key: Box<str> = format!(
            "{}/{}",
            m.namespace.as_deref().unwrap_or(""),
            m.name.as_deref().unwrap_or("")
        )
        .into();
        if !live {
            self.0.remove(&key);
            return (true, true);
        }
        let own = own_trigger_key(obj);
        match self.0.insert(key, (m.generation, own)) {
            None => (true, true),
            Some((generation, before)) => (generation != m.generation, before != own),
        }
    }
}

/// What makes an object's own reconcile necessary: its spec (generation), its deletion, its
/// finalizers. Status-only writes (most of them our own) do not re-trigger it.
fn own_trigger_key<K: Resource>(obj: &K) -> u64 {
    use std::hash::{Hash, Hasher};
    let m = obj.meta();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.uid.hash(&mut h);
    m.generation.hash(&mut h);
    m.deletion_timestamp.is_some().hash(&mut h);
    m.finalizers.hash(&mut h);
    h.finish()
}

/// The controller's own trigger: the object of an event (or the watch error).
fn trigger_of<K: Clone>(
    ev: Result<watcher::Event<K>, watcher::Error>,
) -> Option<Result<K, watcher::Error>> {
    match ev {
        Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o)) => {
            Some(Ok(o))
        }
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}

/// Triggers for one kind's controller from the other kinds' feeds, counted while they wait.
struct RefTx<K: Resource<DynamicType = ()>> {
    tx: mpsc::UnboundedSender<ObjectRef<K>>,
    pending: prometheus_client::metrics::gauge::Gauge,
    /// Off until this replica reconciles: a standby keeps its caches but queues nothing.
    active: Arc<AtomicBool>,
}

/// The feed of one kind's own controller.
struct MainTx<K> {
    tx: mpsc::UnboundedSender<Result<K, watcher::Error>>,
    active: Arc<AtomicBool>,
}

/// A trigger channel whose receiver counts down the pending gauge as the controller takes them.
fn trigger_channel<K: Resource<DynamicType = ()> + 'static>(
    metrics: &Metrics,
    kind: metrics::Kind,
    active: &Arc<AtomicBool>,
) -> (RefTx<K>, impl Stream<Item = ObjectRef<K>> + Send + use<K>) {
    let pending = metrics
        .triggers_pending
        .get_or_create(&metrics::KindLabels { kind })
        .clone();
    let (tx, rx) = mpsc::unbounded();
    let taken = pending.clone();
    (
        RefTx {
            tx,
            pending,
            active: active.clone(),
        },
        rx.inspect(move |_| {
            taken.dec();
        }),
    )
}

struct Triggers {
    customers: RefTx<Customer>,
    subscriptions: RefTx<AzureSubscription>,
    roles: RefTx<RoleAssignment>,
    permissions: RefTx<PurchasePermission>,
}

/// Passes an event to the kind's own controller when `needed` (watch errors always go).
fn trigger_own<K: Clone>(
    tx: &MainTx<K>,
    ev: Result<watcher::Event<K>, watcher::Error>,
    needed: bool,
) -> std::future::Ready<()> {
    if tx.active.load(Ordering::Relaxed)
        && (needed || ev.is_err())
        && let Some(trigger) = trigger_of(ev)
    {
        let _ = tx.tx.unbounded_send(trigger);
    }
    std::future::ready(())
}

fn send_all<K: Resource<DynamicType = ()>>(tx: &RefTx<K>, objs: impl IntoIterator<Item = Arc<K>>) {
    if !tx.active.load(Ordering::Relaxed) {
        return;
    }
    for o in objs {
        if tx
            .tx
            .unbounded_send(ObjectRef::from_obj(o.as_ref()))
            .is_ok()
        {
            tx.pending.inc();
        }
    }
}

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
}

/// The Lease that makes one replica the writer.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
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
    let shutdown = shutdown.boxed().shared();

    let lease = match &opts.leader_election {
        Some(le) => {
            let manager =
                kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &le.lease_name)
                    .with_namespace(&le.namespace)
                    .with_identity(&le.identity)
                    .with_field_manager(format!("{MANAGER}-{}", le.identity))
                    .with_duration(15)
                    .with_grace(5)
                    .build()
                    .await
                    .map_err(|e| Error::Leader(e.to_string()))?;
            let (rx, task) = manager.watch().await;
            Some((rx, task))
        }
        None => None,
    };
    let (caches, feeds, controllers) =
        build(client, backend, metrics.clone(), ready.clone(), &opts);
    let _metrics_endpoint = if let Some(addr) = opts.metrics_addr {
        let m = metrics.clone();
        let c = caches.clone();
        let refresh: Arc<dyn Fn() + Send + Sync> = Arc::new(move || refresh_gauges(&m, &c));
        let (m, r) = (metrics.clone(), ready.clone());
        Some(AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = metrics::serve(addr, m, r, refresh).await {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        })))
    } else {
        None
    };
    // Caches fill whether or not this replica leads, so a new leader starts warm; a replica is
    // ready (for its probe) once they have, leader or standby.
    let _feeds = AbortOnDrop(tokio::spawn(feeds));
    match lease {
        None => {
            metrics.leader.set(1);
            controllers(shutdown.clone()).await;
            Ok(())
        }
        Some((mut rx, task)) => {
            let mut is_leader = *rx.borrow_and_update();
            let stopped = shutdown.clone();
            while !is_leader {
                tracing::info!("waiting for the leader Lease");
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() { break; }
                        is_leader = *rx.borrow_and_update();
                    }
                    _ = stopped.clone() => break,
                }
            }
            let outcome = if is_leader {
                tracing::info!("leading");
                metrics.leader.set(1);
                let mut lost_rx = rx.clone();
                let lost = async move {
                    while lost_rx.changed().await.is_ok() {
                        if !*lost_rx.borrow_and_update() {
                            return;
                        }
                    }
                };
                let lost = lost.boxed().shared();
                let stop = futures::future::select(shutdown.clone(), lost.clone()).map(|_| ());
                controllers(stop.boxed().shared()).await;
                if lost.now_or_never().is_some() {
                    Err(Error::Leader("lost the leader Lease".into()))
                } else {
                    Ok(())
                }
            } else {
                Ok(())
            };
            metrics.leader.set(0);
            // Closing the channel ends the lease task; releasing lets another replica lead now.
            drop(rx);
            if let Ok(Ok(manager)) = task.await
                && let Err(e) = manager.release().await
            {
                tracing::warn!(error = %e, "could not release the leader Lease");
            }
            outcome
        }
    }
}

/// Stops a spawned task when `run` ends, however it ends (also when its own task is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn refresh_gauges(metrics: &Metrics, caches: &Caches) {
    let mut counts = [0i64; 3];
    for p in caches.permissions.state() {
        let i = match p.status.as_ref().map(|s| s.state).unwrap_or_default() {
            PermissionState::Enabled => 0,
            PermissionState::Disabled => 1,
            PermissionState::Blocked => 2,
        };
        counts[i] += 1;
    }
    for (state, n) in ["Enabled", "Disabled", "Blocked"].into_iter().zip(counts) {
        metrics
            .permissions
            .get_or_create(&metrics::StateLabels { state })
            .set(n);
    }
}

type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

fn build(
    client: Client,
    backend: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    opts: &RunOptions,
) -> (
    Caches,
    futures::future::BoxFuture<'static, ()>,
    impl FnOnce(Shutdown) -> futures::future::BoxFuture<'static, ()>,
) {
    let (customers, cw) = reflector::store();
    let (subscriptions, sw) = reflector::store();
    let (roles, rw) = reflector::store();
    let (permissions, pw) = reflector::store();
    let caches = Caches {
        customers,
        subscriptions,
        roles,
        permissions,
        indexes: Arc::default(),
    };
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        reporter,
        caches: caches.clone(),
        backend,
        metrics,
        failures: Default::default(),
        written: Default::default(),
    });
    let m = &ctx.metrics;
    let active = Arc::new(AtomicBool::new(false));
    let (ct, cr) = trigger_channel(m, metrics::Kind::customer, &active);
    let (st, sr) = trigger_channel(m, metrics::Kind::azuresubscription, &active);
    let (rt, rr) = trigger_channel(m, metrics::Kind::roleassignment, &active);
    let (pt, pr) = trigger_channel(m, metrics::Kind::purchasepermission, &active);
    let triggers = Arc::new(Triggers {
        customers: ct,
        subscriptions: st,
        roles: rt,
        permissions: pt,
    });

    // Fan-out: each kind's watch triggers the dependents of every object it sees.
    let (c_all, c_main_rx) = mpsc::unbounded();
    let (s_all, s_main_rx) = mpsc::unbounded();
    let (r_all, r_main_rx) = mpsc::unbounded();
    let (p_all, p_main_rx) = mpsc::unbounded();
    fn main_tx<K>(
        tx: &mpsc::UnboundedSender<Result<K, watcher::Error>>,
        active: &Arc<AtomicBool>,
    ) -> MainTx<K> {
        MainTx {
            tx: tx.clone(),
            active: active.clone(),
        }
    }
    let (c_main, s_main) = (main_tx(&c_all, &active), main_tx(&s_all, &active));
    let (r_main, p_main) = (main_tx(&r_all, &active), main_tx(&p_all, &active));

    let c2 = caches.clone();
    let t = triggers.clone();
    let mut seen_last = LastSeen::default();
    let customer_feed = cached_stream::<Customer>(&client, cw).for_each(move |ev| {
        let mut own = true;
        match seen(&ev) {
            Seen::Relisted => {
                // Deletions during the watch gap are not replayed: re-check every dependent,
                // rivals of the same kind included.
                send_all(&t.customers, c2.customers.state());
                send_all(&t.subscriptions, c2.subscriptions.state());
                send_all(&t.permissions, c2.permissions.state());
            }
            Seen::Object(obj, live) => {
                let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
                let idx = &c2.indexes;
                idx.customers_by_tenant.set(
                    &ns,
                    &name,
                    live.then_some(obj.spec.tenant_id.as_str()),
                );
                let (spec, needed) = seen_last.observe(obj, live);
                own = needed;
                if !spec {
                    return trigger_own(&c_main, ev, own);
                }
                send_all(&t.subscriptions, c2.subscriptions_of(&ns, &name));
                send_all(&t.permissions, c2.permissions_of(&ns, &name));
                send_all(
                    &t.customers,
                    c2.customers_with_tenant(&ns, &obj.spec.tenant_id)
                        .into_iter()
                        .filter(|o| o.name_any() != name),
                );
            }
            Seen::Other => {}
        }
        trigger_own(&c_main, ev, own)
    });
    let c2 = caches.clone();
    let t = triggers.clone();
    let mut seen_last = LastSeen::default();
    let subscription_feed = cached_stream::<AzureSubscription>(&client, sw).for_each(move |ev| {
        let mut own = true;
        match seen(&ev) {
            Seen::Relisted => {
                send_all(&t.customers, c2.customers.state());
                send_all(&t.subscriptions, c2.subscriptions.state());
                send_all(&t.roles, c2.roles.state());
                send_all(&t.permissions, c2.permissions.state());
            }
            Seen::Object(obj, live) => {
                let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
                let idx = &c2.indexes;
                let customer = obj.spec.customer_ref.name.as_str();
                let moved_from =
                    idx.subscriptions_by_customer
                        .set(&ns, &name, live.then_some(customer));
                idx.subscriptions_by_id.set(
                    &ns,
                    &name,
                    live.then_some(obj.spec.subscription_id.as_str()),
                );
                let (spec, needed) = seen_last.observe(obj, live);
                own = needed;
                if !spec && moved_from.is_none() {
                    return trigger_own(&s_main, ev, own);
                }
                for c in std::iter::once(customer.to_string()).chain(moved_from) {
                    if let Some(cust) = c2.customer(&ns, &c) {
                        send_all(&t.customers, [cust]);
                    }
                    send_all(&t.permissions, c2.permissions_of(&ns, &c));
                }
                send_all(&t.roles, c2.roles_on(&ns, &name));
                send_all(
                    &t.subscriptions,
                    c2.subscriptions_with_id(&ns, &obj.spec.subscription_id)
                        .into_iter()
                        .filter(|o| o.name_any() != name),
                );
            }
            Seen::Other => {}
        }
        trigger_own(&s_main, ev, own)
    });
    let c2 = caches.clone();
    let t = triggers.clone();
    let mut seen_last = LastSeen::default();
    let role_feed = cached_stream::<RoleAssignment>(&client, rw).for_each(move |ev| {
        let mut own = true;
        match seen(&ev) {
            Seen::Relisted => {
                send_all(&t.subscriptions, c2.subscriptions.state());
                send_all(&t.permissions, c2.permissions.state());
            }
            Seen::Object(obj, live) => {
                let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
                let sub = obj.spec.subscription_ref.name.as_str();
                let moved_from =
                    c2.indexes
                        .roles_by_subscription
                        .set(&ns, &name, live.then_some(sub));
                let (spec, needed) = seen_last.observe(obj, live);
                own = needed;
                if !spec && moved_from.is_none() {
                    return trigger_own(&r_main, ev, own);
                }
                for s in std::iter::once(sub.to_string()).chain(moved_from) {
                    if let Some(s) = c2.subscription(&ns, &s) {
                        send_all(
                            &t.permissions,
                            c2.permissions_of(&ns, &s.spec.customer_ref.name),
                        );
                        send_all(&t.subscriptions, [s]);
                    }
                }
            }
            Seen::Other => {}
        }
        trigger_own(&r_main, ev, own)
    });
    let c2 = caches.clone();
    let t = triggers.clone();
    let mut seen_last = LastSeen::default();
    let feed_ctx = ctx.clone();
    let permission_feed = cached_stream::<PurchasePermission>(&client, pw).for_each(move |ev| {
        let mut own = true;
        match seen(&ev) {
            Seen::Relisted => {
                send_all(&t.customers, c2.customers.state());
                send_all(&t.permissions, c2.permissions.state());
            }
            Seen::Object(obj, live) => {
                feed_ctx.forget_superseded(obj);
                let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
                let customer = obj.spec.customer_ref.name.as_str();
                c2.indexes
                    .permissions_by_customer
                    .set(&ns, &name, live.then_some(customer));
                // The Customer summary shows the grant, which lives in this object's status.
                if let Some(c) = c2.customer(&ns, customer) {
                    send_all(&t.customers, [c]);
                }
                let (spec, needed) = seen_last.observe(obj, live);
                own = needed;
                if !spec {
                    return trigger_own(&p_main, ev, own);
                }
                send_all(
                    &t.permissions,
                    c2.permissions_of(&ns, customer)
                        .into_iter()
                        .filter(|o| o.name_any() != name),
                );
            }
            Seen::Other => {}
        }
        trigger_own(&p_main, ev, own)
    });

    let cfg = kube::runtime::controller::Config::default()
        .concurrency(if opts.concurrency == 0 {
            16
        } else {
            opts.concurrency
        })
        .debounce(opts.debounce);
    // One waiter on the caches' readiness (kube's Store wakes only one), announced to the
    // probe and to the controllers.
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let sync_caches = caches.clone();
    let sync = async move {
        let all = futures::future::join4(
            sync_caches.customers.wait_until_ready(),
            sync_caches.subscriptions.wait_until_ready(),
            sync_caches.roles.wait_until_ready(),
            sync_caches.permissions.wait_until_ready(),
        )
        .await;
        if let (Ok(()), Ok(()), Ok(()), Ok(())) = all {
            ready.store(true, Ordering::Relaxed);
            let _ = synced_tx.send(true);
        }
        // Keep the sender alive so the receivers do not see a closed channel.
        futures::future::pending::<()>().await;
    };
    let feeds = futures::future::join(
        futures::future::join4(customer_feed, subscription_feed, role_feed, permission_feed),
        sync,
    )
    .map(|_| ())
    .boxed();
    let ctrl_caches = caches.clone();
    let activate = active.clone();
    let controllers = move |stop: Shutdown| -> futures::future::BoxFuture<'static, ()> {
        async move {
            let customer_ctrl = Controller::for_stream(
                c_main_rx, ctrl_caches.customers.clone())
                .graceful_shutdown_on(stop.clone())
                .with_config(cfg.clone())
                .reconcile_on(cr)
                .run(|o, c| instrumented(o, c, reconcile_customer), error_policy, ctx.clone())
                .for_each(|_| std::future::ready(()));
            let subscription_ctrl = Controller::for_stream(
                s_main_rx, ctrl_caches.subscriptions.clone())
                .graceful_shutdown_on(stop.clone())
                .with_config(cfg.clone())
                .reconcile_on(sr)
                .run(|o, c| instrumented(o, c, reconcile_subscription), error_policy, ctx.clone())
                .for_each(|_| std::future::ready(()));
            let role_ctrl = Controller::for_stream(
                r_main_rx, ctrl_caches.roles.clone())
                .graceful_shutdown_on(stop.clone())
                .with_config(cfg.clone())
                .reconcile_on(rr)
                .run(|o, c| instrumented(o, c, reconcile_role), error_policy, ctx.clone())
                .for_each(|_| std::future::ready(()));
            let permission_ctrl = Controller::for_stream(
                p_main_rx, ctrl_caches.permissions.clone())
                .graceful_shutdown_on(stop.clone())
                .with_config(cfg)
                .reconcile_on(pr)
                .run(|o, c| instrumented(o, c, reconcile_permission), error_policy, ctx.clone())
                .for_each(|_| std::future::ready(()));

            // Decisions read all four caches: reconcile nothing until every cache has its first
            // list, or a restart would write half-informed statuses.
            let mut synced = synced_rx;
            tokio::select! {
                s = synced.wait_for(|done| *done).map(|r| r.is_ok()) => {
                    if s {
                        tracing::info!("caches synced; reconciling");
                        // From now on changes trigger; everything already cached is checked once.
                        activate.store(true, Ordering::Relaxed);
                        for o in ctrl_caches.customers.state() {
                            let _ = c_all.unbounded_send(Ok((*o).clone()));
                        }
                        for o in ctrl_caches.subscriptions.state() {
                            let _ = s_all.unbounded_send(Ok((*o).clone()));
                        }
                        for o in ctrl_caches.roles.state() {
                            let _ = r_all.unbounded_send(Ok((*o).clone()));
                        }
                        for o in ctrl_caches.permissions.state() {
                            let _ = p_all.unbounded_send(Ok((*o).clone()));
                        }
                        futures::future::join4(customer_ctrl, subscription_ctrl, role_ctrl, permission_ctrl).await;
                    }
                }
                _ = stop.clone() => {}
            }
        }
        .boxed()
    };
    (caches, feeds, controllers)
}

#[cfg(test)]
mod tests {
    use super::LastSeen;
    use crate::api::Customer;

    fn customer(generation: i64, finalizers: &[&str], annotation: &str) -> Customer {
        let mut c: Customer = serde_json::from_value(serde_json::json!({
            "apiVersion": "csp.operator.dev/v1alpha1", "kind": "Customer",
            "metadata": {"name": "c", "namespace": "ns", "uid": "u1", "generation": generation,
                         "annotations": {"note": annotation}},
            "spec": {"tenantId": "00000000-0000-4000-8000-000000000001", "companyName": "C"}}))
        .unwrap();
        c.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        c
    }

    #[test]
    fn last_seen_tells_spec_changes_from_own_triggers() {
        let mut seen = LastSeen::default();
        assert_eq!(
            seen.observe(&customer(1, &[], "a"), true),
            (true, true),
            "first sight"
        );
        // A write that changes neither generation nor finalizers (here an annotation).
        assert_eq!(seen.observe(&customer(1, &[], "b"), true), (false, false));
        // A finalizer added: the object's own reconcile, not its dependents.
        assert_eq!(seen.observe(&customer(1, &["f"], "b"), true), (false, true));
        // A spec change: both.
        assert_eq!(seen.observe(&customer(2, &["f"], "b"), true), (true, true));
        // Gone: both, and a later object of that name is new again.
        assert_eq!(seen.observe(&customer(2, &["f"], "b"), false), (true, true));
        assert_eq!(seen.observe(&customer(2, &["f"], "b"), true), (true, true));
    }
}
