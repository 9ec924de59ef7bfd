//! The object store: every object as compressed JSON ([`Packed`]), one resourceVersion
//! counter, a bounded change history for watches, and the write pipeline (admission, generation, no-op detection).

use super::admission::names;
use super::error::ApiError;
use super::packed::{Packed, Packer};
use super::patch;
use super::resources::{self, ResourceDef, StoreKey, event_view};
use super::schema;
use super::selector::{FieldSelector, LabelSelector, field_value};
use bytes::Bytes;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// A page of a list: objects, the list resourceVersion, and the key to continue after.
pub type Page = (Vec<Value>, u64, Option<(String, String)>);

/// One change, as watches see it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub type_: &'static str,
    pub store: StoreKey,
    pub namespace: String,
    /// The object as stored (compressed: the history holds thousands of changes).
    pub object: Packed,
    /// The version this change replaced (for MODIFIED), so selector watches can tell an object
    /// entering or leaving their selection.
    pub prev: Option<Packed>,
}

/// Which part of an object a write addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

impl Part {
    /// The subresource as managedFields and RBAC name it ("" for the main resource).
    pub fn subresource(self) -> &'static str {
        match self {
            Part::Main => "",
            Part::Status => "status",
        }
    }
}

/// Options every write carries.
#[derive(Clone, Debug, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields are an error instead of a warning.
    pub strict: bool,
    pub field_manager: Option<String>,
    /// "Update" or "Apply" (for managedFields).
    pub operation: &'static str,
    /// Field set an Apply owns (managedFields fieldsV1), when `operation == "Apply"`.
    pub applied_fields: Option<Value>,
}

/// The answer to a successful write.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

/// Selection for lists and watches.
#[derive(Debug, Default)]
pub struct Selection {
    pub namespace: Option<String>,
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Selection {
    /// The event type a watch with this selection reports for a change, if any: an object that
    /// enters the selection is ADDED, one that leaves it is DELETED, as the real server does.
    pub fn event_for(&self, c: &Change, def: &ResourceDef) -> Option<&'static str> {
        let now = self.matches(&c.namespace, &c.object, def);
        if c.type_ != "MODIFIED" || (self.labels.is_none() && self.fields.is_none()) {
            return now.then_some(c.type_);
        }
        let before = c
            .prev
            .as_ref()
            .is_some_and(|p| self.matches(&c.namespace, p, def));
        match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        }
    }

    /// Whether a stored object is selected (unpacked only when a selector needs its fields).
    pub fn matches(&self, namespace: &str, object: &Packed, def: &ResourceDef) -> bool {
        if let Some(ns) = &self.namespace
            && ns != namespace
        {
            return false;
        }
        if self.labels.is_none() && self.fields.is_none() {
            return true;
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(&object.unpack()) else {
            return false;
        };
        if def.is_events_k8s_io() {
            v = event_view::to_new(&v);
        }
        if let Some(l) = &self.labels {
            let empty = Map::new();
            let labels = v
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            if !l.matches(labels) {
                return false;
            }
        }
        if let Some(f) = &self.fields
            && !f.matches(|path| field_value(&v, path))
        {
            return false;
        }
        true
    }
}

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
    stats: Stats,
}

/// The store. Cheap to share; every operation takes one short lock.
pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Change>>,
}

const BOOT_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

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
                stats: Stats::default(),
            }),
            tx,
        };
        for ns in BOOT_NAMESPACES {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            // Cannot fail: the namespace resource is built in and the names are valid.
            let _ = store.create_by_path("", "v1", "namespaces", None, obj, &WriteOpts::default());
        }
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
    pub fn rbac_objects(&self) -> super::rbac::RbacObjects {
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
        super::rbac::RbacObjects {
            roles: parsed.next().unwrap_or_default(),
            cluster_roles: parsed.next().unwrap_or_default(),
            role_bindings: parsed.next().unwrap_or_default(),
            cluster_role_bindings: parsed.next().unwrap_or_default(),
        }
    }

    /// Every stored object with its store, as one JSON document (for `up --state`).
    pub fn snapshot(&self) -> Result<Vec<u8>, serde_json::Error> {
        // Copy the (shared) bytes under the lock; serialise after releasing it.
        let (rv, copied): (u64, Vec<(StoreKey, String, Packed)>) = {
            let st = self.lock();
            let copied = st
                .objects
                .iter()
                .flat_map(|(key, map)| {
                    map.iter()
                        .map(move |((ns, _), bytes)| (key.clone(), ns.clone(), bytes.clone()))
                })
                .collect();
            (st.rv, copied)
        };
        let mut objects = Vec::with_capacity(copied.len());
        for ((group, plural), ns, bytes) in copied {
            let object: Value = serde_json::from_slice(&bytes.unpack())?;
            objects.push(
                json!({"group": group, "resource": plural, "namespace": ns, "object": object}),
            );
        }
        serde_json::to_vec(
            &json!({"kind": "CspOperatorState", "version": 1, "resourceVersion": rv, "objects": objects}),
        )
    }

    /// Loads a snapshot into an empty store (CRDs first, so their resources are served).
    pub fn restore(&self, bytes: &[u8]) -> Result<usize, String> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        if doc.get("kind").and_then(Value::as_str) != Some("CspOperatorState") {
            return Err("not a csp-operator state file (kind CspOperatorState missing)".into());
        }
        let rv = doc
            .get("resourceVersion")
            .and_then(Value::as_u64)
            .ok_or("resourceVersion missing")?;
        let objects = doc
            .get("objects")
            .and_then(Value::as_array)
            .ok_or("objects missing")?;
        let mut st = self.lock();
        let mut loaded = 0;
        for pass in [true, false] {
            for (i, o) in objects.iter().enumerate() {
                let field = |k: &str| {
                    o.get(k)
                        .and_then(Value::as_str)
                        .map(String::from)
                        .ok_or_else(|| format!("objects[{i}].{k} missing"))
                };
                let (group, resource, ns) =
                    (field("group")?, field("resource")?, field("namespace")?);
                let is_crd =
                    group == "apiextensions.k8s.io" && resource == "customresourcedefinitions";
                if is_crd != pass {
                    continue;
                }
                let object = o
                    .get("object")
                    .ok_or_else(|| format!("objects[{i}].object missing"))?;
                let name =
                    meta_str(object, "name").ok_or_else(|| format!("objects[{i}] has no name"))?;
                let json = serde_json::to_vec(object).map_err(|e| e.to_string())?;
                let key = (group, resource);
                let bytes = st.packers.entry(key.clone()).or_default().pack(&json);
                st.objects.entry(key).or_default().insert((ns, name), bytes);
                if is_crd {
                    st.register_crd(object);
                }
                loaded += 1;
            }
        }
        st.rv = st.rv.max(rv);
        st.horizon = st.rv;
        Ok(loaded)
    }

    /// Deletes Events last seen before `cutoff` (the real server keeps them for an hour);
    /// returns how many went.
    pub fn expire_events(&self, cutoff: Timestamp) -> usize {
        let mut st = self.lock();
        let Some(def) = st
            .resources
            .iter()
            .find(|r| r.group.is_empty() && r.plural == "events")
            .cloned()
        else {
            return 0;
        };
        let stale: Vec<(String, String)> = st
            .objects
            .get(&def.store)
            .map(|m| {
                m.iter()
                    .filter(|(_, b)| {
                        serde_json::from_slice::<Value>(&b.unpack())
                            .map(|v| last_seen(&v).is_some_and(|t| t < cutoff))
                            .unwrap_or(false)
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for (ns, name) in &stale {
            st.remove(&def, ns, name, &self.tx);
        }
        stale.len()
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

    /// A receiver of every change from now on.
    pub fn changes(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
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

    /// A page of objects (in the resource's view), the list resourceVersion, and the continue key.
    pub fn list(
        &self,
        def: &ResourceDef,
        sel: &Selection,
        limit: Option<usize>,
        continue_after: Option<(String, String)>,
    ) -> Result<Page, ApiError> {
        let st = self.lock();
        let rv = st.rv;
        let mut next = None;
        let mut selected: Vec<Packed> = Vec::new();
        if let Some(map) = st.objects.get(&def.store) {
            let iter: Box<dyn Iterator<Item = (&(String, String), &Packed)>> = match &continue_after
            {
                Some(k) => Box::new(map.range::<(String, String), _>((
                    std::ops::Bound::Excluded(k.clone()),
                    std::ops::Bound::Unbounded,
                ))),
                None => Box::new(map.iter()),
            };
            let mut last: Option<&(String, String)> = None;
            for (k, packed) in iter {
                if !sel.matches(&k.0, packed, def) {
                    continue;
                }
                if let Some(l) = limit
                    && selected.len() == l
                {
                    next = last.cloned();
                    break;
                }
                selected.push(packed.clone());
                last = Some(k);
            }
        }
        drop(st);
        let items = selected
            .iter()
            .map(|b| view(def, &b.unpack()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, rv, next))
    }

    /// Starts a watch: the events to replay (or the current objects as ADDED when `from` is
    /// None), and the receiver of live changes, taken atomically so nothing falls in between.
    #[allow(clippy::type_complexity)]
    pub fn watch(
        &self,
        def: &ResourceDef,
        sel: &Selection,
        from: Option<u64>,
    ) -> Result<(Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>, u64), ApiError> {
        let st = self.lock();
        let rx = self.tx.subscribe();
        let initial = match from {
            None => st
                .objects
                .get(&def.store)
                .map(|m| {
                    m.iter()
                        .filter(|(k, b)| sel.matches(&k.0, b, def))
                        .map(|(k, b)| {
                            Arc::new(Change {
                                rv: st.rv,
                                type_: "ADDED",
                                store: def.store.clone(),
                                namespace: k.0.clone(),
                                object: b.clone(),
                                prev: None,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(rv) => {
                if rv < st.horizon {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        st.horizon
                    )));
                }
                st.history
                    .iter()
                    .filter(|c| c.rv > rv && c.store == def.store)
                    .cloned()
                    .collect()
            }
        };
        Ok((initial, rx, st.rv))
    }

    fn create_by_path(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        ns: Option<&str>,
        obj: Value,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        let def = self
            .resolve(group, version, plural)
            .ok_or_else(|| ApiError::not_found(plural, ""))?;
        self.create(&def, ns.unwrap_or(""), obj, opts)
    }

    /// POST: create (with `generateName` when no name is given).
    pub fn create(
        &self,
        def: &ResourceDef,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let mut st = self.lock();
        let has_name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !has_name {
            let prefix = obj
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ApiError::invalid(
                        &def.qualified_kind(),
                        "",
                        vec![schema::Cause {
                            reason: "FieldValueRequired".into(),
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        }],
                    )
                })?
                .to_string();
            // Retried server-side on the (unlikely) collision.
            let name = loop {
                let candidate = format!("{prefix}{}", random_suffix());
                if !st.exists(def, ns, &candidate) {
                    break candidate;
                }
            };
            set_meta(&mut obj, "name", name.into());
        }
        let name = meta_str(&obj, "name").unwrap_or_default();
        if st.exists(def, ns, &name) {
            return Err(ApiError::already_exists(&def.qualified_resource(), &name));
        }
        st.write(def, ns, &name, obj, None, Part::Main, opts, &self.tx)
    }

    /// PUT of the main resource or its status.
    pub fn update(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
        part: Part,
        opts: &WriteOpts,
    ) -> Result<Written, ApiError> {
        let mut st = self.lock();
        let old = st.current(def, ns, name)?;
        let Some(old) = old else {
            // PUT creates when absent only for kinds that allow it (not custom resources).
            if part == Part::Main && def.schema.is_none() {
                drop(st);
                return self.create(def, ns, obj, opts);
            }
            return Err(ApiError::not_found(&def.qualified_resource(), name));
        };
        if let Some(rv) = meta_str(&obj, "resourceVersion")
            && Some(rv.as_str()) != meta_str(&old, "resourceVersion").as_deref()
        {
            return Err(ApiError::conflict(&def.qualified_resource(), name));
        }
        st.write(def, ns, name, obj, Some(old), part, opts, &self.tx)
    }

    /// Read-modify-write under one lock: `f` gets the current object (None when absent) and
    /// returns the object to write.
    #[allow(clippy::too_many_arguments)]
    pub fn modify(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        part: Part,
        create_if_absent: bool,
        opts: &WriteOpts,
        f: impl FnOnce(Option<&Value>) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        let mut st = self.lock();
        let old = st.current(def, ns, name)?;
        if old.is_none() && !(create_if_absent && part == Part::Main) {
            return Err(ApiError::not_found(&def.qualified_resource(), name));
        }
        let mut new = f(old.as_ref())?;
        if let Some(old_rv) = old.as_ref().and_then(|o| meta_str(o, "resourceVersion"))
            && let Some(rv) = meta_str(&new, "resourceVersion")
            && rv != old_rv
        {
            return Err(ApiError::conflict(&def.qualified_resource(), name));
        }
        if old.is_none() {
            set_meta(&mut new, "name", name.into());
        }
        st.write(def, ns, name, new, old, part, opts, &self.tx)
    }

    /// DELETE: with finalizers, mark for deletion; without, remove.
    pub fn delete(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        precondition_uid: Option<&str>,
        precondition_rv: Option<&str>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let Some(old) = st.current(def, ns, name)? else {
            return Err(ApiError::not_found(&def.qualified_resource(), name));
        };
        if let Some(uid) = precondition_uid
            && meta_str(&old, "uid").as_deref() != Some(uid)
        {
            return Err(ApiError::conflict(&def.qualified_resource(), name));
        }
        if let Some(rv) = precondition_rv
            && meta_str(&old, "resourceVersion").as_deref() != Some(rv)
        {
            return Err(ApiError::conflict(&def.qualified_resource(), name));
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if dry_run {
            return Ok(old);
        }
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(old);
            }
            let mut new = old.clone();
            set_meta(&mut new, "deletionTimestamp", now_string().into());
            set_meta(&mut new, "deletionGracePeriodSeconds", 0.into());
            let written = st.commit(def, ns, name, new, false, None, &self.tx)?;
            return Ok(written);
        }
        if def.group.is_empty() && def.plural == "namespaces" {
            // As the namespace controller: Terminating until its contents are gone, finalizers
            // of the contents honoured.
            if old.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(old);
            }
            let mut terminating = old.clone();
            set_meta(&mut terminating, "deletionTimestamp", now_string().into());
            terminating["status"] = json!({"phase": "Terminating"});
            let written = st.commit(def, ns, name, terminating, false, None, &self.tx)?;
            st.delete_namespace_contents(name, &self.tx);
            return Ok(written);
        }
        let deleted = st.remove(def, ns, name, &self.tx);
        if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
            st.unregister_crd(&old, &self.tx);
        }
        Ok(deleted.unwrap_or(old))
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

    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .get(&("".to_string(), "namespaces".to_string()))
            .is_some_and(|m| m.contains_key(&(String::new(), ns.to_string())))
    }

    /// The shared write pipeline for create, update and patch.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut obj: Value,
        old: Option<Value>,
        part: Part,
        opts: &WriteOpts,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Result<Written, ApiError> {
        if def.namespaced && old.is_none() && !self.namespace_exists(ns) {
            return Err(ApiError::not_found("namespaces", ns));
        }
        if def.namespaced && old.is_none() && self.namespace_terminating(ns) {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                def.qualified_resource()
            )));
        }
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        // apiVersion/kind: several clients leave them out (core/v1 Events in particular).
        obj["apiVersion"] = def.api_version().into();
        obj["kind"] = def.kind.clone().into();
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        if let Some(body_name) = meta_str(&obj, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        set_meta(&mut obj, "name", name.into());
        if def.namespaced {
            if let Some(body_ns) = meta_str(&obj, "namespace")
                && body_ns != ns
            {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            set_meta(&mut obj, "namespace", ns.into());
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        names::validate_object_name(def, name)?;

        // What each part of the object may change.
        match (&old, part) {
            (Some(old), Part::Status) => {
                let status = obj.get("status").cloned();
                let mut merged = old.clone();
                match status {
                    Some(s) if !s.is_null() => merged["status"] = s,
                    _ => {
                        if let Some(m) = merged.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
                obj = merged;
            }
            (None, Part::Status) => {
                return Err(ApiError::not_found(&def.qualified_resource(), name));
            }
            (old, Part::Main) if def.status_subresource => {
                let keep = old.as_ref().and_then(|o| o.get("status")).cloned();
                if let Some(m) = obj.as_object_mut() {
                    match keep {
                        Some(s) => {
                            m.insert("status".into(), s);
                        }
                        None => {
                            m.remove("status");
                        }
                    }
                }
            }
            _ => {}
        }
        if obj.get("status").is_some_and(Value::is_null)
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }

        // System metadata the client cannot set.
        let now = now_string();
        match &old {
            Some(old) => {
                for key in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "generation",
                ] {
                    match old.pointer(&format!("/metadata/{key}")) {
                        Some(v) => set_meta(&mut obj, key, v.clone()),
                        None => {
                            if let Some(m) = obj["metadata"].as_object_mut() {
                                m.remove(key);
                            }
                        }
                    }
                }
                // Once deletion started, finalizers may only be removed.
                if old.pointer("/metadata/deletionTimestamp").is_some() {
                    let old_f = finalizers(old);
                    let new_f = finalizers(&obj);
                    if new_f.iter().any(|f| !old_f.contains(f)) {
                        return Err(ApiError::forbidden(format!(
                            "{} \"{name}\" is being deleted: no new finalizers can be added",
                            def.qualified_resource()
                        )));
                    }
                }
            }
            None => {
                set_meta(&mut obj, "uid", uuid::Uuid::new_v4().to_string().into());
                set_meta(&mut obj, "creationTimestamp", now.clone().into());
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove("deletionTimestamp");
                    m.remove("resourceVersion");
                }
                if def.tracks_generation {
                    set_meta(&mut obj, "generation", 1.into());
                }
            }
        }

        // Admission for custom resources: defaults, unknown fields, schema and CEL rules.
        let mut warnings = Vec::new();
        if let Some(schema) = &def.schema {
            schema::apply_defaults(schema, &mut obj);
            let unknown = schema::prune_unknown(schema, &mut obj);
            if !unknown.is_empty() {
                let list = unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect::<Vec<_>>();
                if opts.strict {
                    return Err(ApiError::bad_request(format!(
                        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                        def.kind,
                        def.version,
                        def.kind,
                        list.join(", ")
                    )));
                }
                warnings.extend(list);
            }
            let causes = schema::validate(schema, &obj, old.as_ref());
            if !causes.is_empty() {
                return Err(ApiError::invalid(&def.qualified_kind(), name, causes));
            }
        }
        if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
            let defs = resources::from_crd(&obj).map_err(|m| {
                ApiError::invalid(
                    &def.qualified_kind(),
                    name,
                    vec![schema::Cause {
                        reason: "FieldValueRequired".into(),
                        message: m,
                        field: "spec".into(),
                    }],
                )
            })?;
            let expected = defs
                .first()
                .map(|d| format!("{}.{}", d.plural, d.group))
                .unwrap_or_default();
            if expected != name {
                return Err(ApiError::invalid(
                    &def.qualified_kind(),
                    name,
                    vec![schema::Cause {
                        reason: "FieldValueInvalid".into(),
                        message: format!(
                            "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                        ),
                        field: "metadata.name".into(),
                    }],
                ));
            }
            if part == Part::Main {
                obj["status"] = resources::crd_status(&obj, &now);
            }
        }

        // generation follows everything but metadata and status.
        if let Some(old) = &old
            && def.tracks_generation
            && spec_differs(old, &obj)
        {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut obj, "generation", (g + 1).into());
        }

        // A write that changes nothing bumps nothing and tells no watcher.
        if let Some(old) = &old
            && same_ignoring_bookkeeping(old, &obj)
        {
            self.stats.noop_writes += 1;
            return Ok(Written {
                object: old.clone(),
                created: false,
                warnings,
            });
        }

        patch::apply::update_managed_fields(&mut obj, old.as_ref(), opts, part, &now);
        if opts.dry_run {
            if let Some(m) = obj["metadata"].as_object_mut()
                && old.is_none()
            {
                m.remove("uid");
            }
            return Ok(Written {
                object: obj,
                created: old.is_none(),
                warnings,
            });
        }
        let created = old.is_none();
        if let Some(m) = &opts.field_manager {
            *self.stats.writes_by_manager.entry(m.clone()).or_default() += 1;
        }
        let is_crd =
            def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions";
        let finished =
            obj.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&obj).is_empty();
        if finished {
            // The last finalizer is gone: the object goes.
            let removed = self.remove(def, ns, name, tx);
            if is_crd {
                self.unregister_crd(&obj, tx);
            }
            return Ok(Written {
                object: removed.unwrap_or(obj),
                created: false,
                warnings,
            });
        }
        let object = self.commit(def, ns, name, obj, created, None, tx)?;
        if is_crd {
            self.register_crd(&object);
        }
        Ok(Written {
            object,
            created,
            warnings,
        })
    }

    /// Stores `obj` under a new resourceVersion and tells the watchers.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut obj: Value,
        created: bool,
        type_override: Option<&'static str>,
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
        let type_ = type_override.unwrap_or(if created { "ADDED" } else { "MODIFIED" });
        self.record(def.store.clone(), ns, type_, packed, prev, tx);
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

    fn record(
        &mut self,
        store: StoreKey,
        ns: &str,
        type_: &'static str,
        object: Packed,
        prev: Option<Packed>,
        tx: &broadcast::Sender<Arc<Change>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            type_,
            store,
            namespace: ns.to_string(),
            object,
            prev,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_cap {
            if let Some(c) = self.history.pop_front() {
                self.horizon = c.rv;
            }
        }
        // No receivers is fine.
        let _ = tx.send(change);
    }

    fn remove(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Option<Value> {
        let bytes = self
            .objects
            .get_mut(&def.store)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.count_write(def);
        let bytes = bytes.unpack();
        let mut v: Value = serde_json::from_slice(&bytes).ok()?;
        set_meta(&mut v, "resourceVersion", self.rv.to_string().into());
        let out = self
            .packers
            .entry(def.store.clone())
            .or_default()
            .pack(&serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec()));
        self.record(def.store.clone(), ns, "DELETED", out, None, tx);
        if def.namespaced {
            self.finish_namespace_if_empty(ns, tx);
        }
        if def.is_events_k8s_io() {
            Some(event_view::to_new(&v))
        } else {
            Some(v)
        }
    }

    /// Deletes everything in a terminating namespace: objects with finalizers are marked, the
    /// rest go; the namespace itself goes with its last object.
    fn delete_namespace_contents(&mut self, ns: &str, tx: &broadcast::Sender<Arc<Change>>) {
        let defs: Vec<Arc<ResourceDef>> = self
            .resources
            .iter()
            .filter(|r| r.namespaced)
            .cloned()
            .collect();
        let mut seen_stores = Vec::new();
        self.draining = Some(ns.to_string());
        for def in defs {
            // Two resources can share a store (the two Event APIs): visit it once.
            if seen_stores.contains(&def.store) {
                continue;
            }
            seen_stores.push(def.store.clone());
            let names: Vec<String> = self
                .objects
                .get(&def.store)
                .map(|m| {
                    m.keys()
                        .filter(|k| k.0 == ns)
                        .map(|k| k.1.clone())
                        .collect()
                })
                .unwrap_or_default();
            for n in names {
                let Ok(Some(obj)) = self.current(&def, ns, &n) else {
                    continue;
                };
                if finalizers(&obj).is_empty() {
                    self.remove(&def, ns, &n, tx);
                } else if obj.pointer("/metadata/deletionTimestamp").is_none() {
                    let mut marked = obj;
                    set_meta(&mut marked, "deletionTimestamp", now_string().into());
                    set_meta(&mut marked, "deletionGracePeriodSeconds", 0.into());
                    let _ = self.commit(&def, ns, &n, marked, false, None, tx);
                }
            }
        }
        self.draining = None;
        self.finish_namespace_if_empty(ns, tx);
    }

    fn namespace_terminating(&self, ns: &str) -> bool {
        self.objects
            .get(&("".to_string(), "namespaces".to_string()))
            .and_then(|m| m.get(&(String::new(), ns.to_string())))
            .and_then(|b| serde_json::from_slice::<Value>(&b.unpack()).ok())
            .is_some_and(|v| v.pointer("/metadata/deletionTimestamp").is_some())
    }

    /// Removes a terminating namespace once nothing is left in it.
    fn finish_namespace_if_empty(&mut self, ns: &str, tx: &broadcast::Sender<Arc<Change>>) {
        if ns.is_empty() || self.draining.as_deref() == Some(ns) || !self.namespace_terminating(ns)
        {
            return;
        }
        let empty = self.resources.iter().filter(|r| r.namespaced).all(|r| {
            self.objects
                .get(&r.store)
                .is_none_or(|m| !m.keys().any(|k| k.0 == ns))
        });
        if !empty {
            return;
        }
        if let Some(def) = self
            .resources
            .iter()
            .find(|r| r.group.is_empty() && r.plural == "namespaces")
            .cloned()
        {
            self.remove(&def, "", ns, tx);
        }
    }

    fn register_crd(&mut self, crd: &Value) {
        let Ok(defs) = resources::from_crd(crd) else {
            return;
        };
        for d in defs {
            self.resources.retain(|r| {
                !(r.group == d.group && r.version == d.version && r.plural == d.plural)
            });
            self.resources.push(Arc::new(d));
        }
    }

    fn unregister_crd(&mut self, crd: &Value, tx: &broadcast::Sender<Arc<Change>>) {
        let Ok(defs) = resources::from_crd(crd) else {
            return;
        };
        if let Some(first) = defs.first() {
            let keys: Vec<(String, String)> = self
                .objects
                .get(&first.store)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, name) in keys {
                self.remove(first, &ns, &name, tx);
            }
            self.objects.remove(&first.store);
            self.packers.remove(&first.store);
        }
        self.resources.retain(|r| {
            !defs
                .iter()
                .any(|d| d.group == r.group && d.plural == r.plural)
        });
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

/// The change's object in the watching resource's view, as JSON bytes.
pub fn change_bytes(def: &ResourceDef, change: &Change) -> Bytes {
    let object = change.object.unpack();
    if def.is_events_k8s_io() {
        serde_json::from_slice::<Value>(&object)
            .ok()
            .and_then(|v| serde_json::to_vec(&event_view::to_new(&v)).ok())
            .map(Bytes::from)
            .unwrap_or(object)
    } else {
        object
    }
}

/// Whether two objects differ outside metadata and status (what `generation` tracks).
fn spec_differs(a: &Value, b: &Value) -> bool {
    !same_except(a, b, &["metadata", "status"])
}

/// The top-level fields of `v` other than `skip`.
fn fields_except<'a>(v: &'a Value, skip: &[&str]) -> Vec<(&'a String, &'a Value)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

fn same_except(a: &Value, b: &Value, skip: &[&str]) -> bool {
    fields_except(a, skip) == fields_except(b, skip)
}

/// Whether two objects are equal but for resourceVersion and managedFields (a no-op write).
fn same_ignoring_bookkeeping(old: &Value, new: &Value) -> bool {
    let empty = Value::Null;
    same_except(old, new, &["metadata"])
        && same_except(
            old.get("metadata").unwrap_or(&empty),
            new.get("metadata").unwrap_or(&empty),
            &["resourceVersion", "managedFields"],
        )
}

/// When an Event (core/v1 shape) was last seen: the latest of its timestamps.
fn last_seen(event: &Value) -> Option<Timestamp> {
    [
        "/metadata/creationTimestamp",
        "/lastTimestamp",
        "/eventTime",
        "/series/lastObservedTime",
    ]
    .iter()
    .filter_map(|p| event.pointer(p).and_then(Value::as_str))
    .filter_map(|t| t.parse::<Timestamp>().ok())
    .max()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn meta_str(obj: &Value, key: &str) -> Option<String> {
    obj.get("metadata")?.get(key)?.as_str().map(String::from)
}

pub fn set_meta(obj: &mut Value, key: &str, v: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][key] = v;
}

pub fn now_string() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
