//! The Argo CD health scripts in deploy/argocd/: generated from one template, and run with a
//! real Lua on the objects the real operator wrote (examples applied with kubectl to the
//! embedded API server).

use crate::support::kubectl::patch_enabled;
use crate::support::paths::{ARGOCD, EXAMPLES};
use crate::support::{Env, poll};
use mlua::serde::SerializeOptions;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::Value;
use std::path::Path;

const NS: &str = "partner-a";

/// The health script Argo CD would run for `kind`.
fn script(kind: &str) -> String {
    let path = Path::new(ARGOCD).join(format!("{}.lua", kind.to_lowercase()));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Debug)]
struct Health {
    status: String,
    message: String,
}

/// Runs `kind`'s health script with `obj` bound as Argo CD binds it (JSON null as nil).
fn health(obj: &Value) -> Health {
    let kind = obj["kind"].as_str().expect("kind");
    let lua = Lua::new();
    let options = SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    let value = lua
        .to_value_with(obj, options)
        .expect("object converts to Lua");
    lua.globals().set("obj", value).expect("set obj");
    let hs: Table = lua
        .load(script(kind))
        .set_name(format!("{}.lua", kind.to_lowercase()))
        .eval()
        .expect("health script runs");
    let status: String = hs.get("status").expect("hs.status is a string");
    assert!(
        ["Healthy", "Progressing", "Degraded"].contains(&status.as_str()),
        "{kind}: unexpected hs.status {status}"
    );
    Health {
        status,
        message: hs.get("message").expect("hs.message is a string"),
    }
}

fn reported_on_current_generation(obj: &Value) -> bool {
    let ready = obj["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready"));
    ready
        && obj["metadata"]["generation"].is_number()
        && obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
}

/// Every object of the four kinds, once the operator has reported on all of them.
async fn settled(env: &Env) -> Vec<Value> {
    poll::eventually("statuses to settle", || async {
        let list = env
            .get_json(
                "customers,azuresubscriptions,roleassignments,purchasepermissions",
                NS,
            )
            .await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        if items.len() == 13 && items.iter().all(reported_on_current_generation) {
            Ok(items)
        } else {
            Err(list)
        }
    })
    .await
}

fn named<'a>(items: &'a [Value], kind: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_scripts_on_the_examples() {
    let mut env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    // The permissions' final states (earlier reconciles may see half the examples).
    for (name, want) in [
        ("contoso", "Enabled/True"),
        ("adatum", "Blocked/False"),
        ("fabrikam", "Blocked/False"),
        ("northwind", "Blocked/False"),
    ] {
        env.wait_for(
            &format!("cspperm/{name}"),
            NS,
            r#"{.status.state}/{.status.conditions[?(@.type=="Ready")].status}"#,
            want,
        )
        .await;
    }
    let items = settled(&env).await;

    let contoso = health(named(&items, "PurchasePermission", "contoso"));
    assert_eq!(contoso.status, "Healthy", "{contoso:?}");
    assert!(contoso.message.starts_with("Enabled: "), "{contoso:?}");
    for (name, reason) in [
        ("adatum", "NoEligibleSubscription"),
        ("fabrikam", "NoEligibleSubscription"),
        ("northwind", "OwnerRoleMissing"),
    ] {
        let h = health(named(&items, "PurchasePermission", name));
        assert_eq!(h.status, "Degraded", "{name}: {h:?}");
        assert!(
            h.message.starts_with(&format!("Blocked, {reason}: ")) && h.message.len() > 30,
            "{name}: {h:?}"
        );
    }
    let mut others = 0;
    for obj in items.iter().filter(|o| o["kind"] != "PurchasePermission") {
        let h = health(obj);
        assert_eq!(h.status, "Healthy", "{obj:#}: {h:?}");
        others += 1;
    }
    assert_eq!(
        others, 9,
        "4 customers, 3 subscriptions, 2 role assignments"
    );

    // A stale status (the spec moved on, the operator has not caught up) is Progressing,
    // even when the stale Ready says True.
    let mut stale = named(&items, "PurchasePermission", "contoso").clone();
    let generation = stale["metadata"]["generation"]
        .as_i64()
        .expect("generation");
    stale["metadata"]["generation"] = (generation + 1).into();
    let h = health(&stale);
    assert_eq!(h.status, "Progressing", "{h:?}");
    assert!(
        h.message
            .contains(&format!("generation {}", generation + 1)),
        "{h:?}"
    );

    // The same for real: with the operator stopped, a spec change and a new object.
    env.stop_controllers();
    env.ok(&patch_enabled(NS, "northwind", false)).await;
    let northwind = env.get_json("cspperm/northwind", NS).await;
    assert_ne!(
        northwind["status"]["observedGeneration"], northwind["metadata"]["generation"],
        "{northwind:#}"
    );
    assert_eq!(health(&northwind).status, "Progressing");

    let fresh = env.manifest(
        "fresh.yaml",
        r#"
apiVersion: csp.operator.dev/v1alpha1
kind: Customer
metadata: {name: litware, namespace: partner-a}
spec:
  tenantId: 1a2b3c4d-0000-4000-8000-000000000005
  companyName: Litware Inc
---
apiVersion: csp.operator.dev/v1alpha1
kind: AzureSubscription
metadata: {name: litware-plan, namespace: partner-a}
spec:
  customerRef: {name: litware}
  subscriptionId: 2b3c4d5e-0000-4000-8000-000000000005
  offer: AzurePlan
---
apiVersion: csp.operator.dev/v1alpha1
kind: RoleAssignment
metadata: {name: litware-plan-dan-owner, namespace: partner-a}
spec:
  subscriptionRef: {name: litware-plan}
  principal: {id: 3c4d5e6f-0000-4000-8000-000000000005}
  role: Owner
---
apiVersion: csp.operator.dev/v1alpha1
kind: PurchasePermission
metadata: {name: litware, namespace: partner-a}
spec:
  customerRef: {name: litware}
  enabled: true
"#,
    );
    env.ok(&["apply", "-f", &fresh]).await;
    for resource in [
        "cspcust/litware",
        "azsub/litware-plan",
        "azrole/litware-plan-dan-owner",
        "cspperm/litware",
    ] {
        let obj = env.get_json(resource, NS).await;
        assert!(obj.get("status").is_none(), "{resource}: {obj:#}");
        let h = health(&obj);
        assert_eq!(h.status, "Progressing", "{resource}: {h:?}");
    }
}

/// Ready=Unknown and a status without conditions wait; Ready=False on any kind degrades.
#[test]
fn health_scripts_on_edge_cases() {
    for kind in [
        "Customer",
        "AzureSubscription",
        "RoleAssignment",
        "PurchasePermission",
    ] {
        let obj = |status: Value| {
            serde_json::json!({
                "apiVersion": "csp.operator.dev/v1alpha1",
                "kind": kind,
                "metadata": {"name": "x", "namespace": NS, "generation": 3},
                "status": status,
            })
        };
        let h = health(&obj(serde_json::json!({"observedGeneration": 3})));
        assert_eq!(h.status, "Progressing", "{kind}: {h:?}");
        let h = health(&obj(serde_json::json!({
            "observedGeneration": 3,
            "conditions": [{"type": "Ready", "status": "Unknown", "reason": "Pending"}],
        })));
        assert_eq!(h.status, "Progressing", "{kind}: {h:?}");
        let h = health(&obj(serde_json::json!({
            "observedGeneration": 3,
            "state": "Enabled",
            "conditions": [
                {"type": "SubscriptionEligible", "status": "False", "reason": "NoEligibleSubscription"},
                {"type": "Ready", "status": "False", "reason": "SomethingNew", "message": "fix it"},
            ],
        })));
        assert_eq!(h.status, "Degraded", "{kind}: {h:?}");
        assert!(h.message.contains("SomethingNew: fix it"), "{kind}: {h:?}");
        let h = health(&obj(Value::Null));
        assert_eq!(h.status, "Progressing", "{kind}: {h:?}");
        // A grant change in flight (being retried) is progress, not health or failure.
        let h = health(&obj(serde_json::json!({
            "observedGeneration": 3,
            "state": "Disabled",
            "conditions": [
                {"type": "Reconciling", "status": "True", "reason": "GrantPending", "message": "retrying"},
                {"type": "Ready", "status": "True", "reason": "PermissionDisabled"},
            ],
        })));
        assert_eq!(h.status, "Progressing", "{kind}: {h:?}");
        assert!(
            h.message.contains("GrantPending: retrying"),
            "{kind}: {h:?}"
        );
    }
}

/// The key of the PurchasePermission script in the README's argocd-cm snippet.
const README_KEY: &str = "resource.customizations.health.csp.operator.dev_PurchasePermission: |";

/// `script` as the README embeds it: indented by 4 spaces, empty lines left empty.
fn indented(script: &str) -> String {
    script
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}

/// The argocd-cm snippet in deploy/argocd/README.md is the PurchasePermission script verbatim.
#[test]
fn readme_snippet_is_the_script() {
    let readme = std::fs::read_to_string(Path::new(ARGOCD).join("README.md")).expect("README");
    assert!(
        readme.contains(README_KEY) && readme.contains(&indented(&script("PurchasePermission"))),
        "deploy/argocd/README.md must embed purchasepermission.lua, indented by 4 spaces; \
         regenerate with: {REGENERATE}"
    );
}

/// How to bring the scripts and the README's snippet in line with the template.
const REGENERATE: &str =
    "UPDATE_ARGOCD=1 cargo test --test operator argocd::checked_in_scripts_match_the_template";

/// `template` rendered for `kind`: `{{KIND}}` replaced; `@state ` lines kept for kinds with a
/// `status.state`, `@plain ` lines for the others; `@@` lines (the template's own notes) dropped.
fn render(template: &str, kind: &str, has_state: bool) -> String {
    let mut out = String::new();
    for line in template.lines() {
        let line = if let Some(rest) = line.strip_prefix("@state ") {
            if !has_state {
                continue;
            }
            rest
        } else if let Some(rest) = line.strip_prefix("@plain ") {
            if has_state {
                continue;
            }
            rest
        } else if line.starts_with("@@") {
            continue;
        } else {
            line
        };
        out.push_str(&line.replace("{{KIND}}", kind));
        out.push('\n');
    }
    out
}

/// The README with its PurchasePermission snippet (from the key line to the closing fence)
/// replaced by `script`.
fn readme_with_snippet(readme: &str, script: &str) -> String {
    let start = readme
        .find(README_KEY)
        .expect("the README has the snippet's key")
        + README_KEY.len()
        + 1;
    let end = start
        + readme[start..]
            .find("```")
            .expect("the snippet's closing fence");
    format!("{}{}{}", &readme[..start], indented(script), &readme[end..])
}

/// Argo CD needs one self-contained script per kind; they are rendered from
/// deploy/argocd/health.lua.template, one per kind the CRDs define, and must be checked in as
/// rendered. With `UPDATE_ARGOCD=1` this test writes them (and the README's snippet) instead.
#[test]
fn checked_in_scripts_match_the_template() {
    let dir = Path::new(ARGOCD);
    let template = std::fs::read_to_string(dir.join("health.lua.template")).expect("template");
    let update = std::env::var_os("UPDATE_ARGOCD").is_some_and(|v| v == "1");
    let mut wanted = Vec::new();
    let mut stale = Vec::new();
    for crd in csp_operator::api::crds() {
        let kind = crd.spec.names.kind.clone();
        let has_state = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| s.properties.as_ref()?.get("status")?.properties.as_ref())
            .is_some_and(|status| status.contains_key("state"));
        let name = format!("{}.lua", kind.to_lowercase());
        let rendered = render(&template, &kind, has_state);
        if update {
            std::fs::write(dir.join(&name), &rendered).expect("write script");
            if kind == "PurchasePermission" {
                let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
                std::fs::write(
                    dir.join("README.md"),
                    readme_with_snippet(&readme, &rendered),
                )
                .expect("write README");
            }
        }
        if std::fs::read_to_string(dir.join(&name)).unwrap_or_default() != rendered {
            stale.push(name.clone());
        }
        wanted.push(name);
    }
    assert_eq!(wanted.len(), 5, "one script per kind");
    let mut extra: Vec<String> = std::fs::read_dir(dir)
        .expect("deploy/argocd/ exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".lua") && !wanted.contains(n))
        .collect();
    extra.sort();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "deploy/argocd/ differs from health.lua.template (stale: {stale:?}, not generated: \
         {extra:?}); regenerate with: {REGENERATE}"
    );
}
