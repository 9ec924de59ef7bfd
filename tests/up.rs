//! `csp-operator up` as a user runs it: the binary, its kubeconfig, `--apply`, `--state`.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start_up(dir: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_csp-operator"))
        .current_dir(dir)
        .args(["up", "--port", "0", "--kubeconfig", "kc"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("up starts")
}

fn kubectl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(support::kubectl_path())
        .env("KUBECONFIG", dir.join("kc"))
        .args(args)
        .output()
        .expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn wait_until(dir: &Path, args: &[&str], want: &str) {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        let (ok, out) = kubectl(dir, args);
        if ok && out == want {
            return;
        }
        last = out;
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("kubectl {args:?}: wanted {want:?}, last {last:?}");
}

fn interrupt(child: Child) -> String {
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn up_applies_examples_and_keeps_state_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = support::examples_dir();
    let up = start_up(dir.path(), &["--apply", &examples, "--state", "state.json"]);
    let uid_path = [
        "get",
        "cspperm",
        "contoso",
        "-n",
        "partner-a",
        "-o",
        "jsonpath={.metadata.uid}/{.status.state}/{.status.enabledSince}/{.status.conditions[?(@.type==\"Ready\")].lastTransitionTime}",
    ];
    let start = Instant::now();
    while !dir.path().join("kc").exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until(
        dir.path(),
        &[
            "get",
            "cspperm",
            "contoso",
            "-n",
            "partner-a",
            "-o",
            "jsonpath={.status.state}",
        ],
        "Enabled",
    );
    let (_, before) = kubectl(dir.path(), &uid_path);
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
    let start = Instant::now();
    while !dir.path().join("kc").exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_until(dir.path(), &uid_path, &before);
    wait_until(
        dir.path(),
        &[
            "get",
            "cspperm",
            "northwind",
            "-n",
            "partner-a",
            "-o",
            "jsonpath={.status.state}",
        ],
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
