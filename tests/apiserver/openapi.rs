//! The OpenAPI documents as kubectl, Argo CD and other clients read them.
//!
//! `kubectl explain` (v3, and `--output plaintext-openapiv2` over v2 protobuf), every kind and
//! its List in `/openapi/v2` with `x-kubernetes-group-version-kind`, the protobuf form read back
//! with gnostic's own `.proto` (not our encoder), and kube-openapi's content negotiation.

use crate::support::Env;
use crate::support::clients::Raw;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage, Value as Pb};
use serde_json::{Value, json};

/// What client-go's `OpenAPISchema()` (kubectl's v2 getter, Argo CD's cluster cache) sends.
const PB: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
/// The Content-Type kube-openapi answers protobuf with (either spelling asked).
const PB_ANSWER: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_shows_type_meta_and_object_meta() {
    let env = Env::new().await;
    let out = env
        .ok(&["explain", "purchasepermission", "--recursive"])
        .await;
    for field in [
        "apiVersion",
        "kind",
        "metadata",
        "ownerReferences",
        "finalizers",
        "spec",
        "status",
    ] {
        assert!(out.contains(field), "{field} in {out}");
    }
    let meta = env
        .ok(&["explain", "customers.metadata.ownerReferences"])
        .await;
    assert!(meta.contains("blockOwnerDeletion"), "{meta}");
    let data = env.ok(&["explain", "configmap.data"]).await;
    assert!(data.contains("map[string]string"), "{data}");
}

/// `kubectl explain --output plaintext-openapiv2` reads `/openapi/v2` in protobuf (client-go's
/// `OpenAPISchema()`): it fails on a server that does not serve that form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_reads_the_v2_protobuf_document() {
    let env = Env::new().await;
    let spec = env
        .ok(&[
            "explain",
            "purchasepermission.spec",
            "--output",
            "plaintext-openapiv2",
        ])
        .await;
    assert!(
        spec.contains("VERSION:  csp.operator.dev/v1alpha1"),
        "{spec}"
    );
    assert!(spec.contains("customerRef"), "{spec}");
    assert!(spec.contains("enabled\t<boolean>"), "{spec}");
    let data = env
        .ok(&[
            "explain",
            "configmap.data",
            "--output",
            "plaintext-openapiv2",
        ])
        .await;
    assert!(data.contains("map[string]string"), "{data}");
    let list = env
        .ok(&[
            "explain",
            "purchasepermissionlist",
            "--output",
            "plaintext-openapiv2",
        ])
        .await;
    assert!(
        list.contains("PurchasePermissionList is a list of PurchasePermission"),
        "{list}"
    );
}

/// GET /openapi/v2 with this Accept (and If-None-Match): code, head, body.
async fn fetch(env: &Env, accept: &str, if_none_match: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut raw = Raw::new(&env.server, "GET", "/openapi/v2")
        .admin(&env.server)
        .header("Accept", accept);
    if let Some(tag) = if_none_match {
        raw = raw.header("If-None-Match", tag);
    }
    raw.send_bytes(&env.server).await
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

async fn json_document(env: &Env) -> Value {
    let (code, head, body) = fetch(env, "application/json", None).await;
    assert_eq!(code, 200, "{head}");
    serde_json::from_slice(&body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v2_serves_every_kind_and_list_in_json() {
    let env = Env::new().await;
    let doc = json_document(&env).await;
    let body = doc.to_string();
    assert_eq!(doc["swagger"], "2.0");
    let defs = doc["definitions"].as_object().expect("definitions");
    let customer = &defs["dev.operator.csp.v1alpha1.Customer"];
    assert_eq!(
        customer["x-kubernetes-group-version-kind"][0]["kind"],
        "Customer"
    );
    assert_eq!(
        customer["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(defs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    assert_eq!(
        defs["io.k8s.api.core.v1.ConfigMap"]["x-kubernetes-group-version-kind"][0]["version"],
        "v1"
    );
    // Every kind has its List, with its own group-version-kind; no two definitions share one
    // (Argo CD's GVK parser refuses a document where they do).
    let mut gvks = std::collections::BTreeSet::new();
    for (name, def) in defs {
        for gvk in def["x-kubernetes-group-version-kind"]
            .as_array()
            .into_iter()
            .flatten()
        {
            assert!(gvks.insert(gvk.to_string()), "{gvk} twice ({name})");
            let kind = gvk["kind"].as_str().expect("kind");
            // Every served kind (meta/v1's Status and DeleteOptions are not served kinds).
            if !kind.ends_with("List") && !name.starts_with("io.k8s.apimachinery.") {
                let list = &defs[&format!("{name}List")];
                assert_eq!(
                    list["x-kubernetes-group-version-kind"][0]["kind"],
                    format!("{kind}List")
                );
                assert_eq!(
                    list["properties"]["items"]["items"]["$ref"],
                    format!("#/definitions/{name}")
                );
            }
        }
    }
    assert_eq!(
        defs["dev.operator.csp.v1alpha1.PurchasePermissionList"]["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
    );
    // Every reference resolves within the document.
    for r in body.split("\"$ref\":\"").skip(1) {
        let target = r.split('"').next().unwrap_or("");
        let name = target.trim_start_matches("#/definitions/");
        assert!(defs.contains_key(name), "{target} is not defined");
    }
    // Paths as the real server writes them: the list answers the List, deletes answer Status.
    let customers =
        &doc["paths"]["/apis/csp.operator.dev/v1alpha1/namespaces/{namespace}/customers"];
    assert_eq!(
        customers["get"]["operationId"],
        "listCspOperatorDevV1alpha1NamespacedCustomer"
    );
    assert_eq!(customers["get"]["x-kubernetes-action"], "list");
    assert_eq!(
        customers["get"]["responses"]["200"]["schema"]["$ref"],
        "#/definitions/dev.operator.csp.v1alpha1.CustomerList"
    );
    assert_eq!(
        customers["delete"]["responses"]["200"]["schema"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Status"
    );
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
    assert_eq!(patch["operationId"], "patchCoreV1NamespacedConfigMap");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"fieldValidation") && names.contains(&"body"),
        "{names:?}"
    );
    assert!(doc["paths"]["/apis/csp.operator.dev/v1alpha1/customers"]["get"].is_object());
    // No `oneOf` in v2 (not Swagger 2.0), and a described reference is a plain `$ref`.
    let or_array =
        &defs["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray"];
    assert!(or_array.get("oneOf").is_none(), "{or_array}");
    assert_eq!(
        defs["io.k8s.api.core.v1.ConfigMap"]["properties"]["metadata"]["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
}

// ---- the protobuf form, read with gnostic's OpenAPIv2.proto ----

/// `openapi.v2.Document` from tests/fixtures/OpenAPIv2.proto, compiled here by protox.
fn document_descriptor() -> MessageDescriptor {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut compiler = protox::Compiler::new([dir]).expect("compiler");
    compiler
        .open_file("OpenAPIv2.proto")
        .expect("OpenAPIv2.proto compiles");
    compiler
        .descriptor_pool()
        .get_message_by_name("openapi.v2.Document")
        .expect("openapi.v2.Document")
}

fn field(m: &DynamicMessage, name: &str) -> Pb {
    assert!(
        m.descriptor().get_field_by_name(name).is_some(),
        "{} has no field {name}",
        m.descriptor().full_name()
    );
    m.get_field_by_name(name)
        .map(|v| v.into_owned())
        .unwrap_or(Pb::Bool(false))
}

fn msg(m: &DynamicMessage, name: &str) -> DynamicMessage {
    assert!(
        m.has_field_by_name(name),
        "{} has no {name}",
        m.descriptor().full_name()
    );
    field(m, name).as_message().cloned().expect("a message")
}

fn text(m: &DynamicMessage, name: &str) -> String {
    field(m, name).as_str().unwrap_or_default().to_string()
}

fn list(m: &DynamicMessage, name: &str) -> Vec<Pb> {
    field(m, name)
        .as_list()
        .map(<[Pb]>::to_vec)
        .unwrap_or_default()
}

/// A `repeated Named*` field as (name, value) pairs, in order.
fn named(m: &DynamicMessage, name: &str) -> Vec<(String, DynamicMessage)> {
    list(m, name)
        .iter()
        .map(|e| {
            let e = e.as_message().expect("Named*");
            (text(e, "name"), msg(e, "value"))
        })
        .collect()
}

fn find(entries: &[(String, DynamicMessage)], name: &str) -> DynamicMessage {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// A vendor extension's value: gnostic keeps it as YAML text in `Any.yaml`.
fn extension(m: &DynamicMessage, key: &str) -> Value {
    let any = find(&named(m, "vendor_extension"), key);
    serde_saphyr::from_str(&text(&any, "yaml")).expect("the extension's YAML")
}

/// A `Schema`'s `$ref` (`_ref` in the message).
fn reference(schema: &DynamicMessage) -> String {
    text(schema, "_ref")
}

fn properties(schema: &DynamicMessage) -> Vec<(String, DynamicMessage)> {
    named(&msg(schema, "properties"), "additional_properties")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v2_protobuf_is_gnostics_document() {
    let env = Env::new().await;
    let (code, head, body) = fetch(&env, PB, None).await;
    assert_eq!(code, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some(PB_ANSWER));
    assert_eq!(header(&head, "vary"), Some("Accept"));
    let doc = DynamicMessage::decode(document_descriptor(), body.as_slice())
        .expect("the body decodes as openapi.v2.Document");
    assert_eq!(text(&doc, "swagger"), "2.0");
    let info = msg(&doc, "info");
    assert_eq!(text(&info, "title"), "Kubernetes");
    assert!(text(&info, "version").starts_with("v1."));
    let defs = named(&msg(&doc, "definitions"), "additional_properties");

    // A custom kind and its List, each with its group-version-kind.
    let permission = find(&defs, "dev.operator.csp.v1alpha1.PurchasePermission");
    assert_eq!(
        extension(&permission, "x-kubernetes-group-version-kind"),
        json!([{"group": "csp.operator.dev", "kind": "PurchasePermission", "version": "v1alpha1"}])
    );
    let spec = find(&properties(&permission), "spec");
    let enabled = find(&properties(&spec), "enabled");
    assert_eq!(
        list(&msg(&enabled, "type"), "value"),
        vec![Pb::String("boolean".into())]
    );
    let permissions = find(&defs, "dev.operator.csp.v1alpha1.PurchasePermissionList");
    assert_eq!(
        extension(&permissions, "x-kubernetes-group-version-kind"),
        json!([{"group": "csp.operator.dev", "kind": "PurchasePermissionList", "version": "v1alpha1"}])
    );
    assert_eq!(
        list(&permissions, "required"),
        vec![Pb::String("items".into())]
    );
    let items = find(&properties(&permissions), "items");
    let item = list(&msg(&items, "items"), "schema");
    assert_eq!(
        reference(item[0].as_message().expect("schema")),
        "#/definitions/dev.operator.csp.v1alpha1.PurchasePermission"
    );
    assert_eq!(
        reference(&find(&properties(&permissions), "metadata")),
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
    );

    // A built-in kind's real properties: ConfigMap.data is a map of strings.
    let config_map = find(&defs, "io.k8s.api.core.v1.ConfigMap");
    let props = properties(&config_map);
    let names: Vec<&str> = props.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "apiVersion",
            "binaryData",
            "data",
            "immutable",
            "kind",
            "metadata"
        ]
    );
    let data = find(&props, "data");
    assert_eq!(
        list(&msg(&data, "type"), "value"),
        vec![Pb::String("object".into())]
    );
    let values = msg(&msg(&data, "additional_properties"), "schema");
    assert_eq!(
        list(&msg(&values, "type"), "value"),
        vec![Pb::String("string".into())]
    );
    assert_eq!(
        reference(&find(&props, "metadata")),
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert_eq!(
        extension(
            &find(&defs, "io.k8s.api.core.v1.ConfigMapList"),
            "x-kubernetes-group-version-kind"
        ),
        json!([{"group": "", "kind": "ConfigMapList", "version": "v1"}])
    );

    // The same definitions and paths as the JSON document, in its order.
    let json = json_document(&env).await;
    let json_names: Vec<&String> = json["definitions"]
        .as_object()
        .expect("definitions")
        .keys()
        .collect();
    let pb_names: Vec<&String> = defs.iter().map(|(n, _)| n).collect();
    assert_eq!(pb_names, json_names);
    let paths = named(&msg(&doc, "paths"), "path");
    let pb_paths: Vec<&String> = paths.iter().map(|(n, _)| n).collect();
    let json_paths: Vec<&String> = json["paths"].as_object().expect("paths").keys().collect();
    assert_eq!(pb_paths, json_paths);

    // An operation: its action, and its parameters in their oneof members.
    let item = find(&paths, "/api/v1/namespaces/{namespace}/configmaps/{name}");
    let patch = msg(&item, "patch");
    assert_eq!(
        text(&patch, "operation_id"),
        "patchCoreV1NamespacedConfigMap"
    );
    assert_eq!(extension(&patch, "x-kubernetes-action"), json!("patch"));
    let params: Vec<DynamicMessage> = list(&patch, "parameters")
        .iter()
        .map(|p| msg(p.as_message().expect("ParametersItem"), "parameter"))
        .collect();
    let body = msg(&params[0], "body_parameter");
    assert_eq!(
        reference(&msg(&body, "schema")),
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    let query: Vec<String> = params[1..]
        .iter()
        .map(|p| {
            text(
                &msg(&msg(p, "non_body_parameter"), "query_parameter_sub_schema"),
                "name",
            )
        })
        .collect();
    assert!(query.contains(&"fieldValidation".to_string()), "{query:?}");
    let path_params = list(&item, "parameters");
    let name = msg(
        &msg(
            path_params[0].as_message().expect("ParametersItem"),
            "parameter",
        ),
        "non_body_parameter",
    );
    let name = msg(&name, "path_parameter_sub_schema");
    assert_eq!(text(&name, "name"), "name");
    assert_eq!(field(&name, "required"), Pb::Bool(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v2_negotiates_like_kube_openapi() {
    let env = Env::new().await;
    let json_type = |head: &str| header(head, "content-type").map(str::to_string);
    // JSON for JSON, for anything, and for JSON listed first.
    for accept in [
        "application/json",
        "*/*",
        "application/*",
        "application/json, application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
    ] {
        let (code, head, body) = fetch(&env, accept, None).await;
        assert_eq!(code, 200, "{accept}: {head}");
        assert_eq!(
            json_type(&head).as_deref(),
            Some("application/json"),
            "{accept}"
        );
        assert_eq!(body.first(), Some(&b'{'), "{accept}");
    }
    // Protobuf by either spelling, or preferred by q.
    for accept in [
        PB,
        PB_ANSWER,
        "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf;q=0.9",
    ] {
        let (code, head, _) = fetch(&env, accept, None).await;
        assert_eq!(code, 200, "{accept}: {head}");
        assert_eq!(json_type(&head).as_deref(), Some(PB_ANSWER), "{accept}");
    }
    // Neither: 406 with no body, as kube-openapi's handler writes it.
    for accept in [
        "application/yaml",
        "text/html",
        "application/vnd.kubernetes.protobuf",
    ] {
        let (code, head, body) = fetch(&env, accept, None).await;
        assert_eq!(code, 406, "{accept}: {head}");
        assert!(
            body.is_empty(),
            "{accept}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // One ETag for both forms; If-None-Match with it is 304 with no body.
    let (_, json_head, _) = fetch(&env, "application/json", None).await;
    let (_, pb_head, _) = fetch(&env, PB, None).await;
    let etag = header(&json_head, "etag").expect("ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(header(&pb_head, "etag"), Some(etag.as_str()));
    let (code, head, body) = fetch(&env, PB, Some(&etag)).await;
    assert_eq!(code, 304, "{head}");
    assert!(body.is_empty());
    let (code, _, _) = fetch(&env, PB, Some("\"something-else\"")).await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_fields_carry_their_patch_strategies_in_v2_and_v3() {
    let env = Env::new().await;
    let v2 = json_document(&env).await;
    let defs = &v2["definitions"];
    let tags = |schema: &Value| {
        (
            schema["x-kubernetes-patch-strategy"].clone(),
            schema["x-kubernetes-patch-merge-key"].clone(),
        )
    };
    let pod_spec = &defs["io.k8s.api.core.v1.PodSpec"]["properties"];
    assert_eq!(
        tags(&pod_spec["containers"]),
        (json!("merge"), json!("name"))
    );
    assert_eq!(
        tags(&pod_spec["volumes"]),
        (json!("merge,retainKeys"), json!("name"))
    );
    let container = &defs["io.k8s.api.core.v1.Container"]["properties"];
    assert_eq!(tags(&container["env"]), (json!("merge"), json!("name")));
    assert_eq!(
        tags(&container["ports"]),
        (json!("merge"), json!("containerPort"))
    );
    let deployment_spec = &defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"];
    assert_eq!(tags(&deployment_spec["strategy"]).0, json!("retainKeys"));
    let meta = &defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"];
    assert_eq!(tags(&meta["finalizers"]).0, json!("merge"));
    // RBAC subjects have no strategy (replaced whole), as on a real server.
    let binding = &defs["io.k8s.api.rbac.v1.RoleBinding"]["properties"];
    assert_eq!(tags(&binding["subjects"]), (Value::Null, Value::Null));

    // v3: the same tags, and patch operations that take strategic merge only for built-ins.
    let apps = v3_document(&env, "/openapi/v3/apis/apps/v1").await;
    let schemas = &apps["components"]["schemas"];
    let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(tags(containers), (json!("merge"), json!("name")));
    let patch = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    let media = patch["requestBody"]["content"]
        .as_object()
        .expect("a request body");
    assert!(media.contains_key("application/strategic-merge-patch+json"));
    let ours = v3_document(&env, "/openapi/v3/apis/csp.operator.dev/v1alpha1").await;
    let path = "/apis/csp.operator.dev/v1alpha1/namespaces/{namespace}/customers/{name}";
    let media = ours["paths"][path]["patch"]["requestBody"]["content"]
        .as_object()
        .expect("a request body");
    assert!(media.contains_key("application/merge-patch+json"));
    assert!(!media.contains_key("application/strategic-merge-patch+json"));
}

async fn v3_document(env: &Env, path: &str) -> Value {
    let (code, head, body) = Raw::new(&env.server, "GET", path)
        .admin(&env.server)
        .send_bytes(&env.server)
        .await;
    assert_eq!(code, 200, "{head}");
    serde_json::from_slice(&body).expect("JSON")
}
