//! The verbs on a resource: get, list, create, update, patch (merge, JSON, strategic and
//! server-side apply), delete and deletecollection; watch is in [`super::watch`]. Each reads
//! its request, calls the store and renders the answer (a Table when kubectl asks for one).

use super::delete_options::delete_options;
use super::list_options::{self, KeyScope, ListOptions};
use super::metadata_only::MetadataOnly;
use super::route::Target;
use super::watch::watch;
use super::{Body, Req, json_response};
use crate::apiserver::Shared;
use crate::apiserver::admission::schema::Cause;
use crate::apiserver::admission::{Part, WriteOpts};
use crate::apiserver::error::ApiError;
use crate::apiserver::escalation::Escalation;
use crate::apiserver::patch::{self, PatchKind, apply};
use crate::apiserver::protobuf;
use crate::apiserver::resources::ResourceDef;
use crate::apiserver::selector::{FieldSelector, LabelSelector, Selection};
use crate::apiserver::storage::{ListQuery, ReadAt};
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
        let sel = selection(self.r, self.def, self.scope)?;
        let keys = match self.scope {
            None if self.def.namespaced => KeyScope::AcrossNamespaces,
            scope => KeyScope::In(scope.unwrap_or("")),
        };
        let metadata_only = MetadataOnly::negotiate(self.r, true)?;
        let options = ListOptions::parse(self.r, keys)?;
        let query = ListQuery {
            sel: &sel,
            limit: options.limit,
            after: options.after.clone(),
            at: options.at,
        };
        let page = self
            .shared
            .store
            .list(self.def, &query)
            .map_err(|e| options.explain(e))?;
        if self.r.wants_table() {
            let next = list_options::continue_token(&page, keys);
            return table_response(
                self.def,
                &page.items,
                &page.rv.to_string(),
                next.as_deref(),
                self.r,
            );
        }
        let meta = list_options::list_meta(&page, keys);
        if let Some(m) = metadata_only {
            return Ok(json_response(200, &m.list(&page.items, meta), &[]));
        }
        Ok(json_response(
            200,
            &json!({"kind": format!("{}List", self.def.kind), "apiVersion": self.def.api_version(), "metadata": meta, "items": page.items}),
            &[],
        ))
    }

    fn create(&self) -> Result<Response<Body>, ApiError> {
        let obj = parse_request_body(self.r)?;
        // A create without `fieldManager` is recorded under the User-Agent's manager, as the
        // real server does.
        let opts = write_opts(self, "Update");
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
        let kind = self.patch_kind()?;
        validate_patch_options(self.r, kind)?;
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
                let mut patched = patch::apply_patch(kind, self.def, current, &body)?;
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

    /// The patch type of the Content-Type, 415 for one the resource does not take (custom
    /// resources take no strategic merge patch: they have no patch strategies).
    fn patch_kind(&self) -> Result<PatchKind, ApiError> {
        let custom = self.def.schema.is_some();
        PatchKind::from_content_type(&self.r.content_type)
            .filter(|k| !(custom && *k == PatchKind::Strategic))
            .ok_or_else(|| {
                let accepted = if custom {
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                } else {
                    "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
                };
                ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!("the body of the request was in an unknown format - accepted media types include: {accepted}"),
                )
            })
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply as `fieldManager`, creating
    /// the object when absent.
    fn apply_object(&self, body: &Value) -> Result<Response<Body>, ApiError> {
        // `validate_patch_options` made sure an apply names its manager.
        let manager = self.r.q("fieldManager").unwrap_or_default().to_string();
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
        let sel = selection(self.r, self.def, self.scope)?;
        let query = ListQuery {
            sel: &sel,
            limit: None,
            after: None,
            at: ReadAt::Latest,
        };
        let items = self.shared.store.list(self.def, &query)?.items;
        let opts = delete_options(self.r)?;
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

/// `ValidatePatchOptions`: `force` only for apply, which must name its `fieldManager` (422
/// Invalid on `PatchOptions.meta.k8s.io`).
fn validate_patch_options(r: &Req, kind: PatchKind) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let manager = r.q("fieldManager").unwrap_or("");
    if kind != PatchKind::Apply {
        if r.q("force").is_some() {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: may not be specified for non-apply patch".into(),
                field: "force".into(),
            });
        }
    } else if manager.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value: is required for apply patch".into(),
            field: "fieldManager".into(),
        });
    }
    causes.extend(field_manager_causes(manager));
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("PatchOptions.meta.k8s.io", "", causes))
    }
}

/// `ValidateFieldManager`: at most 128 bytes, printable characters only.
fn field_manager_causes(manager: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    if manager.len() > 128 {
        causes.push(Cause {
            reason: "FieldValueTooLong".into(),
            message: "Too long: may not be more than 128 bytes".into(),
            field: "fieldManager".into(),
        });
    }
    if manager.chars().any(|c| c.is_control()) {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {manager:?}: must only contain printable characters"),
            field: "fieldManager".into(),
        });
    }
    causes
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

pub(super) fn selection(
    r: &Req,
    def: &ResourceDef,
    ns: Option<&str>,
) -> Result<Selection, ApiError> {
    Ok(Selection {
        namespace: ns.map(String::from),
        labels: match r.q("labelSelector") {
            Some(s) if !s.is_empty() => {
                Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?)
            }
            _ => None,
        },
        fields: match r.q("fieldSelector") {
            Some(s) if !s.is_empty() => Some(field_selector(s, def)?),
            _ => None,
        },
    })
}

/// A field selector on fields the resource lets be selected (400 otherwise).
fn field_selector(s: &str, def: &ResourceDef) -> Result<FieldSelector, ApiError> {
    let selector = FieldSelector::parse(s).map_err(ApiError::bad_request)?;
    for (label, _, _) in &selector.requirements {
        if let Some(e) = def.field_label_error(label) {
            return Err(ApiError::bad_request(e));
        }
    }
    Ok(selector)
}
