//! Field ownership of updates: `kubectl replace`, `patch`, `label` record `Update` managedFields
//! entries owning the fields they changed (taken from other managers), so a later
//! `kubectl apply --server-side` names the right owner in its conflict.

use crate::support::Env;
use serde_json::Value;

const CUSTOMER: &str = "apiVersion: csp.operator.dev/v1alpha1
kind: Customer
metadata: {name: contoso, namespace: default}
spec: {tenantId: 6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40, companyName: Contoso Ltd}
";

/// The managedFields entries as (manager, operation, owned paths under spec and metadata).
async fn owners_of(env: &Env, name: &str) -> Vec<(String, String, Value)> {
    let out = env
        .ok(&[
            "get",
            &format!("cspcust/{name}"),
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    let obj: Value = serde_json::from_str(&out).expect("kubectl prints JSON");
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

async fn owners(env: &Env) -> Vec<(String, String, Value)> {
    owners_of(env, "contoso").await
}

fn owns(owners: &[(String, String, Value)], manager: &str, pointer: &str) -> bool {
    owners
        .iter()
        .any(|(m, _, f)| m == manager && f.pointer(pointer).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_conflicts_name_the_manager_that_updated_the_field() {
    let env = Env::new().await;
    let applied = env.manifest("c.yaml", CUSTOMER);
    env.ok(&["apply", "--server-side", "-f", &applied]).await;
    let company = "/f:spec/f:companyName";
    let first = owners(&env).await;
    assert!(owns(&first, "kubectl", company), "{first:?}");

    // kubectl replace takes the field it changed (and only that one).
    let replaced = env.manifest(
        "r.yaml",
        &CUSTOMER.replace("Contoso Ltd", "Contoso Replaced"),
    );
    env.ok(&["replace", "-f", &replaced]).await;
    let after_replace = owners(&env).await;
    assert!(
        owns(&after_replace, "kubectl-replace", company),
        "{after_replace:?}"
    );
    assert!(
        !owns(&after_replace, "kubectl-replace", "/f:spec/f:tenantId"),
        "{after_replace:?}"
    );
    assert!(
        !owns(&after_replace, "kubectl", company),
        "{after_replace:?}"
    );
    assert!(
        owns(&after_replace, "kubectl", "/f:spec/f:tenantId"),
        "{after_replace:?}"
    );
    assert!(
        after_replace
            .iter()
            .any(|(m, op, _)| m == "kubectl-replace" && op == "Update")
    );
    let err = env.fails(&["apply", "--server-side", "-f", &applied]).await;
    assert!(
        err.contains(
            r#"conflict with "kubectl-replace" using csp.operator.dev/v1alpha1: .spec.companyName"#
        ),
        "{err}"
    );

    // A merge patch moves it on again; the replacer, left owning nothing, is gone.
    env.ok(&[
        "patch",
        "cspcust",
        "contoso",
        "--type=merge",
        "-p",
        r#"{"spec":{"companyName":"Contoso Patched"}}"#,
    ])
    .await;
    let after_patch = owners(&env).await;
    assert!(
        owns(&after_patch, "kubectl-patch", company),
        "{after_patch:?}"
    );
    assert!(
        !after_patch.iter().any(|(m, _, _)| m == "kubectl-replace"),
        "{after_patch:?}"
    );
    let err = env.fails(&["apply", "--server-side", "-f", &applied]).await;
    assert!(
        err.contains(
            r#"conflict with "kubectl-patch" using csp.operator.dev/v1alpha1: .spec.companyName"#
        ),
        "{err}"
    );

    // Labels are owned per key.
    env.ok(&["label", "cspcust", "contoso", "tier=gold"]).await;
    assert!(owns(
        &owners(&env).await,
        "kubectl-label",
        "/f:metadata/f:labels/f:tier"
    ));

    // Forcing takes the field back.
    env.ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &applied,
    ])
    .await;
    let forced = owners(&env).await;
    assert!(owns(&forced, "kubectl", company), "{forced:?}");
    assert!(
        !forced.iter().any(|(m, _, _)| m == "kubectl-patch"),
        "{forced:?}"
    );
    assert!(
        owns(&forced, "kubectl-label", "/f:metadata/f:labels/f:tier"),
        "{forced:?}"
    );
}

/// Without `fieldManager` the manager is the User-Agent's product.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_without_field_manager_is_named_by_its_user_agent() {
    let env = Env::new().await;
    let applied = env.manifest("c.yaml", CUSTOMER);
    env.ok(&["apply", "--server-side", "-f", &applied]).await;
    let request = hyper::http::Request::patch(
        "/apis/csp.operator.dev/v1alpha1/namespaces/default/customers/contoso",
    )
    .header("Content-Type", "application/merge-patch+json")
    .header("User-Agent", "dashboard/2.7 (linux)")
    .body(br#"{"spec":{"companyName":"From the dashboard"}}"#.to_vec())
    .expect("request");
    env.client.request_text(request).await.expect("patch");
    // kubectl names its creates: the creator owns what it set.
    let created = env.manifest("d.yaml", &CUSTOMER.replace("name: contoso", "name: dunder"));
    env.ok(&["create", "-f", &created]).await;
    let creator = owners_of(&env, "dunder").await;
    assert!(
        owns(&creator, "kubectl-create", "/f:spec/f:tenantId"),
        "{creator:?}"
    );
    assert!(owns(
        &owners(&env).await,
        "dashboard",
        "/f:spec/f:companyName"
    ));
    let err = env.fails(&["apply", "--server-side", "-f", &applied]).await;
    assert!(
        err.contains(
            r#"conflict with "dashboard" using csp.operator.dev/v1alpha1: .spec.companyName"#
        ),
        "{err}"
    );
}
