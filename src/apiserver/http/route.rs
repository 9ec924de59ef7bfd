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
use crate::apiserver::{discovery, openapi};
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
    if let Some(answer) = discovery_document(shared, &r.method, &r.accept, &segs) {
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
    method: &Method,
    accept: &str,
    segs: &[&str],
) -> Option<Result<Response<Body>, ApiError>> {
    if method != Method::GET {
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
        ["openapi", "v2"] => openapi_v2(shared, accept),
        _ => return None,
    })
}

/// `/openapi/v2` in JSON. The protobuf form (what client-go's `OpenAPISchema()` asks for) is
/// not made here: a request that accepts only it is told so (406) rather than sent JSON that
/// its protobuf decoder would misread.
fn openapi_v2(shared: &Shared, accept: &str) -> Result<Response<Body>, ApiError> {
    let json_ok = accept.trim().is_empty()
        || accept.split(',').any(|m| {
            let media = m.split(';').next().unwrap_or("").trim();
            matches!(media, "application/json" | "*/*" | "application/*")
        });
    if !json_ok {
        return Err(ApiError::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json",
        ));
    }
    Ok(json_response(
        200,
        &openapi::v2(&shared.store.resources()),
        &[],
    ))
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
