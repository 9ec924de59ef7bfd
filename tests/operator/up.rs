//! `csp-operator up` as a user runs it: the binary, its kubeconfig, `--apply`, `--state`.

use crate::support::kubectl::{self, Kubectl};
use crate::support::paths::{BINARY, EXAMPLES};
use crate::support::poll::Poll;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `up` starts a server and the controllers in a process of its own: it gets longer than the
/// in-process tests.
const UP: Poll = Poll {
    timeout: Duration::from_secs(30),
    every: Duration::from_millis(200),
};

fn start_up(dir: &Path, extra: &[&str]) -> Child {
    Command::new(BINARY)
        .current_dir(dir)
        .args(["up", "--port", "0", "--kubeconfig", "kc"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("up starts")
}

/// kubectl with the kubeconfig `up` wrote: whether it succeeded, and stdout then stderr.
fn run_kubectl<S: AsRef<str>>(dir: &Path, args: &[S]) -> (bool, String) {
    let out = Kubectl::new(dir.join("kc")).output(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Waits for the kubeconfig `up` writes once it serves.
fn wait_for_kubeconfig(dir: &Path) {
    let kc = dir.join("kc");
    UP.eventually_blocking("up to write its kubeconfig", || kc.exists());
}

/// Waits until kubectl succeeds printing exactly `want`.
fn wait_until(dir: &Path, args: &[String], want: &str) {
    UP.eventually_blocking(&format!("kubectl {args:?} to print {want:?}"), || {
        let (ok, out) = run_kubectl(dir, args);
        if ok && out == want {
            Ok(())
        } else {
            Err(format!("{out:?}"))
        }
    })
}

fn interrupt(child: Child) -> String {
    interrupt_with_logs(child).0
}

/// Stops `up` as Ctrl-C does; returns what it printed on stdout and on stderr.
fn interrupt_with_logs(child: Child) -> (String, String) {
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    let out = child.wait_with_output().expect("up exits");
    assert!(
        out.status.success(),
        "up exits cleanly: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn up_applies_examples_and_keeps_state_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = start_up(dir.path(), &["--apply", EXAMPLES, "--state", "state.json"]);
    let uid_path = kubectl::jsonpath(
        "cspperm/contoso",
        "partner-a",
        "{.metadata.uid}/{.status.state}/{.status.enabledSince}/{.status.conditions[?(@.type==\"Ready\")].lastTransitionTime}",
    );
    wait_for_kubeconfig(dir.path());
    wait_until(
        dir.path(),
        &kubectl::jsonpath("cspperm/contoso", "partner-a", "{.status.state}"),
        "Enabled",
    );
    let (_, before) = run_kubectl(dir.path(), &uid_path);
    let stdout = interrupt(up);
    assert!(
        stdout.contains("purchasepermission.csp.operator.dev/contoso created"),
        "{stdout}"
    );
    assert!(stdout.contains("export KUBECONFIG="), "{stdout}");
    assert!(stdout.contains("state saved"), "{stdout}");

    // Restart on the same state: the same objects (same uid), statuses intact.
    std::fs::remove_file(dir.path().join("kc")).expect("remove kubeconfig");
    let up = start_up(dir.path(), &["--state", "state.json"]);
    wait_for_kubeconfig(dir.path());
    wait_until(dir.path(), &uid_path, &before);
    wait_until(
        dir.path(),
        &kubectl::jsonpath("cspperm/northwind", "partner-a", "{.status.state}"),
        "Blocked",
    );
    interrupt(up);
}

#[test]
fn corrupt_state_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("state.json"),
        b"{\"kind\": \"CspOperatorState\", \"objects\": [",
    )
    .expect("write");
    let out = start_up(dir.path(), &["--state", "state.json"])
        .wait_with_output()
        .expect("up exits");
    assert!(!out.status.success(), "up must not start empty");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state.json is not a usable state file"),
        "{err}"
    );
    // The file is left as it was.
    let kept = std::fs::read(dir.path().join("state.json")).expect("read");
    assert_eq!(kept, b"{\"kind\": \"CspOperatorState\", \"objects\": [");
}

#[test]
fn restarting_with_apply_and_state_keeps_the_users_edits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["--apply", EXAMPLES, "--state", "state.json"];
    let up = start_up(dir.path(), &args);
    wait_for_kubeconfig(dir.path());
    let state = kubectl::jsonpath("cspperm/contoso", "partner-a", "{.status.state}");
    wait_until(dir.path(), &state, "Enabled");
    // The user switches contoso off with kubectl.
    let (ok, out) = run_kubectl(
        dir.path(),
        &kubectl::patch_enabled("partner-a", "contoso", false),
    );
    assert!(ok, "{out}");
    wait_until(dir.path(), &state, "Disabled");
    interrupt(up);

    // The same command again: the saved objects stay as the user left them.
    std::fs::remove_file(dir.path().join("kc")).expect("remove kubeconfig");
    let up = start_up(dir.path(), &args);
    wait_for_kubeconfig(dir.path());
    wait_until(dir.path(), &state, "Disabled");
    let enabled = kubectl::jsonpath("cspperm/contoso", "partner-a", "{.spec.enabled}");
    wait_until(dir.path(), &enabled, "false");
    let stdout = interrupt(up);
    assert!(stdout.contains("restored from the saved state"), "{stdout}");
    assert!(
        stdout.contains("leaves the saved objects as they are"),
        "{stdout}"
    );
    assert!(
        stdout.contains("purchasepermission.csp.operator.dev/contoso kept as saved"),
        "{stdout}"
    );
}

#[test]
fn user_output_on_stdout_logs_on_stderr_without_colour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let up = start_up(dir.path(), &["--apply", EXAMPLES]);
    wait_for_kubeconfig(dir.path());
    let (stdout, stderr) = interrupt_with_logs(up);
    assert!(stdout.contains("export KUBECONFIG="), "{stdout}");
    assert!(
        !stdout.contains(" INFO "),
        "no log lines on stdout: {stdout}"
    );
    assert!(stderr.contains(" INFO "), "logs on stderr: {stderr}");
    // Piped, not a terminal: no colour codes anywhere.
    assert!(
        !stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_is_named_with_the_way_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BINARY)
        .current_dir(dir.path())
        .args(["up", "--port", &port, "--kubeconfig", "kc"])
        .output()
        .expect("up runs");
    assert!(!out.status.success(), "up cannot serve on a taken port");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {port} is already in use")) && err.contains("--port"),
        "{err}"
    );
}
