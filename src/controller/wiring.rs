//! Wiring: the caches, the four feeds and the four controllers, connected by trigger channels.
//! Nothing reconciles until every cache holds its first list.

use super::backoff::error_policy;
use super::caches::Caches;
use super::context::Context;
use super::metrics::{self, Metrics};
use super::run::{RunOptions, Shutdown};
use super::triggers::{self, Feeds, OwnTx, RefTx, Relations, Triggers};
use super::{Error, connection, customer, purchase_permission, role_assignment, subscription};
use crate::api::{AzureSubscription, Customer, PurchasePermission, RoleAssignment};
use crate::backend::Backend;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What `build` hands to `run`.
pub struct Wiring<C> {
    pub caches: Caches,
    /// The four watches and their fan-out; runs whether or not this replica leads.
    pub feeds: BoxFuture<'static, ()>,
    /// Starts the controllers (once the caches are synced) and runs them until the signal.
    pub controllers: C,
}

/// One kind's way into its controller: its own watch events, and triggers from other kinds.
struct Lane<K: Relations> {
    own: OwnTx<K>,
    own_rx: mpsc::UnboundedReceiver<Result<K, watcher::Error>>,
    refs_rx: BoxStream<'static, ObjectRef<K>>,
}

impl<K: Relations> Lane<K> {
    fn new(
        metrics: &Metrics,
        kind: metrics::Kind,
        active: &Arc<AtomicBool>,
    ) -> (RefTx<K>, Lane<K>) {
        let (refs, refs_rx) = RefTx::channel(metrics, kind, active);
        let (own, own_rx) = OwnTx::channel(active);
        let refs_rx = refs_rx.boxed();
        (
            refs,
            Lane {
                own,
                own_rx,
                refs_rx,
            },
        )
    }
}

/// The caches, the feeds that fill them, and the controllers that read them.
pub fn build(
    client: Client,
    backend: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    opts: &RunOptions,
) -> Wiring<impl FnOnce(Shutdown) -> BoxFuture<'static, ()>> {
    let (caches, writers) = Caches::new();
    let mut context = Context::new(client.clone(), caches.clone(), backend, metrics);
    context.crash_points = opts.crash_points.clone();
    let ctx = Arc::new(context);
    let m = &ctx.metrics;
    // Off until the caches are synced and this replica reconciles.
    let active = Arc::new(AtomicBool::new(false));
    let (ct, customers) = Lane::<Customer>::new(m, metrics::Kind::customer, &active);
    let (st, subscriptions) =
        Lane::<AzureSubscription>::new(m, metrics::Kind::azuresubscription, &active);
    let (rt, roles) = Lane::<RoleAssignment>::new(m, metrics::Kind::roleassignment, &active);
    let (pt, permissions) =
        Lane::<PurchasePermission>::new(m, metrics::Kind::purchasepermission, &active);
    let feeds = Arc::new(Feeds {
        ctx: ctx.clone(),
        triggers: Triggers {
            customers: ct,
            subscriptions: st,
            roles: rt,
            permissions: pt,
        },
    });
    let resync = resync_every(feeds.clone(), opts.resync);
    let watches = futures::future::join4(
        triggers::feed(
            feeds.clone(),
            client.clone(),
            writers.customers,
            customers.own.clone(),
        ),
        triggers::feed(
            feeds.clone(),
            client.clone(),
            writers.subscriptions,
            subscriptions.own.clone(),
        ),
        triggers::feed(
            feeds.clone(),
            client.clone(),
            writers.roles,
            roles.own.clone(),
        ),
        triggers::feed(feeds, client, writers.permissions, permissions.own.clone()),
    );
    let (synced_tx, synced_rx) = tokio::sync::watch::channel(false);
    let sync = announce_sync(caches.clone(), ready, synced_tx);
    let cfg = controller::Config::default()
        .concurrency(if opts.concurrency == 0 {
            16
        } else {
            opts.concurrency
        })
        .debounce(opts.debounce);
    let controllers = move |stop: Shutdown| -> BoxFuture<'static, ()> {
        let lanes = (customers, subscriptions, roles, permissions);
        reconcile_all(ctx, lanes, cfg, synced_rx, active, stop).boxed()
    };
    Wiring {
        caches,
        feeds: futures::future::join3(watches, sync, resync)
            .map(|_| ())
            .boxed(),
        controllers,
    }
}

/// Re-checks everything every `period` (each wait jittered by up to a tenth either way, so
/// replicas and restarts do not line up); never when `period` is None.
async fn resync_every(feeds: Arc<Feeds>, period: Option<Duration>) {
    let Some(period) = period.filter(|p| !p.is_zero()) else {
        return;
    };
    loop {
        let jitter = rand::random_range(0.9..1.1);
        tokio::time::sleep(period.mul_f64(jitter)).await;
        tracing::debug!("periodic resync");
        feeds.resync();
    }
}

/// One waiter on the caches' readiness (kube's Store wakes only one), announced to the probe
/// and to the controllers.
async fn announce_sync(
    caches: Caches,
    ready: Arc<AtomicBool>,
    synced: tokio::sync::watch::Sender<bool>,
) {
    if caches.wait_until_synced().await {
        ready.store(true, Ordering::Relaxed);
        let _ = synced.send(true);
    }
    // Keep the sender alive so the receivers do not see a closed channel.
    futures::future::pending::<()>().await;
}

/// The cached objects of one namespace.
fn in_namespace<K>(store: &Store<K>, ns: &str) -> Vec<Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .into_iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .collect()
}

/// The own-event senders of the four controllers.
type Owns = (
    OwnTx<Customer>,
    OwnTx<AzureSubscription>,
    OwnTx<RoleAssignment>,
    OwnTx<PurchasePermission>,
);

type Lanes = (
    Lane<Customer>,
    Lane<AzureSubscription>,
    Lane<RoleAssignment>,
    Lane<PurchasePermission>,
);

/// Runs the four controllers once the caches are synced, until `stop`.
async fn reconcile_all(
    ctx: Arc<Context>,
    (customers, subscriptions, roles, permissions): Lanes,
    cfg: controller::Config,
    mut synced: tokio::sync::watch::Receiver<bool>,
    active: Arc<AtomicBool>,
    stop: Shutdown,
) {
    let c = ctx.caches.clone();
    let owns = (
        customers.own.clone(),
        subscriptions.own.clone(),
        roles.own.clone(),
        permissions.own.clone(),
    );
    let controllers = futures::future::join4(
        controller_for(
            customers,
            &c.customers,
            customer::reconcile,
            &ctx,
            &cfg,
            &stop,
        ),
        controller_for(
            subscriptions,
            &c.subscriptions,
            subscription::reconcile,
            &ctx,
            &cfg,
            &stop,
        ),
        controller_for(
            roles,
            &c.roles,
            role_assignment::reconcile,
            &ctx,
            &cfg,
            &stop,
        ),
        controller_for(
            permissions,
            &c.permissions,
            purchase_permission::reconcile,
            &ctx,
            &cfg,
            &stop,
        ),
    );
    let connections = connection_controller(&ctx, &owns, &stop);
    let controllers = futures::future::join(controllers, connections);
    // Decisions read all four caches: reconcile nothing until every cache has its first list,
    // or a restart would write half-informed statuses.
    tokio::select! {
        s = synced.wait_for(|done| *done).map(|r| r.is_ok()) => {
            if s {
                tracing::info!("caches synced; reconciling");
                // From now on changes trigger; everything already cached is checked once.
                active.store(true, Ordering::Relaxed);
                owns.0.send_each(c.customers.state());
                owns.1.send_each(c.subscriptions.state());
                owns.2.send_each(c.roles.state());
                owns.3.send_each(c.permissions.state());
                controllers.await;
            }
        }
        _ = stop.clone() => {}
    }
}

/// The PartnerCenterConnection controller, when grants live in Partner Center: it keeps the
/// namespaces' links and wakes the permissions that wait for them or that drifted.
fn connection_controller(
    ctx: &Arc<Context>,
    owns: &Owns,
    stop: &Shutdown,
) -> BoxFuture<'static, ()> {
    let Some(connections) = ctx.backend.connections() else {
        return futures::future::ready(()).boxed();
    };
    let (p, s) = (owns.3.clone(), owns.1.clone());
    let (all, c) = (owns.clone(), ctx.caches.clone());
    let cc = Arc::new(connection::ConnectionContext {
        ctx: ctx.clone(),
        connections,
        wake: Arc::new(move |o| p.send_each([o])),
        wake_subscription: Arc::new(move |o| s.send_each([o])),
        wake_namespace: Arc::new(move |ns| {
            all.0.send_each(in_namespace(&c.customers, ns));
            all.1.send_each(in_namespace(&c.subscriptions, ns));
            all.2.send_each(in_namespace(&c.roles, ns));
            all.3.send_each(in_namespace(&c.permissions, ns));
        }),
    });
    connection::run(cc, stop.clone()).boxed()
}

/// One kind's controller: its own watch events and other kinds' triggers in, `reconcile` (timed
/// and counted) with per-object backoff on failure.
fn controller_for<K, F, Fut>(
    lane: Lane<K>,
    store: &Store<K>,
    reconcile: F,
    ctx: &Arc<Context>,
    cfg: &controller::Config,
    stop: &Shutdown,
) -> impl Future<Output = ()> + use<K, F, Fut>
where
    K: Relations,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let cache = store.clone();
    Controller::for_stream(lane.own_rx, store.clone())
        .graceful_shutdown_on(stop.clone())
        .with_config(cfg.clone())
        .reconcile_on(lane.refs_rx)
        .run(
            move |o, c| instrumented(o, c, reconcile, cache.clone()),
            error_policy,
            ctx.clone(),
        )
        .for_each(|_| std::future::ready(()))
}

/// Runs a reconcile with metrics, and forgets the object's failures on success. A reconcile
/// that decided on a copy older than this process's last status write runs again once the
/// cache holds that write (a decision against a stale status could leave a wrong one standing).
async fn instrumented<K, F, Fut>(
    obj: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
    cache: Store<K>,
) -> Result<Action, Error>
where
    K: Relations,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let kind = metrics::kind_of(K::kind(&()).as_ref());
    let timer = ctx.metrics.reconcile_started(kind);
    let decided_on = K::status_hash(obj.as_ref());
    let behind = ctx.owned.mark_if_behind(obj.as_ref(), decided_on);
    let result = reconcile(obj.clone(), ctx.clone()).await;
    match &result {
        Ok(_) => {
            ctx.backoff.succeeded(obj.as_ref());
            timer.finish("ok");
        }
        Err(e) => timer.finish(e.metric_label()),
    }
    if behind && result.is_ok() && caught_up_already(&ctx, &cache, &obj, decided_on) {
        return Ok(Action::requeue(Duration::ZERO));
    }
    result
}

/// Whether the cache moved past the copy a reconcile decided on before the mark was set (so
/// no watch event is left to reconcile the object again): the mark is then taken here. The
/// feed updates the cache before it takes the mark, so one of the two always takes it.
fn caught_up_already<K: Relations>(
    ctx: &Context,
    cache: &Store<K>,
    obj: &K,
    decided_on: u64,
) -> bool {
    let now_cached = cache
        .get(&ObjectRef::from_obj(obj))
        .map(|o| K::status_hash(o.as_ref()));
    now_cached.is_some_and(|h| h != decided_on) && ctx.owned.take_recheck(obj)
}
