//! The store's side of garbage collection: how a DELETE's propagation policy becomes the
//! `orphan` / `foregroundDeletion` finalizers (the generic registry's
//! `deletionFinalizersForGarbageCollection`), the index of dependents by their owners' uids
//! (the collector's graph), and the queue of objects the collector must look at, fed by every
//! stored change. The collector itself is `crate::apiserver::collector`.

use super::{State, Store};
use crate::apiserver::error::ApiError;
use crate::apiserver::meta::{finalizers, meta_str};
use crate::apiserver::resources::{ResourceDef, StoreKey};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// The finalizer of a deletion that orphans the dependents (`metav1.FinalizerOrphanDependents`).
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer of a foreground deletion (`metav1.FinalizerDeleteDependents`).
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// `DeleteOptions.propagationPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl Propagation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Orphan" => Some(Self::Orphan),
            "Background" => Some(Self::Background),
            "Foreground" => Some(Self::Foreground),
            _ => None,
        }
    }
}

/// What a DELETE asks for, as the store uses it.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents` (never set together with `propagation`).
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

/// A kind's default policy when a DELETE names none (`DefaultGarbageCollectionPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DefaultPolicy {
    /// Events: the propagation policy is ignored, no finalizer is ever added.
    Unsupported,
    Orphan,
    Background,
}

fn default_policy(def: &ResourceDef) -> DefaultPolicy {
    match (def.group.as_str(), def.version.as_str(), def.kind.as_str()) {
        (_, _, "Event") if def.is_event() => DefaultPolicy::Unsupported,
        // core/v1 ReplicationControllers and batch/v1 Jobs orphan by default, for compatibility.
        ("", "v1", "ReplicationController") | ("batch", "v1", "Job") => DefaultPolicy::Orphan,
        _ => DefaultPolicy::Background,
    }
}

/// The finalizers an object gets when deleted with `opts` (`shouldOrphanDependents` and
/// `shouldDeleteDependents`): its own without the two GC finalizers, then `orphan` or
/// `foregroundDeletion` as the options, else its finalizers, else the kind's default say.
pub fn finalizers_for_deletion(
    def: &ResourceDef,
    obj: &Value,
    opts: &DeleteOptions,
) -> Vec<String> {
    let current = finalizers(obj);
    let default = default_policy(def);
    if default == DefaultPolicy::Unsupported {
        return current;
    }
    let explicit = match (opts.orphan_dependents, opts.propagation) {
        (Some(true), _) => Some(Propagation::Orphan),
        (Some(false), _) => Some(Propagation::Background),
        (None, p) => p,
    };
    let chosen = explicit.or_else(|| {
        current.iter().find_map(|f| match f.as_str() {
            ORPHAN_FINALIZER => Some(Propagation::Orphan),
            FOREGROUND_FINALIZER => Some(Propagation::Foreground),
            _ => None,
        })
    });
    let orphan = match chosen {
        Some(p) => p == Propagation::Orphan,
        None => default == DefaultPolicy::Orphan,
    };
    let foreground = chosen == Some(Propagation::Foreground);
    let mut out: Vec<String> = current
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if orphan {
        out.push(ORPHAN_FINALIZER.into());
    }
    if foreground {
        out.push(FOREGROUND_FINALIZER.into());
    }
    // An unchanged set keeps the object's own order.
    let same: HashSet<&String> = out.iter().collect();
    if same == current.iter().collect() {
        return current;
    }
    out
}

/// An object, as the collector names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub store: StoreKey,
    pub namespace: String,
    pub name: String,
}

/// One entry of `metadata.ownerReferences`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub block_owner_deletion: bool,
}

impl OwnerRef {
    /// The owner's API group (the part of apiVersion before the `/`; "" for core).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }
}

/// The owner references of an object.
pub fn owner_refs(obj: &Value) -> Vec<OwnerRef> {
    let Some(refs) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    refs.iter()
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            OwnerRef {
                api_version: s("apiVersion"),
                kind: s("kind"),
                name: s("name"),
                uid: s("uid"),
                block_owner_deletion: r.get("blockOwnerDeletion").and_then(Value::as_bool)
                    == Some(true),
            }
        })
        .collect()
}

/// The collector's graph and work queue, kept by the store as objects change.
#[derive(Default)]
pub struct GcIndex {
    /// The owner references of every object that has any.
    owners: HashMap<ObjectKey, Vec<OwnerRef>>,
    /// The objects whose owner references name each uid.
    dependents: HashMap<String, BTreeSet<ObjectKey>>,
    queue: VecDeque<ObjectKey>,
    queued: HashSet<ObjectKey>,
    wake: Arc<tokio::sync::Notify>,
}

impl GcIndex {
    fn enqueue(&mut self, key: ObjectKey) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
            self.wake.notify_one();
        }
    }

    /// Records `key`'s owner references; the old and the new owners are to be looked at.
    fn set_owners(&mut self, key: &ObjectKey, refs: Vec<OwnerRef>) -> Vec<OwnerRef> {
        let old = if refs.is_empty() {
            self.owners.remove(key).unwrap_or_default()
        } else {
            self.owners
                .insert(key.clone(), refs.clone())
                .unwrap_or_default()
        };
        for r in &old {
            if let Some(deps) = self.dependents.get_mut(&r.uid) {
                deps.remove(key);
                if deps.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
        }
        for r in &refs {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(key.clone());
        }
        old
    }
}

impl State {
    /// Called with every stored object: updates the graph and queues what the collector must
    /// look at (the object when its owners changed or a GC finalizer awaits it, and its owners).
    pub(super) fn gc_observe(&mut self, store: &StoreKey, ns: &str, name: &str, obj: &Value) {
        let refs = owner_refs(obj);
        let awaits_collector = obj.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(obj)
                .iter()
                .any(|f| f == ORPHAN_FINALIZER || f == FOREGROUND_FINALIZER);
        if refs.is_empty() && !awaits_collector && self.gc.owners.is_empty() {
            return;
        }
        let key = ObjectKey {
            store: store.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let changed = self.gc.owners.get(&key).map(Vec::as_slice).unwrap_or(&[]) != refs;
        if changed {
            let old = self.gc.set_owners(&key, refs.clone());
            for r in old.iter().chain(refs.iter()) {
                self.enqueue_owner(ns, r);
            }
            if !refs.is_empty() {
                self.gc.enqueue(key.clone());
            }
        }
        if awaits_collector {
            self.gc.enqueue(key);
        }
    }

    /// Called when an object is removed: its dependents and its owners are to be looked at.
    pub(super) fn gc_forget(&mut self, store: &StoreKey, ns: &str, name: &str, uid: &str) {
        let key = ObjectKey {
            store: store.clone(),
            namespace: ns.to_string(),
            name: name.to_string(),
        };
        let old = self.gc.set_owners(&key, Vec::new());
        for r in &old {
            self.enqueue_owner(ns, r);
        }
        let dependents: Vec<ObjectKey> = self
            .gc
            .dependents
            .get(uid)
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default();
        for d in dependents {
            self.gc.enqueue(d);
        }
    }

    fn enqueue_owner(&mut self, dependent_ns: &str, r: &OwnerRef) {
        if let Some((def, ns)) = self.owner_def(dependent_ns, r) {
            self.gc.enqueue(ObjectKey {
                store: def.store.clone(),
                namespace: ns,
                name: r.name.clone(),
            });
        }
    }

    /// The served resource of an owner reference's kind and the namespace its owner lives in
    /// (the dependent's for a namespaced kind, none for a cluster-scoped one).
    pub(super) fn owner_def(
        &self,
        dependent_ns: &str,
        r: &OwnerRef,
    ) -> Option<(Arc<ResourceDef>, String)> {
        let def = self
            .resources
            .iter()
            .find(|d| d.group == r.group() && d.kind == r.kind)?
            .clone();
        let ns = if def.namespaced {
            dependent_ns.to_string()
        } else {
            String::new()
        };
        Some((def, ns))
    }
}

/// What the collector reads of an object: the object, its resource, and its dependents.
pub struct GcView {
    pub def: Arc<ResourceDef>,
    pub object: Value,
    /// The objects whose owner references name this object's uid, with those references.
    pub dependents: Vec<(ObjectKey, Vec<OwnerRef>)>,
}

/// What an owner reference resolves to for the collector.
pub enum OwnerState {
    /// The owner's kind is not served: the reference cannot be judged (the real collector
    /// retries forever, and never deletes the dependent for it).
    UnknownKind,
    /// A cluster-scoped dependent names a namespaced owner: never resolvable.
    InvalidNamespace,
    /// No object of that name, or one with another uid: the owner is gone.
    Absent,
    /// The owner is being deleted in the foreground, waiting for its dependents.
    WaitingForDependents,
    /// The owner exists.
    Present,
}

impl Store {
    /// The notification the collector waits on (a permit is left when it is busy).
    pub fn gc_wake(&self) -> Arc<tokio::sync::Notify> {
        self.lock().gc.wake.clone()
    }

    /// The next object the collector must look at.
    pub fn gc_next(&self) -> Option<ObjectKey> {
        let mut st = self.lock();
        let key = st.gc.queue.pop_front()?;
        st.gc.queued.remove(&key);
        Some(key)
    }

    /// Queues every object with owner references or a GC finalizer (the collector's start,
    /// as after a restore).
    pub fn gc_enqueue_all(&self) {
        let mut st = self.lock();
        let keys: Vec<ObjectKey> = st.gc.owners.keys().cloned().collect();
        for k in keys {
            st.gc.enqueue(k);
        }
    }

    /// The object `key` names now, with its resource and dependents (None when it is gone).
    pub fn gc_view(&self, key: &ObjectKey) -> Option<GcView> {
        let st = self.lock();
        let def = st.resources.iter().find(|d| d.store == key.store)?.clone();
        let object = st.current(&def, &key.namespace, &key.name).ok()??;
        let uid = meta_str(&object, "uid").unwrap_or_default();
        let dependents = st
            .gc
            .dependents
            .get(&uid)
            .map(|deps| {
                deps.iter()
                    .map(|d| (d.clone(), st.gc.owners.get(d).cloned().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        Some(GcView {
            def,
            object,
            dependents,
        })
    }

    /// What the owner reference `r` of an object in `dependent_ns` resolves to now.
    pub fn gc_owner_state(&self, dependent_ns: &str, r: &OwnerRef) -> OwnerState {
        let st = self.lock();
        let Some((def, ns)) = st.owner_def(dependent_ns, r) else {
            return OwnerState::UnknownKind;
        };
        if dependent_ns.is_empty() && def.namespaced {
            return OwnerState::InvalidNamespace;
        }
        let owner = match st.current(&def, &ns, &r.name) {
            Ok(Some(o)) if meta_str(&o, "uid").as_deref() == Some(r.uid.as_str()) => o,
            _ => return OwnerState::Absent,
        };
        let waiting = owner.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&owner).iter().any(|f| f == FOREGROUND_FINALIZER);
        if waiting {
            OwnerState::WaitingForDependents
        } else {
            OwnerState::Present
        }
    }

    /// Whether the object `key` still has dependents (for a foreground cascade's order).
    pub fn gc_has_dependents(&self, uid: &str) -> bool {
        self.lock()
            .gc
            .dependents
            .get(uid)
            .is_some_and(|d| !d.is_empty())
    }
}

/// A DeleteOptions body or query that the real server refuses (`ValidateDeleteOptions`).
pub fn validate_delete_options(
    propagation: Option<&str>,
    orphan_dependents: Option<bool>,
) -> Result<Option<Propagation>, ApiError> {
    use crate::apiserver::admission::schema::Cause;
    let mut causes = Vec::new();
    if let (Some(p), Some(_)) = (propagation, orphan_dependents) {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: \"{p}\": orphanDependents and deletionPropagation cannot be both set"
            ),
            field: "propagationPolicy".into(),
        });
    }
    let parsed = propagation.map(|p| (p, Propagation::parse(p)));
    if let Some((p, None)) = parsed {
        causes.push(Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
            ),
            field: "propagationPolicy".into(),
        });
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("DeleteOptions.meta.k8s.io", "", causes));
    }
    Ok(parsed.and_then(|(_, p)| p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::builtins;
    use serde_json::json;

    fn def(group: &str, kind: &str) -> ResourceDef {
        let mut d = builtins()
            .into_iter()
            .find(|d| d.kind == "ConfigMap")
            .expect("configmaps");
        d.group = group.into();
        d.kind = kind.into();
        d
    }

    fn with(propagation: Option<Propagation>, orphan_dependents: Option<bool>) -> DeleteOptions {
        DeleteOptions {
            propagation,
            orphan_dependents,
            ..DeleteOptions::default()
        }
    }

    #[test]
    fn the_policy_becomes_finalizers() {
        let cm = def("", "ConfigMap");
        let plain = json!({"metadata": {"finalizers": ["example.com/x"]}});
        let f = |d: &ResourceDef, o: &Value, opts| finalizers_for_deletion(d, o, &opts);
        assert_eq!(f(&cm, &plain, with(None, None)), ["example.com/x"]);
        assert_eq!(
            f(&cm, &plain, with(Some(Propagation::Foreground), None)),
            ["example.com/x", FOREGROUND_FINALIZER]
        );
        assert_eq!(
            f(&cm, &plain, with(None, Some(true))),
            ["example.com/x", ORPHAN_FINALIZER]
        );
        // The object's own GC finalizer decides when the DELETE does not; an explicit policy
        // replaces it.
        let fg = json!({"metadata": {"finalizers": [FOREGROUND_FINALIZER]}});
        assert_eq!(f(&cm, &fg, with(None, None)), [FOREGROUND_FINALIZER]);
        assert!(f(&cm, &fg, with(Some(Propagation::Background), None)).is_empty());
        assert_eq!(
            f(&cm, &fg, with(Some(Propagation::Orphan), None)),
            [ORPHAN_FINALIZER]
        );
    }

    #[test]
    fn defaults_per_kind() {
        let none = json!({"metadata": {}});
        let opts = DeleteOptions::default();
        // batch/v1 Jobs and v1 ReplicationControllers orphan unless told otherwise.
        assert_eq!(
            finalizers_for_deletion(&def("batch", "Job"), &none, &opts),
            [ORPHAN_FINALIZER]
        );
        assert_eq!(
            finalizers_for_deletion(&def("", "ReplicationController"), &none, &opts),
            [ORPHAN_FINALIZER]
        );
        assert!(finalizers_for_deletion(&def("apps", "Deployment"), &none, &opts).is_empty());
        // Events ignore the policy.
        let events = builtins()
            .into_iter()
            .find(|d| d.kind == "Event")
            .expect("events");
        let foreground = with(Some(Propagation::Foreground), None);
        assert!(finalizers_for_deletion(&events, &none, &foreground).is_empty());
    }

    #[test]
    fn bad_options_are_refused() {
        let both = validate_delete_options(Some("Orphan"), Some(true));
        assert!(both.is_err_and(|e| e.message.contains("cannot be both set")));
        let bad = validate_delete_options(Some("Sideways"), None);
        assert!(bad.is_err_and(|e| e.code == 422 && e.message.contains("Unsupported value")));
        assert_eq!(
            validate_delete_options(Some("Foreground"), None).ok(),
            Some(Some(Propagation::Foreground))
        );
    }
}
