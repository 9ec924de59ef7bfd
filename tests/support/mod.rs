//! The test toolkit every test binary shares: `Env` (an embedded API server, optionally the real
//! controllers, a kubeconfig for the real kubectl) and the modules below.
#![allow(dead_code)] // each test binary uses a part of it

pub mod clients;
pub mod kubectl;
pub mod paths;
pub mod poll;

use csp_operator::apiserver::{ApiServer, Config};
use csp_operator::backend::{Backend, ClusterBackend};
use csp_operator::controller::{Error, RunOptions};
use kubectl::{Args, Kubectl};
use std::future::Future;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// `state/Ready status/Ready reason` of a PurchasePermission, what
/// [`Env::wait_for_permission`] compares.
pub const PERMISSION_READY: &str = r#"{.status.state}/{.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}"#;

pub struct Env {
    pub server: ApiServer,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub kubectl: Kubectl,
    controllers: Option<JoinHandle<Result<(), Error>>>,
}

/// The real controllers on `client` with `options`, in a task, until `stop` resolves.
pub fn spawn_controllers(
    client: kube::Client,
    options: RunOptions,
    stop: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<Result<(), Error>> {
    tokio::spawn(csp_operator::controller::run(
        client,
        Arc::new(ClusterBackend),
        options,
        stop,
    ))
}

impl Env {
    /// A fresh server with our CRDs installed.
    pub async fn new() -> Env {
        Env::with_config(Config::default()).await
    }

    /// A fresh server started with `config`, with our CRDs installed.
    pub async fn with_config(config: Config) -> Env {
        let server = ApiServer::start(config).await.expect("server starts");
        let client = clients::client_for(&server).build();
        csp_operator::up::install_crds(&client)
            .await
            .expect("CRDs install");
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Env {
            server,
            client,
            dir,
            kubectl: Kubectl::new(&kubeconfig),
            kubeconfig,
            controllers: None,
        }
    }

    /// A fresh server with the controllers running.
    pub async fn with_controllers() -> Env {
        let mut env = Env::new().await;
        env.start_controllers();
        env
    }

    pub fn start_controllers(&mut self) {
        self.controllers = Some(spawn_controllers(
            self.client.clone(),
            RunOptions::default(),
            futures::future::pending(),
        ));
    }

    /// Starts the controllers serving `/metrics`, `/healthz` and `/readyz`; returns where.
    pub fn start_controllers_with_metrics(&mut self) -> std::net::SocketAddr {
        let addr = clients::free_port();
        let options = RunOptions {
            metrics_addr: Some(addr),
            ..Default::default()
        };
        let run = spawn_controllers(self.client.clone(), options, futures::future::pending());
        self.controllers = Some(run);
        addr
    }

    /// Starts the controllers with grants held by `backend` instead of the cluster.
    pub fn start_controllers_with(&mut self, backend: Arc<dyn Backend>) {
        self.controllers = Some(tokio::spawn(csp_operator::controller::run(
            self.client.clone(),
            backend,
            RunOptions::default(),
            futures::future::pending(),
        )));
    }

    pub fn stop_controllers(&mut self) {
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
    }

    /// Runs kubectl against this server (blocking in a worker thread).
    pub async fn kubectl<S: AsRef<str>>(&self, args: &[S]) -> Output {
        let kubectl = self.kubectl.clone();
        let args = Args::new(args);
        tokio::task::spawn_blocking(move || kubectl.output(&args))
            .await
            .expect("join")
    }

    /// kubectl that must succeed; returns stdout.
    pub async fn ok<S: AsRef<str>>(&self, args: &[S]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {:?} failed:\nstdout: {}\nstderr: {}",
            Args::new(args),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must fail; returns stderr.
    pub async fn fails<S: AsRef<str>>(&self, args: &[S]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            !out.status.success(),
            "kubectl {:?} should have failed:\nstdout: {}",
            Args::new(args),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl get resource [-n ns] -o jsonpath=path`, which must succeed.
    pub async fn jsonpath<'a>(
        &self,
        resource: &str,
        ns: impl Into<Option<&'a str>>,
        path: &str,
    ) -> String {
        self.ok(&kubectl::jsonpath(resource, ns, path)).await
    }

    /// `kubectl get resource -n ns -o json`, parsed.
    pub async fn get_json(&self, resource: &str, ns: &str) -> serde_json::Value {
        let out = self
            .ok(&kubectl::get(resource, ns).with(&["-o", "json"]))
            .await;
        serde_json::from_str(&out).expect("kubectl prints JSON")
    }

    /// `reason/action/regarding` of every activity-log Event in `ns`.
    pub async fn activity_log(&self, ns: &str) -> Vec<String> {
        let out = self.ok(&kubectl::activity_log(ns)).await;
        out.lines().map(String::from).collect()
    }

    /// Waits until the activity log of `ns` has the line `entry` (`reason/action/regarding`).
    pub async fn wait_for_event(&self, ns: &str, entry: &str) {
        poll::eventually(&format!("activity-log entry {entry} in {ns}"), || async {
            let log = self.activity_log(ns).await;
            if log.iter().any(|l| l == entry) {
                Ok(())
            } else {
                Err(format!("{log:?}"))
            }
        })
        .await
    }

    /// Waits until `jsonpath` of an object prints `want`.
    pub async fn wait_for(&self, resource: &str, ns: &str, jsonpath: &str, want: &str) {
        let args = kubectl::jsonpath(resource, ns, jsonpath);
        poll::eventually(&format!("{resource} {jsonpath} = {want:?}"), || async {
            let out = self.kubectl(&args).await;
            let seen = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && seen == want {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        })
        .await
    }

    /// Waits until PurchasePermission `name` in `ns` shows `want` as [`PERMISSION_READY`]
    /// (`state/status/reason`, e.g. `Enabled/True/PermissionEnabled`).
    pub async fn wait_for_permission(&self, ns: &str, name: &str, want: &str) {
        self.wait_for(&format!("cspperm/{name}"), ns, PERMISSION_READY, want)
            .await
    }

    /// Waits until the server's write count stands still (the same at two looks 1.5 s apart,
    /// within a minute); returns it.
    pub async fn settled_writes(&self) -> u64 {
        let previous = std::cell::Cell::new(None);
        let settle = poll::Poll {
            timeout: std::time::Duration::from_secs(60),
            every: std::time::Duration::from_millis(1500),
        };
        settle
            .eventually("the writes to stop", || {
                let now = self.server.stats().writes;
                let settled = previous.replace(Some(now)) == Some(now);
                async move {
                    if settled {
                        Ok(now)
                    } else {
                        Err(format!("{now} writes, still changing"))
                    }
                }
            })
            .await
    }

    /// Writes a manifest into the temp dir and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, yaml).expect("write manifest");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop_controllers();
        self.server.shutdown();
    }
}
