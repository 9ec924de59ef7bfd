//! Lists and watches at a resourceVersion as the real server serves them (every page of a paged
//! list one snapshot, continue tokens that expire with 410, 504 for versions not reached,
//! resourceVersionMatch), and the requests a real server refuses (list and patch options,
//! strategic merge patches on custom resources, field selectors on undeclared fields,
//! finalizers added during deletion, delete preconditions).

use crate::support::Env;
use crate::support::clients::client_for;
use csp_operator::api::{Customer, CustomerSpec};
use futures::StreamExt;
use http_body_util::BodyExt;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const NS: &str = "default";
const CUSTOMERS: &str = "/apis/csp.operator.dev/v1alpha1/namespaces/default/customers";

fn customer(name: &str, n: u64) -> Customer {
    Customer::new(
        name,
        CustomerSpec {
            tenant_id: format!("2b3c4d5e-0000-4000-8000-{n:012}"),
            company_name: format!("Company {n}"),
            domain: None,
        },
    )
}

async fn create_customers(api: &Api<Customer>, names: &[&str]) {
    for (n, name) in names.iter().enumerate() {
        api.create(&PostParams::default(), &customer(name, n as u64))
            .await
            .expect("create");
    }
}

/// A request sent as it is: the HTTP code, the headers' Retry-After, and the JSON answer.
async fn call(
    env: &Env,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Option<String>, Value) {
    let request = hyper::http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .expect("request");
    // Without the client's retries: a 504 is what is being looked at.
    let client = client_for(&env.server).without_retries().build();
    let response = client.send(request).await.expect("send");
    let code = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (code, retry_after, v)
}

async fn get(env: &Env, path: &str) -> (u16, Value) {
    let (code, _, v) = call(env, "GET", path, "application/json", "").await;
    (code, v)
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.pointer("/metadata/name").and_then(Value::as_str))
        .map(String::from)
        .collect()
}

fn list_rv(list: &Value) -> u64 {
    list.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok())
        .expect("list resourceVersion")
}

/// kube-rs pages through a list while objects are deleted, created and changed: every page is
/// the first page's snapshot, with the first page's resourceVersion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_of_a_list_is_the_first_pages_snapshot() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    create_customers(&api, &["c0", "c1", "c2", "c3", "c4"]).await;

    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    let snapshot_rv = first.metadata.resource_version.clone().expect("rv");
    assert_eq!(
        first.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        ["c0", "c1"]
    );
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().expect("continue");

    // Between the pages: c2 goes, c2a comes, c3 changes.
    api.delete("c2", &DeleteParams::default())
        .await
        .expect("delete");
    api.create(&PostParams::default(), &customer("c2a", 9))
        .await
        .expect("create");
    let patch = json!({"metadata": {"labels": {"changed": "yes"}}});
    api.patch("c3", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");

    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(
        second.metadata.resource_version.as_deref(),
        Some(snapshot_rv.as_str())
    );
    assert_eq!(
        second
            .items
            .iter()
            .map(|c| c.name_any())
            .collect::<Vec<_>>(),
        ["c2", "c3"]
    );
    assert!(
        second.items[1].labels().is_empty(),
        "c3 as it was: {:?}",
        second.items[1]
    );
    assert_eq!(second.metadata.remaining_item_count, Some(1));
    let token = second.metadata.continue_.clone().expect("continue");
    let third = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 3");
    assert_eq!(
        third.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        ["c4"]
    );
    assert_eq!(third.metadata.continue_, None);
    assert_eq!(third.metadata.remaining_item_count, None);

    // A fresh list sees the changes; with a label selector no count is given.
    let now = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(
        now.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        ["c0", "c1", "c2a", "c3", "c4"]
    );
    let selected = api
        .list(&ListParams::default().limit(1).labels("!absent"))
        .await
        .expect("selected");
    assert!(selected.metadata.continue_.is_some());
    assert_eq!(selected.metadata.remaining_item_count, None);
}

/// Once the history no longer reaches the list's version, its continue token gets 410 with a
/// token that goes on at the latest version, as the real server's etcd3 store answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continue_token_expires_with_410_once_compacted() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    create_customers(&api, &["a", "b", "c"]).await;
    let (code, first) = get(&env, &format!("{CUSTOMERS}?limit=1")).await;
    assert_eq!(code, 200, "{first}");
    let token = first
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .expect("continue");

    api.create(&PostParams::default(), &customer("bb", 7))
        .await
        .expect("create");
    env.server.compact();
    let (code, expired) = get(&env, &format!("{CUSTOMERS}?limit=1&continue={token}")).await;
    assert_eq!(code, 410, "{expired}");
    assert_eq!(expired["reason"], "Expired");
    assert!(
        expired["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The provided continue parameter is too old")),
        "{expired}"
    );
    let fresh = expired
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .expect("inconsistent continue token");

    // The offered token goes on after "a" at the latest version: "bb" shows up.
    let (code, rest) = get(&env, &format!("{CUSTOMERS}?continue={fresh}")).await;
    assert_eq!(code, 200, "{rest}");
    assert_eq!(names(&rest), ["b", "bb", "c"]);
    assert!(list_rv(&rest) > list_rv(&first));

    // A token this server did not issue is a 400.
    let (code, bad) = get(&env, &format!("{CUSTOMERS}?continue=bm90LWEtdG9rZW4")).await;
    assert_eq!(code, 400, "{bad}");
}

/// `resourceVersionMatch=Exact` serves an earlier snapshot until it is compacted away;
/// `resourceVersion=0` and `NotOlderThan` serve the latest objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_lists_serve_an_earlier_snapshot_until_compacted() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    create_customers(&api, &["x", "y"]).await;
    let (_, before) = get(&env, CUSTOMERS).await;
    let rv = list_rv(&before);
    api.delete("x", &DeleteParams::default())
        .await
        .expect("delete");
    create_customers(&api, &["z"]).await;

    let exact = format!("{CUSTOMERS}?resourceVersion={rv}&resourceVersionMatch=Exact");
    let (code, then) = get(&env, &exact).await;
    assert_eq!(code, 200, "{then}");
    assert_eq!(names(&then), ["x", "y"]);
    assert_eq!(list_rv(&then), rv);

    for latest in [
        format!("{CUSTOMERS}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan"),
        format!("{CUSTOMERS}?resourceVersion={rv}"),
        format!("{CUSTOMERS}?resourceVersion=0"),
    ] {
        let (code, now) = get(&env, &latest).await;
        assert_eq!(code, 200, "{latest}: {now}");
        assert_eq!(names(&now), ["y", "z"], "{latest}");
        assert!(list_rv(&now) > rv, "{latest}");
    }
    // A paged list at a version without a match is served at exactly that version.
    let (_, paged) = get(&env, &format!("{CUSTOMERS}?resourceVersion={rv}&limit=5")).await;
    assert_eq!(names(&paged), ["x", "y"]);

    env.server.compact();
    let (code, gone) = get(&env, &exact).await;
    assert_eq!(code, 410, "{gone}");
    assert_eq!(
        gone["message"],
        "The resourceVersion for the provided list is too old."
    );
}

/// A list at a version the server has not reached waits the watch cache's 3 s for it, then
/// answers 504 with the real status details; a write that reaches it in time lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_ahead_of_the_server_times_out_with_504() {
    let env = Env::new().await;
    let current = env.server.resource_version();
    let ahead = current + 1000;
    let started = Instant::now();
    let (code, retry_after, status) = call(
        &env,
        "GET",
        &format!("{CUSTOMERS}?resourceVersion={ahead}&resourceVersionMatch=NotOlderThan"),
        "application/json",
        "",
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(code, 504, "{status}");
    assert_eq!(status["reason"], "Timeout");
    let message = status["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(&format!(
            "Timeout: Too large resource version: {ahead}, current: "
        )),
        "{status}"
    );
    assert_eq!(
        status.pointer("/details/retryAfterSeconds"),
        Some(&json!(1))
    );
    assert_eq!(
        status.pointer("/details/causes/0/reason"),
        Some(&json!("ResourceVersionTooLarge"))
    );
    assert_eq!(retry_after.as_deref(), Some("1"));

    // The next write reaches the version asked for while the list waits.
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    let next = env.server.resource_version() + 1;
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            create_customers(&api, &["late"]).await;
        })
    };
    let (code, list) = get(&env, &format!("{CUSTOMERS}?resourceVersion={next}")).await;
    writer.await.expect("writer");
    assert_eq!(code, 200, "{list}");
    assert_eq!(names(&list), ["late"]);
}

/// A watch from a version not reached yet gets only what comes after it; asked for the initial
/// events at such a version, it gets the 504 as an ERROR event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ahead_of_the_server_starts_at_its_version() {
    let env = Env::new().await;
    let api: Api<Customer> = Api::namespaced(env.client.clone(), NS);
    let from = env.server.resource_version() + 2;
    let request = hyper::http::Request::get(format!(
        "{CUSTOMERS}?watch=true&resourceVersion={from}&timeoutSeconds=5"
    ))
    .body(kube::client::Body::empty())
    .expect("request");
    let mut events = env
        .client
        .send(request)
        .await
        .expect("watch")
        .into_body()
        .into_data_stream();
    create_customers(&api, &["one", "two", "three"]).await;
    let mut seen = String::new();
    while !seen.contains("\"three\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        !seen.contains("\"one\"") && !seen.contains("\"two\""),
        "{seen}"
    );

    let ahead = env.server.resource_version() + 1000;
    let request = hyper::http::Request::get(format!(
        "{CUSTOMERS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion={ahead}"
    ))
    .body(kube::client::Body::empty())
    .expect("request");
    let client = client_for(&env.server).without_retries().build();
    let response = client.send(request).await.expect("watch");
    assert_eq!(response.status().as_u16(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let event: Value = serde_json::from_slice(&body).expect("one event");
    assert_eq!(event["type"], "ERROR", "{event}");
    assert_eq!(event.pointer("/object/code"), Some(&json!(504)), "{event}");
    assert_eq!(
        event.pointer("/object/reason"),
        Some(&json!("Timeout")),
        "{event}"
    );
}

/// The list option combinations `ValidateListOptions` refuses (422), and a resourceVersion
/// beside a continue token (400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_options_a_real_server_refuses_are_refused() {
    let env = Env::new().await;
    let cases = [
        (
            "resourceVersionMatch=NotOlderThan",
            422,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            "resourceVersion=5&resourceVersionMatch=Newest",
            422,
            "resourceVersionMatch: Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
        ),
        (
            "resourceVersion=0&resourceVersionMatch=Exact",
            422,
            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        ),
        (
            "sendInitialEvents=true",
            422,
            "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ),
    ];
    for (query, want, text) in cases {
        let (code, status) = get(&env, &format!("{CUSTOMERS}?{query}")).await;
        assert_eq!(code, want, "{query}: {status}");
        let message = status["message"].as_str().unwrap_or("");
        assert!(message.contains(text), "{query}: {message}");
    }
    let (code, status) = get(
        &env,
        &format!("{CUSTOMERS}?watch=true&sendInitialEvents=true"),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"].as_str().is_some_and(|m| m.contains(
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        )),
        "{status}"
    );
    let (code, status) = get(
        &env,
        &format!("{CUSTOMERS}?watch=true&resourceVersion=1&resourceVersionMatch=NotOlderThan"),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    let (_, first) = get(&env, "/api/v1/namespaces?limit=1").await;
    let token = first
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .expect("continue");
    let (code, status) = get(
        &env,
        &format!("/api/v1/namespaces?continue={token}&resourceVersion=7"),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(
        status["message"],
        "specifying resource version is not allowed when using continue"
    );
}

const CUSTOMER_YAML: &str = "apiVersion: csp.operator.dev/v1alpha1
kind: Customer
metadata: {name: contoso, namespace: default}
spec: {tenantId: 6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40, companyName: Contoso}
";

/// kubectl's default (strategic merge) patch of a custom resource is refused with 415, as
/// custom resources have no patch strategies; a ConfigMap still takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strategic_merge_patch_of_a_custom_resource_is_415() {
    let env = Env::new().await;
    let f = env.manifest("c.yaml", CUSTOMER_YAML);
    env.ok(&["apply", "-f", &f]).await;
    let err = env
        .fails(&[
            "patch",
            "customer",
            "contoso",
            "-p",
            r#"{"spec":{"companyName":"New"}}"#,
        ])
        .await;
    assert!(
        err.contains("accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
        "{err}"
    );
    env.ok(&["create", "configmap", "settings", "--from-literal=a=1"])
        .await;
    env.ok(&[
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ])
    .await;
    assert_eq!(
        env.jsonpath("configmap/settings", NS, "{.data.a}").await,
        "2"
    );
}

/// `force` belongs to apply only, and apply must name its field manager (422 on PatchOptions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_options_a_real_server_refuses_are_refused() {
    let env = Env::new().await;
    let f = env.manifest("c.yaml", CUSTOMER_YAML);
    env.ok(&["apply", "-f", &f]).await;
    let path = format!("{CUSTOMERS}/contoso");
    let (code, _, status) = call(
        &env,
        "PATCH",
        &format!("{path}?force=true&fieldManager=me"),
        "application/merge-patch+json",
        r#"{"spec":{"companyName":"Forced"}}"#,
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    let (code, _, status) = call(
        &env,
        "PATCH",
        &path,
        "application/apply-patch+yaml",
        "apiVersion: csp.operator.dev/v1alpha1\nkind: Customer\nmetadata: {name: contoso}\n",
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(
        status.pointer("/details/causes/0/field"),
        Some(&json!("fieldManager"))
    );
}

/// Field selectors name only what the kind lets be selected: metadata.name and (namespaced)
/// metadata.namespace, a core kind's own fields, a CRD's `selectableFields`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selectors_on_undeclared_fields_are_400() {
    let env = Env::new().await;
    let f = env.manifest("c.yaml", CUSTOMER_YAML);
    env.ok(&["apply", "-f", &f]).await;
    let err = env
        .fails(&[
            "get",
            "customers",
            "--field-selector",
            "spec.companyName=Contoso",
        ])
        .await;
    assert!(
        err.contains("field label not supported: spec.companyName"),
        "{err}"
    );
    let by_name = env
        .ok(&[
            "get",
            "customers",
            "--field-selector",
            "metadata.name=contoso",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(by_name.trim(), "customer.csp.operator.dev/contoso");
    env.ok(&["get", "secrets", "--field-selector", "type=Opaque"])
        .await;
    let err = env
        .fails(&["get", "configmaps", "--field-selector", "data.a=1"])
        .await;
    assert!(
        err.contains(
            r#""data.a" is not a known field selector: only "metadata.name", "metadata.namespace""#
        ),
        "{err}"
    );

    let crd = env.manifest("widgets.yaml", WIDGETS_CRD);
    env.ok(&["apply", "-f", &crd]).await;
    env.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
    ])
    .await;
    let widgets = env.manifest("w.yaml", WIDGETS);
    env.ok(&["apply", "-f", &widgets]).await;
    let blue = env
        .ok(&[
            "get",
            "widgets",
            "--field-selector",
            "spec.color=blue",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(blue.trim(), "widget.example.com/sky");
    let err = env
        .fails(&["get", "widgets", "--field-selector", "spec.size=1"])
        .await;
    assert!(
        err.contains("field label not supported: spec.size"),
        "{err}"
    );
}

const WIDGETS_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    selectableFields: [{jsonPath: .spec.color}]
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string}
              size: {type: integer}
";

const WIDGETS: &str = "apiVersion: example.com/v1
kind: Widget
metadata: {name: sky, namespace: default}
spec: {color: blue, size: 1}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: grass, namespace: default}
spec: {color: green, size: 2}
";

/// Deletion starting bumps generation; a finalizer added then is 422 Invalid; a delete whose
/// uid precondition does not match is a 409 worded as the real storage error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_bumps_generation_and_refuses_new_finalizers() {
    let env = Env::new().await;
    let held = CUSTOMER_YAML.replace(
        "namespace: default}",
        "namespace: default, finalizers: [example.com/hold]}",
    );
    let f = env.manifest("c.yaml", &held);
    env.ok(&["apply", "-f", &f]).await;
    let generation = "{.metadata.generation}";
    assert_eq!(env.jsonpath("customer/contoso", NS, generation).await, "1");
    env.ok(&["delete", "customer", "contoso", "--wait=false"])
        .await;
    assert_eq!(env.jsonpath("customer/contoso", NS, generation).await, "2");

    let err = env
        .fails(&[
            "patch",
            "customer",
            "contoso",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold","example.com/more"]}}"#,
        ])
        .await;
    assert!(
        err.contains(r#"Customer "contoso" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/more"}"#),
        "{err}"
    );

    let uid = env
        .jsonpath("customer/contoso", NS, "{.metadata.uid}")
        .await;
    let (code, _, status) = call(
        &env,
        "DELETE",
        &format!("{CUSTOMERS}/contoso"),
        "application/json",
        r#"{"preconditions":{"uid":"not-the-uid"}}"#,
    )
    .await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(
        status["message"],
        format!(
            "Operation cannot be fulfilled on customers.csp.operator.dev \"contoso\": StorageError: invalid object, Code: 4, Key: /registry/csp.operator.dev/customers/default/contoso, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
        )
    );
}

/// A create without `fieldManager` is recorded under the User-Agent's product, as the real
/// server does (kube-rs names no manager).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_without_field_manager_is_owned_by_its_user_agent() {
    let env = Env::new().await;
    let request = hyper::http::Request::post(CUSTOMERS)
        .header("Content-Type", "application/json")
        .header("User-Agent", "lightkube/0.15 (python)")
        .body(serde_json::to_vec(&customer("ua", 1)).expect("json"))
        .expect("request");
    let created: Value =
        serde_json::from_str(&env.client.request_text(request).await.expect("create"))
            .expect("json");
    let managers: Vec<(&str, &str)> = created
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["manager"].as_str().unwrap_or(""),
                m["operation"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(managers, [("lightkube", "Update")], "{created}");
}
