//! `deploy/` installs with `kubectl apply -k` against the embedded API server, the operator runs
//! with exactly its RBAC, the shipped agent roles do what the article says, and every RBAC rule
//! follows the house rules (a comment per rule, no wildcards).

use crate::support::clients::client_for;
use crate::support::kubectl::{self, patch_enabled, patch_status};
use crate::support::paths::{
    AGENT_ROLEBINDINGS, CRDS, DEPLOY, DEPLOY_NAMESPACE, EXAMPLES, EXAMPLES_NAMESPACE,
};
use crate::support::{Env, spawn_controllers};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_k_deploy_installs_everything() {
    let env = Env::new().await;

    // As on any cluster, a server-side dry run cannot put objects into a namespace that the
    // same dry run only pretends to create: the namespace has to exist first.
    let err = env
        .fails(&["apply", "-k", DEPLOY, "--dry-run=server"])
        .await;
    assert!(
        err.contains(r#"namespaces "csp-operator-system" not found"#),
        "{err}"
    );
    env.ok(&["apply", "-f", DEPLOY_NAMESPACE]).await;

    // Then a server-side dry run passes admission for every object and stores none of them.
    let dry = env.ok(&["apply", "-k", DEPLOY, "--dry-run=server"]).await;
    assert!(
        dry.contains("deployment.apps/csp-operator created (server dry run)"),
        "{dry}"
    );
    for (resource, ns) in &INSTALLED[1..] {
        let err = env.fails(&kubectl::get(resource, *ns)).await;
        assert!(err.contains("NotFound"), "{resource} after dry run: {err}");
    }

    let applied = env.ok(&["apply", "-k", DEPLOY]).await;
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
        env.ok(&kubectl::get(resource, *ns)).await;
    }

    // What the manifests promise survives the round trip through the server.
    let deployment = Some(OPERATOR_NS);
    assert_eq!(
        env.jsonpath(
            "deployment/csp-operator",
            deployment,
            "{.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].args}"
        )
        .await,
        r#"ghcr.io/csp-operator/csp-operator:0.1.0 ["run"]"#
    );
    assert_eq!(
        env.jsonpath("deployment/csp-operator",
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
        env.jsonpath("deployment/csp-operator",
            deployment,
            "{.spec.template.spec.containers[0].livenessProbe.httpGet.path} \
             {.spec.template.spec.containers[0].readinessProbe.httpGet.path} \
             {.spec.template.spec.containers[0].ports[0].name}={.spec.template.spec.containers[0].ports[0].containerPort}"
        )
        .await,
        "/healthz /readyz http-metrics=8080"
    );
    assert_eq!(
        env.jsonpath(
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
        env.jsonpath(
            "service/csp-operator-metrics",
            deployment,
            "{.spec.ports[0].name}={.spec.ports[0].port}"
        )
        .await,
        "http-metrics=8080"
    );
    assert_eq!(
        env.jsonpath(
            "clusterrolebinding/csp-operator",
            None,
            "{.roleRef.name} {.subjects[0].kind}/{.subjects[0].namespace}/{.subjects[0].name}"
        )
        .await,
        "csp-operator ServiceAccount/csp-operator-system/csp-operator"
    );
    assert_eq!(
        env.jsonpath("clusterrole/csp-sales-agent", None, "{.rules[0].verbs}")
            .await,
        r#"["get","list","watch"]"#
    );

    // Applying again changes nothing.
    let again = env.ok(&["apply", "-k", DEPLOY]).await;
    assert!(
        again.contains("deployment.apps/csp-operator unchanged"),
        "{again}"
    );

    // The documented upgrade: CRDs first with server-side apply (crds/Kustomization is not a
    // manifest, so `-f crds/` sees only the five CRDs), then the Deployment.
    let crds = env.ok(&["apply", "--server-side", "-f", CRDS]).await;
    assert_eq!(crds.matches("serverside-applied").count(), 5, "{crds}");
    env.ok(&["apply", "-k", DEPLOY]).await;

    // The example agent bindings apply in a partner namespace.
    env.ok(&["apply", "-f", EXAMPLES_NAMESPACE]).await;
    env.ok(&["apply", "-f", AGENT_ROLEBINDINGS]).await;
    assert_eq!(
        env.jsonpath(
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
    let mut files = vec![];
    for entry in std::fs::read_dir(DEPLOY).expect("deploy/ exists") {
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

/// The real controllers, with leader election, as the deploy/ service account: the shipped
/// ClusterRole and leader-election Role must be all they need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_works_with_exactly_the_shipped_rbac() {
    let env = Env::new().await;
    env.ok(&["apply", "-k", DEPLOY]).await;
    env.ok(&["apply", "-f", EXAMPLES]).await;

    let client = client_for(&env.server)
        .impersonating(OPERATOR_SA, &[])
        .build();
    let opts = csp_operator::controller::RunOptions {
        leader_election: Some(csp_operator::controller::LeaderElection::new(
            OPERATOR_NS,
            "csp-operator-leader",
            "csp-operator-0",
        )),
        ..Default::default()
    };
    let controllers = spawn_controllers(client, opts, futures::future::pending());

    // Leases: get, list, watch, create, update in the operator's namespace.
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
    let log = env.activity_log("partner-a").await;
    for want in [
        "PermissionEnabled/CreateCustomerPurchasePermissions",
        "PermissionDisabled/DeleteCustomerPurchasePermissions",
        "OwnerRoleMissing/CheckPrerequisites",
    ] {
        assert!(
            log.iter()
                .any(|l| l.rsplit_once('/').is_some_and(|(ra, _)| ra == want)),
            "no {want} in:\n{log:#?}"
        );
    }
    controllers.abort();
}

/// A second partner's namespace, with a PurchasePermission "contoso" of its own.
const PARTNER_B: &str = "apiVersion: v1
kind: Namespace
metadata: {name: partner-b}
---
apiVersion: csp.operator.dev/v1alpha1
kind: PurchasePermission
metadata: {name: contoso, namespace: partner-b}
spec: {customerRef: {name: contoso}, enabled: false}
";

/// The shipped agent roles (deploy/agent-roles.yaml, installed by `kubectl apply -k deploy/`),
/// bound with the example RoleBindings of deploy/examples: partner-a's groups get exactly the
/// article's rights, in partner-a only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_agent_roles_with_the_example_bindings() {
    let env = Env::new().await;
    env.ok(&["apply", "-k", DEPLOY]).await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    let partner_b = env.manifest("partner-b.yaml", PARTNER_B);
    env.ok(&["apply", "-f", &partner_b]).await;
    env.ok(&["apply", "-f", AGENT_ROLEBINDINGS]).await;
    let agent = |args: &[&str], group: &str| kubectl::Args::new(args).run_as_member("agent", group);

    for group in [
        "partner-a:sales-agents",
        "partner-a:helpdesk-agents",
        "partner-a:admin-agents",
    ] {
        // Every agent reads the activity log of its namespace, and only there.
        env.ok(&agent(&["get", "events", "-n", "partner-a"], group))
            .await;
        env.ok(&agent(
            &["get", "events.events.k8s.io", "-n", "partner-a"],
            group,
        ))
        .await;
        env.fails(&agent(&["get", "events", "-n", "partner-b"], group))
            .await;
    }
    for group in ["partner-a:sales-agents", "partner-a:helpdesk-agents"] {
        env.ok(&agent(
            &["get", "cspperm,cspcust,azsub,azrole", "-n", "partner-a"],
            group,
        ))
        .await;
        let get = ["get", "cspperm", "contoso", "-n", "partner-a"];
        env.ok(&agent(&get, group)).await;
        // The real roles also read status.
        env.ok(&agent(&get, group).with(&["--subresource=status"]))
            .await;
        for enabled in [false, true] {
            let err = env
                .fails(
                    &patch_enabled("partner-a", "contoso", enabled).run_as_member("agent", group),
                )
                .await;
            assert!(
                err.contains("Forbidden")
                    && err.contains(r#"User "agent" cannot patch resource "purchasepermissions" in API group "csp.operator.dev" in the namespace "partner-a""#),
                "{group}: {err}"
            );
        }
        let err = env
            .fails(&agent(
                &["delete", "cspperm", "contoso", "-n", "partner-a"],
                group,
            ))
            .await;
        assert!(err.contains("cannot delete resource"), "{group}: {err}");
        // Bound in partner-a only.
        for other in ["default", "partner-b"] {
            let err = env
                .fails(&agent(&["get", "cspperm", "-n", other], group))
                .await;
            assert!(err.contains("Forbidden"), "{group} in {other}: {err}");
        }
    }
    // The example's helpdesk user, bound by name: reads, cannot delete.
    let carol = |args: &[&str]| kubectl::Args::new(args).run_as("carol@partner-a.example");
    env.ok(&carol(&["get", "cspcust", "-n", "partner-a"])).await;
    let err = env
        .fails(&carol(&["delete", "cspperm/contoso", "-n", "partner-a"]))
        .await;
    assert!(err.contains("Forbidden"), "{err}");

    // The admin agents switch the permission off and on; not in partner-b.
    let admin = "partner-a:admin-agents";
    for enabled in [false, true] {
        env.ok(&patch_enabled("partner-a", "contoso", enabled).run_as_member("agent", admin))
            .await;
        let now = env
            .jsonpath("cspperm/contoso", "partner-a", "{.spec.enabled}")
            .await;
        assert_eq!(now, enabled.to_string());
    }
    env.fails(&agent(&["get", "cspperm", "-n", "partner-b"], admin))
        .await;
    // Status stays the operator's.
    let err = env
        .fails(&patch_status("partner-a", "contoso", "{}").run_as_member("agent", admin))
        .await;
    assert!(
        err.contains(r#"resource "purchasepermissions/status""#),
        "{err}"
    );
    env.ok(&agent(
        &["delete", "cspperm/adatum", "-n", "partner-a"],
        admin,
    ))
    .await;

    // The operator's service account: lists across namespaces, deletes nothing.
    let operator = |args: &[&str]| kubectl::Args::new(args).run_as(OPERATOR_SA);
    env.ok(&operator(&["get", "cspperm", "-A"])).await;
    let err = env
        .fails(&operator(&[
            "delete",
            "cspperm",
            "contoso",
            "-n",
            "partner-a",
        ]))
        .await;
    assert!(err.contains("cannot delete resource"), "{err}");
}
