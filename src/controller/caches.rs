//! The read caches of all four kinds (reflector stores fed by one watch each), the relation
//! indexes between them, and the queries reconcilers and triggers ask of them.

mod index;

use crate::api::{AzureSubscription, Customer, PurchasePermission, Role, RoleAssignment};
use futures::Stream;
use index::RefIndex;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;

/// The read caches of all four kinds, and the relations between them.
#[derive(Clone)]
pub struct Caches {
    pub customers: Store<Customer>,
    pub subscriptions: Store<AzureSubscription>,
    pub roles: Store<RoleAssignment>,
    pub permissions: Store<PurchasePermission>,
    indexes: Arc<Indexes>,
}

/// Who refers to what. Each index is written by the feed of the kind that holds the reference
/// (`Relations::record` in `triggers`) and read by the queries below.
#[derive(Default)]
pub(super) struct Indexes {
    pub customers_by_tenant: RefIndex,
    pub subscriptions_by_customer: RefIndex,
    pub subscriptions_by_id: RefIndex,
    pub roles_by_subscription: RefIndex,
    pub permissions_by_customer: RefIndex,
}

/// The writers that fill the caches, one per kind; each goes to that kind's watch.
pub struct CacheWriters {
    pub customers: reflector::store::Writer<Customer>,
    pub subscriptions: reflector::store::Writer<AzureSubscription>,
    pub roles: reflector::store::Writer<RoleAssignment>,
    pub permissions: reflector::store::Writer<PurchasePermission>,
}

impl Caches {
    /// Empty caches, and the writers their watches fill them through.
    pub fn new() -> (Caches, CacheWriters) {
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
        let writers = CacheWriters {
            customers: cw,
            subscriptions: sw,
            roles: rw,
            permissions: pw,
        };
        (caches, writers)
    }

    /// Resolves once every cache holds its first list (false when a cache was dropped first).
    pub async fn wait_until_synced(&self) -> bool {
        let all = futures::future::join4(
            self.customers.wait_until_ready(),
            self.subscriptions.wait_until_ready(),
            self.roles.wait_until_ready(),
            self.permissions.wait_until_ready(),
        )
        .await;
        matches!(all, (Ok(()), Ok(()), Ok(()), Ok(())))
    }

    /// The relation indexes, which the watch feeds keep (see `triggers`).
    pub(super) fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    // Queries.

    pub fn customer(&self, ns: &str, name: &str) -> Option<Arc<Customer>> {
        self.customers.get(&ObjectRef::new(name).within(ns))
    }

    pub fn subscription(&self, ns: &str, name: &str) -> Option<Arc<AzureSubscription>> {
        self.subscriptions.get(&ObjectRef::new(name).within(ns))
    }

    /// The customer's subscriptions (those whose customerRef names it).
    pub fn subscriptions_of(&self, ns: &str, customer: &str) -> Vec<Arc<AzureSubscription>> {
        let names = self.indexes.subscriptions_by_customer.names(ns, customer);
        lookup(&self.subscriptions, ns, names)
    }

    /// The subscriptions claiming an Azure subscription id.
    pub fn subscriptions_with_id(&self, ns: &str, id: &str) -> Vec<Arc<AzureSubscription>> {
        let names = self.indexes.subscriptions_by_id.names(ns, id);
        lookup(&self.subscriptions, ns, names)
    }

    /// The customers claiming a tenant.
    pub fn customers_with_tenant(&self, ns: &str, tenant: &str) -> Vec<Arc<Customer>> {
        let names = self.indexes.customers_by_tenant.names(ns, tenant);
        lookup(&self.customers, ns, names)
    }

    /// The role assignments on a subscription.
    pub fn roles_on(&self, ns: &str, subscription: &str) -> Vec<Arc<RoleAssignment>> {
        let names = self.indexes.roles_by_subscription.names(ns, subscription);
        lookup(&self.roles, ns, names)
    }

    /// How many principals hold the Owner role on a subscription (one Azure does not list, with
    /// observations on, does not count).
    pub fn owners_on(&self, ns: &str, subscription: &str) -> i32 {
        self.roles_on(ns, subscription)
            .iter()
            .filter(|r| r.spec.role == Role::Owner)
            .filter(|r| {
                !r.status
                    .as_ref()
                    .is_some_and(|s| crate::policy::out_of_sync(&s.conditions))
            })
            .count() as i32
    }

    /// Whether an Owner role on a subscription has not been checked in Azure yet.
    pub fn owner_unobserved(&self, ns: &str, subscription: &str) -> bool {
        self.roles_on(ns, subscription)
            .iter()
            .filter(|r| r.spec.role == Role::Owner)
            .any(|r| {
                !r.status.as_ref().is_some_and(|s| {
                    crate::policy::find_condition(
                        &s.conditions,
                        crate::api::conditions::types::IN_SYNC,
                    )
                    .is_some()
                })
            })
    }

    /// The customer's purchase permissions (those whose customerRef names it).
    pub fn permissions_of(&self, ns: &str, customer: &str) -> Vec<Arc<PurchasePermission>> {
        let names = self.indexes.permissions_by_customer.names(ns, customer);
        lookup(&self.permissions, ns, names)
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

/// A watch of one kind that keeps its cache, stripped of the metadata no reconcile reads.
pub fn cached_stream<K>(
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
            // Only ours are read (paused, refresh).
            if let Some(a) = m.annotations.as_mut() {
                a.retain(|k, _| k.starts_with(super::annotations::PREFIX));
            }
            if m.annotations.as_ref().is_some_and(|a| a.is_empty()) {
                m.annotations = None;
            }
            m.labels = None;
            m.owner_references = None;
        })
        .reflect(writer)
}

/// How an object's claim weighs against rivals of its kind (creation time, then name).
pub fn seniority<K: Resource>(o: &K) -> crate::policy::Seniority<'_> {
    crate::policy::Seniority::new(
        o.meta().creation_timestamp.as_ref().map(|t| t.0),
        o.meta().name.as_deref().unwrap_or(""),
    )
}
