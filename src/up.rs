//! `csp-operator up`: the embedded API server, our CRDs, the controllers and the user's
//! manifests, in one process.

use crate::apiserver::{self, ApiServer};
use crate::backend::BackendChoice;
use crate::simulator::{Simulator, SimulatorOptions, World};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use kube::{Client, ResourceExt};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Field manager of objects `up` applies.
const APPLY_MANAGER: &str = "csp-operator-up";

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: document {index} has no apiVersion, kind or metadata.name")]
    Incomplete { path: PathBuf, index: usize },
    #[error("{path}: no resource serves {api_version} {kind}")]
    UnknownKind {
        path: PathBuf,
        api_version: String,
        kind: String,
    },
    #[error("{path}: {what}: {source}")]
    Api {
        path: PathBuf,
        what: String,
        source: kube::Error,
    },
    #[error("state: {0}")]
    State(String),
    #[error(
        "port {port} is already in use (another `csp-operator up`?); stop it or pick another port with --port"
    )]
    PortInUse { port: u16 },
    #[error(
        "port {port} is already in use (another `csp-operator up` or `partner-center-sim`?); stop it, pick another port with --partner-center-port, or use --backend cluster"
    )]
    SimulatorPortInUse { port: u16 },
    #[error("Partner Center simulator: {0}")]
    Simulator(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Installs (server-side applies) the CRDs.
pub async fn install_crds(client: &Client) -> Result<(), kube::Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::api::crds() {
        api.patch(
            &crd.name_any(),
            &PatchParams::apply(APPLY_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
    }
    Ok(())
}

/// Manifest files under `path` (itself when a file), sorted, as `kubectl apply -f` reads them.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, UpError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| UpError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// How `--apply` treats objects that exist already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// Server-side apply every object, as `kubectl apply --server-side` does.
    Apply,
    /// Create only what is missing; leave existing objects as they are (after `--state`
    /// restored the user's objects, so a restart does not undo their edits).
    CreateMissing,
}

/// Applies every object in the given files or folders; returns one line per object in
/// kubectl's words ("customer.csp.operator.dev/contoso created").
pub async fn apply_paths(
    client: &Client,
    paths: &[PathBuf],
    mode: ApplyMode,
) -> Result<Vec<String>, UpError> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut report = Vec::new();
    for root in paths {
        for file in manifest_files(root)? {
            let text = std::fs::read_to_string(&file).map_err(|source| UpError::Read {
                path: file.clone(),
                source,
            })?;
            let docs: Vec<Value> =
                serde_saphyr::from_multiple(&text).map_err(|e| UpError::Yaml {
                    path: file.clone(),
                    message: e.to_string(),
                })?;
            for (index, doc) in docs.into_iter().enumerate() {
                if doc.is_null() {
                    continue;
                }
                report.push(apply_one(client, &discovery, &file, index, doc, mode).await?);
            }
        }
    }
    Ok(report)
}

async fn apply_one(
    client: &Client,
    discovery: &Discovery,
    file: &Path,
    index: usize,
    doc: Value,
    mode: ApplyMode,
) -> Result<String, UpError> {
    let incomplete = || UpError::Incomplete {
        path: file.to_path_buf(),
        index,
    };
    let api_version = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or_else(incomplete)?
        .to_string();
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(incomplete)?
        .to_string();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or_else(incomplete)?
        .to_string();
    let (group, version) = api_version
        .split_once('/')
        .unwrap_or(("", api_version.as_str()));
    let gvk = kube::core::GroupVersionKind::gvk(group, version, &kind);
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .ok_or_else(|| UpError::UnknownKind {
            path: file.to_path_buf(),
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            let ns = doc
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default");
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    let api_err = |what: &str| {
        let path = file.to_path_buf();
        let what = what.to_string();
        move |source| UpError::Api { path, what, source }
    };
    let before = api
        .get_opt(&name)
        .await
        .map_err(api_err(&format!("reading {kind} {name}")))?;
    let qualified = if ar.group.is_empty() {
        kind.to_lowercase()
    } else {
        format!("{}.{}", kind.to_lowercase(), ar.group)
    };
    if before.is_some() && mode == ApplyMode::CreateMissing {
        return Ok(format!("{qualified}/{name} kept as saved"));
    }
    let after = api
        .patch(
            &name,
            &PatchParams::apply(APPLY_MANAGER).force(),
            &Patch::Apply(&doc),
        )
        .await
        .map_err(api_err(&format!("applying {kind} {name}")))?;
    let verb = match before {
        None => "created",
        Some(b) if b.resource_version() == after.resource_version() => "unchanged",
        Some(_) => "configured",
    };
    Ok(format!("{qualified}/{name} {verb}"))
}

/// What `start` leaves running.
pub struct Running {
    pub server: ApiServer,
    pub client: Client,
    pub controllers: crate::controller::Operator,
    state: Option<PathBuf>,
    /// Objects restored from `--state` (None: no saved state was loaded).
    pub restored: Option<usize>,
    /// The Partner Center simulator (with `--backend partner-center`).
    pub simulator: Option<Simulator>,
}

/// How long a stop waits for in-flight reconciles before it stops the server anyway.
const CONTROLLERS_STOP: std::time::Duration = std::time::Duration::from_secs(10);

impl Running {
    /// Stops as SIGTERM asks: the controllers finish their in-flight reconciles, the server
    /// stops, and (with `--state`) the log is folded into a last snapshot. Returns where the
    /// state went. Every write answered before was on disk already.
    pub async fn stop(self) -> std::io::Result<Option<PathBuf>> {
        let stopped = tokio::time::timeout(CONTROLLERS_STOP, self.controllers.shutdown()).await;
        match stopped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "controllers stopped with an error"),
            Err(_) => tracing::warn!("controllers did not stop in time; stopping anyway"),
        }
        self.server.shutdown();
        self.server.close_state()?;
        Ok(self.state)
    }
}

/// Options of `up`.
#[derive(Clone, Debug)]
pub struct UpOptions {
    pub port: u16,
    pub kubeconfig: PathBuf,
    pub apply: Vec<PathBuf>,
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Keep the objects in this file across restarts.
    pub state: Option<PathBuf>,
    /// Where grants live; with Partner Center, the simulator runs on `partner_center_port`.
    pub backend: BackendChoice,
    pub partner_center_port: u16,
}

/// Starts everything; returns the server, the client and the controllers' task.
pub async fn start(opts: &UpOptions) -> Result<Running, UpError> {
    let mut config = apiserver::Config {
        port: opts.port,
        ..Default::default()
    };
    // With --state, the token and certificate are kept too, so that clients keep working.
    if let Some(path) = &opts.state {
        let kept = apiserver::Credentials::load_or_create(&credentials_path(path))?;
        config.token = kept.token;
        config.certificate = Some(kept.certificate);
        config.state = Some(path.clone());
    }
    // A corrupt or unreadable state stops start-up: starting empty would lose the objects.
    let server = ApiServer::start(config).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => UpError::PortInUse { port: opts.port },
        std::io::ErrorKind::InvalidData => UpError::State(e.to_string()),
        _ => UpError::Io(e),
    })?;
    let restored = server.restored();
    if let (Some(n), Some(path)) = (restored, &opts.state) {
        tracing::info!(objects = n, path = %path.display(), "state loaded");
    }
    let client = server.client()?;
    install_crds(&client).await?;
    let run_opts = crate::controller::RunOptions {
        metrics_addr: opts.metrics_addr,
        resync: Some(std::time::Duration::from_secs(3600)),
        ..Default::default()
    };
    let simulator = match opts.backend {
        BackendChoice::PartnerCenter => Some(start_simulator(opts.partner_center_port).await?),
        BackendChoice::Cluster => None,
    };
    let controllers =
        crate::controller::Operator::start(client.clone(), opts.backend.build(), run_opts);
    server.write_kubeconfig(&opts.kubeconfig)?;
    Ok(Running {
        server,
        client,
        controllers,
        state: opts.state.clone(),
        restored,
        simulator,
    })
}

/// The Partner Center simulator, seeded with the world of `examples/` (fake partner A).
async fn start_simulator(port: u16) -> Result<Simulator, UpError> {
    let options = SimulatorOptions {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        ..SimulatorOptions::default()
    };
    Simulator::start(World::examples(), options)
        .await
        .map_err(|e| match e {
            crate::simulator::SimulatorError::Bind { .. } => UpError::SimulatorPortInUse { port },
            other => UpError::Simulator(other.to_string()),
        })
}

/// Where `--state FILE` keeps the token and certificate: `FILE.credentials` (mode 0600; the
/// state file itself stays free of secrets).
pub fn credentials_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".credentials");
    PathBuf::from(name)
}
