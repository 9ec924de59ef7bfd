//! Who depends on a change. One watch per kind feeds its cache; its feed then records the
//! object in the relation indexes and triggers the kind's own controller (when the object's
//! spec, deletion or finalizers changed) and, through the indexes, exactly the objects of other
//! kinds that read it. Because the cache is updated before a trigger goes out, a reconcile
//! always sees the change that triggered it.

use super::caches::cached_stream;
use super::context::{Context, status_hash};
use super::metrics::{self, Metrics};
use crate::api::{AzureSubscription, Customer, PurchasePermission, RoleAssignment};
use futures::channel::mpsc;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a feed reads and whom it can trigger.
pub struct Feeds {
    pub ctx: Arc<Context>,
    pub triggers: Triggers,
}

impl Feeds {
    /// Every cached object of every kind, queued once (a no-op on a standby replica).
    pub fn resync(&self) {
        let (c, t) = (&self.ctx.caches, &self.triggers);
        t.customers.send_all(c.customers.state());
        t.subscriptions.send_all(c.subscriptions.state());
        t.roles.send_all(c.roles.state());
        t.permissions.send_all(c.permissions.state());
    }
}

/// How the changes of one kind reach the controllers that depend on them.
pub trait Relations:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// Records the object in the relation indexes (`live` false: it is gone), with whatever
    /// else must follow every change of it. Returns the key it referred to before, when it
    /// moved and its old relatives must hear of it.
    fn record(feeds: &Feeds, obj: &Self, live: bool) -> Option<String>;
    /// After a (re)list: deletions during the watch gap are not replayed, so every dependent
    /// is re-checked, rivals of the same kind included.
    fn relisted(feeds: &Feeds);
    /// After a change of spec or existence (or a move): the dependents that read it.
    fn changed(feeds: &Feeds, obj: &Self, moved_from: Option<String>);
    /// The hash of the object's status (see `context::status_hash`).
    fn status_hash(obj: &Self) -> u64;
    /// The part of the status other objects decide on (what Partner Center or Azure reported);
    /// a change of it reaches the dependents as a spec change does.
    fn depended_status(_obj: &Self) -> u64 {
        0
    }
}

impl Relations for Customer {
    fn record(feeds: &Feeds, obj: &Self, live: bool) -> Option<String> {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let tenant = obj.spec.tenant_id.as_str();
        let idx = feeds.ctx.caches.indexes();
        idx.customers_by_tenant
            .set(&ns, &name, live.then_some(tenant));
        // A tenant move is a spec change, which re-checks every relative anyway.
        None
    }

    fn relisted(feeds: &Feeds) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        t.customers.send_all(c.customers.state());
        t.subscriptions.send_all(c.subscriptions.state());
        t.permissions.send_all(c.permissions.state());
    }

    fn changed(feeds: &Feeds, obj: &Self, _moved_from: Option<String>) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        t.subscriptions.send_all(c.subscriptions_of(&ns, &name));
        t.permissions.send_all(c.permissions_of(&ns, &name));
        let rivals = c.customers_with_tenant(&ns, &obj.spec.tenant_id);
        t.customers
            .send_all(rivals.into_iter().filter(|o| o.name_any() != name));
    }

    fn status_hash(obj: &Self) -> u64 {
        status_hash(&obj.status)
    }
}

impl Relations for AzureSubscription {
    fn record(feeds: &Feeds, obj: &Self, live: bool) -> Option<String> {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let idx = feeds.ctx.caches.indexes();
        let customer = obj.spec.customer_ref.name.as_str();
        let moved_from = idx
            .subscriptions_by_customer
            .set(&ns, &name, live.then_some(customer));
        let id = obj.spec.subscription_id.as_str();
        idx.subscriptions_by_id.set(&ns, &name, live.then_some(id));
        moved_from
    }

    fn relisted(feeds: &Feeds) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        t.customers.send_all(c.customers.state());
        t.subscriptions.send_all(c.subscriptions.state());
        t.roles.send_all(c.roles.state());
        t.permissions.send_all(c.permissions.state());
    }

    fn changed(feeds: &Feeds, obj: &Self, moved_from: Option<String>) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let customer = obj.spec.customer_ref.name.clone();
        // The customer it belongs to, and the one it left.
        for customer in std::iter::once(customer).chain(moved_from) {
            if let Some(cust) = c.customer(&ns, &customer) {
                t.customers.send_all([cust]);
            }
            t.permissions.send_all(c.permissions_of(&ns, &customer));
        }
        t.roles.send_all(c.roles_on(&ns, &name));
        let rivals = c.subscriptions_with_id(&ns, &obj.spec.subscription_id);
        t.subscriptions
            .send_all(rivals.into_iter().filter(|o| o.name_any() != name));
    }

    fn status_hash(obj: &Self) -> u64 {
        status_hash(&obj.status)
    }

    fn depended_status(obj: &Self) -> u64 {
        let Some(s) = &obj.status else { return 0 };
        let observed = s
            .observed
            .as_ref()
            .map(|o| (o.offer as u8, o.billing_type as u8, o.state as u8));
        observation_hash(observed, &s.conditions)
    }
}

/// What dependents read of an observed status: the observation and whether it is in sync.
fn observation_hash<T: std::hash::Hash>(
    observed: Option<T>,
    conditions: &[crate::api::Condition],
) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    observed.hash(&mut h);
    crate::policy::find_condition(conditions, crate::api::conditions::types::IN_SYNC)
        .map(|c| (&c.status, &c.reason))
        .hash(&mut h);
    h.finish()
}

impl Relations for RoleAssignment {
    fn record(feeds: &Feeds, obj: &Self, live: bool) -> Option<String> {
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let sub = obj.spec.subscription_ref.name.as_str();
        let idx = feeds.ctx.caches.indexes();
        idx.roles_by_subscription
            .set(&ns, &name, live.then_some(sub))
    }

    fn relisted(feeds: &Feeds) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        t.subscriptions.send_all(c.subscriptions.state());
        t.permissions.send_all(c.permissions.state());
    }

    fn changed(feeds: &Feeds, obj: &Self, moved_from: Option<String>) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        let ns = obj.namespace().unwrap_or_default();
        let subscription = obj.spec.subscription_ref.name.clone();
        // The subscription it is on (and the one it left), and that one's customer's switch.
        for s in std::iter::once(subscription).chain(moved_from) {
            if let Some(s) = c.subscription(&ns, &s) {
                t.permissions
                    .send_all(c.permissions_of(&ns, &s.spec.customer_ref.name));
                t.subscriptions.send_all([s]);
            }
        }
    }

    fn status_hash(obj: &Self) -> u64 {
        status_hash(&obj.status)
    }

    fn depended_status(obj: &Self) -> u64 {
        let Some(s) = &obj.status else { return 0 };
        observation_hash(s.observed.as_ref().map(|o| &o.assignment_id), &s.conditions)
    }
}

impl Relations for PurchasePermission {
    fn record(feeds: &Feeds, obj: &Self, live: bool) -> Option<String> {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        feeds.ctx.written.forget_superseded(obj);
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let customer = obj.spec.customer_ref.name.as_str();
        c.indexes()
            .permissions_by_customer
            .set(&ns, &name, live.then_some(customer));
        // The Customer summary shows the grant, which lives in this object's status: every
        // change reaches it, status-only ones included.
        if let Some(cust) = c.customer(&ns, customer) {
            t.customers.send_all([cust]);
        }
        // A connection being deleted waits for the namespace's grants to be withdrawn.
        if let Some(connections) = feeds.ctx.backend.connections() {
            connections.permission_changed(&ns);
        }
        // A customerRef move is a spec change, which re-checks every relative anyway.
        None
    }

    fn relisted(feeds: &Feeds) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        t.customers.send_all(c.customers.state());
        t.permissions.send_all(c.permissions.state());
    }

    fn changed(feeds: &Feeds, obj: &Self, _moved_from: Option<String>) {
        let (c, t) = (&feeds.ctx.caches, &feeds.triggers);
        let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let rivals = c.permissions_of(&ns, &obj.spec.customer_ref.name);
        t.permissions
            .send_all(rivals.into_iter().filter(|o| o.name_any() != name));
    }

    fn status_hash(obj: &Self) -> u64 {
        status_hash(&obj.status)
    }

    /// What rivals for the customer decide on: whether it holds the grant, and whether its
    /// status for this generation says it is blocked (it then does not take a grant over).
    fn depended_status(obj: &Self) -> u64 {
        let Some(s) = &obj.status else { return 0 };
        let current = s.observed_generation == obj.metadata.generation;
        1 + (s.state as u64) * 2 + u64::from(current)
    }
}

/// The feed of one kind: its watch fills its cache, then every event is recorded in the
/// relation indexes and fanned out to the dependents and to the kind's own controller.
pub async fn feed<K: Relations>(
    feeds: Arc<Feeds>,
    client: Client,
    writer: reflector::store::Writer<K>,
    own: OwnTx<K>,
) {
    let mut last_seen = LastSeen::default();
    cached_stream::<K>(&client, writer)
        .for_each(move |ev| {
            let mut own_needed = true;
            match seen(&ev) {
                Seen::Relisted => K::relisted(&feeds),
                Seen::Object(obj, live) => {
                    let moved_from = K::record(&feeds, obj, live);
                    let depended = K::depended_status(obj);
                    let (spec_changed, needed) = last_seen.observe(obj, live, depended);
                    if !live {
                        // Gone: its memo goes too (a delete always reaches its own reconcile).
                        feeds.ctx.owned.forget(obj);
                        feeds.ctx.logged.forget(obj);
                    }
                    // Taken on every event: a reconcile that decided on an older copy waits for it.
                    let recheck = feeds.ctx.owned.take_recheck(obj);
                    own_needed = needed || recheck || !status_is_ours(&feeds.ctx, obj);
                    if spec_changed || moved_from.is_some() {
                        K::changed(&feeds, obj, moved_from);
                    }
                }
                Seen::Other => {}
            }
            own.trigger(ev, own_needed);
            std::future::ready(())
        })
        .await
}

/// Whether the object's status is the one this process last wrote. Anything else (a person, a
/// tool, a stale replica wrote it) re-reconciles the object so the status it owns heals.
fn status_is_ours<K: Relations>(ctx: &Context, obj: &K) -> bool {
    ctx.owned.is_ours(obj, K::status_hash(obj))
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
struct LastSeen(HashMap<Box<str>, (u64, u64)>);

impl LastSeen {
    /// Records the object as seen now; returns whether its spec or existence changed, and
    /// whether its own reconcile is needed.
    fn observe<K: Resource>(&mut self, obj: &K, live: bool, depended: u64) -> (bool, bool) {
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
        let read_by_others = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (m.generation, depended).hash(&mut h);
            h.finish()
        };
        match self.0.insert(key, (read_by_others, own)) {
            None => (true, true),
            Some((before_others, before)) => (before_others != read_by_others, before != own),
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
    // Our annotations (paused, refresh) are the user asking this object's reconcile for something.
    let ours = |k: &&String| k.starts_with(super::annotations::PREFIX);
    for (k, v) in m.annotations.iter().flatten().filter(|(k, _)| ours(k)) {
        (k, v).hash(&mut h);
    }
    h.finish()
}

/// The trigger channels of the four controllers, as the feeds of other kinds use them.
pub struct Triggers {
    pub customers: RefTx<Customer>,
    pub subscriptions: RefTx<AzureSubscription>,
    pub roles: RefTx<RoleAssignment>,
    pub permissions: RefTx<PurchasePermission>,
}

/// Triggers for one kind's controller from the other kinds' feeds, counted while they wait.
pub struct RefTx<K: Resource<DynamicType = ()>> {
    tx: mpsc::UnboundedSender<ObjectRef<K>>,
    pending: prometheus_client::metrics::gauge::Gauge,
    /// Off until this replica reconciles: a standby keeps its caches but queues nothing.
    active: Arc<AtomicBool>,
}

impl<K: Resource<DynamicType = ()>> RefTx<K> {
    /// A trigger channel whose receiver counts down the pending gauge as the controller takes
    /// them.
    pub fn channel(
        metrics: &Metrics,
        kind: metrics::Kind,
        active: &Arc<AtomicBool>,
    ) -> (RefTx<K>, impl Stream<Item = ObjectRef<K>> + Send + use<K>)
    where
        K: 'static,
    {
        let pending = metrics
            .triggers_pending
            .get_or_create(&metrics::KindLabels { kind })
            .clone();
        let (tx, rx) = mpsc::unbounded();
        let taken = pending.clone();
        let tx = RefTx {
            tx,
            pending,
            active: active.clone(),
        };
        (tx, rx.inspect(move |_| _ = taken.dec()))
    }

    fn send_all(&self, objs: impl IntoIterator<Item = Arc<K>>) {
        if !self.active.load(Ordering::Relaxed) {
            return;
        }
        for o in objs {
            if self
                .tx
                .unbounded_send(ObjectRef::from_obj(o.as_ref()))
                .is_ok()
            {
                self.pending.inc();
            }
        }
    }
}

/// The feed of one kind's own controller: its watch events, when they need a reconcile.
#[derive(Clone)]
pub struct OwnTx<K> {
    tx: mpsc::UnboundedSender<Result<K, watcher::Error>>,
    active: Arc<AtomicBool>,
}

impl<K: Clone> OwnTx<K> {
    pub fn channel(
        active: &Arc<AtomicBool>,
    ) -> (OwnTx<K>, mpsc::UnboundedReceiver<Result<K, watcher::Error>>) {
        let (tx, rx) = mpsc::unbounded();
        let active = active.clone();
        (OwnTx { tx, active }, rx)
    }

    /// Queues every cached object once (when this replica starts reconciling).
    pub fn send_each(&self, objs: impl IntoIterator<Item = Arc<K>>) {
        for o in objs {
            let _ = self.tx.unbounded_send(Ok((*o).clone()));
        }
    }

    /// Passes an event on when `needed` (watch errors always go).
    fn trigger(&self, ev: Result<watcher::Event<K>, watcher::Error>, needed: bool) {
        if self.active.load(Ordering::Relaxed)
            && (needed || ev.is_err())
            && let Some(trigger) = trigger_of(ev)
        {
            let _ = self.tx.unbounded_send(trigger);
        }
    }
}

/// The controller's own trigger: the object of an event (or the watch error).
fn trigger_of<K>(
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
            seen.observe(&customer(1, &[], "a"), true, 0),
            (true, true),
            "first sight"
        );
        // A write that changes neither generation nor finalizers (here an annotation).
        assert_eq!(
            seen.observe(&customer(1, &[], "b"), true, 0),
            (false, false)
        );
        // A finalizer added: the object's own reconcile, not its dependents.
        assert_eq!(
            seen.observe(&customer(1, &["f"], "b"), true, 0),
            (false, true)
        );
        // A spec change: both.
        assert_eq!(
            seen.observe(&customer(2, &["f"], "b"), true, 0),
            (true, true)
        );
        // Gone: both, and a later object of that name is new again.
        assert_eq!(
            seen.observe(&customer(2, &["f"], "b"), false, 0),
            (true, true)
        );
        assert_eq!(
            seen.observe(&customer(2, &["f"], "b"), true, 0),
            (true, true)
        );
        // What Partner Center reported changed (an observed status): its dependents, not itself.
        assert_eq!(
            seen.observe(&customer(2, &["f"], "b"), true, 7),
            (true, false)
        );
        assert_eq!(
            seen.observe(&customer(2, &["f"], "b"), true, 7),
            (false, false)
        );
    }
}
