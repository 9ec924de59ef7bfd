//! Admission: the write pipeline every create, update and patch passes before it is stored, as
//! named steps: identity -> names -> the part written -> system metadata -> labels, annotations
//! and finalizers -> RBAC escalation -> defaults, pruning,
//! schema and CEL -> CRD checks -> generation -> no-op detection -> managedFields.

mod cel;
pub mod names;
pub mod schema;

use super::error::ApiError;
use super::escalation::{Escalation, RbacWrite};
use super::meta::{finalizers, meta_str, now_string, set_meta};
use super::patch::apply::update_managed_fields;
use super::resources::{self, ResourceDef};
use schema::Cause;
use serde_json::{Value, json};

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
    /// The requester and the RBAC objects, for a write of an RBAC kind by a user subject to
    /// RBAC (None for the admin and other kinds).
    pub escalation: Option<Escalation>,
}

/// What admission makes of a write.
pub enum Admitted {
    /// The write changes nothing: the current object stands, and nothing is bumped or told.
    Unchanged {
        current: Value,
        warnings: Vec<String>,
    },
    /// The object to store; `created` when there was none.
    Changed {
        object: Value,
        created: bool,
        warnings: Vec<String>,
    },
}

/// The write pipeline: `obj` as the client sent it (already patched, for a patch), `old` the
/// stored object in the resource's view (None on create). The namespace checks that need the
/// store come before, in the store.
#[allow(clippy::too_many_arguments)]
pub fn admit(
    def: &ResourceDef,
    ns: &str,
    name: &str,
    mut obj: Value,
    old: Option<Value>,
    part: Part,
    opts: &WriteOpts,
) -> Result<Admitted, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    set_identity(def, ns, name, &mut obj)?;
    names::validate_object_name(def, name)?;
    let mut obj = scope_to_part(def, name, obj, old.as_ref(), part)?;
    let now = now_string();
    set_system_metadata(def, name, &mut obj, old.as_ref(), &now)?;
    check_metadata(def, name, &obj)?;
    check_rbac_escalation(def, ns, name, &obj, old.as_ref(), opts)?;
    let warnings = check_schema(def, name, &mut obj, old.as_ref(), opts)?;
    check_crd(def, name, &mut obj, part, &now)?;
    bump_generation(def, &mut obj, old.as_ref());
    match old {
        // A write that changes nothing bumps nothing and tells no watcher.
        Some(current) if same_ignoring_bookkeeping(&current, &obj) => {
            Ok(Admitted::Unchanged { current, warnings })
        }
        old => {
            update_managed_fields(
                &mut obj,
                old.as_ref(),
                opts,
                part,
                def.schema.as_ref(),
                &now,
            );
            Ok(Admitted::Changed {
                object: obj,
                created: old.is_none(),
                warnings,
            })
        }
    }
}

/// apiVersion, kind, name and namespace: from the URL, which the body may repeat but not
/// contradict.
fn set_identity(def: &ResourceDef, ns: &str, name: &str, obj: &mut Value) -> Result<(), ApiError> {
    // apiVersion/kind: several clients leave them out (core/v1 Events in particular).
    obj["apiVersion"] = def.api_version().into();
    obj["kind"] = def.kind.clone().into();
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if let Some(body_name) = meta_str(obj, "name")
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    set_meta(obj, "name", name.into());
    if def.namespaced {
        if let Some(body_ns) = meta_str(obj, "namespace")
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        set_meta(obj, "namespace", ns.into());
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Ok(())
}

/// What each part of the object may change: a status write changes only the status, a main
/// write of a resource with a status subresource leaves the status alone.
fn scope_to_part(
    def: &ResourceDef,
    name: &str,
    mut obj: Value,
    old: Option<&Value>,
    part: Part,
) -> Result<Value, ApiError> {
    match (old, part) {
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
            let keep = old.and_then(|o| o.get("status")).cloned();
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
    Ok(obj)
}

/// System metadata the client cannot set: kept from the stored object on update, made on create.
fn set_system_metadata(
    def: &ResourceDef,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
    now: &str,
) -> Result<(), ApiError> {
    let Some(old) = old else {
        set_meta(obj, "uid", uuid::Uuid::new_v4().to_string().into());
        set_meta(obj, "creationTimestamp", now.into());
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("resourceVersion");
        }
        if def.tracks_generation {
            set_meta(obj, "generation", 1.into());
        }
        return Ok(());
    };
    for key in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
    ] {
        match old.pointer(&format!("/metadata/{key}")) {
            Some(v) => set_meta(obj, key, v.clone()),
            None => {
                if let Some(m) = obj["metadata"].as_object_mut() {
                    m.remove(key);
                }
            }
        }
    }
    // Once deletion started, finalizers may only be removed (`ValidateNoNewFinalizers`: 422).
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let old_f = finalizers(old);
        let mut added: Vec<String> = finalizers(obj)
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        added.sort();
        added.dedup();
        if !added.is_empty() {
            let quoted: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
            let cause = Cause {
                reason: "FieldValueForbidden".into(),
                message: format!(
                    "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
                field: "metadata.finalizers".into(),
            };
            return Err(ApiError::invalid(&def.qualified_kind(), name, vec![cause]));
        }
    }
    Ok(())
}

/// Labels, annotations and finalizers: the checks of the real server's `ValidateObjectMeta`.
fn check_metadata(def: &ResourceDef, name: &str, obj: &Value) -> Result<(), ApiError> {
    let causes = names::metadata_causes(obj.get("metadata").unwrap_or(&Value::Null));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.qualified_kind(), name, causes))
    }
}

/// No one grants through RBAC what they do not hold (see [`crate::apiserver::escalation`]).
fn check_rbac_escalation(
    def: &ResourceDef,
    ns: &str,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
    opts: &WriteOpts,
) -> Result<(), ApiError> {
    let Some(escalation) = &opts.escalation else {
        return Ok(());
    };
    if def.group != "rbac.authorization.k8s.io" {
        return Ok(());
    }
    escalation.check(&RbacWrite {
        resource: &def.plural,
        namespace: ns,
        name,
        object: obj,
        old,
    })
}

/// Admission for custom resources: defaults, unknown fields (pruned, and a warning or with
/// `fieldValidation=Strict` an error), schema and CEL rules. Returns the warnings.
fn check_schema(
    def: &ResourceDef,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOpts,
) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    let Some(schema) = &def.schema else {
        return Ok(warnings);
    };
    schema::apply_defaults(schema, obj);
    let unknown = schema::prune_unknown(schema, obj);
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
    let causes = schema::validate(schema, obj, old);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.qualified_kind(), name, causes));
    }
    Ok(warnings)
}

/// A CustomResourceDefinition must describe servable resources and be named
/// `<plural>.<group>`; its status is the server's.
fn check_crd(
    def: &ResourceDef,
    name: &str,
    obj: &mut Value,
    part: Part,
    now: &str,
) -> Result<(), ApiError> {
    if !def.is_crd() {
        return Ok(());
    }
    let defs = resources::from_crd(obj).map_err(|m| {
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
        obj["status"] = resources::crd_status(obj, now);
    }
    Ok(())
}

/// generation follows everything but metadata and status.
fn bump_generation(def: &ResourceDef, obj: &mut Value, old: Option<&Value>) {
    if let Some(old) = old
        && def.tracks_generation
        && spec_differs(old, obj)
    {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        set_meta(obj, "generation", (g + 1).into());
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
