//! The OpenAPI documents: `/openapi/v3` (an index, then one document per group-version) and
//! `/openapi/v2` (one document), built from what is served. Built-in kinds carry their real
//! schemas (k8s-openapi's, with every type they reference: ObjectMeta and the rest); a custom
//! resource's schema gets `apiVersion`, `kind` and `metadata` (a reference to ObjectMeta) as
//! the real server's CRD OpenAPI builder adds them. Every kind's schema carries
//! `x-kubernetes-group-version-kind`, so `kubectl explain --recursive` and clients that look a
//! kind up by it (Argo CD, kubectl's field validation check) find it.

use super::resources::ResourceDef;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Which OpenAPI a document is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavour {
    V2,
    V3,
}

impl Flavour {
    fn reference(self, name: &str) -> String {
        match self {
            Flavour::V2 => format!("#/definitions/{name}"),
            Flavour::V3 => format!("#/components/schemas/{name}"),
        }
    }
}

/// `/openapi/v3`: each group-version and where its document is (with a hash of it).
pub fn v3_index(resources: &[Arc<ResourceDef>]) -> Value {
    let mut paths = Map::new();
    for (key, (g, v)) in gv_keys(resources) {
        let doc = document(resources, Some((&g, &v)), Flavour::V3);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        doc.to_string().hash(&mut h);
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={:016X}", h.finish())}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn v3_for_path(resources: &[Arc<ResourceDef>], key: &str) -> Option<Value> {
    let (g, v) = gv_keys(resources).get(key)?.clone();
    Some(document(resources, Some((&g, &v)), Flavour::V3))
}

/// `/openapi/v2`: every served kind in one Swagger 2.0 document.
pub fn v2(resources: &[Arc<ResourceDef>]) -> Value {
    document(resources, None, Flavour::V2)
}

/// `api/v1` or `apis/{group}/{version}` for every served group-version.
fn gv_keys(resources: &[Arc<ResourceDef>]) -> BTreeMap<String, (String, String)> {
    resources
        .iter()
        .map(|r| (gv_prefix(r), (r.group.clone(), r.version.clone())))
        .collect()
}

fn gv_prefix(r: &ResourceDef) -> String {
    if r.group.is_empty() {
        format!("api/{}", r.version)
    } else {
        format!("apis/{}/{}", r.group, r.version)
    }
}

/// The document of one group-version (or, for v2, of all).
fn document(resources: &[Arc<ResourceDef>], gv: Option<(&str, &str)>, flavour: Flavour) -> Value {
    let path = match flavour {
        Flavour::V2 => "/definitions",
        Flavour::V3 => "/components/schemas",
    };
    let mut generator = SchemaSettings::draft07()
        .with(|s| {
            s.definitions_path = path.into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    let mut kinds = Vec::new();
    let served = resources
        .iter()
        .filter(|r| gv.is_none_or(|(g, v)| r.group == g && r.version == v));
    for r in served {
        let name = match builtin_schema(&mut generator, r) {
            Some(name) => name,
            None => {
                generator.subschema_for::<ObjectMeta>();
                custom_schema_name(r)
            }
        };
        add_paths(&mut paths, r, &name, flavour);
        kinds.push((r.clone(), name));
    }
    let mut definitions = generator.take_definitions(true);
    for (r, name) in &kinds {
        let gvk = json!([{"group": r.group, "version": r.version, "kind": r.kind}]);
        let schema = match definitions.remove(name) {
            Some(builtin) if r.schema.is_none() => builtin,
            _ => custom_schema(r, flavour),
        };
        let mut schema = schema;
        schema["x-kubernetes-group-version-kind"] = gvk;
        definitions.insert(name.clone(), schema);
    }
    if flavour == Flavour::V2 {
        definitions.values_mut().for_each(strip_junctors);
    }
    match flavour {
        Flavour::V2 => json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "definitions": definitions,
        }),
        Flavour::V3 => json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": definitions},
        }),
    }
}

/// A custom resource's definition name: the group reversed, the version, the kind
/// (`dev.operator.csp.v1alpha1.Customer`).
fn custom_schema_name(r: &ResourceDef) -> String {
    let group: Vec<&str> = r.group.split('.').rev().collect();
    format!("{}.{}.{}", group.join("."), r.version, r.kind)
}

/// A custom resource's schema with the properties the CRD OpenAPI builder adds.
fn custom_schema(r: &ResourceDef, flavour: Flavour) -> Value {
    let mut schema = r
        .schema
        .clone()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if flavour == Flavour::V2 {
        to_v2(&mut schema);
    }
    let reference = flavour.reference(OBJECT_META);
    let metadata = match flavour {
        Flavour::V2 => json!({"$ref": reference, "description": METADATA_DOC}),
        Flavour::V3 => json!({"allOf": [{"$ref": reference}], "description": METADATA_DOC}),
    };
    if !schema["properties"].is_object() {
        schema["properties"] = json!({});
    }
    schema["properties"]["apiVersion"] = json!({"type": "string", "description": API_VERSION_DOC});
    schema["properties"]["kind"] = json!({"type": "string", "description": KIND_DOC});
    schema["properties"]["metadata"] = metadata;
    schema
}

/// What OpenAPI v2 cannot say is left out, as the real server's v2 conversion does: `nullable`
/// (and the type of a nullable value), `oneOf`/`anyOf`/`not` and the CEL rules.
fn to_v2(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if map.remove("nullable") == Some(Value::Bool(true)) {
        map.remove("type");
    }
    for key in ["oneOf", "anyOf", "not", "x-kubernetes-validations"] {
        map.remove(key);
    }
    for key in ["properties", "patternProperties"] {
        if let Some(props) = map.get_mut(key).and_then(Value::as_object_mut) {
            props.values_mut().for_each(to_v2);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.get_mut(key) {
            to_v2(sub);
        }
    }
}

/// `oneOf`, `anyOf` and `not` are not Swagger 2.0 (gnostic refuses them): the built-in types
/// whose v3 schema has them (`JSONSchemaPropsOrArray`, ...) keep only their description in the
/// real v2 document, as here.
fn strip_junctors(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    for key in ["oneOf", "anyOf", "not"] {
        map.remove(key);
    }
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(strip_junctors);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.get_mut(key) {
            strip_junctors(sub);
        }
    }
    if let Some(all) = map.get_mut("allOf").and_then(Value::as_array_mut) {
        all.iter_mut().for_each(strip_junctors);
    }
}

/// Registers a built-in kind's real schema with the generator; its definition name.
fn builtin_schema(g: &mut SchemaGenerator, r: &ResourceDef) -> Option<String> {
    use api::{apps, batch, coordination, core, events, networking, rbac};
    fn add<T: schemars::JsonSchema>(g: &mut SchemaGenerator) -> Option<String> {
        g.subschema_for::<T>();
        Some(T::schema_name().into_owned())
    }
    if r.schema.is_some() {
        return None;
    }
    match (r.group.as_str(), r.kind.as_str()) {
        ("", "Namespace") => add::<core::v1::Namespace>(g),
        ("", "Event") => add::<core::v1::Event>(g),
        ("events.k8s.io", "Event") => add::<events::v1::Event>(g),
        ("", "Secret") => add::<core::v1::Secret>(g),
        ("", "ConfigMap") => add::<core::v1::ConfigMap>(g),
        ("", "ServiceAccount") => add::<core::v1::ServiceAccount>(g),
        ("", "Service") => add::<core::v1::Service>(g),
        ("", "Endpoints") => add::<core::v1::Endpoints>(g),
        ("", "PersistentVolumeClaim") => add::<core::v1::PersistentVolumeClaim>(g),
        ("", "PersistentVolume") => add::<core::v1::PersistentVolume>(g),
        ("", "Pod") => add::<core::v1::Pod>(g),
        ("", "ReplicationController") => add::<core::v1::ReplicationController>(g),
        ("coordination.k8s.io", "Lease") => add::<coordination::v1::Lease>(g),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            add::<apiextensions::CustomResourceDefinition>(g)
        }
        ("apps", "Deployment") => add::<apps::v1::Deployment>(g),
        ("apps", "DaemonSet") => add::<apps::v1::DaemonSet>(g),
        ("apps", "ReplicaSet") => add::<apps::v1::ReplicaSet>(g),
        ("apps", "StatefulSet") => add::<apps::v1::StatefulSet>(g),
        ("batch", "Job") => add::<batch::v1::Job>(g),
        ("batch", "CronJob") => add::<batch::v1::CronJob>(g),
        ("networking.k8s.io", "Ingress") => add::<networking::v1::Ingress>(g),
        ("rbac.authorization.k8s.io", "Role") => add::<rbac::v1::Role>(g),
        ("rbac.authorization.k8s.io", "RoleBinding") => add::<rbac::v1::RoleBinding>(g),
        ("rbac.authorization.k8s.io", "ClusterRole") => add::<rbac::v1::ClusterRole>(g),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            add::<rbac::v1::ClusterRoleBinding>(g)
        }
        _ => None,
    }
}

/// The paths of one resource: list and create, and get, replace, patch and delete by name (and
/// the status subresource), each with the query parameters kubectl looks for.
fn add_paths(paths: &mut Map<String, Value>, r: &ResourceDef, name: &str, flavour: Flavour) {
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let query = |param: &str, type_: &str| match flavour {
        Flavour::V2 => json!({"name": param, "in": "query", "type": type_, "uniqueItems": true}),
        Flavour::V3 => {
            json!({"name": param, "in": "query", "schema": {"type": type_, "uniqueItems": true}})
        }
    };
    let response = match flavour {
        Flavour::V2 => json!({"description": "OK", "schema": {"$ref": flavour.reference(name)}}),
        Flavour::V3 => {
            json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": flavour.reference(name)}}}})
        }
    };
    let write = json!([
        query("dryRun", "string"),
        query("fieldManager", "string"),
        query("fieldValidation", "string")
    ]);
    let mut patch = write.clone();
    if let Some(a) = patch.as_array_mut() {
        a.push(query("force", "boolean"));
    }
    let delete = json!([
        query("dryRun", "string"),
        query("propagationPolicy", "string"),
        query("orphanDependents", "boolean")
    ]);
    let op = |action: &str, params: &Value| {
        json!({
            "operationId": format!("{action}{}", r.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk.clone(),
            "parameters": params,
            "responses": {"200": response.clone()},
        })
    };
    let base = if r.namespaced {
        format!("/{}/namespaces/{{namespace}}/{}", gv_prefix(r), r.plural)
    } else {
        format!("/{}/{}", gv_prefix(r), r.plural)
    };
    let none = json!([]);
    if !r.writable {
        paths.insert(base.clone(), json!({"get": op("list", &none)}));
        paths.insert(format!("{base}/{{name}}"), json!({"get": op("get", &none)}));
        return;
    }
    paths.insert(
        base.clone(),
        json!({"get": op("list", &none), "post": op("post", &write), "delete": op("deletecollection", &delete)}),
    );
    paths.insert(
        format!("{base}/{{name}}"),
        json!({
            "get": op("get", &none),
            "put": op("put", &write),
            "patch": op("patch", &patch),
            "delete": op("delete", &delete),
        }),
    );
    if r.status_subresource {
        paths.insert(
            format!("{base}/{{name}}/status"),
            json!({"get": op("get", &none), "put": op("put", &write), "patch": op("patch", &patch)}),
        );
    }
}
