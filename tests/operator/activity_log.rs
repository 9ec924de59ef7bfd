//! The grant record as an audit trail: exactly one Event per grant transition (none lost to a
//! crash, none doubled by a retry or a race), `status.history` naming who switched, a fresh read
//! before any grant, rivals handing the one grant over explicitly, and deletions that show it.

use crate::support::kubectl::patch_enabled;
use crate::support::paths::EXAMPLES;
use crate::support::{Env, poll};
use csp_operator::api::PurchasePermission;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

const NS: &str = "partner-a";

/// How many times the activity log of `ns` holds `reason/action/regarding`.
async fn logged(env: &Env, ns: &str, entry: &str) -> usize {
    env.activity_log(ns)
        .await
        .iter()
        .filter(|l| *l == entry)
        .count()
}

/// The permission's `status.history` as `reason by` lines.
async fn history(env: &Env, name: &str) -> Vec<Value> {
    let p = env.get_json(&format!("cspperm/{name}"), NS).await;
    p["status"]["history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Names of the Events regarding `name` with `reason`.
async fn event_names(env: &Env, name: &str, reason: &str) -> Vec<String> {
    let events = env.get_json("events.events.k8s.io", NS).await;
    let items = events["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter(|e| e["regarding"]["name"] == name && e["reason"] == reason)
        .filter_map(|e| e["metadata"]["name"].as_str().map(String::from))
        .collect()
}

/// A PurchasePermission for customer contoso.
fn contoso_permission(name: &str) -> String {
    format!(
        "apiVersion: csp.operator.dev/v1alpha1\nkind: PurchasePermission\nmetadata: {{name: {name}, namespace: {NS}}}\nspec: {{customerRef: {{name: contoso}}, enabled: true}}\n"
    )
}

/// The examples applied and contoso's own permission gone, so tests can make their own.
async fn contoso_without_permission(env: &Env) {
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.ok(&["delete", "cspperm", "contoso", "-n", NS, "--timeout=20s"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transition_has_one_event_and_a_history_entry_naming_who() {
    let mut env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.ok(&patch_enabled(NS, "contoso", false)).await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    env.ok(&patch_enabled(NS, "contoso", true)).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.settled_writes().await;

    let history = history(&env, "contoso").await;
    let lines: Vec<String> = history
        .iter()
        .map(|h| {
            format!(
                "{} {}>{} {}",
                h["sequence"], h["from"], h["to"], h["reason"]
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            r#"1 "Disabled">"Enabled" "PermissionEnabled""#,
            r#"2 "Enabled">"Disabled" "PermissionDisabled""#,
            r#"3 "Disabled">"Enabled" "PermissionEnabled""#
        ]
    );
    assert_eq!(history[1]["by"], "kubectl-patch", "{history:?}");
    assert_eq!(history[2]["by"], "kubectl-patch");
    let enabled = "PermissionEnabled/CreateCustomerPurchasePermissions/contoso";
    let disabled = "PermissionDisabled/DeleteCustomerPurchasePermissions/contoso";
    assert_eq!(logged(&env, NS, enabled).await, 2);
    assert_eq!(logged(&env, NS, disabled).await, 1);

    // A crash between the status write and its Event: the Event is lost. The restarted operator
    // records it again under the same name; the Events that exist are not doubled.
    env.stop_controllers();
    let names = event_names(&env, "contoso", "PermissionDisabled").await;
    assert_eq!(names.len(), 1);
    env.ok(&["delete", "events.events.k8s.io", &names[0], "-n", NS])
        .await;
    assert_eq!(logged(&env, NS, disabled).await, 0);
    env.start_controllers();
    env.wait_for_event(NS, disabled).await;
    assert_eq!(
        event_names(&env, "contoso", "PermissionDisabled").await,
        names
    );
    env.settled_writes().await;
    assert_eq!(logged(&env, NS, enabled).await, 2);
    assert_eq!(logged(&env, NS, disabled).await, 1);
    let notes = env.get_json("events.events.k8s.io", NS).await;
    let note = notes["items"]
        .as_array()
        .and_then(|items| items.iter().find(|e| e["metadata"]["name"] == names[0]))
        .map(|e| e["note"].to_string())
        .unwrap_or_default();
    assert!(note.contains("kubectl-patch"), "the note names who: {note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_with_the_longest_valid_name_gets_its_events() {
    let env = Env::with_controllers().await;
    contoso_without_permission(&env).await;
    let name = format!("{}-x", "a".repeat(251));
    assert_eq!(name.len(), 253);
    env.ok(&[
        "apply",
        "-f",
        &env.manifest("long.yaml", &contoso_permission(&name)),
    ])
    .await;
    env.wait_for_permission(NS, &name, "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_event(
        NS,
        &format!("PermissionEnabled/CreateCustomerPurchasePermissions/{name}"),
    )
    .await;
    env.ok(&["delete", "cspperm", &name, "-n", NS, "--timeout=20s"])
        .await;
    let disabled = format!("PermissionDisabled/DeleteCustomerPurchasePermissions/{name}");
    assert_eq!(logged(&env, NS, &disabled).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_racing_spec_patches_logs_one_withdrawal() {
    let env = Env::with_controllers().await;
    contoso_without_permission(&env).await;
    let api: Api<PurchasePermission> = Api::namespaced(env.client.clone(), NS);
    for i in 0..5 {
        let name = format!("race-{i}");
        let file = env.manifest(&format!("{name}.yaml"), &contoso_permission(&name));
        env.ok(&["apply", "-f", &file]).await;
        env.wait_for_permission(NS, &name, "Enabled/True/PermissionEnabled")
            .await;
        // The delete lands between a merge patch and a server-side apply of the spec.
        let merge = json!({"spec": {"resources": ["AzureReservations", "AzureSavingsPlan"]}});
        let apply = json!({
            "apiVersion": "csp.operator.dev/v1alpha1", "kind": "PurchasePermission",
            "metadata": {"name": name}, "spec": {"customerRef": {"name": "contoso"}, "enabled": true}
        });
        let ssa = PatchParams::apply("gitops").force();
        let (merge, apply) = (Patch::Merge(&merge), Patch::Apply(&apply));
        let (plain, delete) = (PatchParams::default(), DeleteParams::default());
        let _ = tokio::join!(
            api.patch(&name, &plain, &merge),
            api.delete(&name, &delete),
            api.patch(&name, &ssa, &apply),
        );
        env.ok(&[
            "wait",
            "--for=delete",
            &format!("cspperm/{name}"),
            "-n",
            NS,
            "--timeout=20s",
        ])
        .await;
        let withdrawn = format!("PermissionDisabled/DeleteCustomerPurchasePermissions/{name}");
        env.wait_for_event(NS, &withdrawn).await;
        env.settled_writes().await;
        assert_eq!(logged(&env, NS, &withdrawn).await, 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_held_by_another_finalizer_shows_the_withdrawal() {
    let env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    let hold = r#"[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/hold"}]"#;
    env.ok(&[
        "patch",
        "cspperm",
        "contoso",
        "-n",
        NS,
        "--type=json",
        "-p",
        hold,
    ])
    .await;
    env.ok(&["delete", "cspperm", "contoso", "-n", NS, "--wait=false"])
        .await;
    env.wait_for_permission(NS, "contoso", "Disabled/True/PermissionDisabled")
        .await;
    env.wait_for(
        "cspcust/contoso",
        NS,
        "{.status.purchasePermission}",
        "Disabled",
    )
    .await;
    env.wait_for(
        "cspperm/contoso",
        NS,
        "{.metadata.finalizers}",
        r#"["example.com/hold"]"#,
    )
    .await;
    let withdrawn = "PermissionDisabled/DeleteCustomerPurchasePermissions/contoso";
    assert_eq!(logged(&env, NS, withdrawn).await, 1);
    let last = history(&env, "contoso").await.pop().unwrap_or_default();
    assert_eq!(last["reason"], "PermissionDisabled");
    env.ok(&[
        "patch",
        "cspperm",
        "contoso",
        "-n",
        NS,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .await;
    env.ok(&[
        "wait",
        "--for=delete",
        "cspperm/contoso",
        "-n",
        NS,
        "--timeout=20s",
    ])
    .await;
    assert_eq!(logged(&env, NS, withdrawn).await, 1);
}

/// Creates `b` and waits for its grant, then creates `a` (the tie of a same-second creation goes
/// to `a` by name). Returns false when the two landed in different seconds.
async fn rivals_in_one_second(env: &Env, a: &str, b: &str) -> bool {
    let file = env.manifest(&format!("{b}.yaml"), &contoso_permission(b));
    env.ok(&["apply", "-f", &file]).await;
    env.wait_for_permission(NS, b, "Enabled/True/PermissionEnabled")
        .await;
    let file = env.manifest(&format!("{a}.yaml"), &contoso_permission(a));
    env.ok(&["apply", "-f", &file]).await;
    let created = |name: &str| {
        let args = crate::support::kubectl::jsonpath(
            &format!("cspperm/{name}"),
            NS,
            "{.metadata.creationTimestamp}",
        );
        async move { env.ok(&args).await }
    };
    created(a).await == created(b).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rivals_created_in_one_second_hand_the_grant_over_and_log_it() {
    let env = Env::with_controllers().await;
    contoso_without_permission(&env).await;
    let mut tied = None;
    for attempt in 0..8 {
        let (a, b) = (format!("rival-a-{attempt}"), format!("rival-b-{attempt}"));
        if rivals_in_one_second(&env, &a, &b).await {
            tied = Some((a, b));
            break;
        }
        env.ok(&["delete", "cspperm", &a, &b, "-n", NS, "--timeout=20s"])
            .await;
    }
    let (a, b) = tied.expect("two permissions created within one second");
    // The older (by the tie-break) holds the grant; the one granted first handed it over.
    env.wait_for_permission(NS, &a, "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_permission(NS, &b, "Blocked/False/DuplicatePermission")
        .await;
    env.settled_writes().await;
    let log = env.activity_log(NS).await;
    // The grant's entries (the Warning that b is a duplicate aside), in name order.
    let of = |name: &str| -> Vec<String> {
        let mut entries: Vec<String> = log
            .iter()
            .filter(|l| l.ends_with(&format!("/{name}")) && !l.contains("/CheckPrerequisites/"))
            .cloned()
            .collect();
        entries.sort();
        entries
    };
    assert_eq!(
        of(&b),
        [
            format!("PermissionEnabled/CreateCustomerPurchasePermissions/{b}"),
            format!("PermissionHandedOver/HandOverCustomerPurchasePermissions/{b}"),
        ]
    );
    assert_eq!(
        of(&a),
        [format!(
            "PermissionTakenOver/HandOverCustomerPurchasePermissions/{a}"
        )]
    );
    let b_history = history(&env, &b).await;
    assert_eq!(b_history.last().map(|h| h["peer"].clone()), Some(json!(a)));
    env.wait_for(
        "cspcust/contoso",
        NS,
        "{.status.purchasePermission}",
        "Enabled",
    )
    .await;

    // The holder deleted: the grant is withdrawn (no rival holds it) and the other takes over.
    env.ok(&["delete", "cspperm", &a, "-n", NS, "--timeout=20s"])
        .await;
    env.wait_for_permission(NS, &b, "Enabled/True/PermissionEnabled")
        .await;
    let log = env.activity_log(NS).await;
    assert!(log.contains(&format!(
        "PermissionDisabled/DeleteCustomerPurchasePermissions/{a}"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_confirmed_on_a_fresh_read_not_a_stale_cache() {
    let env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "northwind", "Blocked/False/OwnerRoleMissing")
        .await;
    // The operator's permission watch stops delivering: its cache keeps enabled: true.
    env.server
        .fail_next("watch", "purchasepermissions", 100_000, 500, None);
    env.server
        .fail_next("list", "purchasepermissions", 100_000, 500, None);
    env.server.drop_watches();
    env.ok(&patch_enabled(NS, "northwind", false)).await;
    // Then the Owner comes: the stale cache says enable it.
    let owner = env.manifest(
        "owner.yaml",
        "apiVersion: csp.operator.dev/v1alpha1\nkind: RoleAssignment\nmetadata: {name: northwind-owner, namespace: partner-a}\nspec:\n  subscriptionRef: {name: northwind-plan}\n  principal: {id: 3c4d5e6f-0000-4000-8000-0000000000aa}\n  role: Owner\n",
    );
    env.ok(&["apply", "-f", &owner]).await;
    // The fresh read says it was switched off: the status says so, nothing was granted.
    env.wait_for_permission(NS, "northwind", "Disabled/True/PermissionDisabled")
        .await;
    let settle = poll::Poll::default();
    settle
        .eventually("the writes to stop", || async {
            let n = env.server.stats().writes;
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            if env.server.stats().writes == n {
                Ok(())
            } else {
                Err("still writing".to_string())
            }
        })
        .await;
    let log = env.activity_log(NS).await;
    assert!(
        !log.iter()
            .any(|l| l.starts_with("PermissionEnabled/") && l.ends_with("/northwind")),
        "{log:?}"
    );
    assert!(history(&env, "northwind").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_in_a_namespace_being_deleted_does_not_hold_it() {
    let env = Env::with_controllers().await;
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(EXAMPLES)
        .expect("examples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.to_string_lossy().contains("partner-center"))
        .collect();
    files.sort();
    let doomed = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("an example"))
        .collect::<Vec<_>>()
        .join("\n---\n")
        .replace("partner-a", "doomed");
    env.ok(&["apply", "-f", &env.manifest("doomed.yaml", &doomed)])
        .await;
    env.wait_for_permission("doomed", "contoso", "Enabled/True/PermissionEnabled")
        .await;
    // New objects (Events) are refused in a terminating namespace: the withdrawal's record is
    // the operator's log line, and the namespace still goes.
    env.ok(&["delete", "namespace", "doomed", "--timeout=30s"])
        .await;
    env.fails(&["get", "namespace", "doomed"]).await;
}
