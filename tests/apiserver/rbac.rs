//! RBAC in the embedded server: partner agent roles, enforced for impersonated requests
//! (`kubectl --as`/`--as-group`) exactly as a real cluster would, with the real messages.

use crate::support::Env;
use crate::support::kubectl::{self, patch_enabled, patch_status};

const NAMESPACES: &str = "apiVersion: v1
kind: Namespace
metadata: {name: partner-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: partner-b}
";

fn agent_role(name: &str, verbs: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}}}
rules:
- apiGroups: [csp.operator.dev]
  resources: [customers, azuresubscriptions, roleassignments, purchasepermissions]
  verbs: [{verbs}]
"
    )
}

fn role_binding(ns: &str, role: &str, subjects: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {role}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
subjects: {subjects}
"
    )
}

fn permission(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: csp.operator.dev/v1alpha1
kind: PurchasePermission
metadata: {{name: {name}, namespace: {ns}}}
spec: {{customerRef: {{name: {name}}}, enabled: false}}
"
    )
}

/// Namespaces, one PurchasePermission "contoso" in each partner namespace (as admin).
async fn partners(env: &Env) {
    let f = env.manifest("ns.yaml", NAMESPACES);
    env.ok(&["apply", "-f", &f]).await;
    let objs = [
        permission("partner-a", "contoso"),
        permission("partner-b", "contoso"),
    ]
    .join("---\n");
    let f = env.manifest("perms.yaml", &objs);
    env.ok(&["apply", "-f", &f]).await;
}

/// The agent ClusterRoles bound in partner-a.
async fn agents(env: &Env) {
    let read = "get, list, watch";
    let all = "create, get, list, watch, update, patch, delete, deletecollection";
    let objs = [
        agent_role("csp-admin-agent", all),
        agent_role("csp-sales-agent", read),
        agent_role("csp-helpdesk-agent", read),
        role_binding(
            "partner-a",
            "csp-admin-agent",
            "[{kind: User, name: admin1, apiGroup: rbac.authorization.k8s.io}]",
        ),
        role_binding(
            "partner-a",
            "csp-sales-agent",
            "[{kind: User, name: sales1, apiGroup: rbac.authorization.k8s.io}]",
        ),
        role_binding(
            "partner-a",
            "csp-helpdesk-agent",
            "[{kind: Group, name: helpdesk, apiGroup: rbac.authorization.k8s.io}]",
        ),
    ]
    .join("---\n");
    let f = env.manifest("rbac.yaml", &objs);
    env.ok(&["apply", "-f", &f]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sales_agent_reads_but_cannot_write() {
    let env = Env::new().await;
    partners(&env).await;
    agents(&env).await;

    let out = env
        .ok(&["get", "cspperm", "-n", "partner-a", "--as", "sales1"])
        .await;
    assert!(out.contains("contoso"), "{out}");
    env.ok(&[
        "get",
        "cspperm",
        "contoso",
        "-n",
        "partner-a",
        "-o",
        "yaml",
        "--as",
        "sales1",
    ])
    .await;
    env.ok(&["get", "cspcust", "-n", "partner-a", "--as", "sales1"])
        .await;

    let err = env
        .fails(&patch_enabled("partner-a", "contoso", true).run_as("sales1"))
        .await;
    assert!(
        err.contains(
            r#"purchasepermissions.csp.operator.dev "contoso" is forbidden: User "sales1" cannot patch resource "purchasepermissions" in API group "csp.operator.dev" in the namespace "partner-a""#
        ),
        "{err}"
    );
    // Status subresource, named "purchasepermissions/status" (kubectl reads it before patching;
    // the read rule on purchasepermissions does not cover it, as on a real cluster).
    let err = env
        .fails(&patch_status("partner-a", "contoso", r#"{}"#).run_as("sales1"))
        .await;
    assert!(
        err.contains(r#"User "sales1" cannot get resource "purchasepermissions/status" in API group "csp.operator.dev" in the namespace "partner-a""#),
        "{err}"
    );
    // Refused in the other partner's namespace, and across namespaces.
    let err = env
        .fails(&["get", "cspperm", "-n", "partner-b", "--as", "sales1"])
        .await;
    assert!(
        err.contains(r#"purchasepermissions.csp.operator.dev is forbidden: User "sales1" cannot list resource "purchasepermissions" in API group "csp.operator.dev" in the namespace "partner-b""#),
        "{err}"
    );
    let err = env.fails(&["get", "cspperm", "-A", "--as", "sales1"]).await;
    assert!(
        err.contains(r#"cannot list resource "purchasepermissions" in API group "csp.operator.dev" at the cluster scope"#),
        "{err}"
    );
    // Nothing changed; the admin (no impersonation) still does anything.
    let enabled = env
        .jsonpath("cspperm/contoso", "partner-a", "{.spec.enabled}")
        .await;
    assert_eq!(enabled, "false");
    env.ok(&patch_enabled("partner-b", "contoso", true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpdesk_group_admin_agent_and_unbound_user() {
    let env = Env::new().await;
    partners(&env).await;
    agents(&env).await;

    // Helpdesk is bound as a group: reads with --as-group, cannot delete.
    let out = env
        .ok(&[
            "get",
            "cspperm",
            "-n",
            "partner-a",
            "--as",
            "hd1",
            "--as-group",
            "helpdesk",
        ])
        .await;
    assert!(out.contains("contoso"), "{out}");
    let err = env
        .fails(&[
            "delete",
            "cspperm",
            "contoso",
            "-n",
            "partner-a",
            "--as",
            "hd1",
            "--as-group",
            "helpdesk",
        ])
        .await;
    assert!(
        err.contains(r#"User "hd1" cannot delete resource "purchasepermissions" in API group "csp.operator.dev" in the namespace "partner-a""#),
        "{err}"
    );
    // Without the group, the same user has nothing; with another group too, still the grant.
    let err = env
        .fails(&["get", "cspperm", "-n", "partner-a", "--as", "hd1"])
        .await;
    assert!(err.contains("cannot list resource"), "{err}");
    env.ok(&[
        "get",
        "cspperm",
        "-n",
        "partner-a",
        "--as",
        "hd1",
        "--as-group",
        "other",
        "--as-group",
        "helpdesk",
    ])
    .await;

    // The admin agent switches the permission on, and back off, in its namespace only.
    env.ok(&patch_enabled("partner-a", "contoso", true).run_as("admin1"))
        .await;
    let enabled = env
        .ok(&kubectl::jsonpath("cspperm/contoso", "partner-a", "{.spec.enabled}").run_as("admin1"))
        .await;
    assert_eq!(enabled, "true");
    env.ok(&patch_enabled("partner-a", "contoso", false).run_as("admin1"))
        .await;
    env.fails(&patch_enabled("partner-b", "contoso", true).run_as("admin1"))
        .await;
    // Create and delete too (apply: get, then create).
    let f = env.manifest("p2.yaml", &permission("partner-a", "fabrikam"));
    env.ok(&["apply", "-f", &f, "--as", "admin1"]).await;
    env.ok(&[
        "delete",
        "cspperm",
        "fabrikam",
        "-n",
        "partner-a",
        "--as",
        "admin1",
    ])
    .await;
    // The admin agent may not touch RBAC itself.
    let err = env
        .fails(&["get", "rolebindings", "-n", "partner-a", "--as", "admin1"])
        .await;
    assert!(
        err.contains(r#"cannot list resource "rolebindings" in API group "rbac.authorization.k8s.io" in the namespace "partner-a""#),
        "{err}"
    );

    // A user bound to nothing.
    let err = env
        .fails(&["get", "cspperm", "-n", "partner-a", "--as", "mallory"])
        .await;
    assert!(
        err.contains(r#"Error from server (Forbidden): purchasepermissions.csp.operator.dev is forbidden: User "mallory" cannot list resource "purchasepermissions" in API group "csp.operator.dev" in the namespace "partner-a""#),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_cluster_bindings_and_the_status_details() {
    let env = Env::new().await;
    partners(&env).await;
    agents(&env).await;
    let binding = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: auditors}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: csp-sales-agent}
subjects:
- {kind: ServiceAccount, name: auditor, namespace: ops}
";
    let f = env.manifest("crb.yaml", binding);
    env.ok(&["apply", "-f", &f]).await;
    let sa = "system:serviceaccount:ops:auditor";
    let out = env.ok(&["get", "cspperm", "-A", "--as", sa]).await;
    assert!(
        out.contains("partner-a") && out.contains("partner-b"),
        "{out}"
    );
    let err = env
        .fails(&[
            "delete",
            "cspperm",
            "contoso",
            "-n",
            "partner-b",
            "--as",
            sa,
        ])
        .await;
    assert!(
        err.contains(r#"User "system:serviceaccount:ops:auditor" cannot delete resource"#),
        "{err}"
    );
    // The Status object, as kube-rs and client-go read it.
    let err = env
        .fails(&[
            "get",
            "--raw",
            "/apis/csp.operator.dev/v1alpha1/namespaces/partner-a/purchasepermissions/contoso",
            "--as",
            "mallory",
        ])
        .await;
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    let out = env
        .kubectl(&[
            "get",
            "cspperm",
            "contoso",
            "-n",
            "partner-a",
            "--as",
            "mallory",
            "-v=8",
        ])
        .await;
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("403 Forbidden"), "{log}");
    for field in [
        r#""reason": "Forbidden""#,
        r#""group": "csp.operator.dev""#,
        r#""kind": "purchasepermissions""#,
        r#""name": "contoso""#,
    ] {
        assert!(log.contains(field), "{field} in {log}");
    }
    // A status writer: `purchasepermissions/status` rules grant the subresource only.
    let status = "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: status-writer, namespace: partner-a}
rules:
- apiGroups: [csp.operator.dev]
  resources: [purchasepermissions/status]
  verbs: [get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: status-writer, namespace: partner-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: status-writer}
subjects: [{kind: User, name: statusbot}]
";
    let f = env.manifest("status.yaml", status);
    env.ok(&["apply", "-f", &f]).await;
    env.ok(
        &patch_status("partner-a", "contoso", r#"{"observedGeneration":1}"#).run_as("statusbot"),
    )
    .await;
    let err = env
        .fails(&patch_enabled("partner-a", "contoso", true).run_as("statusbot"))
        .await;
    assert!(
        err.contains(r#"User "statusbot" cannot get resource "purchasepermissions" in API group"#),
        "{err}"
    );

    // Discovery and version stay open to everyone.
    env.ok(&["api-resources", "--as", "mallory"]).await;
    env.ok(&["version", "--as", "mallory"]).await;
}
