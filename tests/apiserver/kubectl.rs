//! The real kubectl against the embedded API server: what a user types must work as on a real
//! cluster, and bad input must be refused with a message naming the field.

use crate::support::Env;
use crate::support::kubectl::Watch;
use crate::support::paths::{CRDS, EXAMPLES};

const CUSTOMER: &str = "apiVersion: csp.operator.dev/v1alpha1
kind: Customer
metadata: {name: contoso, labels: {tier: gold}}
spec: {tenantId: 6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40, companyName: Contoso Ltd}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_describe_and_reapply() {
    let env = Env::new().await;
    // Client-side apply of the CRDs themselves: unchanged (they are installed already).
    let out = env.ok(&["apply", "-f", CRDS]).await;
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/customers.csp.operator.dev"),
        "{out}"
    );

    let f = env.manifest("c.yaml", CUSTOMER);
    let out = env.ok(&["apply", "-f", &f]).await;
    assert!(
        out.contains("customer.csp.operator.dev/contoso created"),
        "{out}"
    );
    let out = env.ok(&["apply", "-f", &f]).await;
    assert!(
        out.contains("customer.csp.operator.dev/contoso unchanged"),
        "{out}"
    );

    let table = env.ok(&["get", "cspcust"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TENANT",
            "COMPANY",
            "SUBSCRIPTIONS",
            "PERMISSION",
            "READY",
            "AGE"
        ]
    );
    assert!(
        table.contains("6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40"),
        "{table}"
    );

    let yaml = env.ok(&["get", "customer", "contoso", "-o", "yaml"]).await;
    assert!(
        yaml.contains("companyName: Contoso Ltd") && yaml.contains("uid:"),
        "{yaml}"
    );
    let desc = env
        .ok(&["describe", "customers.csp.operator.dev", "contoso"])
        .await;
    assert!(desc.contains("Tenant Id:"), "{desc}");

    // --sort-by asks for whole objects in the Table rows.
    let sorted = env
        .ok(&["get", "cspcust", "--sort-by=.spec.companyName"])
        .await;
    assert!(sorted.contains("contoso"), "{sorted}");

    // Label selectors.
    assert!(
        env.ok(&["get", "cspcust", "-l", "tier=gold", "-o", "name"])
            .await
            .contains("contoso")
    );
    assert!(
        !env.ok(&["get", "cspcust", "-l", "tier in (silver)", "-o", "name"])
            .await
            .contains("contoso")
    );
    assert!(
        env.ok(&["get", "cspcust", "-l", "!missing", "-o", "name"])
            .await
            .contains("contoso")
    );

    // Server-side apply, twice.
    let out = env.ok(&["apply", "--server-side", "-f", &f]).await;
    assert!(out.contains("serverside-applied"), "{out}");

    // Dry run stores nothing.
    let other = env.manifest("o.yaml", &CUSTOMER.replace("name: contoso,", "name: dry,"));
    env.ok(&["apply", "--dry-run=server", "-f", &other]).await;
    env.fails(&["get", "cspcust", "dry"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_are_rejected_naming_the_field() {
    let env = Env::new().await;
    let cases = [
        ("bad-guid", CUSTOMER.replace("6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40", "not-a-guid"), "spec.tenantId"),
        ("missing", CUSTOMER.replace(", companyName: Contoso Ltd", ""), "spec.companyName"),
        ("unknown", CUSTOMER.replace("companyName: Contoso Ltd", "companyName: Contoso Ltd, colour: blue"), "spec.colour"),
        (
            "enum",
            "apiVersion: csp.operator.dev/v1alpha1\nkind: AzureSubscription\nmetadata: {name: s}\nspec: {customerRef: {name: c}, subscriptionId: 0b9e3c1d-5a2f-4c8e-b7d6-1e2f3a4b5c6d, offer: Azure}\n".to_string(),
            "spec.offer",
        ),
        (
            "dup-resources",
            "apiVersion: csp.operator.dev/v1alpha1\nkind: PurchasePermission\nmetadata: {name: p}\nspec: {customerRef: {name: c}, resources: [AzureReservations, AzureReservations]}\n".to_string(),
            "spec.resources",
        ),
    ];
    for (name, yaml, field) in cases {
        let f = env.manifest(&format!("{name}.yaml"), &yaml);
        let err = env.fails(&["apply", "-f", &f]).await;
        assert!(
            err.contains(field),
            "{name}: error should name {field}: {err}"
        );
    }
    let listed = env.ok(&["get", "csp", "-o", "name"]).await;
    assert!(listed.trim().is_empty(), "nothing stored: {listed}");

    // Immutable tenantId.
    let f = env.manifest("c.yaml", CUSTOMER);
    env.ok(&["apply", "-f", &f]).await;
    let changed = env.manifest("c2.yaml", &CUSTOMER.replace("6f1c2a44", "7f1c2a44"));
    let err = env.fails(&["apply", "-f", &changed]).await;
    assert!(
        err.contains("spec.tenantId") && err.contains("immutable"),
        "{err}"
    );
    let tenant = env
        .ok(&[
            "get",
            "cspcust",
            "contoso",
            "-o",
            "jsonpath={.spec.tenantId}",
        ])
        .await;
    assert_eq!(tenant, "6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_watch_wait_and_delete_with_finalizer() {
    let env = Env::new().await;
    let mut docs = String::new();
    for i in 0..7 {
        docs.push_str(&format!(
            "---\napiVersion: csp.operator.dev/v1alpha1\nkind: Customer\nmetadata: {{name: c{i}}}\nspec: {{tenantId: 00000000-0000-4000-8000-00000000000{i}, companyName: C{i}}}\n"
        ));
    }
    let f = env.manifest("many.yaml", &docs);
    env.ok(&["apply", "-f", &f]).await;
    let out = env
        .kubectl(&["get", "cspcust", "--chunk-size=2", "-o", "name", "-v=6"])
        .await;
    let names = String::from_utf8_lossy(&out.stdout);
    assert_eq!(names.lines().count(), 7, "{names}");
    // Four pages of at most two: three requests carry a continue token.
    let log = String::from_utf8_lossy(&out.stderr);
    let pages = log.lines().filter(|l| l.contains("limit=2")).count();
    let continued = log.lines().filter(|l| l.contains("continue=")).count();
    assert_eq!((pages, continued), (4, 3), "{log}");

    // wait --for=condition sees a status written later.
    let waiter = {
        let kubectl = env.kubectl.clone();
        tokio::task::spawn_blocking(move || {
            kubectl.output(&[
                "wait",
                "--for=condition=Ready",
                "customer/c1",
                "--timeout=20s",
            ])
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    env.ok(&[
        "patch", "customer", "c1", "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Registered","message":"","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}"#,
    ])
    .await;
    let out = waiter.await.expect("join");
    assert!(
        out.status.success(),
        "wait: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Delete with a finalizer: the object stays until the finalizer goes.
    env.ok(&[
        "patch",
        "customer",
        "c2",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .await;
    env.ok(&["delete", "customer", "c2", "--wait=false"]).await;
    let ts = env
        .ok(&[
            "get",
            "customer",
            "c2",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(!ts.is_empty(), "deletionTimestamp set");
    env.ok(&[
        "patch",
        "customer",
        "c2",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    env.ok(&["wait", "--for=delete", "customer/c2", "--timeout=10s"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_streams_changes() {
    let env = Env::new().await;
    let f = env.manifest("c.yaml", CUSTOMER);
    env.ok(&["apply", "-f", &f]).await;
    // `kubectl get -w` prints the table, then a row per change, until it is stopped.
    let mut watch = Watch::start(
        &env.kubectl,
        &["get", "cspcust", "-w", "--request-timeout=0"],
    );
    watch.wait_for(1, |l| l.starts_with("contoso"));
    assert!(watch.seen[0].starts_with("NAME"), "{:?}", watch.seen);
    env.ok(&[
        "label",
        "cspcust",
        "contoso",
        "tier=platinum",
        "--overwrite",
    ])
    .await;
    let second = env.manifest(
        "d.yaml",
        &CUSTOMER.replace("name: contoso,", "name: dunder,"),
    );
    env.ok(&["apply", "-f", &second]).await;
    // The label change and the new object both arrive.
    watch.wait_for(2, |l| l.starts_with("contoso"));
    watch.wait_for(1, |l| l.starts_with("dunder"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_honours_finalizers_of_its_contents() {
    let env = Env::new().await;
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata: {name: partner-x}\n---\n".to_string()
        + &CUSTOMER.replace(
            "metadata: {name: contoso,",
            "metadata: {namespace: partner-x, name: contoso,",
        )
        + "---\n"
        + &CUSTOMER.replace(
            "metadata: {name: contoso,",
            "metadata: {namespace: partner-x, name: plain,",
        );
    let f = env.manifest("ns.yaml", &yaml);
    env.ok(&["apply", "-f", &f]).await;
    env.ok(&[
        "patch",
        "cspcust",
        "contoso",
        "-n",
        "partner-x",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ])
    .await;
    env.ok(&["delete", "namespace", "partner-x", "--wait=false"])
        .await;
    let phase = env
        .ok(&[
            "get",
            "namespace",
            "partner-x",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .await;
    assert_eq!(phase, "Terminating");
    // The object without a finalizer is gone; the one with it waits, marked for deletion.
    env.fails(&["get", "cspcust", "plain", "-n", "partner-x"])
        .await;
    let ts = env
        .ok(&[
            "get",
            "cspcust",
            "contoso",
            "-n",
            "partner-x",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .await;
    assert!(!ts.is_empty());
    // Nothing new may be created in it.
    let again = env.manifest(
        "again.yaml",
        &CUSTOMER.replace(
            "metadata: {name: contoso,",
            "metadata: {namespace: partner-x, name: late,",
        ),
    );
    let err = env.fails(&["apply", "-f", &again]).await;
    assert!(err.contains("being terminated"), "{err}");
    // Releasing the last finalizer lets the namespace go.
    env.ok(&[
        "patch",
        "cspcust",
        "contoso",
        "-n",
        "partner-x",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    env.ok(&[
        "wait",
        "--for=delete",
        "namespace/partner-x",
        "--timeout=10s",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_watch_sees_objects_enter_and_leave() {
    let env = Env::new().await;
    let f = env.manifest("c.yaml", &CUSTOMER.replace("tier: gold", "tier: platinum"));
    env.ok(&["apply", "-f", &f]).await;
    let mut watch = Watch::start(
        &env.kubectl,
        &[
            "get",
            "cspcust",
            "-l",
            "tier=platinum",
            "-w",
            "--output-watch-events",
            "--request-timeout=0",
        ],
    );
    let event = |kind: &'static str| move |l: &str| l.starts_with(kind) && l.contains("contoso");
    watch.wait_for(1, event("ADDED"));
    // Leaving the selection is a DELETED, entering it again an ADDED.
    env.ok(&["label", "cspcust", "contoso", "tier=gold", "--overwrite"])
        .await;
    watch.wait_for(1, event("DELETED"));
    env.ok(&[
        "label",
        "cspcust",
        "contoso",
        "tier=platinum",
        "--overwrite",
    ])
    .await;
    watch.wait_for(2, event("ADDED"));
    let modified = watch
        .seen
        .iter()
        .filter(|l| l.starts_with("MODIFIED"))
        .count();
    assert_eq!(modified, 0, "{:?}", watch.seen);
}

/// As on a real server, empty metadata maps are not kept: `kubectl diff` of what was just applied
/// (client-side and server-side, a Secret's `stringData` included) shows nothing, and removing
/// the last label or annotation leaves no `labels: {}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_of_unchanged_manifests_is_clean_and_empty_maps_go() {
    let env = Env::new().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    for server_side in [false, true] {
        let mut args = vec!["diff", "-f", EXAMPLES];
        if server_side {
            args.push("--server-side");
        }
        let out = env.kubectl(&args).await;
        assert!(
            out.status.success(),
            "kubectl diff (server-side: {server_side}) found drift:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let customer = ["cspcust", "contoso", "-n", "partner-a"];
    env.ok(&[&["label"][..], &customer, &["team=a"]].concat())
        .await;
    env.ok(&[&["label"][..], &customer, &["team-"]].concat())
        .await;
    env.ok(&[&["annotate"][..], &customer, &["note=x"]].concat())
        .await;
    env.ok(&[
        &["annotate"][..],
        &customer,
        &["note-", "kubectl.kubernetes.io/last-applied-configuration-"],
    ]
    .concat())
        .await;
    let meta = env
        .ok(&[&["get"][..], &customer, &["-o", "jsonpath={.metadata}"]].concat())
        .await;
    assert!(
        !meta.contains("\"labels\"") && !meta.contains("\"annotations\""),
        "{meta}"
    );
}

/// Namespaces carry what the real server gives them (dashboards show the phase; label selectors
/// pick namespaces by name), and `kubectl get all` knows the `all` category.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_active_and_labelled_and_get_all_works() {
    let env = Env::new().await;
    env.ok(&["create", "namespace", "team-a"]).await;
    let ns = env
        .ok(&[
            "get",
            "ns",
            "team-a",
            "-o",
            "jsonpath={.status.phase}/{.metadata.labels}",
        ])
        .await;
    assert_eq!(ns, r#"Active/{"kubernetes.io/metadata.name":"team-a"}"#);
    let selected = env
        .ok(&[
            "get",
            "ns",
            "-l",
            "kubernetes.io/metadata.name=team-a",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(selected.trim(), "namespace/team-a");
    let table = env.ok(&["get", "ns", "default"]).await;
    assert!(table.contains("Active"), "{table}");
    let all = env.kubectl(&["get", "all", "-n", "team-a"]).await;
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
}

/// The container `kubectl create deployment web --image=nginx --port=80` makes, as stored, with
/// its image changed to `image` (the pull policy defaulted at creation stays).
fn created_nginx(image: &str) -> serde_json::Value {
    serde_json::json!({
        "image": image,
        "imagePullPolicy": "Always",
        "name": "nginx",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

/// `kubectl create deployment web --image=nginx --port=80` in namespace `smp`.
async fn create_web(env: &Env) {
    env.ok(&["create", "namespace", "smp"]).await;
    env.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "smp",
        "--image=nginx",
        "--port=80",
    ])
    .await;
}

/// The containers of a Deployment.
fn containers(d: &serde_json::Value) -> serde_json::Value {
    d["spec"]["template"]["spec"]["containers"].clone()
}

/// `kubectl set image` sends a strategic merge patch: the container it names is merged by name
/// (its port and other fields stay) and no directive (`$setElementOrder/containers`) is stored.
/// `kubectl patch`'s default type is strategic too: a port deleted by its merge key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_merges_into_the_container() {
    let env = Env::new().await;
    create_web(&env).await;
    let out = env
        .ok(&[
            "set",
            "image",
            "deployment/web",
            "-n",
            "smp",
            "nginx=nginx:1.27",
        ])
        .await;
    assert!(out.contains("deployment.apps/web image updated"), "{out}");
    let d = env.get_json("deployment/web", "smp").await;
    assert_eq!(
        containers(&d),
        serde_json::json!([created_nginx("nginx:1.27")])
    );
    assert_eq!(d["metadata"]["generation"], 2);
    // Field ownership is an Update's, computed from the merged object (here the containers
    // list as a whole, where a real server records `k:{"name":"nginx"}` and its `f:image`).
    let shown = env
        .ok(&[
            "get",
            "deployment/web",
            "-n",
            "smp",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("kubectl prints JSON");
    let set = shown["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == "kubectl-set")
        .cloned()
        .unwrap_or_default();
    assert_eq!(set["operation"], "Update", "{shown}");
    assert!(
        set["fieldsV1"].to_string().contains("f:containers"),
        "{set}"
    );
    let raw = env.jsonpath("deployment/web", "smp", "{}").await;
    assert!(
        !raw.contains("$setElementOrder") && !raw.contains("$patch"),
        "{raw}"
    );

    // `kubectl patch` defaults to a strategic merge patch: a port added, merged by its key
    // (the other one stays), then the first deleted by its key.
    let patch = |p: &'static str| {
        let env = &env;
        async move {
            env.ok(&["patch", "deployment", "web", "-n", "smp", "-p", p])
                .await
        }
    };
    patch(r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","ports":[{"containerPort":443}]}]}}}}"#).await;
    let ports = "{.spec.template.spec.containers[0].ports}";
    assert_eq!(
        env.jsonpath("deployment/web", "smp", ports).await,
        r#"[{"containerPort":443,"protocol":"TCP"},{"containerPort":80,"protocol":"TCP"}]"#
    );
    patch(r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","ports":[{"containerPort":80,"$patch":"delete"}]}]}}}}"#).await;
    let mut want = created_nginx("nginx:1.27");
    want["ports"] = serde_json::json!([{"containerPort": 443, "protocol": "TCP"}]);
    let d = env.get_json("deployment/web", "smp").await;
    assert_eq!(containers(&d), serde_json::json!([want]));
}

/// `kubectl set env` adds env vars to the container and removes one by name; `kubectl rollout
/// restart` adds its annotation to the pod template; the container keeps its other fields
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_env_and_rollout_restart_keep_the_container() {
    let env = Env::new().await;
    create_web(&env).await;
    env.ok(&["set", "env", "deployment/web", "-n", "smp", "A=1", "B=2"])
        .await;
    let mut want = created_nginx("nginx");
    want["env"] = serde_json::json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]);
    let d = env.get_json("deployment/web", "smp").await;
    assert_eq!(containers(&d), serde_json::json!([want.clone()]));

    env.ok(&["set", "env", "deployment/web", "-n", "smp", "A-"])
        .await;
    want["env"] = serde_json::json!([{"name": "B", "value": "2"}]);
    let d = env.get_json("deployment/web", "smp").await;
    assert_eq!(containers(&d), serde_json::json!([want.clone()]));
    env.ok(&["set", "env", "deployment/web", "-n", "smp", "B-"])
        .await;
    if let Some(c) = want.as_object_mut() {
        c.remove("env");
    }
    let d = env.get_json("deployment/web", "smp").await;
    assert_eq!(containers(&d), serde_json::json!([want.clone()]));

    let out = env
        .ok(&["rollout", "restart", "deployment/web", "-n", "smp"])
        .await;
    assert!(out.contains("deployment.apps/web restarted"), "{out}");
    let d = env.get_json("deployment/web", "smp").await;
    let template = &d["spec"]["template"]["metadata"];
    assert!(
        template["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{d}"
    );
    assert_eq!(template["labels"], serde_json::json!({"app": "web"}));
    assert_eq!(containers(&d), serde_json::json!([want]));
    assert_eq!(d["metadata"]["generation"], 5);
}

const TWO_CONTAINERS: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: smp, labels: {app: app}}
spec:
  replicas: 2
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
      - name: web
        image: nginx:1.26
        ports: [{containerPort: 80, name: http}]
        env: [{name: A, value: '1'}, {name: B, value: '2'}]
      - name: sidecar
        image: busybox:1.36
        command: [sleep, infinity]
";

/// Client-side `kubectl apply` (Argo CD's default sync too) sends a three-way strategic merge
/// patch: re-applied with one container's image changed and an env var removed, the Deployment
/// is what a real server makes of it (both containers, with their defaults, in order; the one
/// env var gone), and `kubectl diff` then shows nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_reapply_merges_containers_as_a_real_server() {
    let env = Env::new().await;
    env.ok(&["create", "namespace", "smp"]).await;
    let f = env.manifest("app.yaml", TWO_CONTAINERS);
    env.ok(&["apply", "-f", &f]).await;
    let changed = TWO_CONTAINERS
        .replace("nginx:1.26", "nginx:1.27")
        .replace("{name: A, value: '1'}, ", "");
    let g = env.manifest("app2.yaml", &changed);
    let out = env.ok(&["apply", "-f", &g]).await;
    assert!(out.contains("deployment.apps/app configured"), "{out}");

    let d = env.get_json("deployment/app", "smp").await;
    let defaults = serde_json::json!({
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    });
    let with_defaults = |c: serde_json::Value| {
        let mut c = c;
        if let (Some(c), Some(d)) = (c.as_object_mut(), defaults.as_object()) {
            c.extend(d.clone());
        }
        c
    };
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"],
        serde_json::json!([
            with_defaults(serde_json::json!({
                "name": "web",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                "env": [{"name": "B", "value": "2"}]
            })),
            with_defaults(serde_json::json!({
                "name": "sidecar",
                "image": "busybox:1.36",
                "command": ["sleep", "infinity"]
            })),
        ])
    );
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["generation"], 2);
    let last_applied: serde_json::Value = serde_json::from_str(
        d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap_or("{}"),
    )
    .expect("last-applied is JSON");
    assert_eq!(
        last_applied["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let raw = env.jsonpath("deployment/app", "smp", "{}").await;
    assert!(
        !raw.contains("$setElementOrder") && !raw.contains("$patch"),
        "{raw}"
    );

    let diff = env.kubectl(&["diff", "-f", &g]).await;
    assert!(
        diff.status.success(),
        "kubectl diff after the re-apply:\n{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    let again = env.ok(&["apply", "-f", &g]).await;
    assert!(again.contains("deployment.apps/app unchanged"), "{again}");
}
