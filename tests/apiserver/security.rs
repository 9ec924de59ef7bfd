//! The embedded server is safe to leave running: HTTPS with a bearer token, impersonation only
//! for who may, no cross-site or rebound requests, no RBAC escalation, and limits on bodies,
//! metadata and connections.

use crate::support::Env;
use crate::support::clients::{Raw, tls_connect};
use csp_operator::apiserver::{Config, Token, TokenUser};
use serde_json::json;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_token_get_401_but_health_is_open() {
    let env = Env::new().await;
    let server = &env.server;
    for raw in [
        Raw::new(server, "GET", "/api/v1/namespaces"),
        Raw::new(server, "GET", "/api/v1/namespaces").bearer("wrong"),
        Raw::new(server, "POST", CONFIGMAPS).body("application/json", configmap("x")),
    ] {
        let (code, body) = raw.send(server).await;
        assert_eq!(code, 401, "{body}");
        assert!(body.contains(r#""reason":"Unauthorized""#), "{body}");
        assert!(body.contains(r#""kind":"Status""#), "{body}");
    }
    for open in [
        "/healthz",
        "/livez",
        "/readyz",
        "/readyz/ping",
        "/livez/ping",
    ] {
        let (code, body) = Raw::new(server, "GET", open).send(server).await;
        assert_eq!(code, 200, "{open}: {body}");
    }
    let (code, _) = Raw::new(server, "GET", "/api/v1/namespaces")
        .admin(server)
        .send(server)
        .await;
    assert_eq!(code, 200);

    // kubectl without the token (the kubeconfig's token replaced) is told to log in.
    let kc = std::fs::read_to_string(&env.kubeconfig).expect("kubeconfig");
    assert!(kc.contains(&format!("token: {}", server.token())));
    let stale = env.manifest("stale-kc", &kc.replace(server.token(), "not-the-token"));
    let out = crate::support::kubectl::Kubectl::new(stale).output(&["get", "ns"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be logged in"), "{err}");
    // The kubeconfig holds a secret: the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env.kubeconfig)
        .expect("kubeconfig")
        .permissions();
    assert_eq!(mode.mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_needs_the_impersonate_verb() {
    let alice = Token::new("alice-token-0123456789").expect("token");
    let env = Env::with_config(Config {
        token_users: vec![TokenUser {
            token: alice.clone(),
            name: "alice".into(),
            groups: vec![],
        }],
        ..Default::default()
    })
    .await;
    let server = &env.server;
    let as_bob = || {
        Raw::new(server, "GET", "/api/v1/namespaces")
            .bearer(alice.expose())
            .header("Impersonate-User", "bob")
    };
    let (code, body) = as_bob().send(server).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"#),
        "{body}"
    );
    // Alice herself is subject to RBAC.
    let (code, body) = Raw::new(server, "GET", "/api/v1/namespaces")
        .bearer(alice.expose())
        .send(server)
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"User \"alice\" cannot list resource \"namespaces\""#),
        "{body}"
    );

    // Allowed to impersonate users (not groups): she acts as bob, who may not list either.
    let grant = env.manifest(
        "impersonator.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonator}
rules:
- {apiGroups: [\"\"], resources: [users], verbs: [impersonate]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-impersonates}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonator}
subjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]
",
    );
    env.ok(&["apply", "-f", &grant]).await;
    let (code, body) = as_bob().send(server).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#"User \"bob\" cannot list resource \"namespaces\""#),
        "{body}"
    );
    let (code, body) = as_bob()
        .header("Impersonate-Group", "system:masters")
        .send(server)
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains(r#"groups \"system:masters\" is forbidden: User \"alice\" cannot impersonate resource \"groups\""#), "{body}");
    // The admin (system:masters) impersonates anyone, as kubectl --as does throughout.
    let (code, _) = Raw::new(server, "GET", "/api/v1/namespaces")
        .admin(server)
        .header("Impersonate-User", "bob")
        .header("Impersonate-Group", "system:masters")
        .send(server)
        .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_bodies_and_foreign_hosts_are_refused() {
    let env = Env::new().await;
    let server = &env.server;
    // What a web page can send without a preflight: text/plain and form types, with an Origin.
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (code, body) = Raw::new(server, "POST", CONFIGMAPS)
            .admin(server)
            .header("Origin", "https://evil.example")
            .body(content_type, configmap("cross-site"))
            .send(server)
            .await;
        assert_eq!(code, 415, "{content_type}: {body}");
        assert!(
            body.contains(r#""reason":"UnsupportedMediaType""#),
            "{body}"
        );
    }
    // A page that rebinds its name to 127.0.0.1 sends its own name as Host.
    let (code, body) = Raw::new(server, "POST", CONFIGMAPS)
        .admin(server)
        .host(&format!("evil.example:{}", server.addr().port()))
        .body("application/json", configmap("rebound"))
        .send(server)
        .await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("is not served here"), "{body}");
    let (code, _) = Raw::new(server, "GET", &format!("{CONFIGMAPS}/cross-site"))
        .admin(server)
        .send(server)
        .await;
    assert_eq!(code, 404, "nothing was created");
    // The loopback names kubectl and kube-rs send are served.
    for host in [
        format!("localhost:{}", server.addr().port()),
        format!("[::1]:{}", server.addr().port()),
        "127.0.0.1".to_string(),
    ] {
        let (code, body) = Raw::new(server, "GET", "/api/v1/namespaces")
            .admin(server)
            .host(&host)
            .send(server)
            .await;
        assert_eq!(code, 200, "{host}: {body}");
    }
    let (code, body) = Raw::new(server, "POST", CONFIGMAPS)
        .admin(server)
        .body("application/json", configmap("fine"))
        .send(server)
        .await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_3_mib_get_413() {
    let env = Env::new().await;
    let server = &env.server;
    let limit = 3 * 1024 * 1024;
    let big = |size: usize| {
        let data = "x".repeat(size);
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": data}})
            .to_string()
    };
    // Declared too long: refused before it is read.
    let (code, body) = Raw::new(server, "POST", CONFIGMAPS)
        .admin(server)
        .body("application/json", big(limit))
        .send(server)
        .await;
    assert_eq!(code, 413, "{body}");
    assert!(
        body.contains(r#""reason":"RequestEntityTooLarge""#),
        "{body}"
    );
    // Chunked (no length): cut off once past the limit.
    let (code, body) = Raw::new(server, "POST", CONFIGMAPS)
        .admin(server)
        .body("application/json", big(limit))
        .chunked()
        .send(server)
        .await;
    assert_eq!(code, 413, "{body}");
    // Under the limit is fine.
    let (code, body) = Raw::new(server, "POST", CONFIGMAPS)
        .admin(server)
        .body("application/json", big(2 * 1024 * 1024))
        .send(server)
        .await;
    assert_eq!(code, 201, "{}", &body[..body.len().min(300)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_annotations_and_finalizers_are_checked() {
    let env = Env::new().await;
    let cases = [
        (
            "labels: {\"bad key\": x}",
            r#"metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters"#,
        ),
        (
            "labels: {ok: \"-x-\"}",
            r#"metadata.labels: Invalid value: "-x-": a valid label must be an empty string or consist of alphanumeric characters"#,
        ),
        (
            "annotations: {\"a/b/c\": x}",
            r#"metadata.annotations: Invalid value: "a/b/c": a qualified name must consist of"#,
        ),
        (
            "finalizers: [\"bad finalizer\"]",
            r#"metadata.finalizers[0]: Invalid value: "bad finalizer""#,
        ),
    ];
    for (i, (meta, want)) in cases.into_iter().enumerate() {
        let f = env.manifest(
            &format!("bad{i}.yaml"),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad{i}\n  {meta}\n"),
        );
        let err = env.fails(&["create", "-f", &f]).await;
        assert!(err.contains(want), "{meta}: {err}");
    }
    let huge = "x".repeat(262_144);
    let f = env.manifest(
        "huge.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\n  annotations: {{k: {huge}}}\n"),
    );
    let err = env.fails(&["create", "-f", &f]).await;
    assert!(
        err.contains("metadata.annotations: Too long: must have at most 262144 bytes"),
        "{}",
        &err[..err.len().min(500)]
    );
    // The operator's finalizer and the namespace's are names the server accepts.
    let f = env.manifest(
        "good.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\n  labels: {{app.kubernetes.io/name: x, empty: \"\"}}\n  finalizers: [\"{}\"]\n",
            csp_operator::api::FINALIZER
        ),
    );
    env.ok(&["create", "-f", &f]).await;
    let f = env.manifest(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: finalized, finalizers: [kubernetes]}\nspec: {finalizers: [kubernetes]}\n",
    );
    env.ok(&["create", "-f", &f]).await;
}

const ROLE_WRITER: &str = "apiVersion: v1
kind: Namespace
metadata: {name: partner-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: rbac-writer, namespace: partner-a}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [create, get, list, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: mallory-writes-rbac, namespace: partner-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rbac-writer}
subjects: [{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}]
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_writers_cannot_grant_what_they_do_not_hold() {
    let env = Env::new().await;
    let agent_roles = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/agent-roles.yaml");
    env.ok(&["apply", "-f", agent_roles]).await;
    let f = env.manifest("writer.yaml", ROLE_WRITER);
    env.ok(&["apply", "-f", &f]).await;
    let as_mallory = |args: &[&str]| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["-n", "partner-a", "--as", "mallory"].map(String::from));
        a
    };
    let bind_admin = as_mallory(&[
        "create",
        "rolebinding",
        "steal",
        "--clusterrole=csp-admin-agent",
        "--user=mallory",
    ]);
    let err = env.fails(&bind_admin).await;
    assert!(
        err.contains(r#"rolebindings.rbac.authorization.k8s.io "steal" is forbidden: user "mallory" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#),
        "{err}"
    );
    assert!(err.contains(r#"{APIGroups:["csp.operator.dev"], Resources:["customers"], Verbs:["create" "get" "list" "watch" "update" "patch" "delete" "deletecollection"]}"#), "{err}");
    let err = env
        .fails(&as_mallory(&[
            "create",
            "role",
            "everything",
            "--verb=*",
            "--resource=*.*",
        ]))
        .await;
    assert!(
        err.contains("is attempting to grant RBAC permissions not currently held"),
        "{err}"
    );
    assert!(
        err.contains(r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#),
        "{err}"
    );
    // What she holds she may grant.
    env.ok(&as_mallory(&[
        "create",
        "role",
        "reader",
        "--verb=get",
        "--resource=roles.rbac.authorization.k8s.io",
    ]))
    .await;
    // With `bind` on that ClusterRole, by name, the binding is allowed.
    let f = env.manifest(
        "bind.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: binder, namespace: partner-a}
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles]
  verbs: [bind]
  resourceNames: [csp-admin-agent]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: mallory-binds, namespace: partner-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}
subjects: [{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}]
",
    );
    env.ok(&["apply", "-f", &f]).await;
    env.ok(&bind_admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_bound_do_not_lock_out_kubectl() {
    let env = Env::with_config(Config {
        max_connections: 8,
        ..Default::default()
    })
    .await;
    let server = &env.server;
    // Idle connections: some that never start TLS, some that finished the handshake and sent
    // nothing, all beyond the bound.
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(
            tokio::net::TcpStream::connect(server.addr())
                .await
                .expect("connect"),
        );
    }
    let mut idle_tls = Vec::new();
    for _ in 0..10 {
        idle_tls.push(tls_connect(server).await);
    }
    for _ in 0..3 {
        let started = std::time::Instant::now();
        env.ok(&["get", "namespaces"]).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
    let (code, _) = Raw::new(server, "GET", "/api/v1/namespaces")
        .admin(server)
        .send(server)
        .await;
    assert_eq!(code, 200);
    assert!(
        server.open_connections() <= 8,
        "{}",
        server.open_connections()
    );
    assert_eq!(server.accept_errors(), 0);
    drop((idle, idle_tls));
}
