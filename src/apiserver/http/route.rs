//! Routing: a request's method and path parsed into what it asks for (a discovery document, or
//! a verb on a resource: a [`Target`]), authorised (RBAC for all but the admin), checked
//! against injected faults, and handed to its verb.

use super::list_options;
use super::verbs;
use super::{Body, Req, full, json_response};
use crate::apiserver::Shared;
use crate::apiserver::admission::Part;
use crate::apiserver::error::ApiError;
use crate::apiserver::rbac::{self, User};
use crate::apiserver::resources::ResourceDef;
use crate::apiserver::{discovery, openapi, openapi_proto};
use crate::apiserver::{patch, protobuf, reviews};
use hyper::{Method, Response};
use serde_json::Value;
use std::sync::Arc;

/// A request on a resource: `/api/{v}` or `/apis/{g}/{v}`, then `[namespaces/{ns}/]{plural}
/// [/{name}[/{subresource}]]`, and the verb its method and query make of it.
pub struct Target<'a> {
    pub def: Arc<ResourceDef>,
    pub ns: Option<&'a str>,
    pub name: Option<&'a str>,
    pub sub: Option<&'a str>,
    /// get, list, watch, create, update, patch, delete or deletecollection.
    pub verb: &'static str,
}

pub async fn route(shared: &Arc<Shared>, r: Req) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = r
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(answer) = discovery_document(shared, &r, &segs) {
        return answer;
    }
    if let Some(review) = reviews::review_at(&segs) {
        return review_response(shared, &r, review);
    }
    let target = Target::parse(shared, &r, &segs)?;
    if let Some(user) = &r.user {
        authorize(shared, user, &r, &target)?;
    }
    if !target.def.writable && !matches!(target.verb, "get" | "list" | "watch") {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    if let Some(e) = shared.faults.take(target.verb, &target.def.plural) {
        return Err(e);
    }
    let part = target.part()?;
    if let Some(rv) = list_options::version_to_wait_for(&r, target.verb) {
        list_options::wait_until_fresh(&shared.store, rv).await;
    }
    verbs::serve(shared, &r, target, part)
}

/// The version, health, discovery and OpenAPI documents (GETs outside the resource paths).
fn discovery_document(
    shared: &Shared,
    r: &Req,
    segs: &[&str],
) -> Option<Result<Response<Body>, ApiError>> {
    if r.method != Method::GET {
        return None;
    }
    // Only discovery needs the resource list; resource requests resolve one entry.
    let resources = || shared.store.resources();
    let found = |doc: Option<Value>, missing: &str| {
        doc.map(|d| json_response(200, &d, &[]))
            .ok_or_else(|| ApiError::not_found("", missing))
    };
    Some(match segs {
        ["version"] => Ok(json_response(200, &discovery::version(), &[])),
        ["healthz" | "livez" | "readyz", ..] => Ok(Response::builder()
            .status(200)
            .header("Content-Type", "text/plain")
            .body(full("ok"))
            .unwrap_or_else(|_| Response::new(full("ok")))),
        ["api"] => Ok(json_response(
            200,
            &discovery::core_versions(&shared.addr),
            &[],
        )),
        ["apis"] => Ok(json_response(
            200,
            &discovery::group_list(&resources()),
            &[],
        )),
        ["api", v] => found(discovery::resource_list(&resources(), "", v), v),
        ["apis", g] => found(discovery::group(&resources(), g), g),
        ["apis", g, v] => found(
            discovery::resource_list(&resources(), g, v),
            &format!("{g}/{v}"),
        ),
        ["openapi", "v3"] => Ok(json_response(200, &openapi::v3_index(&resources()), &[])),
        ["openapi", "v3", rest @ ..] => {
            let key = rest.join("/");
            found(openapi::v3_for_path(&resources(), &key), &key)
        }
        ["openapi", "v2"] => Ok(openapi_v2(shared, &r.accept, &r.if_none_match)),
        _ => return None,
    })
}

/// `/openapi/v2` as kube-openapi's handler serves it: the Accept header's clauses (goautoneg
/// order: by q, then the more specific) are tried against JSON and the gnostic protobuf form
/// (either spelling; the answer is `application/com.github.proto-openapi.spec.v2.v1.0+protobuf`);
/// `Vary: Accept`, an ETag (of the JSON, shared by both forms) and 304 for a matching
/// `If-None-Match`; 406 with an empty body when nothing is acceptable. A protobuf encoding
/// gnostic would refuse is a 503, as kube-openapi answers when it has no older one.
///
/// Unlike kube-openapi: the ETag is a 64-bit hash rather than SHA-512 (clients only compare
/// it), no `Last-Modified`/`If-Modified-Since`, no Range requests and no gzip.
fn openapi_v2(shared: &Shared, accept: &str, if_none_match: &str) -> Response<Body> {
    let Some(protobuf) = v2_media_type(accept) else {
        return bare(406);
    };
    let doc = openapi::v2(&shared.store.resources());
    let json = serde_json::to_vec(&doc).unwrap_or_default();
    let etag = etag(&json);
    let (content_type, body) = if protobuf {
        match openapi_proto::encode(&doc) {
            Ok(bytes) => (openapi_proto::MEDIA_TYPE, bytes),
            Err(e) => {
                tracing::error!(error = %e, "Error in OpenAPI handler");
                return bare(503);
            }
        }
    } else {
        ("application/json", json)
    };
    if etag_matches(if_none_match, &etag) {
        return Response::builder()
            .status(304)
            .header("Vary", "Accept")
            .header("Etag", etag)
            .body(full(""))
            .unwrap_or_else(|_| Response::new(full("")));
    }
    Response::builder()
        .status(200)
        .header("Content-Type", content_type)
        .header("Vary", "Accept")
        .header("Etag", etag)
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// An answer with no Content-Type (the handler writes only a status).
fn bare(code: u16) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("Vary", "Accept")
        .body(full(""))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Which form of `/openapi/v2` an Accept header gets: `Some(true)` protobuf, `Some(false)`
/// JSON, None neither. goautoneg's ParseAccept: clauses split on `,`, `q` read from the
/// parameters (a `q=0` clause still counts, as there), sorted by q and then a concrete type or
/// subtype before `*` (Go's insertion sort for short lists, so ties keep their order); each
/// clause is matched against `application/json`, then the two protobuf spellings.
fn v2_media_type(accept: &str) -> Option<bool> {
    let accept = if accept.is_empty() { "*/*" } else { accept };
    let mut clauses: Vec<(f32, &str, &str)> = Vec::new();
    for part in accept.split(',') {
        let part = part.trim_matches(' ');
        let mut params = part.split(';');
        let range = params.next().unwrap_or("");
        let sp: Vec<&str> = range.split('/').collect();
        let kind = sp[0].trim_matches(' ');
        let sub = match sp.len() {
            1 if kind == "*" => "*",
            2 => sp[1].trim_matches(' '),
            _ => continue,
        };
        let mut q = 1.0;
        for p in params {
            if let Some((k, v)) = p.split_once('=')
                && k.trim_matches(' ') == "q"
            {
                q = v.parse::<f32>().unwrap_or(0.0);
            }
        }
        clauses.push((q, kind, sub));
    }
    let less = |a: &(f32, &str, &str), b: &(f32, &str, &str)| {
        a.0 > b.0 || (a.1 != "*" && b.1 == "*") || (a.2 != "*" && b.2 == "*")
    };
    for i in 1..clauses.len() {
        let mut j = i;
        while j > 0 && less(&clauses[j], &clauses[j - 1]) {
            clauses.swap(j, j - 1);
            j -= 1;
        }
    }
    const ACCEPTED: [(&str, bool); 3] = [
        ("json", false),
        ("com.github.proto-openapi.spec.v2@v1.0+protobuf", true),
        ("com.github.proto-openapi.spec.v2.v1.0+protobuf", true),
    ];
    clauses.iter().find_map(|(_, kind, sub)| {
        ACCEPTED
            .iter()
            .find(|(s, _)| (*kind == "application" || *kind == "*") && (sub == s || *sub == "*"))
            .map(|(_, protobuf)| *protobuf)
    })
}

/// The document's ETag, quoted; both forms share it (the answer varies on Accept).
fn etag(json: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut h);
    format!("\"{:016X}\"", h.finish())
}

/// Go's checkIfNoneMatch: `*`, or any listed tag equal to ours by weak comparison.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
    if_none_match.trim() == "*"
        || if_none_match
            .split(',')
            .any(|t| !t.trim().is_empty() && weak(t) == weak(etag))
}

/// A self-review (`kubectl auth can-i`, `kubectl auth whoami`): created, answered, not stored.
fn review_response(
    shared: &Shared,
    r: &Req,
    review: &reviews::Review,
) -> Result<Response<Body>, ApiError> {
    if r.method != Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported",
            r.method
        )));
    }
    let body = if protobuf::is_protobuf(&r.content_type) {
        protobuf::decode(&r.body)?
    } else {
        patch::parse_body(&r.body)?
    };
    let user = reviews::requester(r.user.as_ref());
    let answer = reviews::answer(review, &body, &user, &shared.store.rbac_objects())?;
    Ok(json_response(201, &answer, &[]))
}

impl<'a> Target<'a> {
    fn parse(shared: &Shared, r: &Req, segs: &[&'a str]) -> Result<Self, ApiError> {
        let (group, version, rest): (&str, &str, &[&'a str]) = match segs {
            ["api", v, rest @ ..] => ("", v, rest),
            ["apis", g, v, rest @ ..] => (g, v, rest),
            _ => return Err(ApiError::not_found("", &r.path)),
        };
        // [ns-prefix] resource [name [subresource]]
        let (ns, rest): (Option<&'a str>, &[&'a str]) = match rest {
            ["namespaces", ns, res, tail @ ..]
                if !(group.is_empty() && matches!(*res, "status" | "finalize")) =>
            {
                (Some(*ns), &rest[2..][..1 + tail.len()])
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
        let verb = verb(r, name.is_some())?;
        Ok(Self {
            def,
            ns,
            name,
            sub,
            verb,
        })
    }

    /// The part a write addresses: the object, or its status; other subresources are not found.
    fn part(&self) -> Result<Part, ApiError> {
        match self.sub {
            None => Ok(Part::Main),
            Some("status") if self.def.status_subresource || self.def.plural == "namespaces" => {
                Ok(Part::Status)
            }
            Some(s) => Err(ApiError::not_found(
                &format!("{}/{s}", self.def.qualified_resource()),
                self.name.unwrap_or(""),
            )),
        }
    }
}

/// The verb of a resource request, as RBAC names it.
fn verb(r: &Req, named: bool) -> Result<&'static str, ApiError> {
    Ok(match (&r.method, named) {
        (&Method::GET, _) if r.flag("watch") => "watch",
        (&Method::GET, false) => "list",
        (&Method::GET, true) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, false) => "deletecollection",
        (&Method::DELETE, true) => "delete",
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not supported",
                r.method
            )));
        }
    })
}

/// RBAC for a request of a user other than the admin, with the request attributes of the real server: a list or
/// watch names the object of a `metadata.name` field selector, and a namespace is its own.
fn authorize(shared: &Shared, user: &User, r: &Req, t: &Target<'_>) -> Result<(), ApiError> {
    let def = &t.def;
    let namespace = t.ns.or(t.name.filter(|_| def.is_namespace())).unwrap_or("");
    let name = match t.name {
        Some(n) => n,
        None if matches!(t.verb, "list" | "watch") => r
            .q("fieldSelector")
            .and_then(rbac::name_from_field_selector)
            .unwrap_or(""),
        None => "",
    };
    let attrs = rbac::Attributes {
        user,
        verb: t.verb,
        api_group: &def.group,
        resource: &def.plural,
        subresource: t.sub.unwrap_or(""),
        name,
        namespace,
    };
    rbac::authorize(&shared.store.rbac_objects(), &attrs).map_err(|m| rbac::forbidden(&attrs, &m))
}
