//! Deleting a CRD as the real server does: Terminating while its objects are deleted (their
//! finalizers honoured), no new objects meanwhile, and the CRD gone with the last object.

use crate::support::Env;
use crate::support::poll;

const CUSTOMERS: &str = "apiVersion: csp.operator.dev/v1alpha1
kind: Customer
metadata: {name: held, namespace: default, finalizers: [example.com/hold]}
spec: {tenantId: 6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40, companyName: Held Ltd}
---
apiVersion: csp.operator.dev/v1alpha1
kind: Customer
metadata: {name: plain, namespace: default}
spec: {tenantId: 7f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40, companyName: Plain Ltd}
";

const CRD: &str = "crd/customers.csp.operator.dev";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_with_a_finalizer_holds_its_crd_until_released() {
    let env = Env::new().await;
    let f = env.manifest("c.yaml", CUSTOMERS);
    env.ok(&["apply", "-f", &f]).await;
    env.ok(&["delete", CRD, "--wait=false"]).await;

    // Terminating: marked, with the cleanup finalizer and the condition.
    let state = env
        .jsonpath(
            CRD,
            None,
            r#"{.metadata.finalizers}/{.status.conditions[?(@.type=="Terminating")].status}"#,
        )
        .await;
    assert_eq!(
        state, r#"["customresourcecleanup.apiextensions.k8s.io"]/True"#,
        "{state}"
    );
    assert!(
        !env.jsonpath(CRD, None, "{.metadata.deletionTimestamp}")
            .await
            .is_empty()
    );
    // The object without a finalizer went at once; the held one is marked and still served.
    env.fails(&["get", "cspcust", "plain"]).await;
    let held = env
        .jsonpath("cspcust/held", "default", "{.metadata.deletionTimestamp}")
        .await;
    assert!(!held.is_empty());
    // No new objects meanwhile.
    let again = env.manifest("p.yaml", &CUSTOMERS[CUSTOMERS.find("---").unwrap_or(0)..]);
    let err = env.fails(&["apply", "-f", &again]).await;
    assert!(
        err.contains("MethodNotAllowed")
            && err.contains("create not allowed while custom resource definition is terminating"),
        "{err}"
    );

    // Its controller releases it: the object goes, and the CRD with it.
    env.ok(&[
        "patch",
        "cspcust",
        "held",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    env.ok(&["wait", "--for=delete", CRD, "--timeout=20s"])
        .await;
    poll::eventually("customers no longer served", || async {
        !env.kubectl(&["get", "cspcust"]).await.status.success()
    })
    .await;
    // The kind can be installed again.
    env.ok(&[
        "apply",
        "-f",
        &format!("{}/customers.yaml", crate::support::paths::CRDS),
    ])
    .await;
    env.ok(&["wait", "--for=condition=Established", CRD, "--timeout=20s"])
        .await;
    env.ok(&["apply", "-f", &again]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_crd_without_held_objects_returns_when_gone() {
    let env = Env::new().await;
    let plain = &CUSTOMERS[CUSTOMERS.find("---").unwrap_or(0)..];
    let f = env.manifest("p.yaml", plain);
    env.ok(&["apply", "-f", &f]).await;
    let out = env.ok(&["delete", CRD, "--timeout=20s"]).await;
    assert!(out.contains("deleted"), "{out}");
    env.fails(&["get", CRD]).await;
}
