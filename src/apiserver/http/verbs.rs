//! The verbs on a resource: get, list, create, update, patch (merge, JSON, strategic and
//! server-side apply), delete and deletecollection; watch is in [`super::watch`]. Each reads
//! its request, calls the store and renders the answer (a Table when kubectl asks for one).

use super::route::Target;
use super::watch::watch;
use super::{Body, Req, json_response};
use crate::apiserver::Shared;
use crate::apiserver::admission::{Part, WriteOpts};
use crate::apiserver::error::ApiError;
use crate::apiserver::patch::{self, PatchKind, apply};
use crate::apiserver::protobuf;
use crate::apiserver::resources::ResourceDef;
use crate::apiserver::selector::{FieldSelector, LabelSelector, Selection};
use crate::apiserver::table;
use hyper::Response;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

/// Hands a resource request to its verb.
pub fn serve(
    shared: &Arc<Shared>,
    r: &Req,
    t: Target<'_>,
    part: Part,
) -> Result<Response<Body>, ApiError> {
    let (ns, name) = (t.ns.unwrap_or(""), t.name.unwrap_or(""));
    let def = &t.def;
    match t.verb {
        "get" => get(shared, def, ns, name, r),
        "list" => list(shared, def, t.ns, r),
        "watch" => watch(shared, t.def, t.ns, r),
        "create" => create(shared, def, ns, r),
        "update" => update(shared, def, ns, name, part, r),
        "patch" => patch_object(shared, def, ns, name, part, r),
        "delete" => delete(shared, def, ns, name, r),
        "deletecollection" => delete_collection(shared, def, t.ns, r),
        verb => Err(ApiError::method_not_allowed(verb.to_string())),
    }
}

fn get(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let obj = shared.store.get(def, ns, name)?;
    if r.wants_table() {
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return table_response(def, &[obj], &rv, None, r);
    }
    Ok(json_response(200, &obj, &[]))
}

fn list(
    shared: &Arc<Shared>,
    def: &ResourceDef,
    ns: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let sel = selection(r, ns)?;
    let limit = r
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let cont = match r.q("continue") {
        Some(c) if !c.is_empty() => Some(decode_continue(c)?),
        _ => None,
    };
    let (items, rv, next) = shared.store.list(def, &sel, limit, cont)?;
    let next = next.map(|k| encode_continue(&k));
    if r.wants_table() {
        return table_response(def, &items, &rv.to_string(), next.as_deref(), r);
    }
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(n) = next {
        meta["continue"] = n.into();
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta, "items": items}),
        &[],
    ))
}

/// The objects as a `meta.k8s.io/v1` Table (`Accept: ...;as=Table`), rendered now.
fn table_response(
    def: &ResourceDef,
    objects: &[Value],
    rv: &str,
    next: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    Ok(json_response(
        200,
        &table::table_with(
            &def.columns,
            objects,
            rv,
            next,
            Timestamp::now(),
            include_object(r)?,
        ),
        &[],
    ))
}

fn create(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let obj = parse_request_body(r)?;
    let opts = write_opts(r, "Update");
    let w = shared.store.create(def, ns, obj, &opts)?;
    Ok(json_response(
        if opts.dry_run { 200 } else { 201 },
        &w.object,
        &w.warnings,
    ))
}

fn update(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    part: Part,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let obj = parse_request_body(r)?;
    let opts = write_opts(r, "Update");
    let w = shared.store.update(def, ns, name, obj, part, &opts)?;
    Ok(json_response(
        if w.created { 201 } else { 200 },
        &w.object,
        &w.warnings,
    ))
}

/// PATCH: a merge, JSON or strategic patch of the current object, or a server-side apply.
fn patch_object(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    part: Part,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let kind = PatchKind::from_content_type(&r.content_type).ok_or_else(|| {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {:?})", r.content_type))
    })?;
    let body = patch::parse_body(&r.body)?;
    if kind == PatchKind::Apply {
        return apply_object(shared, def, ns, name, part, &body, r);
    }
    let opts = write_opts(r, "Update");
    let w = shared
        .store
        .modify(def, ns, name, part, false, &opts, |current| {
            let current =
                current.ok_or_else(|| ApiError::not_found(&def.qualified_resource(), name))?;
            let mut patched = patch::apply_patch(kind, current, &body)?;
            // A patch that does not name a resourceVersion applies to the current one.
            if body.pointer("/metadata/resourceVersion").is_none()
                && let Some(rv) = current.pointer("/metadata/resourceVersion")
            {
                patched["metadata"]["resourceVersion"] = rv.clone();
            }
            Ok(patched)
        })?;
    Ok(json_response(200, &w.object, &w.warnings))
}

/// PATCH with `application/apply-patch+yaml`: server-side apply as `fieldManager`, creating
/// the object when absent.
fn apply_object(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    part: Part,
    body: &Value,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let manager = r
        .q("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "PATCH requests of type application/apply-patch+yaml must have a fieldManager",
            )
        })?
        .to_string();
    let force = r.flag("force");
    let schema = def.schema.as_ref();
    let mut opts = write_opts(r, "Apply");
    let config = apply::ApplyConfig::new(body, schema);
    opts.applied_fields = Some(config.fields_v1());
    let w = shared
        .store
        .modify(def, ns, name, part, true, &opts, |live| {
            apply::apply(live, &config, &manager, part.subresource(), force, schema)
        })?;
    Ok(json_response(
        if w.created { 201 } else { 200 },
        &w.object,
        &w.warnings,
    ))
}

fn delete(
    shared: &Shared,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let body: Value = if r.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&r.body).unwrap_or(json!({}))
    };
    let dry_run = r.q("dryRun") == Some("All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let obj = shared.store.delete(
        def,
        ns,
        name,
        body.pointer("/preconditions/uid").and_then(Value::as_str),
        body.pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str),
        dry_run,
    )?;
    Ok(json_response(200, &obj, &[]))
}

fn delete_collection(
    shared: &Shared,
    def: &ResourceDef,
    ns: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let sel = selection(r, ns)?;
    let (items, _, _) = shared.store.list(def, &sel, None, None)?;
    let dry_run = r.q("dryRun") == Some("All");
    let mut deleted = Vec::new();
    for item in items {
        let n = item
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ins = item
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        deleted.push(shared.store.delete(def, &ins, &n, None, None, dry_run)?);
    }
    Ok(json_response(
        200,
        &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {}, "items": deleted}),
        &[],
    ))
}

/// The object of a create or update: JSON or YAML, or protobuf for the built-in kinds kubectl
/// sends that way.
fn parse_request_body(r: &Req) -> Result<Value, ApiError> {
    if protobuf::is_protobuf(&r.content_type) {
        protobuf::decode(&r.body)
    } else {
        patch::parse_body(&r.body)
    }
}

/// `includeObject` of a Table request (`Object` for `kubectl get --sort-by`).
fn include_object(r: &Req) -> Result<table::IncludeObject, ApiError> {
    table::IncludeObject::parse(r.q("includeObject").unwrap_or("")).map_err(ApiError::bad_request)
}

fn write_opts(r: &Req, operation: &'static str) -> WriteOpts {
    WriteOpts {
        dry_run: r.q("dryRun") == Some("All"),
        strict: r.q("fieldValidation") == Some("Strict"),
        field_manager: r.q("fieldManager").map(String::from),
        operation,
        applied_fields: None,
    }
}

pub(super) fn selection(r: &Req, ns: Option<&str>) -> Result<Selection, ApiError> {
    Ok(Selection {
        namespace: ns.map(String::from),
        labels: match r.q("labelSelector") {
            Some(s) if !s.is_empty() => {
                Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?)
            }
            _ => None,
        },
        fields: match r.q("fieldSelector") {
            Some(s) if !s.is_empty() => {
                Some(FieldSelector::parse(s).map_err(ApiError::bad_request)?)
            }
            _ => None,
        },
    })
}

fn encode_continue(k: &(String, String)) -> String {
    let raw = format!("{}/{}", k.0, k.1);
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(c: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid");
    let bytes: Result<Vec<u8>, _> = (0..c.len())
        .step_by(2)
        .map(|i| {
            c.get(i..i + 2)
                .ok_or(())
                .and_then(|h| u8::from_str_radix(h, 16).map_err(|_| ()))
        })
        .collect();
    let s = String::from_utf8(bytes.map_err(|_| bad())?).map_err(|_| bad())?;
    let (ns, name) = s.split_once('/').ok_or_else(bad)?;
    Ok((ns.to_string(), name.to_string()))
}
