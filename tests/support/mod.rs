//! Test bed: the embedded API server, optionally the real controllers, and the real kubectl.
#![allow(dead_code)]

use csp_operator::apiserver::{ApiServer, Config};
use csp_operator::backend::ClusterBackend;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Env {
    pub server: ApiServer,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    controllers: Option<tokio::task::JoinHandle<Result<(), csp_operator::controller::Error>>>,
}

/// The kubectl binary the tests drive; a missing one fails the test (never skips it).
pub fn kubectl_path() -> PathBuf {
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
}

impl Env {
    /// A fresh server with our CRDs installed.
    pub async fn new() -> Env {
        let server = ApiServer::start(Config::default())
            .await
            .expect("server starts");
        let client = server.client().expect("client");
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
        self.controllers = Some(tokio::spawn(csp_operator::controller::run(
            self.client.clone(),
            Arc::new(ClusterBackend),
            csp_operator::controller::RunOptions::default(),
            futures::future::pending(),
        )));
    }

    pub fn stop_controllers(&mut self) {
        if let Some(c) = self.controllers.take() {
            c.abort();
        }
    }

    /// Runs kubectl against this server (blocking in a worker thread).
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        let kubectl = kubectl_path();
        let kubeconfig = self.kubeconfig.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(kubectl)
                .env("KUBECONFIG", kubeconfig)
                .env_remove("KUBERNETES_SERVICE_HOST")
                .args(&args)
                .output()
                .expect("kubectl runs")
        })
        .await
        .expect("join")
    }

    /// kubectl that must succeed; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl that must fail; returns stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Writes a manifest into the temp dir and returns its path.
    pub fn manifest(&self, name: &str, yaml: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, yaml).expect("write manifest");
        p.to_string_lossy().into_owned()
    }

    /// Polls `jsonpath` of an object until it equals `want` (or panics after 20 s).
    pub async fn wait_for(&self, resource: &str, ns: &str, jsonpath: &str, want: &str) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(20) {
            let out = self
                .kubectl(&[
                    "get",
                    resource,
                    "-n",
                    ns,
                    "-o",
                    &format!("jsonpath={jsonpath}"),
                ])
                .await;
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && last == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{resource} {jsonpath}: wanted {want:?}, last saw {last:?}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop_controllers();
        self.server.shutdown();
    }
}

pub fn examples_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .to_string_lossy()
        .into_owned()
}

pub fn crds_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crds")
        .to_string_lossy()
        .into_owned()
}
