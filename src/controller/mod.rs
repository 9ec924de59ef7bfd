//! The four reconcilers. Each gathers facts from shared reflector caches, calls the pure
//! `policy` decision, then applies it: backend grant, status (only when changed), Events.
//!
//! One watch per kind feeds its cache; a fan-out task then triggers the kind's own controller and,
//! through mappers that read the caches, exactly the objects of other kinds that depend on it.
//! Because the cache is updated before the trigger goes out, a reconcile always sees the change
//! that triggered it.

mod events;

use crate::api::conditions::types;
use crate::api::{
    AzureSubscription, Customer, FINALIZER, PermissionState, PurchasePermission, Role,
    RoleAssignment,
};
use crate::backend::{Backend, Grant};
use crate::policy::{self, Seniority};
use futures::channel::mpsc;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt, finalizer};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Backend(_) => "backend",
            Error::Finalizer(_) => "finalizer",
            Error::NoNamespace => "no_namespace",
        }
    }
}

/// The read caches of all four kinds.
#[derive(Clone)]
pub struct Caches {
    pub customers: Store<Customer>,
    pub subscriptions: Store<AzureSubscription>,
    pub roles: Store<RoleAssignment>,
    pub permissions: Store<PurchasePermission>,
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub caches: Caches,
    pub backend: Arc<dyn Backend>,
    /// Status writes and Events published (for tests and metrics).
    pub writes: AtomicU64,
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
        self.subscriptions
            .state()
            .into_iter()
            .filter(|s| {
                s.namespace().as_deref() == Some(ns) && s.spec.customer_ref.name == customer
            })
            .collect()
    }

    fn roles_on(&self, ns: &str, subscription: &str) -> Vec<Arc<RoleAssignment>> {
        self.roles
            .state()
            .into_iter()
            .filter(|r| {
                r.namespace().as_deref() == Some(ns) && r.spec.subscription_ref.name == subscription
            })
            .collect()
    }

    fn owners_on(&self, ns: &str, subscription: &str) -> i32 {
        self.roles_on(ns, subscription)
            .iter()
            .filter(|r| r.spec.role == Role::Owner)
            .count() as i32
    }

    fn permissions_of(&self, ns: &str, customer: &str) -> Vec<Arc<PurchasePermission>> {
        self.permissions
            .state()
            .into_iter()
            .filter(|p| {
                p.namespace().as_deref() == Some(ns) && p.spec.customer_ref.name == customer
            })
            .collect()
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

async fn write_status<K>(ctx: &Context, obj: &K, status: impl Serialize) -> Result<(), Error>
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
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    ctx.writes.fetch_add(1, Ordering::Relaxed);
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
    let others = c.customers.state();
    let rivals = others
        .iter()
        .filter(|o| {
            o.namespace().as_deref() == Some(ns.as_str()) && o.spec.tenant_id == obj.spec.tenant_id
        })
        .map(|o| seniority(o.as_ref()));
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
        write_status(&ctx, obj.as_ref(), status).await?;
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
    let others = c.subscriptions.state();
    let rivals = others
        .iter()
        .filter(|o| {
            o.namespace().as_deref() == Some(ns.as_str())
                && o.spec.subscription_id == obj.spec.subscription_id
        })
        .map(|o| seniority(o.as_ref()));
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
        write_status(&ctx, obj.as_ref(), status).await?;
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
        write_status(&ctx, obj.as_ref(), status).await?;
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
    finalizer::finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            finalizer::Event::Apply(p) => apply_permission(p, ctx2).await,
            finalizer::Event::Cleanup(p) => cleanup_permission(p, ctx2).await,
        }
    })
    .await
    .map_err(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

fn tenant_of(ctx: &Context, ns: &str, p: &PurchasePermission) -> String {
    ctx.caches
        .customer(ns, &p.spec.customer_ref.name)
        .map(|c| c.spec.tenant_id.clone())
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
    let decision = policy::permission_decision(
        &policy::PermissionFacts {
            spec: &obj.spec,
            generation: obj.metadata.generation,
            current: obj.status.as_ref(),
            customer_exists: c.customer(&ns, customer).is_some(),
            subscriptions: facts_subs,
            duplicate_of,
        },
        now(),
    );
    match decision.grant {
        policy::GrantChange::Create => {
            let grant = Grant {
                customer_tenant_id: tenant_of(&ctx, &ns, &obj),
                resources: obj
                    .spec
                    .resources
                    .iter()
                    .map(|r| r.partner_center_name().to_string())
                    .collect(),
            };
            ctx.backend.grant(&grant).await?;
        }
        policy::GrantChange::Delete => ctx.backend.revoke(&tenant_of(&ctx, &ns, &obj)).await?,
        policy::GrantChange::None => {}
    }
    if let Some(status) = policy::status_change(obj.status.as_ref(), decision.status) {
        write_status(&ctx, obj.as_ref(), status).await?;
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
    if let Some(event) = policy::withdraw_on_delete(obj.status.as_ref()) {
        let ns = obj.namespace().ok_or(Error::NoNamespace)?;
        ctx.backend.revoke(&tenant_of(&ctx, &ns, &obj)).await?;
        events::publish(&ctx, obj.as_ref(), &event).await;
    }
    Ok(Action::await_change())
}

fn error_policy<K>(_obj: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(error = %error, kind = error.metric_label(), "reconcile failed");
    // Jittered backoff: kube's Controller already deduplicates; spread retries of many objects.
    let jitter = rand::random::<u64>() % 1000;
    Action::requeue(Duration::from_millis(1000 + jitter))
}

/// A watch of one kind that keeps its cache, stripped of managedFields.
fn cached_stream<K>(
    client: &Client,
    writer: reflector::store::Writer<K>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    watcher::watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects()
}

type RefTx<K> = mpsc::UnboundedSender<ObjectRef<K>>;

struct Triggers {
    customers: RefTx<Customer>,
    subscriptions: RefTx<AzureSubscription>,
    roles: RefTx<RoleAssignment>,
    permissions: RefTx<PurchasePermission>,
}

fn send_all<K: Resource<DynamicType = ()>>(tx: &RefTx<K>, objs: impl IntoIterator<Item = Arc<K>>) {
    for o in objs {
        let _ = tx.unbounded_send(ObjectRef::from_obj(o.as_ref()));
    }
}

/// Runs the four controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    backend: Arc<dyn Backend>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
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
    };
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        caches: caches.clone(),
        backend,
        writes: AtomicU64::new(0),
    });
    let (ct, cr) = mpsc::unbounded();
    let (st, sr) = mpsc::unbounded();
    let (rt, rr) = mpsc::unbounded();
    let (pt, pr) = mpsc::unbounded();
    let triggers = Arc::new(Triggers {
        customers: ct,
        subscriptions: st,
        roles: rt,
        permissions: pt,
    });

    // Fan-out: each kind's watch triggers the dependents of every object it sees.
    let (c_main, c_main_rx) = mpsc::unbounded();
    let (s_main, s_main_rx) = mpsc::unbounded();
    let (r_main, r_main_rx) = mpsc::unbounded();
    let (p_main, p_main_rx) = mpsc::unbounded();

    let c2 = caches.clone();
    let t = triggers.clone();
    let customer_feed = cached_stream::<Customer>(&client, cw).for_each(move |ev| {
        if let Ok(obj) = &ev {
            let ns = obj.namespace().unwrap_or_default();
            let name = obj.name_any();
            send_all(&t.subscriptions, c2.subscriptions_of(&ns, &name));
            send_all(&t.permissions, c2.permissions_of(&ns, &name));
            send_all(
                &t.customers,
                c2.customers.state().into_iter().filter(|o| {
                    o.namespace().as_deref() == Some(ns.as_str())
                        && o.spec.tenant_id == obj.spec.tenant_id
                        && o.name_any() != name
                }),
            );
        }
        let _ = c_main.unbounded_send(ev);
        std::future::ready(())
    });
    let c2 = caches.clone();
    let t = triggers.clone();
    let subscription_feed = cached_stream::<AzureSubscription>(&client, sw).for_each(move |ev| {
        if let Ok(obj) = &ev {
            let ns = obj.namespace().unwrap_or_default();
            let name = obj.name_any();
            if let Some(c) = c2.customer(&ns, &obj.spec.customer_ref.name) {
                send_all(&t.customers, [c]);
            }
            send_all(
                &t.permissions,
                c2.permissions_of(&ns, &obj.spec.customer_ref.name),
            );
            send_all(&t.roles, c2.roles_on(&ns, &name));
            send_all(
                &t.subscriptions,
                c2.subscriptions.state().into_iter().filter(|o| {
                    o.namespace().as_deref() == Some(ns.as_str())
                        && o.spec.subscription_id == obj.spec.subscription_id
                        && o.name_any() != name
                }),
            );
        }
        let _ = s_main.unbounded_send(ev);
        std::future::ready(())
    });
    let c2 = caches.clone();
    let t = triggers.clone();
    let role_feed = cached_stream::<RoleAssignment>(&client, rw).for_each(move |ev| {
        if let Ok(obj) = &ev {
            let ns = obj.namespace().unwrap_or_default();
            if let Some(s) = c2.subscription(&ns, &obj.spec.subscription_ref.name) {
                send_all(
                    &t.permissions,
                    c2.permissions_of(&ns, &s.spec.customer_ref.name),
                );
                send_all(&t.subscriptions, [s]);
            }
        }
        let _ = r_main.unbounded_send(ev);
        std::future::ready(())
    });
    let c2 = caches.clone();
    let t = triggers.clone();
    let permission_feed = cached_stream::<PurchasePermission>(&client, pw).for_each(move |ev| {
        if let Ok(obj) = &ev {
            let ns = obj.namespace().unwrap_or_default();
            let name = obj.name_any();
            if let Some(c) = c2.customer(&ns, &obj.spec.customer_ref.name) {
                send_all(&t.customers, [c]);
            }
            send_all(
                &t.permissions,
                c2.permissions_of(&ns, &obj.spec.customer_ref.name)
                    .into_iter()
                    .filter(|o| o.name_any() != name),
            );
        }
        let _ = p_main.unbounded_send(ev);
        std::future::ready(())
    });

    let cfg = kube::runtime::controller::Config::default().concurrency(16);
    let customer_ctrl = Controller::for_stream(c_main_rx, caches.customers.clone())
        .with_config(cfg.clone())
        .reconcile_on(cr)
        .run(reconcile_customer, error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));
    let subscription_ctrl = Controller::for_stream(s_main_rx, caches.subscriptions.clone())
        .with_config(cfg.clone())
        .reconcile_on(sr)
        .run(reconcile_subscription, error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));
    let role_ctrl = Controller::for_stream(r_main_rx, caches.roles.clone())
        .with_config(cfg.clone())
        .reconcile_on(rr)
        .run(reconcile_role, error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));
    let permission_ctrl = Controller::for_stream(p_main_rx, caches.permissions.clone())
        .with_config(cfg)
        .reconcile_on(pr)
        .run(reconcile_permission, error_policy, ctx.clone())
        .for_each(|_| std::future::ready(()));

    // Decisions read all four caches: reconcile nothing until every cache has its first list,
    // or a restart would write half-informed statuses (triggers wait in the channels).
    let ready = caches.clone();
    let controllers = async move {
        let synced = futures::future::join4(
            ready.customers.wait_until_ready(),
            ready.subscriptions.wait_until_ready(),
            ready.roles.wait_until_ready(),
            ready.permissions.wait_until_ready(),
        )
        .await;
        if let (Ok(()), Ok(()), Ok(()), Ok(())) = synced {
            tracing::info!("caches synced; reconciling");
            futures::future::join4(customer_ctrl, subscription_ctrl, role_ctrl, permission_ctrl)
                .await;
        }
    };
    let all = futures::future::join_all(vec![
        customer_feed.boxed(),
        subscription_feed.boxed(),
        role_feed.boxed(),
        permission_feed.boxed(),
        controllers.boxed(),
    ]);
    tokio::select! {
        _ = all => {}
        _ = shutdown => {}
    }
    let _ = types::READY;
}
