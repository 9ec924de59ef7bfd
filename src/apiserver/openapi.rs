//! The OpenAPI documents: `/openapi/v3` (an index, then one document per group-version) and
//! `/openapi/v2` (one document), built from what is served. Built-in kinds carry their real
//! schemas (k8s-openapi's, with every type they reference: ObjectMeta and the rest); a custom
//! resource's schema gets `apiVersion`, `kind` and `metadata` (a reference to ObjectMeta) as
//! the real server's CRD OpenAPI builder adds them. Every kind has a `...List` definition
//! (`items`, ListMeta `metadata`), and every kind and list carries
//! `x-kubernetes-group-version-kind`, so `kubectl explain --recursive` and clients that look a
//! kind up by it (Argo CD's cluster cache, kubectl's field validation check) find it.
//!
//! The v2 document follows the real server's: custom resource schemas converted as
//! apiextensions' `ToStructuralOpenAPIV2` does, no `default`s (kube-openapi's PruneDefaults),
//! no `oneOf`/`anyOf`/`not`; paths with real operation ids, tags, parameters (path, query,
//! body), responses (the List for list, Status for deletes, 201/202/401) and
//! `x-kubernetes-action`/`x-kubernetes-group-version-kind`, list-for-all-namespaces paths, the
//! BearerToken security definition. Left out: the deprecated `/watch/` paths and WatchEvent,
//! the `/api`, `/apis`, `/version` and discovery paths, shared `#/parameters/...` (parameters
//! are written inline, without their long descriptions), `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key` on built-in fields (k8s-openapi's schemas have none), and each
//! built-in List's own Go doc text (every List is described as the CRD builder describes one).

use super::patch::strategic::strategies;
use super::resources::ResourceDef;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    DeleteOptions, ListMeta, ObjectMeta, Patch, Status,
};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
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
    for add in [
        SchemaGenerator::subschema_for::<ObjectMeta>,
        SchemaGenerator::subschema_for::<ListMeta>,
        SchemaGenerator::subschema_for::<Status>,
        SchemaGenerator::subschema_for::<DeleteOptions>,
        SchemaGenerator::subschema_for::<Patch>,
    ] {
        add(&mut generator);
    }
    let mut paths = Map::new();
    let mut kinds = Vec::new();
    let served = resources
        .iter()
        .filter(|r| gv.is_none_or(|(g, v)| r.group == g && r.version == v));
    for r in served {
        let name = builtin_schema(&mut generator, r).unwrap_or_else(|| custom_schema_name(r));
        match flavour {
            Flavour::V2 => add_paths_v2(&mut paths, r, &name),
            Flavour::V3 => add_paths(&mut paths, r, &name),
        }
        kinds.push((r.clone(), name));
    }
    let mut definitions = generator.take_definitions(true);
    for (r, name) in kinds.iter().filter(|(r, _)| r.schema.is_none()) {
        let strategies = strategies::for_kind(&r.group, &r.kind);
        patch_strategies(&mut definitions, name, strategies);
    }
    let mut group_versions = BTreeSet::new();
    for (r, name) in &kinds {
        let gvk = |kind: &str| json!([{"group": r.group, "version": r.version, "kind": kind}]);
        let mut schema = match definitions.remove(name) {
            Some(builtin) if r.schema.is_none() => builtin,
            _ => custom_schema(r, flavour),
        };
        schema["x-kubernetes-group-version-kind"] = gvk(&r.kind);
        definitions.insert(name.clone(), schema);
        let mut list = list_schema(r, name, flavour);
        list["x-kubernetes-group-version-kind"] = gvk(&format!("{}List", r.kind));
        definitions.insert(format!("{name}List"), list);
        group_versions.insert((r.group.clone(), r.version.clone()));
    }
    if let Some(status) = definitions.get_mut(STATUS) {
        status["x-kubernetes-group-version-kind"] =
            json!([{"group": "", "kind": "Status", "version": "v1"}]);
    }
    if let Some(options) = definitions.get_mut(DELETE_OPTIONS) {
        let gvks: Vec<Value> = group_versions
            .iter()
            .map(|(g, v)| json!({"group": g, "kind": "DeleteOptions", "version": v}))
            .collect();
        options["x-kubernetes-group-version-kind"] = Value::Array(gvks);
    }
    match flavour {
        Flavour::V2 => {
            definitions.values_mut().for_each(v2_definition);
            json!({
                "swagger": "2.0",
                "info": {"title": "Kubernetes", "version": "v1.32.0"},
                "paths": paths,
                "definitions": definitions,
                "securityDefinitions": {"BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                }},
                "security": [{"BearerToken": []}],
            })
        }
        Flavour::V3 => json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": definitions},
        }),
    }
}

/// Puts `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key` on a built-in type's
/// tagged fields, as the real server's documents carry its Go struct tags (the table the
/// strategic merge patch uses), following the fields down to the types they reference. kubectl
/// builds its strategic patches from these: without them it sends lists whole, and a list
/// element removed from a manifest would stay.
fn patch_strategies(
    definitions: &mut Map<String, Value>,
    name: &str,
    strategies: &strategies::Type,
) {
    for field in strategies.fields {
        let Some(property) = definitions
            .get_mut(name)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field.json))
        else {
            continue;
        };
        if !field.strategy.is_empty() {
            property["x-kubernetes-patch-strategy"] = json!(field.strategy);
        }
        if !field.merge_key.is_empty() {
            property["x-kubernetes-patch-merge-key"] = json!(field.merge_key);
        }
        let Some(below) = field.ty else { continue };
        if let Some(referenced) = referenced_definition(property) {
            patch_strategies(definitions, &referenced, below);
        }
    }
}

/// The definition a property refers to, directly or as the items of an array.
fn referenced_definition(property: &Value) -> Option<String> {
    let reference = property
        .get("$ref")
        .or_else(|| property.pointer("/items/$ref"))
        .or_else(|| property.pointer("/allOf/0/$ref"))?
        .as_str()?;
    Some(reference.rsplit('/').next()?.to_string())
}

/// A kind's List, as the CRD builder's `buildListSchema` writes it.
fn list_schema(r: &ResourceDef, name: &str, flavour: Flavour) -> Value {
    let items = format!(
        "List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
        r.plural
    );
    let metadata = match flavour {
        Flavour::V2 => {
            json!({"$ref": flavour.reference(LIST_META), "description": LIST_METADATA_DOC})
        }
        Flavour::V3 => {
            json!({"allOf": [{"$ref": flavour.reference(LIST_META)}], "description": LIST_METADATA_DOC})
        }
    };
    json!({
        "description": format!("{}List is a list of {}", r.kind, r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION_DOC},
            "kind": {"type": "string", "description": KIND_DOC},
            "items": {"type": "array", "description": items, "items": {"$ref": flavour.reference(name)}},
            "metadata": metadata,
        },
    })
}

/// What the real v2 document leaves out of every definition: `default` (kube-openapi's
/// PruneDefaults, run on the built-in and the CRD documents alike) and the junctors Swagger
/// 2.0 lacks (`oneOf`, `anyOf`, `not`; the built-in types whose v3 schema has them, such as
/// `JSONSchemaPropsOrArray`, keep only their description); and how it writes a reference.
fn v2_definition(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    for key in ["default", "oneOf", "anyOf", "not"] {
        map.remove(key);
    }
    // A reference with a description of its own is `{"$ref", "description"}` in v2, where v3
    // (and k8s-openapi's schemas) wrap the reference in a one-element `allOf`.
    let lone_ref = match map
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([only]) => only
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("$ref"))
            .cloned(),
        _ => None,
    };
    if let Some(reference) = lone_ref {
        map.remove("allOf");
        map.insert("$ref".into(), reference);
    }
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(v2_definition);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.get_mut(key) {
            v2_definition(sub);
        }
    }
    if let Some(all) = map.get_mut("allOf").and_then(Value::as_array_mut) {
        all.iter_mut().for_each(v2_definition);
    }
}

/// A custom resource's definition name: the group reversed, the version, the kind
/// (`dev.operator.csp.v1alpha1.Customer`).
fn custom_schema_name(r: &ResourceDef) -> String {
    let group: Vec<&str> = r.group.split('.').rev().collect();
    format!("{}.{}.{}", group.join("."), r.version, r.kind)
}

/// A custom resource's schema with the properties the CRD OpenAPI builder adds
/// (`buildKubeNative`). In v2 a schema that keeps unknown fields at its root is only
/// `{"type": "object"}` (kubectl would otherwise refuse fields it does not list).
fn custom_schema(r: &ResourceDef, flavour: Flavour) -> Value {
    let preserves = |s: &Value| s["x-kubernetes-preserve-unknown-fields"] == json!(true);
    if flavour == Flavour::V2 && r.schema.as_ref().is_none_or(preserves) {
        return json!({"type": "object"});
    }
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

/// The keys of a structural schema (apiextensions' `Structural`: generic, extensions, value
/// validation) as its `ToKubeOpenAPI` writes them back.
const STRUCTURAL_KEYS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "default",
    "nullable",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "properties",
    "additionalProperties",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

/// apiextensions' `ToStructuralOpenAPIV2`, node by node before its children: `allOf`, `oneOf`,
/// `anyOf` and `not` dropped; a nullable node loses `type`, `items` and `properties` (and its
/// name leaves its parent's `required`); a node keeping unknown fields loses `items` and
/// `properties`; an array left without `items` loses its `type`. CEL rules
/// (`x-kubernetes-validations`) stay, as there.
fn to_v2(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    // Only what a structural schema holds reaches the document (`example`, `externalDocs`,
    // `$schema`, `patternProperties`... do not survive its conversion).
    map.retain(|k, _| STRUCTURAL_KEYS.contains(&k.as_str()));
    for key in ["allOf", "oneOf", "anyOf", "not"] {
        map.remove(key);
    }
    if map.remove("nullable") == Some(Value::Bool(true)) {
        for key in ["type", "items", "properties"] {
            map.remove(key);
        }
    }
    if map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        map.remove("items");
        map.remove("properties");
    }
    if !map.contains_key("items") && map.get("type") == Some(&json!("array")) {
        map.remove("type");
    }
    let nullable: Vec<String> = map
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter(|(_, p)| p["nullable"] == json!(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let nullable_values = map
        .get("additionalProperties")
        .is_some_and(|a| a["nullable"] == json!(true));
    if nullable_values {
        map.remove("required");
    } else if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|f| !f.as_str().is_some_and(|f| nullable.iter().any(|n| n == f)));
        if required.is_empty() {
            map.remove("required");
        }
    }
    if let Some(props) = map.get_mut("properties").and_then(Value::as_object_mut) {
        props.values_mut().for_each(to_v2);
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.get_mut(key) {
            to_v2(sub);
        }
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

/// The v3 paths of one resource: list and create, and get, replace, patch and delete by name
/// (and the status subresource), each with the query parameters kubectl looks for.
fn add_paths(paths: &mut Map<String, Value>, r: &ResourceDef, name: &str) {
    let flavour = Flavour::V3;
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let query = |param: &str, type_: &str| json!({"name": param, "in": "query", "schema": {"type": type_, "uniqueItems": true}});
    let response = |name: &str| json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": flavour.reference(name)}}}});
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
    let list_name = format!("{name}List");
    let op = |action: &str, params: &Value| {
        let returns = if action == "list" { &list_name } else { name };
        json!({
            "operationId": format!("{action}{}", r.kind),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk.clone(),
            "parameters": params,
            "responses": {"200": response(returns)},
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
    // kubectl builds strategic patches from these documents only where the patch operation
    // says it takes them (the built-in kinds), as kube-openapi's request bodies do.
    let patch_op = || {
        let mut o = op("patch", &patch);
        o["requestBody"] = patch_body(r.schema.is_none());
        o
    };
    paths.insert(
        format!("{base}/{{name}}"),
        json!({
            "get": op("get", &none),
            "put": op("put", &write),
            "patch": patch_op(),
            "delete": op("delete", &delete),
        }),
    );
    if r.status_subresource {
        paths.insert(
            format!("{base}/{{name}}/status"),
            json!({"get": op("get", &none), "put": op("put", &write), "patch": patch_op()}),
        );
    }
}

/// A v3 patch operation's request body: the patch types the server takes for the kind.
fn patch_body(builtin: bool) -> Value {
    let schema = json!({"schema": {"$ref": Flavour::V3.reference(PATCH)}});
    let mut content = Map::new();
    let mut types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    if builtin {
        types.push("application/strategic-merge-patch+json");
    }
    for media in types {
        content.insert(media.into(), schema.clone());
    }
    json!({"content": content, "required": true})
}

/// kube-openapi's `ToValidOperationID`: letters (and digits after the first character) kept,
/// the letter after anything else upper-cased.
fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_numeric()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

/// `a ` or `an ` before a kind, as apiserver's `GetArticleForNoun` (none for a plural).
fn article(kind: &str) -> &'static str {
    if kind.ends_with('s') && !kind.ends_with("ss") {
        " "
    } else if kind
        .chars()
        .next()
        .is_some_and(|c| "aeiou".contains(c.to_ascii_lowercase()))
    {
        " an "
    } else {
        " a "
    }
}

/// The v2 paths of one resource as the real server's route builder writes them: per path its
/// `namespace`/`name` path parameters and `pretty`; per operation the operation id
/// (`listCoreV1NamespacedConfigMap`, `readCspOperatorDevV1alpha1NamespacedCustomerStatus`),
/// tag, description, consumes/produces, the options' query parameters, the body, the responses
/// and `x-kubernetes-action`/`x-kubernetes-group-version-kind`. Namespaced kinds also get the
/// list across namespaces (`.../{plural}`, `list...ForAllNamespaces`).
fn add_paths_v2(paths: &mut Map<String, Value>, r: &ResourceDef, name: &str) {
    let custom = r.schema.is_some();
    let group = if r.group.is_empty() {
        "core"
    } else {
        r.group.trim_end_matches(".k8s.io")
    };
    let gv_id = format!(
        "{}{}",
        operation_id_part(group, true),
        operation_id_part(&r.version, true)
    );
    let tag = format!(
        "{}_{}",
        operation_id_part(group, false),
        operation_id_part(&r.version, false)
    );
    let namespaced = if r.namespaced { "Namespaced" } else { "" };
    let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
    let refer = |n: &str| json!({"$ref": Flavour::V2.reference(n)});
    let query = |param: &str, type_: &str| json!({"uniqueItems": true, "type": type_, "name": param, "in": "query"});
    let params =
        |names: &[(&str, &str)]| -> Vec<Value> { names.iter().map(|(n, t)| query(n, t)).collect() };
    const LIST: &[(&str, &str)] = &[
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ];
    const DELETE_COLLECTION: &[(&str, &str)] = &[
        ("continue", "string"),
        ("dryRun", "string"),
        ("fieldSelector", "string"),
        ("gracePeriodSeconds", "integer"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("orphanDependents", "boolean"),
        ("propagationPolicy", "string"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
    ];
    const WRITE: &[(&str, &str)] = &[
        ("dryRun", "string"),
        ("fieldManager", "string"),
        ("fieldValidation", "string"),
    ];
    const PATCH_OPTIONS: &[(&str, &str)] = &[
        ("dryRun", "string"),
        ("fieldManager", "string"),
        ("fieldValidation", "string"),
        ("force", "boolean"),
    ];
    const DELETE: &[(&str, &str)] = &[
        ("dryRun", "string"),
        ("gracePeriodSeconds", "integer"),
        ("orphanDependents", "boolean"),
        ("propagationPolicy", "string"),
    ];
    let body = |schema: &str, required: bool| {
        let mut b = json!({"name": "body", "in": "body", "schema": refer(schema)});
        if required {
            b["required"] = json!(true);
        }
        b
    };
    let produces = if custom {
        json!(["application/json", "application/yaml"])
    } else {
        json!([
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf"
        ])
    };
    let consumes = |verb: &str| match (verb, custom) {
        ("patch", true) => json!([
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml"
        ]),
        ("patch", false) => json!([
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml"
        ]),
        (_, true) => json!(["application/json", "application/yaml"]),
        (_, false) => json!(["*/*"]),
    };
    let list_name = format!("{name}List");
    // An operation: its verb (`listall` for the list across namespaces), action, subresource,
    // parameters and (code, description, definition) responses; 401 is added to all.
    let op = |verb: &str,
              action: &str,
              sub: &str,
              parameters: Vec<Value>,
              codes: &[(&str, &str, &str)]| {
        let sub_title = if sub.is_empty() {
            String::new()
        } else {
            operation_id_part(sub, true)
        };
        let of = if sub.is_empty() {
            String::new()
        } else {
            format!(" {sub} of")
        };
        let description = match verb {
            "list" | "listall" if custom => format!("list objects of kind {}", r.kind),
            "list" | "listall" => format!("list or watch objects of kind {}", r.kind),
            "read" | "replace" => format!("{verb}{of} the specified {}", r.kind),
            "patch" => format!("partially update{of} the specified {}", r.kind),
            "deletecollection" => format!("delete collection of {}", r.kind),
            _ => format!("{verb}{of}{}{}", article(&r.kind), r.kind),
        };
        // The operation id's verb is the shortest known prefix: `deletecollection` is
        // `delete` + `Collection...`.
        let (prefix, rest) = match verb {
            "deletecollection" => ("delete", format!("Collection{namespaced}{}", r.kind)),
            "listall" => ("list", format!("{}ForAllNamespaces", r.kind)),
            v => (v, format!("{namespaced}{}{sub_title}", r.kind)),
        };
        let mut responses = Map::new();
        for (code, text, schema) in codes {
            responses.insert(
                code.to_string(),
                json!({"description": text, "schema": refer(schema)}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut o = json!({
            "description": description,
            "consumes": consumes(verb),
            "produces": produces,
            "schemes": ["https"],
            "tags": [tag],
            "operationId": format!("{prefix}{gv_id}{rest}"),
            "responses": responses,
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        });
        if !parameters.is_empty() {
            o["parameters"] = Value::Array(parameters);
        }
        o
    };
    let path_param = |param: &str, description: String| json!({"uniqueItems": true, "type": "string", "description": description, "name": param, "in": "path", "required": true});
    let pretty = json!({"uniqueItems": true, "type": "string", "description": "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).", "name": "pretty", "in": "query"});
    let namespace = path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects".into(),
    );
    let name_param = path_param("name", format!("name of the {}", r.kind));
    let mut collection_params = Vec::new();
    let mut item_params = vec![name_param];
    if r.namespaced {
        collection_params.push(namespace.clone());
        item_params.push(namespace);
    }
    collection_params.push(pretty.clone());
    item_params.push(pretty.clone());
    let base = if r.namespaced {
        format!("/{}/namespaces/{{namespace}}/{}", gv_prefix(r), r.plural)
    } else {
        format!("/{}/{}", gv_prefix(r), r.plural)
    };
    let list_op = op(
        "list",
        "list",
        "",
        params(LIST),
        &[("200", "OK", list_name.as_str())],
    );
    let mut collection = json!({"get": list_op});
    let mut item = json!({"get": op("read", "get", "", vec![], &[("200", "OK", name)])});
    if r.writable {
        collection["post"] = op(
            "create",
            "post",
            "",
            [vec![body(name, true)], params(WRITE)].concat(),
            &[
                ("200", "OK", name),
                ("201", "Created", name),
                ("202", "Accepted", name),
            ],
        );
        collection["delete"] = op(
            "deletecollection",
            "deletecollection",
            "",
            [vec![body(DELETE_OPTIONS, false)], params(DELETE_COLLECTION)].concat(),
            &[("200", "OK", STATUS)],
        );
        item["put"] = op(
            "replace",
            "put",
            "",
            [vec![body(name, true)], params(WRITE)].concat(),
            &[("200", "OK", name), ("201", "Created", name)],
        );
        item["patch"] = op(
            "patch",
            "patch",
            "",
            [vec![body(PATCH, true)], params(PATCH_OPTIONS)].concat(),
            &[("200", "OK", name), ("201", "Created", name)],
        );
        item["delete"] = op(
            "delete",
            "delete",
            "",
            [vec![body(DELETE_OPTIONS, false)], params(DELETE)].concat(),
            &[("200", "OK", STATUS), ("202", "Accepted", STATUS)],
        );
    }
    collection["parameters"] = Value::Array(collection_params);
    item["parameters"] = Value::Array(item_params.clone());
    if r.writable && r.status_subresource {
        let status = json!({
            "get": op("read", "get", "status", vec![], &[("200", "OK", name)]),
            "put": op(
                "replace",
                "put",
                "status",
                [vec![body(name, true)], params(WRITE)].concat(),
                &[("200", "OK", name), ("201", "Created", name)],
            ),
            "patch": op(
                "patch",
                "patch",
                "status",
                [vec![body(PATCH, true)], params(PATCH_OPTIONS)].concat(),
                &[("200", "OK", name), ("201", "Created", name)],
            ),
            "parameters": item_params,
        });
        paths.insert(format!("{base}/{{name}}/status"), status);
    }
    if r.namespaced {
        let all = json!({
            "get": op("listall", "list", "", params(LIST), &[("200", "OK", list_name.as_str())]),
            "parameters": [pretty],
        });
        paths.insert(format!("/{}/{}", gv_prefix(r), r.plural), all);
    }
    paths.insert(base.clone(), collection);
    paths.insert(format!("{base}/{{name}}"), item);
}
