//! Discovery (`/api`, `/apis`, per group-version resource lists) and OpenAPI v3 documents built
//! from the served resources, enough for kubectl's server-side field validation check.

use super::resources::ResourceDef;
use super::reviews::REVIEWS;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a kind served for reading only.
const READ_VERBS: &[&str] = &["get", "list", "watch"];

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-csp-operator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn core_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}],
    })
}

/// Non-core groups with their versions, in a stable order (built-ins first, as registered).
fn groups(resources: &[Arc<ResourceDef>]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, vs)) => {
                if !vs.contains(&r.version) {
                    vs.push(r.version.clone());
                }
            }
            None => out.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    // The review groups are served too, though nothing of theirs is stored.
    for (g, v, _, _) in REVIEWS {
        if !out.iter().any(|(og, _)| og == g) {
            out.push((g.to_string(), vec![v.to_string()]));
        }
    }
    out
}

pub fn group_list(resources: &[Arc<ResourceDef>]) -> Value {
    let groups: Vec<Value> = groups(resources)
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0].clone()})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(resources: &[Arc<ResourceDef>], name: &str) -> Option<Value> {
    let (g, vs) = groups(resources).into_iter().find(|(g, _)| g == name)?;
    let versions: Vec<Value> = vs
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": versions, "preferredVersion": versions[0].clone()}),
    )
}

pub fn resource_list(resources: &[Arc<ResourceDef>], group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&Arc<ResourceDef>> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    let mut list = review_resources(group, version);
    if defs.is_empty() && list.is_empty() {
        return None;
    }
    for r in defs {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": if r.writable { VERBS } else { READ_VERBS },
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        list.push(entry);
        if r.status_subresource {
            list.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

/// The discovery entries of the review resources in a group-version (create only).
fn review_resources(group: &str, version: &str) -> Vec<Value> {
    REVIEWS
        .iter()
        .filter(|(g, v, _, _)| *g == group && *v == version)
        .map(|(_, _, plural, kind)| {
            json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": false, "kind": kind, "verbs": ["create"]})
        })
        .collect()
}

/// `api/v1` or `apis/{group}/{version}` for every served group-version.
fn gv_keys(resources: &[Arc<ResourceDef>]) -> BTreeMap<String, (String, String)> {
    resources
        .iter()
        .map(|r| {
            let key = if r.group.is_empty() {
                format!("api/{}", r.version)
            } else {
                format!("apis/{}/{}", r.group, r.version)
            };
            (key, (r.group.clone(), r.version.clone()))
        })
        .collect()
}

pub fn openapi_index(resources: &[Arc<ResourceDef>]) -> Value {
    let mut paths = Map::new();
    for (key, (g, v)) in gv_keys(resources) {
        let doc = openapi_doc(resources, &g, &v);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        doc.to_string().hash(&mut h);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={:016X}", h.finish())}),
        );
    }
    json!({"paths": paths})
}

/// Resolves `api/v1` / `apis/g/v` to its document.
pub fn openapi_for_path(resources: &[Arc<ResourceDef>], key: &str) -> Option<Value> {
    let (g, v) = gv_keys(resources).get(key)?.clone();
    Some(openapi_doc(resources, &g, &v))
}

fn schema_name(r: &ResourceDef) -> String {
    let group: Vec<&str> = if r.group.is_empty() {
        vec!["io", "k8s", "api", "core"]
    } else {
        r.group.split('.').rev().collect()
    };
    format!("{}.{}.{}", group.join("."), r.version, r.kind)
}

fn openapi_doc(resources: &[Arc<ResourceDef>], group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let name = schema_name(r);
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let mut schema = r.schema.clone().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        schema["x-kubernetes-group-version-kind"] = json!([gvk.clone()]);
        schemas.insert(name.clone(), schema);
        let reference = json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
        let write_params = json!([
            query("dryRun"),
            query("fieldManager"),
            query("fieldValidation")
        ]);
        let mut patch_params = write_params.clone();
        if let Some(a) = patch_params.as_array_mut() {
            a.push(json!({"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}));
        }
        let op = |action: &str, params: &Value| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk.clone(),
                "parameters": params,
                "responses": {"200": reference.clone()},
            })
        };
        let base = if r.namespaced {
            format!("/{}/namespaces/{{namespace}}/{}", gv_prefix(r), r.plural)
        } else {
            format!("/{}/{}", gv_prefix(r), r.plural)
        };
        paths.insert(
            base.clone(),
            json!({"get": op("list", &json!([])), "post": op("post", &write_params)}),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": op("get", &json!([])),
                "put": op("put", &write_params),
                "patch": op("patch", &patch_params),
                "delete": op("delete", &json!([query("dryRun")])),
            }),
        );
        if r.status_subresource {
            paths.insert(
                format!("{base}/{{name}}/status"),
                json!({"get": op("get", &json!([])), "put": op("put", &write_params), "patch": op("patch", &patch_params)}),
            );
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn gv_prefix(r: &ResourceDef) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}
