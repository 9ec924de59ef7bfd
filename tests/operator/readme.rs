//! The README's commands, run as written in a fresh shell against the operator: the walkthrough's
//! `$ kubectl ...` lines and every block that makes a blocked customer ready.

use crate::support::Env;
use crate::support::kubectl;
use crate::support::paths::{EXAMPLES, ROOT};
use std::path::Path;
use std::process::Command;

const NS: &str = "partner-a";

/// The README's text between the heading `from` and the next heading of level two.
fn section(from: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let start = readme
        .find(from)
        .unwrap_or_else(|| panic!("README has {from:?}"));
    let rest = &readme[start + from.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_string()
}

/// The fenced blocks of a language (` ```sh `, ` ```console `) in `text`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .map(|b| b.split("```").next().unwrap_or_default().to_string())
        .collect()
}

/// Runs `script` with bash as a user's shell would, `KUBECONFIG` exported as `up` says.
async fn shell(env: &Env, script: &str) -> (bool, String) {
    let kubectl = kubectl::binary();
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    // The same kubectl the other tests drive, first on the PATH (`$KUBECTL` may name another).
    let bin = env.dir.path().join("bin");
    if kubectl.is_absolute() && !bin.exists() {
        std::fs::create_dir_all(&bin).expect("bin dir");
        std::os::unix::fs::symlink(&kubectl, bin.join("kubectl")).expect("symlink kubectl");
    }
    if bin.exists() {
        let mut dirs = vec![bin];
        dirs.extend(std::env::split_paths(&path));
        path = std::env::join_paths(dirs).expect("PATH");
    }
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .env("KUBECONFIG", &env.kubeconfig)
        .env("PATH", path)
        .current_dir(env.dir.path());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("bash runs"))
        .await
        .expect("join");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_commands_work_as_written() {
    let env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.wait_for_permission(NS, "northwind", "Blocked/False/OwnerRoleMissing")
        .await;

    // The walkthrough's commands: each `$ kubectl ...` line of its console blocks.
    let walkthrough = section("## Walkthrough: the examples");
    let before_fixes = walkthrough
        .split("### Making each blocked customer ready")
        .next()
        .unwrap_or_default()
        .to_string();
    let mut commands: Vec<String> = blocks(&before_fixes, "console")
        .iter()
        .flat_map(|b| b.lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| l.strip_prefix("$ kubectl ").map(|c| format!("kubectl {c}")))
        .collect();
    // The inline one that once printed `items: []` from the kubeconfig's default namespace.
    let inline = "kubectl get events.events.k8s.io -n partner-a -o yaml";
    assert!(walkthrough.contains(inline), "the README shows {inline}");
    commands.push(inline.to_string());
    assert!(commands.len() >= 4, "{commands:?}");
    for command in &commands {
        let (ok, out) = shell(&env, command).await;
        assert!(ok, "{command}\n{out}");
        assert!(!out.trim().is_empty(), "{command} printed nothing");
        assert!(!out.contains("items: []"), "{command}\n{out}");
        assert!(!out.contains("No resources found"), "{command}\n{out}");
    }

    // Making each blocked customer ready: every block, in order, as written.
    let fixes = blocks(&section("### Making each blocked customer ready"), "sh");
    assert_eq!(fixes.len(), 3, "northwind, fabrikam, adatum");
    for script in &fixes {
        let (ok, out) = shell(&env, script).await;
        assert!(ok, "{script}\n{out}");
    }
    for customer in ["northwind", "fabrikam", "adatum", "contoso"] {
        env.wait_for_permission(NS, customer, "Enabled/True/PermissionEnabled")
            .await;
    }
}
