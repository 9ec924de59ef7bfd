//! The verbs on a resource: get, list, create, update, patch (merge, JSON, strategic and
//! server-side apply), delete and deletecollection; watch is in [`super::watch`]. Each reads
//! its request, calls the store and renders the answer (a Table when kubectl asks for one).

use super::delete_options::delete_options;
use super::metadata_only::MetadataOnly;
use super::route::Target;
use super::watch::watch;
use super::{Body, Req, json_response};
use crate::apiserver::Shared;
use crate::apiserver::admission::{Part, WriteOpts};
use crate::apiserver::error::ApiError;
use crate::apiserver::escalation::Escalation;
use crate::apiserver::patch::{self, PatchKind, apply};
use crate::apiserver::protobuf;
use crate::apiserver::resources::ResourceDef;
use crate::apiserver::selector::{FieldSelector, LabelSelector, Selection};
use crate::apiserver::table;
use hyper::Response;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::sync::Arc;

/// One request on a resource, as its verb's handler sees it.
#[derive(Clone, Copy)]
struct Call<'a> {
    shared: &'a Shared,
    def: &'a ResourceDef,
    /// The namespace of the path, None at the cluster scope (lists across namespaces).
    scope: Option<&'a str>,
    ns: &'a str,
    name: &'a str,
    part: Part,
    r: &'a Req,
}

/// Hands a resource request to its verb.
pub fn serve(
    shared: &Arc<Shared>,
    r: &Req,
    t: Target<'_>,
    part: Part,
) -> Result<Response<Body>, ApiError> {
    if t.verb == "watch" {
        return watch(shared, t.def, t.ns, r);
    }
    let call = Call {
        shared,
        def: &t.def,
        scope: t.ns,
        ns: t.ns.unwrap_or(""),
        name: t.name.unwrap_or(""),
        part,
        r,
    };
    match t.verb {
        "get" => call.get(),
        "list" => call.list(),
        "create" => call.create(),
        "update" => call.update(),
        "patch" => call.patch_object(),
        "delete" => call.delete(),
        "deletecollection" => call.delete_collection(),
        verb => Err(ApiError::method_not_allowed(verb.to_string())),
    }
}

impl Call<'_> {
    fn get(&self) -> Result<Response<Body>, ApiError> {
        let metadata_only = MetadataOnly::negotiate(self.r, false)?;
        let obj = self.shared.store.get(self.def, self.ns, self.name)?;
        if let Some(m) = metadata_only {
            return Ok(json_response(200, &m.object(&obj), &[]));
        }
        if self.r.wants_table() {
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            return table_response(self.def, &[obj], &rv, None, self.r);
        }
        Ok(json_response(200, &obj, &[]))
    }

    fn list(&self) -> Result<Response<Body>, ApiError> {
        let sel = selection(self.r, self.scope)?;
        let limit = self
            .r
            .q("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let cont = match self.r.q("continue") {
            Some(c) if !c.is_empty() => Some(decode_continue(c)?),
            _ => None,
        };
        let metadata_only = MetadataOnly::negotiate(self.r, true)?;
        let (items, rv, next) = self.shared.store.list(self.def, &sel, limit, cont)?;
        let next = next.map(|k| encode_continue(&k));
        if self.r.wants_table() {
            return table_response(self.def, &items, &rv.to_string(), next.as_deref(), self.r);
        }
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if let Some(n) = next {
            meta["continue"] = n.into();
        }
        if let Some(m) = metadata_only {
            return Ok(json_response(200, &m.list(&items, meta), &[]));
        }
        Ok(json_response(
            200,
            &json!({"kind": format!("{}List", self.def.kind), "apiVersion": self.def.api_version(), "metadata": meta, "items": items}),
            &[],
        ))
    }

    fn create(&self) -> Result<Response<Body>, ApiError> {
        let obj = parse_request_body(self.r)?;
        let mut opts = write_opts(self, "Update");
        // A create is recorded only under a named manager (kubectl always names one): the
        // User-Agent default would give every object kube-rs creates (Events, the benchmarks'
        // 400k objects) an entry, bytes in every stored object and every watch event.
        opts.field_manager = self
            .r
            .q("fieldManager")
            .filter(|m| !m.is_empty())
            .map(String::from);
        let w = self.shared.store.create(self.def, self.ns, obj, &opts)?;
        Ok(json_response(
            if opts.dry_run { 200 } else { 201 },
            &w.object,
            &w.warnings,
        ))
    }

    fn update(&self) -> Result<Response<Body>, ApiError> {
        let obj = parse_request_body(self.r)?;
        let opts = write_opts(self, "Update");
        let w = self
            .shared
            .store
            .update(self.def, self.ns, self.name, obj, self.part, &opts)?;
        Ok(json_response(
            if w.created { 201 } else { 200 },
            &w.object,
            &w.warnings,
        ))
    }

    /// PATCH: a merge, JSON or strategic patch of the current object, or a server-side apply.
    fn patch_object(&self) -> Result<Response<Body>, ApiError> {
        let kind = PatchKind::from_content_type(&self.r.content_type).ok_or_else(|| {
            ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {:?})", self.r.content_type))
        })?;
        let body = patch::parse_body(&self.r.body)?;
        if kind == PatchKind::Apply {
            return self.apply_object(&body);
        }
        let opts = write_opts(self, "Update");
        let w = self.shared.store.modify(
            self.def,
            self.ns,
            self.name,
            self.part,
            false,
            &opts,
            |current| {
                let current = current.ok_or_else(|| {
                    ApiError::not_found(&self.def.qualified_resource(), self.name)
                })?;
                let mut patched = patch::apply_patch(kind, current, &body)?;
                // A patch that does not name a resourceVersion applies to the current one.
                if body.pointer("/metadata/resourceVersion").is_none()
                    && let Some(rv) = current.pointer("/metadata/resourceVersion")
                {
                    patched["metadata"]["resourceVersion"] = rv.clone();
                }
                Ok(patched)
            },
        )?;
        Ok(json_response(200, &w.object, &w.warnings))
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply as `fieldManager`, creating
    /// the object when absent.
    fn apply_object(&self, body: &Value) -> Result<Response<Body>, ApiError> {
        let manager = self
            .r
            .q("fieldManager")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "PATCH requests of type application/apply-patch+yaml must have a fieldManager",
                )
            })?
            .to_string();
        let force = self.r.flag("force");
        let schema = self.def.schema.as_ref();
        let mut opts = write_opts(self, "Apply");
        let config = apply::ApplyConfig::new(body, schema);
        opts.applied_fields = Some(config.fields_v1());
        let w = self.shared.store.modify(
            self.def,
            self.ns,
            self.name,
            self.part,
            true,
            &opts,
            |live| {
                apply::apply(
                    live,
                    &config,
                    &manager,
                    self.part.subresource(),
                    force,
                    schema,
                )
            },
        )?;
        Ok(json_response(
            if w.created { 201 } else { 200 },
            &w.object,
            &w.warnings,
        ))
    }

    fn delete(&self) -> Result<Response<Body>, ApiError> {
        let opts = delete_options(self.r)?;
        let deleted = self
            .shared
            .store
            .delete(self.def, self.ns, self.name, &opts)?;
        // 202 when a cascade was asked for with `orphanDependents: false` and the object stays
        // for now, as the real server answers (only then, for old clients' sake).
        let code = if !deleted.removed && opts.orphan_dependents == Some(false) {
            202
        } else {
            200
        };
        Ok(json_response(code, &deleted.object, &[]))
    }

    fn delete_collection(&self) -> Result<Response<Body>, ApiError> {
        let sel = selection(self.r, self.scope)?;
        let opts = delete_options(self.r)?;
        let (items, _, _) = self.shared.store.list(self.def, &sel, None, None)?;
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
            deleted.push(self.shared.store.delete(self.def, &ins, &n, &opts)?.object);
        }
        Ok(json_response(
            200,
            &json!({"kind": format!("{}List", self.def.kind), "apiVersion": self.def.api_version(), "metadata": {}, "items": deleted}),
            &[],
        ))
    }
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

fn write_opts(call: &Call<'_>, operation: &'static str) -> WriteOpts {
    let r = call.r;
    WriteOpts {
        escalation: escalation(call),
        dry_run: r.q("dryRun") == Some("All"),
        strict: r.q("fieldValidation") == Some("Strict"),
        field_manager: field_manager(r),
        operation,
        applied_fields: None,
    }
}

/// The manager a write's fields are recorded under: `fieldManager`, else (as the real server
/// does) the User-Agent up to its first `/`, printable characters only, at most 128.
fn field_manager(r: &Req) -> Option<String> {
    if let Some(m) = r.q("fieldManager").filter(|m| !m.is_empty()) {
        return Some(m.to_string());
    }
    let prefix: String = r
        .user_agent
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    (!prefix.is_empty()).then_some(prefix)
}

/// For an RBAC kind written by a user subject to RBAC: who, and the RBAC objects now (read
/// here, before the store's lock is taken for the write).
fn escalation(call: &Call<'_>) -> Option<Escalation> {
    let user = call.r.user.as_ref()?;
    (call.def.group == "rbac.authorization.k8s.io").then(|| Escalation {
        user: user.clone(),
        objects: call.shared.store.rbac_objects(),
    })
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
