//! The real kubectl as the tests run it: the binary, a kubeconfig to run it with, argument lists
//! (get, jsonpath, the enable switch, impersonation) and a running `kubectl get -w`.

use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::Receiver;
use std::time::Instant;

/// The kubectl binary the tests drive (`$KUBECTL`, else `kubectl` on the PATH); a missing one
/// fails the test (never skips it).
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let path = std::env::var_os("KUBECTL")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("kubectl"));
            let ok = Command::new(&path)
                .args(["version", "--client"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            assert!(
                ok,
                "kubectl is required for these tests (install it, or run .ci/run which does)"
            );
            path
        })
        .clone()
}

/// kubectl with a kubeconfig (and never the in-cluster configuration).
#[derive(Clone, Debug)]
pub struct Kubectl {
    kubeconfig: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: impl Into<PathBuf>) -> Kubectl {
        Kubectl {
            kubeconfig: kubeconfig.into(),
        }
    }

    /// The command, not started.
    pub fn command<S: AsRef<str>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(binary());
        // A discovery cache of its own: ~/.kube/cache is keyed by host and port, and a port a
        // test server got may have served an older build before.
        let cache = self
            .kubeconfig
            .parent()
            .map(|d| d.join("kube-cache"))
            .unwrap_or_default();
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", cache)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .args(args.iter().map(AsRef::as_ref));
        command
    }

    /// Runs it to the end (blocking).
    pub fn output<S: AsRef<str>>(&self, args: &[S]) -> Output {
        self.command(args).output().expect("kubectl runs")
    }
}

/// The arguments of one kubectl command, built up; goes wherever `&[&str]` does.
#[derive(Clone, Debug, Default)]
pub struct Args(Vec<String>);

impl Args {
    pub fn new<S: AsRef<str>>(args: &[S]) -> Args {
        Args::default().with(args)
    }

    /// These arguments appended.
    pub fn with<S: AsRef<str>>(mut self, more: &[S]) -> Args {
        self.0.extend(more.iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Run as `user` (`--as`): the server enforces RBAC on the request.
    pub fn run_as(self, user: &str) -> Args {
        self.with(&["--as", user])
    }

    /// Run as `user` in `group` (`--as --as-group`).
    pub fn run_as_member(self, user: &str, group: &str) -> Args {
        self.run_as(user).with(&["--as-group", group])
    }
}

impl Deref for Args {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

/// `get resource [-n ns]`.
pub fn get<'a>(resource: &str, ns: impl Into<Option<&'a str>>) -> Args {
    let args = Args::new(&["get", resource]);
    match ns.into() {
        Some(ns) => args.with(&["-n", ns]),
        None => args,
    }
}

/// `get resource [-n ns] -o jsonpath=path`.
pub fn jsonpath<'a>(resource: &str, ns: impl Into<Option<&'a str>>, path: &str) -> Args {
    get(resource, ns).with(&["-o", &format!("jsonpath={path}")])
}

/// `patch cspperm NAME -n NS [extra] --type=merge -p PATCH`.
fn merge_patch(ns: &str, name: &str, extra: &[&str], patch: &str) -> Args {
    Args::new(&["patch", "cspperm", name, "-n", ns])
        .with(extra)
        .with(&["--type=merge", "-p", patch])
}

/// Switches PurchasePermission `name` in `ns` on or off:
/// `patch cspperm NAME -n NS --type=merge -p {"spec":{"enabled":B}}`.
pub fn patch_enabled(ns: &str, name: &str, enabled: bool) -> Args {
    merge_patch(
        ns,
        name,
        &[],
        &format!(r#"{{"spec":{{"enabled":{enabled}}}}}"#),
    )
}

/// Merge-patches the status subresource of PurchasePermission `name` in `ns` with `status`
/// (a JSON object): `patch cspperm NAME -n NS --subresource=status --type=merge -p {"status":..}`.
pub fn patch_status(ns: &str, name: &str, status: &str) -> Args {
    merge_patch(
        ns,
        name,
        &["--subresource=status"],
        &format!(r#"{{"status":{status}}}"#),
    )
}

/// Prints `reason/action/regarding` of every activity-log Event, one a line.
pub fn activity_log(ns: &str) -> Args {
    Args::new(&[
        "get",
        "events.events.k8s.io",
        "-n",
        ns,
        "-o",
        r#"jsonpath={range .items[*]}{.reason}/{.action}/{.regarding.name}{"\n"}{end}"#,
    ])
}

/// A running `kubectl get -w`, its output read line by line as it comes.
pub struct Watch {
    child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Watch {
    pub fn start<S: AsRef<str>>(kubectl: &Kubectl, args: &[S]) -> Watch {
        use std::io::BufRead;
        let mut child = kubectl
            .command(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("kubectl get -w runs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (up to [`super::poll::TIMEOUT`]) for `n` lines that satisfy `pred` in all output so
    /// far; it reads the output as it comes rather than polling.
    pub fn wait_for(&mut self, n: usize, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + super::poll::TIMEOUT;
        while self.seen.iter().filter(|l| pred(l)).count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("watch output so far: {:?}", self.seen),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
