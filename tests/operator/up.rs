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
        // Most tests here are about `up` itself: no simulator, so they can run side by side.
        .args(if extra.contains(&"--backend") {
            &[][..]
        } else {
            &["--backend", "cluster"][..]
        })
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
    // The README's command: the Partner Center simulator on 6551 beside the API server.
    let pc = ["--backend", "partner-center"];
    let up = start_up(
        dir.path(),
        &[&pc[..], &["--apply", EXAMPLES, "--state", "state.json"]].concat(),
    );
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
    // The grant is a SelfServePolicy in (simulated) Partner Center, named by the status.
    wait_until(
        dir.path(),
        &kubectl::jsonpath(
            "cspperm/contoso",
            "partner-a",
            "{.status.backend}/{.status.policyId}",
        ),
        "PartnerCenter/9a8b7c6d-0000-4000-8000-000000000001_1a2b3c4d-0000-4000-8000-000000000004",
    );
    let stdout = interrupt(up);
    assert!(
        stdout.contains("Partner Center simulator listening on http://127.0.0.1:6551"),
        "{stdout}"
    );
    assert!(
        stdout.contains("purchasepermission.csp.operator.dev/contoso created"),
        "{stdout}"
    );
    assert!(stdout.contains("export KUBECONFIG="), "{stdout}");
    assert!(stdout.contains("state saved"), "{stdout}");

    // Restart on the same state: the same objects (same uid), statuses intact.
    std::fs::remove_file(dir.path().join("kc")).expect("remove kubeconfig");
    let up = start_up(dir.path(), &[&pc[..], &["--state", "state.json"]].concat());
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
        .args([
            "up",
            "--port",
            &port,
            "--kubeconfig",
            "kc",
            "--backend",
            "cluster",
        ])
        .output()
        .expect("up runs");
    assert!(!out.status.success(), "up cannot serve on a taken port");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {port} is already in use")) && err.contains("--port"),
        "{err}"
    );
}

/// An `up` that is killed if the test fails before it is interrupted (an orphan would hold the
/// test's pipes and the port).
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Like [`interrupt`], with stdout and stderr together (to look for what must not be logged).
fn interrupt_running(mut up: Running) -> String {
    let (stdout, stderr) = interrupt_with_logs(up.0.take().expect("running"));
    stdout + &stderr
}

fn kubeconfig_token(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("kubeconfig");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("the kubeconfig carries a token")
        .to_string()
}

/// Gives the kubeconfig `stale` the server address of `current` (a restart picks a new port).
fn repoint(stale: &Path, current: &Path) {
    let server_line = |text: &str| {
        text.lines()
            .find(|l| l.trim().starts_with("server: "))
            .expect("server line")
            .to_string()
    };
    let now = std::fs::read_to_string(current).expect("kubeconfig");
    let old = std::fs::read_to_string(stale).expect("kubeconfig");
    let fixed = old.replace(&server_line(&old), &server_line(&now));
    std::fs::write(stale, fixed).expect("write");
}

#[test]
fn up_keeps_its_token_across_restarts_and_never_logs_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mode = |p: &Path| std::fs::metadata(p).expect("file").permissions().mode() & 0o777;
    let kc = dir.path().join("kc");
    let credentials = dir.path().join("state.json.credentials");
    // A kubeconfig left world-readable by someone is narrowed when up rewrites it.
    std::fs::write(&kc, "old").expect("write");
    std::fs::set_permissions(&kc, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let up = Running(Some(start_up(dir.path(), &["--state", "state.json"])));
    UP.eventually_blocking("up to write its kubeconfig", || {
        std::fs::read_to_string(&kc).is_ok_and(|t| t.contains("token: "))
    });
    let token = kubeconfig_token(&kc);
    assert_eq!((mode(&kc), mode(&credentials)), (0o600, 0o600));
    let get_ns = ["get", "namespace", "default", "-o", "name"].map(String::from);
    wait_until(dir.path(), &get_ns, "namespace/default\n");
    std::fs::copy(&kc, dir.path().join("kc.old")).expect("copy");
    let logs = interrupt_running(up);
    assert!(!logs.contains(&token), "the token is never logged");

    // Restarted on the same state: the old kubeconfig (token and certificate) still works, once
    // pointed at the new port.
    std::fs::remove_file(&kc).expect("remove kubeconfig");
    let up = Running(Some(start_up(dir.path(), &["--state", "state.json"])));
    wait_for_kubeconfig(dir.path());
    assert_eq!(kubeconfig_token(&kc), token);
    repoint(&dir.path().join("kc.old"), &kc);
    UP.eventually_blocking("the old kubeconfig to work after the restart", || {
        Kubectl::new(dir.path().join("kc.old"))
            .output(&get_ns)
            .status
            .success()
    });
    interrupt_running(up);

    // A state file of a version without credentials still loads, with a new token; the old
    // one is refused.
    std::fs::remove_file(&credentials).expect("remove credentials");
    std::fs::remove_file(&kc).expect("remove kubeconfig");
    let up = Running(Some(start_up(dir.path(), &["--state", "state.json"])));
    wait_for_kubeconfig(dir.path());
    assert_ne!(kubeconfig_token(&kc), token);
    wait_until(dir.path(), &get_ns, "namespace/default\n");
    repoint(&dir.path().join("kc.old"), &kc);
    let stale = Kubectl::new(dir.path().join("kc.old")).output(&get_ns);
    assert!(!stale.status.success());
    interrupt_running(up);
}

/// CPU time (user + system, in clock ticks) of a process so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (in parentheses): utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn out_of_file_descriptors_the_server_backs_off_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 64 descriptors: the idle connections below exhaust them, so accept fails with EMFILE.
    let child = Command::new("sh")
        .current_dir(dir.path())
        .args([
            "-c",
            &format!("ulimit -n 64 && exec {BINARY} up --port 0 --kubeconfig kc --backend cluster"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("up starts");
    let pid = child.id();
    let up = Running(Some(child));
    wait_for_kubeconfig(dir.path());
    let get_ns = ["get", "namespace", "default", "-o", "name"].map(String::from);
    wait_until(dir.path(), &get_ns, "namespace/default\n");
    let kc = std::fs::read_to_string(dir.path().join("kc")).expect("kubeconfig");
    let addr = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("server")
        .to_string();
    let idle: Vec<std::net::TcpStream> = (0..100)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(pid) - before;
    // A loop retrying accept at once would burn a whole core (about 200 ticks in 2 s).
    assert!(
        spent < 60,
        "{spent} ticks of CPU in 2 s while out of descriptors"
    );
    drop(idle);
    wait_until(dir.path(), &get_ns, "namespace/default\n");
    let logs = interrupt_running(up);
    assert!(logs.contains("accept failed; backing off"), "{logs}");
}

/// Stops `up` with `signal` ("TERM", "HUP", ...); it must exit cleanly. Returns its stdout.
fn stop_with(child: Child, signal: &str) -> String {
    let pid = child.id().to_string();
    Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill runs");
    let out = child.wait_with_output().expect("up exits");
    assert!(
        out.status.success(),
        "up exits cleanly on SIG{signal}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kube client from the kubeconfig `up` wrote in `dir`.
async fn client_of(dir: &Path) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(dir.join("kc")).expect("kubeconfig");
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

fn configmap(name: &str) -> k8s_openapi::api::core::v1::ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "data": {"written": name},
    }))
    .expect("configmap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_write_and_resource_versions_go_on_above() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().expect("tempdir");
    let up = Arc::new(Mutex::new(Some(start_up(
        dir.path(),
        &["--state", "state.json"],
    ))));
    wait_for_kubeconfig(dir.path());
    let configmaps: Api<ConfigMap> = Api::default_namespaced(client_of(dir.path()).await);
    wait_answering(&configmaps).await;

    // A burst of creates, 24 at a time; kill -9 at the 400th answer, others still in flight.
    let acknowledged: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let (killer, acks) = (up.clone(), acknowledged.clone());
    futures::stream::iter(0..600)
        .map(|i| {
            let api = configmaps.clone();
            async move {
                let name = format!("burst-{i}");
                (
                    name.clone(),
                    api.create(&PostParams::default(), &configmap(&name)).await,
                )
            }
        })
        .buffer_unordered(24)
        .for_each(|(name, answer)| {
            if let Ok(created) = answer {
                let rv = created
                    .metadata
                    .resource_version
                    .expect("rv")
                    .parse()
                    .expect("number");
                let mut acks = acks.lock().expect("acks");
                acks.push((name, rv));
                if acks.len() == 400
                    && let Some(child) = killer.lock().expect("child").as_mut()
                {
                    let _ = child.kill();
                }
            }
            std::future::ready(())
        })
        .await;
    let up = up.lock().expect("child").take().expect("child");
    let status = up.wait_with_output().expect("killed").status;
    assert!(!status.success(), "up was killed");
    let acknowledged = acknowledged.lock().expect("acks").clone();
    assert!(acknowledged.len() >= 400, "{} answered", acknowledged.len());
    let newest = acknowledged.iter().map(|(_, rv)| *rv).max().expect("some");

    // Restarted on the same state: every answered write is there, versions continue above.
    std::fs::remove_file(dir.path().join("kc")).expect("remove kubeconfig");
    let up = start_up(dir.path(), &["--state", "state.json"]);
    wait_for_kubeconfig(dir.path());
    let configmaps: Api<ConfigMap> = Api::default_namespaced(client_of(dir.path()).await);
    wait_answering(&configmaps).await;
    let kept = configmaps.list(&Default::default()).await.expect("list");
    let names: std::collections::HashSet<String> = kept
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} answered writes lost: {lost:?}",
        lost.len()
    );
    let after = configmaps
        .create(&PostParams::default(), &configmap("after-restart"))
        .await
        .expect("create");
    let rv: u64 = after
        .metadata
        .resource_version
        .expect("rv")
        .parse()
        .expect("number");
    assert!(
        rv > newest,
        "resourceVersion {rv} after the restart, {newest} before"
    );
    // A watch resumed from before the crash is told to relist (410), never silently resumed.
    let resumed = configmaps
        .watch(&Default::default(), &newest.to_string())
        .await;
    let expired = match resumed {
        Err(kube::Error::Api(s)) => s.code == 410,
        Ok(events) => {
            let first = events.boxed().next().await;
            match first {
                Some(Ok(kube::api::WatchEvent::Error(e))) => e.code == 410,
                Some(Err(kube::Error::Api(s))) => s.code == 410,
                _ => false,
            }
        }
        Err(_) => false,
    };
    assert!(expired, "a watch from {newest} must get 410 Expired");
    stop_with(up, "TERM");
}

/// Waits until `up` answers a list.
async fn wait_answering(api: &kube::api::Api<k8s_openapi::api::core::v1::ConfigMap>) {
    crate::support::poll::eventually("up to answer", || async move {
        api.list(&Default::default()).await.map(|_| ())
    })
    .await
}

#[test]
fn sighup_and_sigterm_save_and_exit_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (signal, name) in [("HUP", "after-hangup"), ("TERM", "after-term")] {
        let _ = std::fs::remove_file(dir.path().join("kc"));
        let up = start_up(dir.path(), &["--state", "state.json"]);
        wait_for_kubeconfig(dir.path());
        let create = ["create", "configmap", name, "-n", "default"].map(String::from);
        UP.eventually_blocking("kubectl create to succeed", || {
            run_kubectl(dir.path(), &create).0
        });
        let stdout = stop_with(up, signal);
        assert!(stdout.contains("state saved"), "{stdout}");
        // A clean stop folds the log into the snapshot: it holds the object, the log is empty.
        let snapshot = std::fs::read_to_string(dir.path().join("state.json")).expect("state");
        assert!(
            snapshot.contains(&format!("\"name\":\"{name}\"")),
            "{name} saved"
        );
        let logs: Vec<u64> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("state.json.wal.")
            })
            .map(|e| e.metadata().expect("meta").len())
            .collect();
        assert_eq!(logs, vec![0], "one empty log after a clean stop");
    }
    // Both survive a restart.
    let _ = std::fs::remove_file(dir.path().join("kc"));
    let up = start_up(dir.path(), &["--state", "state.json"]);
    wait_for_kubeconfig(dir.path());
    let get = [
        "get",
        "configmap",
        "after-hangup",
        "after-term",
        "-n",
        "default",
        "-o",
        "name",
    ]
    .map(String::from);
    wait_until(
        dir.path(),
        &get,
        "configmap/after-hangup\nconfigmap/after-term\n",
    );
    stop_with(up, "TERM");
}
