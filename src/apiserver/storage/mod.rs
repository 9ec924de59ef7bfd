//! The object store: every object as compressed JSON ([`Packed`]) under one resourceVersion
//! counter, with a bounded change history for watches. Writes come in through [`writes`] (which
//! admits them first); the namespace controller, CRD registration and termination, and Event
//! expiry are beside it.

mod crds;
mod events;
pub mod gc;
mod list;
mod namespaces;
mod watch;
mod writes;

pub use list::{ListQuery, Page, ReadAt, too_large_resource_version};
pub use watch::{Change, change_bytes};

use super::error::ApiError;
use super::meta::set_meta;
use super::packed::{Packed, Packer};
use super::persist::Journal;
use super::rbac::RbacObjects;
use super::resources::{self, ResourceDef, StoreKey, event_view};
use bytes::Bytes;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Counters the tests and benchmarks read.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Writes that changed something (each bumped the resourceVersion).
    pub writes: u64,
    /// Writes by field manager.
    pub writes_by_manager: HashMap<String, u64>,
    /// Writes by resource (plural name).
    pub writes_by_resource: HashMap<String, u64>,
    /// Write requests answered without a change (no-ops).
    pub noop_writes: u64,
}

struct State {
    rv: u64,
    resources: Vec<Arc<ResourceDef>>,
    objects: HashMap<StoreKey, BTreeMap<(String, String), Packed>>,
    /// Compression of each store's objects (a dictionary per store).
    packers: HashMap<StoreKey, Packer>,
    history: VecDeque<Arc<Change>>,
    history_cap: usize,
    /// Watches may start from any resourceVersion >= this.
    horizon: u64,
    /// A namespace whose contents are being deleted in bulk (checked for emptiness once, after).
    draining: Option<String>,
    /// The object stores of CRDs being deleted (no new objects; the CRD goes with the last one).
    terminating_crds: HashSet<StoreKey>,
    /// The garbage collector's graph (dependents by owner uid) and work queue.
    gc: gc::GcIndex,
    stats: Stats,
    /// The write-ahead log of `--state` (None: in memory only).
    journal: Option<Arc<Journal>>,
}

/// The store. Cheap to share; every operation takes one short lock.
pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Store {
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        let store = Self {
            state: Mutex::new(State {
                rv: 100,
                resources: resources::builtins().into_iter().map(Arc::new).collect(),
                objects: HashMap::new(),
                packers: HashMap::new(),
                history: VecDeque::new(),
                history_cap,
                horizon: 0,
                draining: None,
                terminating_crds: HashSet::new(),
                gc: gc::GcIndex::default(),
                stats: Stats::default(),
                journal: None,
            }),
            tx,
        };
        store.create_boot_namespaces();
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every served resource.
    pub fn resources(&self) -> Vec<Arc<ResourceDef>> {
        self.lock().resources.clone()
    }

    pub fn resolve(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.lock()
            .resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// The stored Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, for the RBAC
    /// authorizer (bytes are copied under the lock and parsed after it).
    pub fn rbac_objects(&self) -> RbacObjects {
        let kinds = [
            "roles",
            "clusterroles",
            "rolebindings",
            "clusterrolebindings",
        ];
        let st = self.lock();
        let bytes = kinds
            .iter()
            .map(|plural| {
                st.objects
                    .get(&("rbac.authorization.k8s.io".to_string(), plural.to_string()))
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default()
            })
            .collect::<Vec<Vec<Packed>>>();
        drop(st);
        let mut parsed = bytes.into_iter().map(|objs| {
            objs.iter()
                .filter_map(|b| serde_json::from_slice(&b.unpack()).ok())
                .collect::<Vec<Value>>()
        });
        RbacObjects {
            roles: parsed.next().unwrap_or_default(),
            cluster_roles: parsed.next().unwrap_or_default(),
            role_bindings: parsed.next().unwrap_or_default(),
            cluster_role_bindings: parsed.next().unwrap_or_default(),
        }
    }

    /// Every stored object with its store and namespace, and the resourceVersion, copied under
    /// the lock (the bytes are shared) for a snapshot.
    #[allow(clippy::type_complexity)]
    pub fn copy_objects(&self) -> (u64, Vec<(StoreKey, String, Packed)>) {
        copy_locked(&self.lock())
    }

    /// Every stored object as [`Store::copy_objects`] does, and `also` called under the same
    /// lock (so that nothing is written between the copy and what `also` does).
    #[allow(clippy::type_complexity)]
    pub fn copy_objects_and<T>(
        &self,
        also: impl FnOnce() -> T,
    ) -> (u64, Vec<(StoreKey, String, Packed)>, T) {
        let st = self.lock();
        let (rv, copied) = copy_locked(&st);
        let t = also();
        drop(st);
        (rv, copied, t)
    }

    /// From now on every change is appended to `journal` before it is told to anyone.
    pub fn attach_journal(&self, journal: Arc<Journal>) {
        self.lock().journal = Some(journal);
    }

    /// Loads objects into an empty store, under one lock held until [`Restoring::finish`].
    pub fn restoring(&self) -> Restoring<'_> {
        Restoring(self.lock())
    }

    /// Forgets the change history: watches from any earlier resourceVersion get 410 Expired.
    pub fn compact(&self) {
        let mut st = self.lock();
        st.history.clear();
        st.horizon = st.rv;
    }

    pub fn object_count(&self) -> usize {
        self.lock().objects.values().map(BTreeMap::len).sum()
    }

    /// Calls `f` with the JSON of every stored object of a resource (group, plural), for
    /// in-process checks: one object is unpacked at a time, outside the lock.
    pub fn for_each_object(&self, group: &str, plural: &str, mut f: impl FnMut(&[u8])) {
        let packed: Vec<Packed> = self
            .lock()
            .objects
            .get(&(group.to_string(), plural.to_string()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for p in packed {
            f(&p.unpack());
        }
    }

    /// Total bytes of stored objects (compressed JSON).
    pub fn stored_bytes(&self) -> usize {
        self.lock()
            .objects
            .values()
            .flat_map(|m| m.values())
            .map(Packed::len)
            .sum()
    }

    pub fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Value, ApiError> {
        let st = self.lock();
        let bytes = st
            .objects
            .get(&def.store)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&def.qualified_resource(), name))?;
        drop(st);
        view(def, &bytes.unpack())
    }
}

/// Every stored object with its store and namespace (the bytes are shared), and the rv.
#[allow(clippy::type_complexity)]
fn copy_locked(st: &State) -> (u64, Vec<(StoreKey, String, Packed)>) {
    let copied = st
        .objects
        .iter()
        .flat_map(|(key, map)| {
            map.iter()
                .map(move |((ns, _), bytes)| (key.clone(), ns.clone(), bytes.clone()))
        })
        .collect();
    (st.rv, copied)
}

/// A restore in progress (see [`Store::restoring`]).
pub struct Restoring<'a>(MutexGuard<'a, State>);

impl Restoring<'_> {
    /// Stores one object as it was saved; a CRD also registers its resources.
    pub fn put(
        &mut self,
        key: StoreKey,
        ns: String,
        name: String,
        object: &Value,
    ) -> Result<(), String> {
        let st = &mut *self.0;
        let json = serde_json::to_vec(object).map_err(|e| e.to_string())?;
        let is_crd = key.0 == "apiextensions.k8s.io" && key.1 == "customresourcedefinitions";
        let bytes = st.packers.entry(key.clone()).or_default().pack(&json);
        st.gc_observe(&key, &ns, &name, object);
        st.objects.entry(key).or_default().insert((ns, name), bytes);
        if is_crd {
            st.register_crd(object);
        }
        Ok(())
    }

    /// Moves the resourceVersion to at least `rv`; watches start from there.
    pub fn finish(mut self, rv: u64) {
        let st = &mut *self.0;
        st.rv = st.rv.max(rv);
        st.horizon = st.rv;
    }
}

impl State {
    fn exists(&self, def: &ResourceDef, ns: &str, name: &str) -> bool {
        self.objects
            .get(&def.store)
            .is_some_and(|m| m.contains_key(&(ns.to_string(), name.to_string())))
    }

    /// The current object in the resource's view.
    fn current(&self, def: &ResourceDef, ns: &str, name: &str) -> Result<Option<Value>, ApiError> {
        match self
            .objects
            .get(&def.store)
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
        {
            Some(b) => view(def, &b.unpack()).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `obj` under a new resourceVersion and tells the watchers.
    fn commit(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut obj: Value,
        created: bool,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Result<Value, ApiError> {
        self.count_write(def);
        set_meta(&mut obj, "resourceVersion", self.rv.to_string().into());
        let encoded = if def.is_events_k8s_io() {
            serde_json::to_vec(&event_view::from_new(&obj))
        } else {
            serde_json::to_vec(&obj)
        };
        let encoded = encoded.map_err(|e| ApiError::internal(e.to_string()))?;
        let packed = self
            .packers
            .entry(def.store.clone())
            .or_default()
            .pack(&encoded);
        let prev = self
            .objects
            .entry(def.store.clone())
            .or_default()
            .insert((ns.to_string(), name.to_string()), packed.clone());
        let type_ = if created { "ADDED" } else { "MODIFIED" };
        self.record(def.store.clone(), (ns, name), type_, packed, prev, tx);
        self.gc_observe(&def.store, ns, name, &obj);
        Ok(obj)
    }

    /// A new resourceVersion for a write to `def`, counted.
    fn count_write(&mut self, def: &ResourceDef) {
        self.rv += 1;
        self.stats.writes += 1;
        *self
            .stats
            .writes_by_resource
            .entry(def.store.1.clone())
            .or_default() += 1;
    }

    /// Removes an object (a DELETED change); a namespace whose last object this was may go too.
    fn remove(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Option<Value> {
        let removed = self
            .objects
            .get_mut(&def.store)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.count_write(def);
        let bytes = removed.unpack();
        let mut v: Value = serde_json::from_slice(&bytes).ok()?;
        set_meta(&mut v, "resourceVersion", self.rv.to_string().into());
        let out = self
            .packers
            .entry(def.store.clone())
            .or_default()
            .pack(&serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec()));
        // The object as it was before is kept beside the change: a list at an earlier version
        // needs it.
        self.record(
            def.store.clone(),
            (ns, name),
            "DELETED",
            out,
            Some(removed),
            tx,
        );
        let uid = super::meta::meta_str(&v, "uid").unwrap_or_default();
        self.gc_forget(&def.store, ns, name, &uid);
        if def.namespaced {
            self.finish_namespace_if_empty(ns, tx);
        }
        if !self.terminating_crds.is_empty() && self.terminating_crds.contains(&def.store) {
            self.finish_crd_if_empty(&def.store, tx);
        }
        if def.is_events_k8s_io() {
            Some(event_view::to_new(&v))
        } else {
            Some(v)
        }
    }
}

/// The stored bytes in the resource's view.
fn view(def: &ResourceDef, bytes: &Bytes) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(if def.is_events_k8s_io() {
        event_view::to_new(&v)
    } else {
        v
    })
}
