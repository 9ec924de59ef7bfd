//! The OpenAPI documents: `kubectl explain --recursive` shows a custom kind's apiVersion, kind
//! and the whole of metadata (ObjectMeta) as on a real cluster, built-in kinds carry their real
//! schemas, and `/openapi/v2` serves every kind in JSON with `x-kubernetes-group-version-kind`.

use crate::support::Env;
use crate::support::clients::Raw;
use serde_json::Value;

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

async fn get(env: &Env, accept: &str) -> (u16, String) {
    let (code, response) = Raw::new(&env.server, "GET", "/openapi/v2")
        .admin(&env.server)
        .header("Accept", accept)
        .send(&env.server)
        .await;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (code, body.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v2_serves_every_kind_in_json() {
    let env = Env::new().await;
    let (code, body) = get(&env, "application/json").await;
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&body).expect("JSON");
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
    // Every reference resolves within the document.
    for r in body.split("\"$ref\":\"").skip(1) {
        let target = r.split('"').next().unwrap_or("");
        let name = target.trim_start_matches("#/definitions/");
        assert!(defs.contains_key(name), "{target} is not defined");
    }
    assert!(
        doc["paths"]["/apis/csp.operator.dev/v1alpha1/namespaces/{namespace}/customers"]["get"]
            .is_object()
    );
    // Protobuf only: served in gnostic's form (tests below decode it).
    let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    assert_eq!(get(&env, pb).await.0, 200);
}
