//! `kubectl auth can-i` and `kubectl auth whoami`: the self-reviews answered from the RBAC rules
//! and the requester's identity (the kubeconfig user is the admin; `--as` someone else).

use crate::support::Env;
use crate::support::paths::{AGENT_ROLEBINDINGS, EXAMPLES_NAMESPACE, ROOT};

const SALES: &[&str] = &[
    "--as",
    "sales-agent-user",
    "--as-group",
    "partner-a:sales-agents",
];
const ADMIN_AGENT: &[&str] = &[
    "--as",
    "admin-agent-user",
    "--as-group",
    "partner-a:admin-agents",
];

/// partner-a with the shipped agent roles bound to its agent groups.
async fn agents(env: &Env) {
    env.ok(&["apply", "-f", EXAMPLES_NAMESPACE]).await;
    env.ok(&["apply", "-f", &format!("{ROOT}/deploy/agent-roles.yaml")])
        .await;
    env.ok(&["apply", "-f", AGENT_ROLEBINDINGS]).await;
}

/// `kubectl auth can-i ARGS...`: its exit code and what it printed.
async fn can_i(env: &Env, args: &[&str]) -> (i32, String) {
    let out = env.kubectl(&[&["auth", "can-i"], args].concat()).await;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let code = out.status.code().unwrap_or(-1);
    // "no" exits 1 too; an error must not pass for one.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.to_lowercase().contains("error"),
        "can-i {args:?}: {stderr}"
    );
    (code, printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_i_answers_from_rbac_with_exit_codes() {
    let env = Env::new().await;
    agents(&env).await;
    let sales = |a: &[&'static str]| [a, SALES].concat();
    let admin_agent = |a: &[&'static str]| [a, ADMIN_AGENT].concat();
    assert_eq!(
        can_i(
            &env,
            &sales(&["patch", "purchasepermissions", "-n", "partner-a"])
        )
        .await,
        (1, "no".into())
    );
    assert_eq!(
        can_i(&env, &sales(&["get", "cspperm", "-n", "partner-a"])).await,
        (0, "yes".into())
    );
    assert_eq!(
        can_i(
            &env,
            &sales(&["get", "purchasepermissions/status", "-n", "partner-a"])
        )
        .await,
        (0, "yes".into())
    );
    // The binding is in partner-a only.
    assert_eq!(
        can_i(
            &env,
            &sales(&["get", "purchasepermissions", "-n", "default"])
        )
        .await,
        (1, "no".into())
    );
    assert_eq!(
        can_i(
            &env,
            &admin_agent(&["patch", "purchasepermissions", "-n", "partner-a"])
        )
        .await,
        (0, "yes".into())
    );
    assert_eq!(
        can_i(&env, &admin_agent(&["delete", "namespaces/partner-a"])).await,
        (1, "no".into())
    );
    // Non-resource URLs: discovery is everyone's, the rest nobody's without a rule.
    assert_eq!(
        can_i(&env, &sales(&["get", "/apis"])).await,
        (0, "yes".into())
    );
    assert_eq!(
        can_i(&env, &sales(&["get", "/metrics"])).await,
        (1, "no".into())
    );
    // The kubeconfig user is the cluster admin.
    assert_eq!(
        can_i(&env, &["delete", "customresourcedefinitions"]).await,
        (0, "yes".into())
    );
    assert_eq!(can_i(&env, &["get", "/metrics"]).await, (0, "yes".into()));
    let quiet = can_i(
        &env,
        &sales(&["create", "customers", "-n", "partner-a", "--quiet"]),
    )
    .await;
    assert_eq!(quiet, (1, String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn can_i_list_shows_the_rules_in_the_namespace() {
    let env = Env::new().await;
    agents(&env).await;
    let (code, table) = can_i(&env, &[&["--list", "-n", "partner-a"], SALES].concat()).await;
    assert_eq!(code, 0, "{table}");
    let row = |resource: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .unwrap_or_else(|| panic!("no row for {resource}: {table}"))
            .to_string()
    };
    assert!(
        row("purchasepermissions.csp.operator.dev").contains("[get list watch]"),
        "{table}"
    );
    assert!(
        row("selfsubjectaccessreviews.authorization.k8s.io").contains("[create]"),
        "{table}"
    );
    // Elsewhere the sales agent has only what every user has.
    let (_, elsewhere) = can_i(&env, &[&["--list", "-n", "default"], SALES].concat()).await;
    assert!(!elsewhere.contains("purchasepermissions"), "{elsewhere}");
    // The admin has everything.
    let (_, admin) = can_i(&env, &["--list"]).await;
    assert!(
        admin
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["*.*", "[]", "[]", "[*]"]),
        "{admin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_requester() {
    let env = Env::new().await;
    let me = env
        .ok(&["auth", "whoami", "-o", "jsonpath={.status.userInfo}"])
        .await;
    let me: serde_json::Value = serde_json::from_str(&me).expect("userInfo JSON");
    assert_eq!(
        me,
        serde_json::json!({"username": "admin", "groups": ["system:masters", "system:authenticated"]})
    );
    let table = env.ok(&[&["auth", "whoami"], SALES].concat()).await;
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["ATTRIBUTE", "VALUE"], "{table}");
    assert_eq!(rows[1], ["Username", "sales-agent-user"], "{table}");
    assert_eq!(
        rows[2],
        ["Groups", "[partner-a:sales-agents", "system:authenticated]"],
        "{table}"
    );
}
