//! Writes: create, update, read-modify-write (patch, apply) and delete. Each takes the store's
//! lock once, has the write admitted (see [`crate::apiserver::admission`]) and stores the result.

use super::gc::{DeleteOptions, Propagation, finalizers_for_deletion};
use super::{Change, State, Store};
use crate::apiserver::admission::schema;
use crate::apiserver::admission::{self, Admitted, Part, WriteOpts};
use crate::apiserver::defaults;
use crate::apiserver::error::ApiError;
use crate::apiserver::meta::{finalizers, meta_str, now_string, set_meta};
use crate::apiserver::resources::ResourceDef;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The answer to a successful write.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

impl Store {
    pub(super) fn create_by_path(
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

    /// DELETE, as the generic registry does it: the propagation policy becomes the `orphan` or
    /// `foregroundDeletion` finalizer; an object left with finalizers is marked for deletion
    /// (again deleting one already marked may only change those two), one without goes now. A
    /// namespace or a CRD is Terminating until its contents are gone.
    pub fn delete(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let mut st = self.lock();
        let Some(old) = st.current(def, ns, name)? else {
            return Err(ApiError::not_found(&def.qualified_resource(), name));
        };
        let uid = opts.precondition_uid.as_deref();
        check_precondition(def, ns, name, &old, "UID", "uid", uid)?;
        let rv = opts.precondition_rv.as_deref();
        check_precondition(
            def,
            ns,
            name,
            &old,
            "ResourceVersion",
            "resourceVersion",
            rv,
        )?;
        if opts.dry_run {
            return Ok(Deleted::kept(old));
        }
        if def.is_crd() {
            return st
                .terminate_crd(def, name, old, &self.tx)
                .map(Deleted::kept);
        }
        if def.is_namespace() && finalizers(&old).is_empty() {
            return st
                .terminate_namespace(def, ns, name, old, &self.tx)
                .map(Deleted::kept);
        }
        st.delete_with_options(def, ns, name, old, opts, &self.tx)
    }
}

/// The answer to a DELETE: the object (as deleted, or as marked), and whether it is gone.
#[derive(Debug)]
pub struct Deleted {
    pub object: Value,
    pub removed: bool,
}

impl Deleted {
    fn kept(object: Value) -> Self {
        Self {
            object,
            removed: false,
        }
    }
}

impl State {
    /// The deletion of an ordinary object: its finalizers as the options make them, then
    /// marked (or left as it is, when nothing changes) or removed.
    fn delete_with_options(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: Value,
        opts: &DeleteOptions,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Result<Deleted, ApiError> {
        let wanted = finalizers_for_deletion(def, &old, opts);
        if wanted.is_empty() {
            let removed = self.remove(def, ns, name, tx);
            return Ok(Deleted {
                object: removed.unwrap_or(old),
                removed: true,
            });
        }
        let marked = old.pointer("/metadata/deletionTimestamp").is_some();
        if marked && wanted == finalizers(&old) {
            return Ok(Deleted::kept(old));
        }
        let mut new = old;
        set_meta(&mut new, "finalizers", json!(wanted));
        if !marked {
            mark_for_deletion(&mut new);
        }
        self.commit(def, ns, name, new, false, tx)
            .map(Deleted::kept)
    }
}

impl State {
    /// The shared write path of create, update and patch: the namespace must take new objects,
    /// admission makes the object, and the store keeps it (or, dry-run, only answers it).
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
        old: Option<Value>,
        part: Part,
        opts: &WriteOpts,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Result<Written, ApiError> {
        if old.is_none() {
            if def.namespaced {
                self.check_namespace_open(def, ns, name)?;
            }
            self.check_crd_open(def)?;
        }
        let obj = drop_empty_metadata(fold_secret_string_data(def, obj));
        let obj = namespace_defaults(def, name, obj);
        let obj = self.kind_defaults(def, ns, name, obj, old.as_ref(), part)?;
        let (mut obj, created, warnings) =
            match admission::admit(def, ns, name, obj, old, part, opts)? {
                Admitted::Unchanged { current, warnings } => {
                    self.stats.noop_writes += 1;
                    return Ok(Written {
                        object: current,
                        created: false,
                        warnings,
                    });
                }
                Admitted::Changed {
                    object,
                    created,
                    warnings,
                } => (object, created, warnings),
            };
        namespace_phase(def, &mut obj);
        defaults::initial_status(def, &mut obj);
        if opts.dry_run {
            if let Some(m) = obj["metadata"].as_object_mut()
                && created
            {
                m.remove("uid");
            }
            return Ok(Written {
                object: obj,
                created,
                warnings,
            });
        }
        if let Some(m) = &opts.field_manager {
            *self.stats.writes_by_manager.entry(m.clone()).or_default() += 1;
        }
        let finished =
            obj.pointer("/metadata/deletionTimestamp").is_some() && finalizers(&obj).is_empty();
        if finished {
            // The last finalizer is gone: the object goes.
            let removed = self.remove(def, ns, name, tx);
            if def.is_crd() {
                self.unregister_crd(&obj, tx);
            }
            return Ok(Written {
                object: removed.unwrap_or(obj),
                created: false,
                warnings,
            });
        }
        let object = self.commit(def, ns, name, obj, created, tx)?;
        if def.is_crd() {
            self.register_crd(&object);
        }
        Ok(Written {
            object,
            created,
            warnings,
        })
    }
}

impl State {
    /// The defaults of the kind (see [`crate::apiserver::defaults`]) on a write of the main
    /// resource, and a Service's cluster IPs and node ports, allocated among the other
    /// Services' (a dry run allocates without holding, as the real server's does).
    fn kind_defaults(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut obj: Value,
        old: Option<&Value>,
        part: Part,
    ) -> Result<Value, ApiError> {
        if part != Part::Main {
            return Ok(obj);
        }
        defaults::apply(def, &mut obj);
        if def.group.is_empty() && def.kind == "Service" {
            let mut taken = defaults::service::Taken::default();
            if let Some(services) = self.objects.get(&def.store) {
                for ((n_ns, n_name), packed) in services {
                    if (n_ns.as_str(), n_name.as_str()) == (ns, name) {
                        continue;
                    }
                    if let Ok(svc) = serde_json::from_slice::<Value>(&packed.unpack()) {
                        taken.add(&svc);
                    }
                }
            }
            defaults::service::allocate(name, &mut obj, old, &taken)?;
        }
        Ok(obj)
    }
}

impl State {
    /// Deletes an object as a controller cascading a deletion does (the namespace controller
    /// with the Background policy, a terminating CRD with none): through the same path as a
    /// DELETE, so one without finalizers goes now and one with finalizers is marked once.
    pub(super) fn delete_as_controller(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        propagation: Option<Propagation>,
        tx: &broadcast::Sender<Arc<Change>>,
    ) {
        let Ok(Some(obj)) = self.current(def, ns, name) else {
            return;
        };
        let opts = DeleteOptions {
            propagation,
            ..DeleteOptions::default()
        };
        let _ = self.delete_with_options(def, ns, name, obj, &opts, tx);
    }
}

/// What the real server sets on every Namespace: the immutable label
/// `kubernetes.io/metadata.name` (selectors pick namespaces by name with it).
fn namespace_defaults(def: &ResourceDef, name: &str, mut obj: Value) -> Value {
    if !(def.group.is_empty() && def.plural == "namespaces") {
        return obj;
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(
                "kubernetes.io/metadata.name".into(),
                Value::String(name.to_string()),
            );
        }
    }
    obj
}

/// A Namespace without a phase (a new one: its status is the server's) is Active.
fn namespace_phase(def: &ResourceDef, obj: &mut Value) {
    if def.group.is_empty() && def.plural == "namespaces" && obj.pointer("/status/phase").is_none()
    {
        obj["status"]["phase"] = Value::String("Active".into());
    }
}

/// Empty `labels`, `annotations`, `finalizers` and `ownerReferences` are not kept, as the real
/// server's omitempty drops them: removing the last label leaves no `labels: {}`, and `kubectl
/// diff` of an unchanged manifest shows nothing.
fn drop_empty_metadata(mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
            let empty = match meta.get(key) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(key);
            }
        }
    }
    obj
}

/// A Secret's `stringData` is write-only, as on the real server: merged into `data` (base64,
/// overriding the same keys) on every write, never stored.
fn fold_secret_string_data(def: &ResourceDef, mut obj: Value) -> Value {
    use base64::Engine;
    if !(def.group.is_empty() && def.plural == "secrets") {
        return obj;
    }
    let Some(string_data) = obj.as_object_mut().and_then(|o| o.remove("stringData")) else {
        return obj;
    };
    let Some(strings) = string_data.as_object() else {
        return obj;
    };
    if !obj["data"].is_object() {
        obj["data"] = Value::Object(Default::default());
    }
    if let Some(data) = obj["data"].as_object_mut() {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            let encoded = base64::engine::general_purpose::STANDARD.encode(text);
            data.insert(k.clone(), Value::String(encoded));
        }
    }
    obj
}

/// Marks an object with finalizers for deletion (its finalizers then only go).
fn mark_for_deletion(obj: &mut Value) {
    set_meta(obj, "deletionTimestamp", now_string().into());
    set_meta(obj, "deletionGracePeriodSeconds", 0.into());
    // As the real store does when deletion starts: controllers filtering on generation see it.
    if let Some(g) = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .filter(|g| *g > 0)
    {
        set_meta(obj, "generation", (g + 1).into());
    }
}

/// A delete's precondition on `uid` or `resourceVersion`: 409 Conflict worded as the real
/// server's storage error (`Preconditions.Check`), the namespace registry's plainer one for
/// namespaces.
fn check_precondition(
    def: &ResourceDef,
    ns: &str,
    name: &str,
    old: &Value,
    label: &str,
    field: &str,
    wanted: Option<&str>,
) -> Result<(), ApiError> {
    let Some(wanted) = wanted else {
        return Ok(());
    };
    let actual = meta_str(old, field).unwrap_or_default();
    if actual == wanted {
        return Ok(());
    }
    let failed = format!(
        "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"
    );
    let reason = if def.is_namespace() {
        failed
    } else {
        format!(
            "StorageError: invalid object, Code: 4, Key: {}, ResourceVersion: 0, AdditionalErrorMsg: {failed}",
            registry_key(def, ns, name)
        )
    };
    Err(ApiError::conflict_because(
        &def.qualified_resource(),
        name,
        &reason,
    ))
}

/// The object's etcd key on a real server: `/registry/<group>/<plural>/...` for custom
/// resources, `/registry/<plural>/...` for the built-in kinds.
fn registry_key(def: &ResourceDef, ns: &str, name: &str) -> String {
    let prefix = if def.schema.is_some() {
        format!("/registry/{}/{}", def.group, def.plural)
    } else {
        format!("/registry/{}", def.plural)
    };
    if ns.is_empty() {
        format!("{prefix}/{name}")
    } else {
        format!("{prefix}/{ns}/{name}")
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
