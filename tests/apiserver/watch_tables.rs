//! `kubectl get -w` as Tables: every watch event is a one-row Table with the list's columns, so
//! a change prints all of them (not just NAME and AGE).

use crate::support::Env;
use crate::support::kubectl::{Watch, patch_status};
use serde_json::Value;

const PERMISSION: &str = "apiVersion: csp.operator.dev/v1alpha1
kind: PurchasePermission
metadata: {name: contoso, namespace: default}
spec: {customerRef: {name: contoso}, enabled: true}
";

/// The words of a printed line.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_watch_prints_every_column_of_each_change() {
    let env = Env::new().await;
    let f = env.manifest("p.yaml", PERMISSION);
    env.ok(&["apply", "-f", &f]).await;
    let mut watch = Watch::start(
        &env.kubectl,
        &["get", "cspperm", "-A", "-w", "--request-timeout=0"],
    );
    watch.wait_for(1, |l| l.starts_with("default"));
    assert_eq!(
        words(&watch.seen[0]),
        [
            "NAMESPACE",
            "NAME",
            "CUSTOMER",
            "ENABLED",
            "STATE",
            "READY",
            "REASON",
            "AGE"
        ],
        "{:?}",
        watch.seen
    );
    env.ok(&patch_status(
        "default",
        "contoso",
        r#"{"state":"Enabled","conditions":[{"type":"Ready","status":"True","reason":"PermissionEnabled","message":"on","lastTransitionTime":"2024-01-01T00:00:00Z"}]}"#,
    ))
    .await;
    watch.wait_for(1, |l| {
        l.contains("Enabled") && l.contains("PermissionEnabled")
    });
    let changed = watch
        .seen
        .iter()
        .find(|l| l.contains("PermissionEnabled"))
        .map(|l| words(l))
        .unwrap_or_default();
    assert_eq!(
        changed[..7],
        [
            "default",
            "contoso",
            "contoso",
            "true",
            "Enabled",
            "True",
            "PermissionEnabled"
        ],
        "{:?}",
        watch.seen
    );
    // The header is printed once.
    let headers = watch
        .seen
        .iter()
        .filter(|l| l.starts_with("NAMESPACE"))
        .count();
    assert_eq!(headers, 1, "{:?}", watch.seen);
}

/// The raw stream: the first event's Table carries the column definitions, later ones do not;
/// `includeObject` is honoured as for lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_are_tables_with_headers_once() {
    let env = Env::new().await;
    let f = env.manifest("p.yaml", PERMISSION);
    env.ok(&["apply", "-f", &f]).await;
    let request = hyper::http::Request::get(
        "/apis/csp.operator.dev/v1alpha1/namespaces/default/purchasepermissions?watch=true&timeoutSeconds=2&includeObject=Object",
    )
    .header(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .body(Vec::new())
    .expect("request");
    let client = env.client.clone();
    let watch = tokio::spawn(async move { client.request_text(request).await.expect("watch") });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    env.ok(&["label", "cspperm", "contoso", "x=y"]).await;
    let body = watch.await.expect("join");
    let events: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect();
    assert_eq!(events.len(), 2, "{body}");
    for (i, e) in events.iter().enumerate() {
        let t = &e["object"];
        assert_eq!(t["kind"], "Table", "{e}");
        assert_eq!(t["rows"].as_array().map(Vec::len), Some(1), "{e}");
        assert_eq!(t["rows"][0]["cells"][0], "contoso", "{e}");
        assert_eq!(t["rows"][0]["object"]["kind"], "PurchasePermission", "{e}");
        let defs = t["columnDefinitions"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(defs, if i == 0 { 7 } else { 0 }, "{e}");
    }
    assert_eq!(events[1]["type"], "MODIFIED");
    assert_eq!(
        events[1]["object"]["rows"][0]["object"]["metadata"]["labels"]["x"],
        "y"
    );
}
