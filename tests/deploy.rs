//! `deploy/` installs with `kubectl apply -k` against the embedded API server, and its RBAC
//! follows the house rules (a comment per rule, no wildcards).

mod support;

use std::path::Path;
use support::{Env, examples_dir};

fn deploy_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .to_string_lossy()
        .into_owned()
}

const OPERATOR_NS: &str = "csp-operator-system";

/// The objects the kustomization installs besides the CRDs, namespace first:
/// `(kubectl resource, namespace)`.
const INSTALLED: &[(&str, Option<&str>)] = &[
    ("namespace/csp-operator-system", None),
    ("serviceaccount/csp-operator", Some(OPERATOR_NS)),
    ("clusterrole/csp-operator", None),
    ("clusterrolebinding/csp-operator", None),
    ("role/csp-operator-leader-election", Some(OPERATOR_NS)),
    (
        "rolebinding/csp-operator-leader-election",
        Some(OPERATOR_NS),
    ),
    ("deployment/csp-operator", Some(OPERATOR_NS)),
    ("service/csp-operator-metrics", Some(OPERATOR_NS)),
    ("clusterrole/csp-admin-agent", None),
    ("clusterrole/csp-sales-agent", None),
    ("clusterrole/csp-helpdesk-agent", None),
];

fn get_args(resource: &str, ns: Option<&str>) -> Vec<String> {
    let mut args = vec!["get".to_string(), resource.to_string()];
    if let Some(ns) = ns {
        args.extend(["-n".to_string(), ns.to_string()]);
    }
    args
}

async fn jsonpath(env: &Env, resource: &str, ns: Option<&str>, path: &str) -> String {
    let mut args = get_args(resource, ns);
    args.extend(["-o".to_string(), format!("jsonpath={path}")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.ok(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_deploy_installs_everything() {
    let env = Env::new().await;
    let deploy = deploy_dir();

    // As on any cluster, a server-side dry run cannot put objects into a namespace that the
    // same dry run only pretends to create: the namespace has to exist first.
    let err = env
        .fails(&["apply", "-k", &deploy, "--dry-run=server"])
        .await;
    assert!(
        err.contains(r#"namespaces "csp-operator-system" not found"#),
        "{err}"
    );
    let namespace = Path::new(&deploy).join("namespace.yaml");
    env.ok(&["apply", "-f", &namespace.to_string_lossy()]).await;

    // Then a server-side dry run passes admission for every object and stores none of them.
    let dry = env.ok(&["apply", "-k", &deploy, "--dry-run=server"]).await;
    assert!(
        dry.contains("deployment.apps/csp-operator created (server dry run)"),
        "{dry}"
    );
    for (resource, ns) in &INSTALLED[1..] {
        let args = get_args(resource, *ns);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = env.fails(&args).await;
        assert!(err.contains("NotFound"), "{resource} after dry run: {err}");
    }

    let applied = env.ok(&["apply", "-k", &deploy]).await;
    for want in [
        "namespace/csp-operator-system configured",
        "customresourcedefinition.apiextensions.k8s.io/purchasepermissions.csp.operator.dev",
        "clusterrole.rbac.authorization.k8s.io/csp-admin-agent created",
        "deployment.apps/csp-operator created",
        "service/csp-operator-metrics created",
    ] {
        assert!(applied.contains(want), "missing {want:?} in:\n{applied}");
    }
    for (resource, ns) in INSTALLED {
        let args = get_args(resource, *ns);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.ok(&args).await;
    }

    // What the manifests promise survives the round trip through the server.
    let deployment = Some(OPERATOR_NS);
    assert_eq!(
        jsonpath(
            &env,
            "deployment/csp-operator",
            deployment,
            "{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].args}"
        )
        .await,
        r#"ghcr.io/csp-operator/csp-operator:0.1.0 ["run"]"#
    );
    assert_eq!(
        jsonpath(
            &env,
            "deployment/csp-operator",
            deployment,
            "{.spec.template.spec.serviceAccountName} {.spec.template.spec.securityContext.runAsNonRoot} \
             {.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem} \
             {.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation} \
             {.spec.template.spec.containers[0].securityContext.capabilities.drop[0]} \
             {.spec.template.spec.securityContext.seccompProfile.type}"
        )
        .await,
        "csp-operator true true false ALL RuntimeDefault"
    );
    assert_eq!(
        jsonpath(
            &env,
            "deployment/csp-operator",
            deployment,
            "{.spec.template.spec.containers[0].livenessProbe.httpGet.path} \
             {.spec.template.spec.containers[0].readinessProbe.httpGet.path} \
             {.spec.template.spec.containers[0].ports[0].name}={.spec.template.spec.containers[0].ports[0].containerPort}"
        )
        .await,
        "/healthz /readyz http-metrics=8080"
    );
    assert_eq!(
        jsonpath(
            &env,
            "deployment/csp-operator",
            deployment,
            "{.spec.template.spec.containers[0].env[*].name} \
             {.spec.template.spec.containers[0].resources.requests.cpu} \
             {.spec.template.spec.containers[0].resources.limits.memory}"
        )
        .await,
        "POD_NAME POD_NAMESPACE 100m 512Mi"
    );
    assert_eq!(
        jsonpath(
            &env,
            "service/csp-operator-metrics",
            deployment,
            "{.spec.ports[0].name}={.spec.ports[0].port}"
        )
        .await,
        "http-metrics=8080"
    );
    assert_eq!(
        jsonpath(
            &env,
            "clusterrolebinding/csp-operator",
            None,
            "{.roleRef.name} {.subjects[0].kind}/{.subjects[0].namespace}/{.subjects[0].name}"
        )
        .await,
        "csp-operator ServiceAccount/csp-operator-system/csp-operator"
    );
    assert_eq!(
        jsonpath(
            &env,
            "clusterrole/csp-sales-agent",
            None,
            "{.rules[0].verbs}"
        )
        .await,
        r#"["get","list","watch"]"#
    );

    // Applying again changes nothing.
    let again = env.ok(&["apply", "-k", &deploy]).await;
    assert!(
        again.contains("deployment.apps/csp-operator unchanged"),
        "{again}"
    );

    // The documented upgrade: CRDs first with server-side apply (crds/Kustomization is not a
    // manifest, so `-f crds/` sees only the four CRDs), then the Deployment.
    let crds = env
        .ok(&["apply", "--server-side", "-f", &support::crds_dir()])
        .await;
    assert_eq!(crds.matches("serverside-applied").count(), 4, "{crds}");
    env.ok(&["apply", "-k", &deploy]).await;

    // The example agent bindings apply in a partner namespace.
    env.ok(&[
        "apply",
        "-f",
        &format!("{}/00-namespace.yaml", examples_dir()),
    ])
    .await;
    let bindings = Path::new(&deploy).join("examples/agent-rolebindings.yaml");
    env.ok(&["apply", "-f", &bindings.to_string_lossy()]).await;
    assert_eq!(
        jsonpath(
            &env,
            "rolebindings",
            Some("partner-a"),
            "{.items[*].roleRef.name}"
        )
        .await,
        "csp-admin-agent csp-helpdesk-agent csp-sales-agent"
    );
}

/// Every RBAC rule in deploy/ has a comment right above it and names verbs and resources
/// explicitly.
#[test]
fn every_rbac_rule_is_commented_and_explicit() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut files = vec![];
    for entry in std::fs::read_dir(&dir).expect("deploy/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    let mut rules = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("- apiGroups:") {
                rules += 1;
                assert!(
                    i > 0 && lines[i - 1].trim_start().starts_with('#'),
                    "{}:{}: RBAC rule without a comment above it",
                    path.display(),
                    i + 1
                );
            }
            let trimmed = line.trim_start();
            let is_rule_field = ["- apiGroups:", "apiGroups:", "resources:", "verbs:", "- "]
                .iter()
                .any(|p| trimmed.starts_with(p));
            assert!(
                !(is_rule_field && line.contains('*')),
                "{}:{}: wildcard in RBAC: {line}",
                path.display(),
                i + 1
            );
        }
    }
    assert!(rules >= 9, "found only {rules} rules");
}

/// The operator's service account as the server sees it.
const OPERATOR_SA: &str = "system:serviceaccount:csp-operator-system:csp-operator";

/// A client that acts as `user` (in `groups`), so the embedded server enforces RBAC on it.
fn impersonating(env: &Env, user: &str, groups: &[&str]) -> kube::Client {
    let mut config = kube::Config::new(env.server.url().parse().expect("server URL"));
    config.auth_info.impersonate = Some(user.to_string());
    if !groups.is_empty() {
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    kube::Client::try_from(config).expect("client")
}

/// The real controllers, with leader election, as the deploy/ service account: the shipped
/// ClusterRole and leader-election Role must be all they need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_works_with_exactly_the_shipped_rbac() {
    let env = Env::new().await;
    env.ok(&["apply", "-k", &deploy_dir()]).await;
    env.ok(&["apply", "-f", &examples_dir()]).await;

    let client = impersonating(&env, OPERATOR_SA, &[]);
    let opts = csp_operator::controller::RunOptions {
        leader_election: Some(csp_operator::controller::LeaderElection {
            namespace: OPERATOR_NS.into(),
            lease_name: "csp-operator-leader".into(),
            identity: "csp-operator-0".into(),
        }),
        ..Default::default()
    };
    let controllers = tokio::spawn(csp_operator::controller::run(
        client,
        std::sync::Arc::new(csp_operator::backend::ClusterBackend),
        opts,
        futures::future::pending(),
    ));

    // Leases: get, create, patch in the operator's namespace.
    env.wait_for(
        "lease/csp-operator-leader",
        OPERATOR_NS,
        "{.spec.holderIdentity}",
        "csp-operator-0",
    )
    .await;
    // list/watch of all four kinds, status patches, the finalizer patch.
    let ready = r#"{.status.state}/{.status.conditions[?(@.type=="Ready")].reason}"#;
    env.wait_for(
        "cspperm/contoso",
        "partner-a",
        ready,
        "Enabled/PermissionEnabled",
    )
    .await;
    env.wait_for(
        "cspperm/northwind",
        "partner-a",
        ready,
        "Blocked/OwnerRoleMissing",
    )
    .await;
    env.wait_for(
        "cspcust/contoso",
        "partner-a",
        "{.status.purchasePermission}",
        "Enabled",
    )
    .await;
    env.wait_for("azsub/contoso-plan", "partner-a", "{.status.owners}", "1")
        .await;
    env.wait_for(
        "azrole/contoso-plan-alice-owner",
        "partner-a",
        r#"{.status.conditions[?(@.type=="Ready")].status}"#,
        "True",
    )
    .await;
    env.wait_for(
        "cspperm/contoso",
        "partner-a",
        "{.metadata.finalizers[0]}",
        "csp.operator.dev/purchase-permission",
    )
    .await;
    // Deleting the grant: the finalizer withdraws it, records it, and lets the object go.
    env.ok(&[
        "delete",
        "cspperm/contoso",
        "-n",
        "partner-a",
        "--timeout=20s",
    ])
    .await;
    // Events: created in the partner's namespace.
    let log = env
        .ok(&[
            "get",
            "events.events.k8s.io",
            "-n",
            "partner-a",
            "-o",
            "jsonpath={range .items[*]}{.reason}/{.action}{\"\\n\"}{end}",
        ])
        .await;
    for want in [
        "PermissionEnabled/CreateCustomerPurchasePermissions",
        "PermissionDisabled/DeleteCustomerPurchasePermissions",
        "OwnerRoleMissing/CheckPrerequisites",
    ] {
        assert!(log.lines().any(|l| l == want), "no {want} in:\n{log}");
    }
    controllers.abort();
}

/// The shipped agent roles, bound with the example RoleBindings, do what the article says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_agent_roles_with_the_example_bindings() {
    let env = Env::new().await;
    env.ok(&["apply", "-k", &deploy_dir()]).await;
    env.ok(&["apply", "-f", &examples_dir()]).await;
    let bindings = Path::new(&deploy_dir()).join("examples/agent-rolebindings.yaml");
    env.ok(&["apply", "-f", &bindings.to_string_lossy()]).await;
    let enable = r#"{"spec":{"enabled":false}}"#;
    let as_group = |group: &'static str| ["--as", "someone", "--as-group", group];

    for group in ["partner-a:sales-agents", "partner-a:helpdesk-agents"] {
        let who = as_group(group);
        let mut args = vec!["get", "cspperm,cspcust,azsub,azrole", "-n", "partner-a"];
        args.extend(who);
        env.ok(&args).await;
        let mut args = vec![
            "patch",
            "cspperm/contoso",
            "-n",
            "partner-a",
            "--type=merge",
            "-p",
            enable,
        ];
        args.extend(who);
        let err = env.fails(&args).await;
        assert!(err.contains("Forbidden"), "{group}: {err}");
        // Bound in partner-a only.
        let mut args = vec!["get", "cspperm", "-n", "default"];
        args.extend(who);
        let err = env.fails(&args).await;
        assert!(err.contains("Forbidden"), "{group}: {err}");
    }
    // The example's helpdesk user, bound by name.
    let err = env
        .fails(&[
            "delete",
            "cspperm/contoso",
            "-n",
            "partner-a",
            "--as",
            "carol@partner-a.example",
        ])
        .await;
    assert!(err.contains("Forbidden"), "{err}");

    let mut args = vec![
        "patch",
        "cspperm/contoso",
        "-n",
        "partner-a",
        "--type=merge",
        "-p",
        enable,
    ];
    args.extend(as_group("partner-a:admin-agents"));
    env.ok(&args).await;
    let mut args = vec!["delete", "cspperm/adatum", "-n", "partner-a"];
    args.extend(as_group("partner-a:admin-agents"));
    env.ok(&args).await;
}
