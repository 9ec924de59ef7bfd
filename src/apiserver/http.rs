//! HTTP routing: turns Kubernetes REST requests into store operations.

use super::admission::{Part, WriteOpts};
use super::discovery;
use super::error::ApiError;
use super::patch::{self, PatchKind, apply};
use super::protobuf;
use super::rbac::{self, User};
use super::resources::ResourceDef;
use super::selector::Selection;
use super::selector::{FieldSelector, LabelSelector};
use super::storage::change_bytes;
use super::table;
use super::{Faults, Shared};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(code: u16, v: &Value, warnings: &[String]) -> Response<Body> {
    let mut b = Response::builder()
        .status(code)
        .header("Content-Type", "application/json");
    for w in warnings {
        b = b.header("Warning", format!("299 - \"{}\"", w.replace('"', "'")));
    }
    b.body(full(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.status(), &[]);
    if let Some(secs) = e.retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        r.headers_mut().insert("Retry-After", v);
    }
    r
}

/// The parsed request.
struct Req {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    accept: String,
    content_type: String,
    body: Bytes,
    /// The impersonated user, subject to RBAC; None is the all-powerful kubeconfig user.
    user: Option<User>,
}

impl Req {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.q(k), Some("true" | "1"))
    }

    fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let query = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|s| !s.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let header = |h: &str| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let user = match impersonation(&parts.headers) {
        Ok(u) => u,
        Err(e) => return Ok(error_response(&e)),
    };
    let r = Req {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query,
        accept: header("accept"),
        content_type: header("content-type"),
        body,
        user,
    };
    if let Some(d) = shared.faults.latency() {
        tokio::time::sleep(d).await;
    }
    let resp = route(&shared, r).await;
    Ok(resp.unwrap_or_else(|e| error_response(&e)))
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

async fn route(shared: &Arc<Shared>, r: Req) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = r
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    // Only discovery needs the resource list; resource requests resolve one entry.
    let resources = || shared.store.resources();
    match (r.method.clone(), segs.as_slice()) {
        (Method::GET, ["version"]) => return Ok(json_response(200, &discovery::version(), &[])),
        (Method::GET, ["healthz" | "livez" | "readyz"]) => {
            return Ok(Response::builder()
                .status(200)
                .header("Content-Type", "text/plain")
                .body(full("ok"))
                .unwrap_or_else(|_| Response::new(full("ok"))));
        }
        (Method::GET, ["api"]) => {
            return Ok(json_response(
                200,
                &discovery::core_versions(&shared.addr),
                &[],
            ));
        }
        (Method::GET, ["apis"]) => {
            return Ok(json_response(
                200,
                &discovery::group_list(&resources()),
                &[],
            ));
        }
        (Method::GET, ["api", v]) => {
            return discovery::resource_list(&resources(), "", v)
                .map(|l| json_response(200, &l, &[]))
                .ok_or_else(|| ApiError::not_found("", v));
        }
        (Method::GET, ["apis", g]) => {
            return discovery::group(&resources(), g)
                .map(|l| json_response(200, &l, &[]))
                .ok_or_else(|| ApiError::not_found("", g));
        }
        (Method::GET, ["apis", g, v]) => {
            return discovery::resource_list(&resources(), g, v)
                .map(|l| json_response(200, &l, &[]))
                .ok_or_else(|| ApiError::not_found("", &format!("{g}/{v}")));
        }
        (Method::GET, ["openapi", "v3"]) => {
            return Ok(json_response(
                200,
                &discovery::openapi_index(&resources()),
                &[],
            ));
        }
        (Method::GET, ["openapi", "v3", rest @ ..]) => {
            return discovery::openapi_for_path(&resources(), &rest.join("/"))
                .map(|d| json_response(200, &d, &[]))
                .ok_or_else(|| ApiError::not_found("", &rest.join("/")));
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Err(ApiError::not_found("", &r.path)),
    };
    // [ns-prefix] resource [name [subresource]]
    let (ns, rest): (Option<&str>, &[&str]) = match rest {
        ["namespaces", ns, res, tail @ ..]
            if !(group.is_empty() && matches!(*res, "status" | "finalize")) =>
        {
            (Some(ns), &rest[2..][..1 + tail.len()])
        }
        _ => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return Err(ApiError::not_found("", &r.path)),
    };
    let def = shared
        .store
        .resolve(group, version, plural)
        .ok_or_else(|| ApiError::not_found("", &r.path))?;
    if ns.is_some() && !def.namespaced {
        return Err(ApiError::not_found(
            &def.qualified_resource(),
            name.unwrap_or(""),
        ));
    }
    let verb = match (&r.method, name) {
        (&Method::GET, _) if r.flag("watch") => "watch",
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, None) => "deletecollection",
        (&Method::DELETE, Some(_)) => "delete",
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not supported",
                r.method
            )));
        }
    };
    if let Some(user) = &r.user {
        authorize(shared, user, &r, verb, &def, ns, (name, sub))?;
    }
    if let Some(e) = shared.faults.take(verb, &def.plural) {
        return Err(e);
    }
    let ns_str = ns.unwrap_or("");
    let part = match sub {
        None => Part::Main,
        Some("status") if def.status_subresource || def.plural == "namespaces" => Part::Status,
        Some(s) => {
            return Err(ApiError::not_found(
                &format!("{}/{s}", def.qualified_resource()),
                name.unwrap_or(""),
            ));
        }
    };
    match verb {
        "get" => {
            let obj = shared.store.get(&def, ns_str, name.unwrap_or(""))?;
            if r.wants_table() {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                return Ok(json_response(
                    200,
                    &table::table_with(
                        &def.columns,
                        &[obj],
                        &rv,
                        None,
                        Timestamp::now(),
                        include_object(&r)?,
                    ),
                    &[],
                ));
            }
            Ok(json_response(200, &obj, &[]))
        }
        "list" => list(shared, &def, ns, &r),
        "watch" => watch(shared, def, ns, &r),
        "create" => {
            let obj = parse_request_body(&r)?;
            let opts = write_opts(&r, "Update");
            let w = shared.store.create(&def, ns_str, obj, &opts)?;
            Ok(json_response(
                if opts.dry_run { 200 } else { 201 },
                &w.object,
                &w.warnings,
            ))
        }
        "update" => {
            let obj = parse_request_body(&r)?;
            let opts = write_opts(&r, "Update");
            let w = shared
                .store
                .update(&def, ns_str, name.unwrap_or(""), obj, part, &opts)?;
            Ok(json_response(
                if w.created { 201 } else { 200 },
                &w.object,
                &w.warnings,
            ))
        }
        "patch" => patch_object(shared, &def, ns_str, name.unwrap_or(""), part, &r),
        "delete" => {
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
                &def,
                ns_str,
                name.unwrap_or(""),
                body.pointer("/preconditions/uid").and_then(Value::as_str),
                body.pointer("/preconditions/resourceVersion")
                    .and_then(Value::as_str),
                dry_run,
            )?;
            Ok(json_response(200, &obj, &[]))
        }
        "deletecollection" => {
            let sel = selection(&r, ns)?;
            let (items, _, _) = shared.store.list(&def, &sel, None, None)?;
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
                deleted.push(shared.store.delete(&def, &ins, &n, None, None, dry_run)?);
            }
            Ok(json_response(
                200,
                &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {}, "items": deleted}),
                &[],
            ))
        }
        _ => Err(ApiError::method_not_allowed(verb.to_string())),
    }
}

/// The user the `Impersonate-User` and (repeated) `Impersonate-Group` headers name.
fn impersonation(headers: &hyper::HeaderMap) -> Result<Option<User>, ApiError> {
    let user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok());
    let groups = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(String::from)
        .collect();
    User::impersonated(user, groups)
}

/// RBAC for an impersonated request, with the request attributes of the real server: a list or
/// watch names the object of a `metadata.name` field selector, and a namespace is its own.
fn authorize(
    shared: &Shared,
    user: &User,
    r: &Req,
    verb: &str,
    def: &ResourceDef,
    ns: Option<&str>,
    (name, sub): (Option<&str>, Option<&str>),
) -> Result<(), ApiError> {
    let is_namespace = def.group.is_empty() && def.plural == "namespaces";
    let namespace = ns.or(name.filter(|_| is_namespace)).unwrap_or("");
    let name = match name {
        Some(n) => n,
        None if matches!(verb, "list" | "watch") => r
            .q("fieldSelector")
            .and_then(rbac::name_from_field_selector)
            .unwrap_or(""),
        None => "",
    };
    let attrs = rbac::Attributes {
        user,
        verb,
        api_group: &def.group,
        resource: &def.plural,
        subresource: sub.unwrap_or(""),
        name,
        namespace,
    };
    rbac::authorize(&shared.store.rbac_objects(), &attrs).map_err(|m| rbac::forbidden(&attrs, &m))
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

fn selection(r: &Req, ns: Option<&str>) -> Result<Selection, ApiError> {
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
        return Ok(json_response(
            200,
            &table::table_with(
                &def.columns,
                &items,
                &rv.to_string(),
                next.as_deref(),
                Timestamp::now(),
                include_object(r)?,
            ),
            &[],
        ));
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

fn patch_object(
    shared: &Arc<Shared>,
    def: &Arc<ResourceDef>,
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
        let config = apply::ApplyConfig::new(&body, schema);
        opts.applied_fields = Some(config.fields_v1());
        let w = shared
            .store
            .modify(def, ns, name, part, true, &opts, |live| {
                apply::apply(live, &config, &manager, part.subresource(), force, schema)
            })?;
        return Ok(json_response(
            if w.created { 201 } else { 200 },
            &w.object,
            &w.warnings,
        ));
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

fn watch(
    shared: &Arc<Shared>,
    def: Arc<ResourceDef>,
    ns: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let sel = selection(r, ns)?;
    let initial_events = r.flag("sendInitialEvents");
    let from = match r.q("resourceVersion") {
        _ if initial_events => None,
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let bookmarks = r.flag("allowWatchBookmarks");
    let timeout = r
        .q("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let started = shared.store.watch(&def, &sel, from);
    let mut dropped = shared.faults.watch_drops();
    let api_version = def.api_version();
    let kind = def.kind.clone();
    tokio::spawn(async move {
        let line = |type_: &str, object: &[u8]| {
            let mut out = Vec::with_capacity(object.len() + 32);
            out.extend_from_slice(b"{\"type\":\"");
            out.extend_from_slice(type_.as_bytes());
            out.extend_from_slice(b"\",\"object\":");
            out.extend_from_slice(object);
            out.extend_from_slice(b"}\n");
            Bytes::from(out)
        };
        let (initial, mut live, mut last_rv) = match started {
            Ok(s) => s,
            Err(e) => {
                let status = serde_json::to_vec(&e.status()).unwrap_or_default();
                let _ = tx.send(line("ERROR", &status)).await;
                return;
            }
        };
        for c in &initial {
            last_rv = last_rv.max(c.rv);
            let Some(type_) = sel.event_for(c, &def) else {
                continue;
            };
            if tx.send(line(type_, &change_bytes(&def, c))).await.is_err() {
                return;
            }
        }
        let bookmark = |rv: u64, initial_end: bool| {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            serde_json::to_vec(&json!({"kind": kind, "apiVersion": api_version, "metadata": meta}))
                .unwrap_or_default()
        };
        if initial_events
            && tx
                .send(line("BOOKMARK", &bookmark(last_rv, true)))
                .await
                .is_err()
        {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = dropped.changed() => break,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(line("BOOKMARK", &bookmark(last_rv, false))).await.is_err() { break; }
                }
                c = live.recv() => match c {
                    Ok(c) => {
                        if c.rv <= last_rv || c.store != def.store {
                            continue;
                        }
                        let Some(type_) = sel.event_for(&c, &def) else { continue };
                        last_rv = c.rv;
                        if tx.send(line(type_, &change_bytes(&def, &c))).await.is_err() { break; }
                    }
                    // A watcher too slow for the stream ends; the client re-watches from its version.
                    Err(_) => break,
                },
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(|b| Ok::<_, Infallible>(Frame::data(b))))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .header("Transfer-Encoding", "chunked")
        .body(StreamBody::new(stream).boxed_unsync())
        .map_err(|e| ApiError::internal(e.to_string()))
}

impl Faults {
    fn watch_drops(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drops.subscribe()
    }
}
