//! An embedded, in-memory Kubernetes API server over HTTPS on 127.0.0.1. Generic: it knows
//! nothing of our kinds and serves whatever CRDs are registered. Used by `up`, the tests and the
//! benchmarks; kube-rs and the real kubectl both work against it.
//!
//! Where things are: a connection is accepted (at most `max_connections` at once, in
//! `http/conns.rs`) and its TLS served with the self-signed certificate of `tls.rs`; a request
//! is read in `http/mod.rs`, after the checks of `http/guard.rs` (loopback Host, body size and
//! type) and authentication in `authn.rs` (the bearer token; impersonation only for who may),
//! routed in `http/route.rs` (to a discovery document, or to a verb on a resource, authorised
//! by `rbac.rs` for users other than the admin) and served by `http/verbs.rs` (`http/watch.rs`
//! for watches). Patches are made in `patch/` (server-side apply, with managedFields, in
//! `patch/apply.rs`; strategic merge, with the built-in kinds' patch strategies, in
//! `patch/strategic.rs`); every write is admitted in `admission/` (the pipeline in `mod.rs`; names
//! and metadata, structural schema and CEL beside it; RBAC escalation prevention in
//! `escalation.rs`) and kept in `storage/` (watch fan-out in `storage/watch.rs`, the namespace
//! controller in `storage/namespaces.rs`). Tables are rendered in `table/` (JSONPath in
//! `jsonpath.rs`), lists select with `selector/`, `discovery.rs` describes what is served
//! (`resources.rs`), `persist.rs` saves and loads `--state`, and `faults.rs` injects failures.
//! `reviews.rs` answers kubectl's `auth can-i` / `auth whoami` (the self-reviews, from the RBAC
//! rules). `collector.rs` is the garbage collector (its graph and queue in `storage/gc.rs`),
//! `openapi.rs` the OpenAPI v2 and v3 documents, `http/metadata_only.rs` the
//! PartialObjectMetadata answers.

mod admission;
mod authn;
mod collector;
mod defaults;
mod discovery;
mod error;
mod escalation;
mod faults;
mod http;
mod jsonpath;
mod meta;
mod openapi;
mod openapi_proto;
mod openapi_yaml;
mod packed;
mod patch;
mod persist;
mod protobuf;
mod rbac;
mod resources;
mod reviews;
pub mod selector;
mod storage;
pub mod table;
mod tls;

pub use admission::schema;
pub use authn::{Credentials, Token, TokenUser};
pub use error::ApiError;
pub use faults::Faults;
pub use storage::Stats;
pub use tls::ServerCertificate;

use hyper::http::uri as http_parse;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use storage::Store;
use tokio::net::TcpListener;

/// Options of the embedded server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port on 127.0.0.1 (0 picks a free one).
    pub port: u16,
    /// Changes kept for watches that resume from a resourceVersion.
    pub history: usize,
    /// How long Events are kept after they were last seen (the real server's default is 1 h).
    pub event_ttl: Duration,
    /// The bearer token of the admin (`system:masters`), which the kubeconfig and
    /// [`ApiServer::client`] carry; random by default.
    pub token: Token,
    /// Further bearer tokens, each a user subject to RBAC (as `--token-auth-file`).
    pub token_users: Vec<TokenUser>,
    /// Connections served at once; beyond it, the oldest idle one is closed to make room.
    pub max_connections: usize,
    /// The TLS certificate served; None makes a new self-signed one at start.
    pub certificate: Option<ServerCertificate>,
    /// Keep the objects in this file (and its write-ahead log beside it) across restarts:
    /// loaded before serving, and every write answered only once it is on disk.
    pub state: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            history: 200_000,
            event_ttl: Duration::from_secs(3600),
            token: Token::generate(),
            token_users: Vec::new(),
            // Well inside the usual soft fd limit of 1024, leaving room for files and clients.
            max_connections: 512,
            certificate: None,
            state: None,
        }
    }
}

struct Shared {
    store: Store,
    faults: Faults,
    addr: String,
    auth: authn::Authenticator,
    connections: Arc<http::Connections>,
    certificate: ServerCertificate,
    /// The open `--state` (None: in memory only).
    persistence: Option<persist::Persistence>,
}

/// A running server. Dropping it does not stop it; call [`ApiServer::shutdown`].
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    /// Objects loaded from `Config::state` (None: nothing was saved there).
    restored: Option<usize>,
}

impl ApiServer {
    /// Binds 127.0.0.1:port and serves HTTPS until shut down.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let certificate = match config.certificate {
            Some(c) => c,
            None => ServerCertificate::generate().map_err(std::io::Error::other)?,
        };
        let acceptor = certificate.acceptor().map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let store = Store::new(config.history);
        // Loaded before the first request is served.
        let (persistence, restored) = match &config.state {
            Some(path) => {
                let (p, restored) = persist::open(&store, path)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                (Some(p), restored)
            }
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            store,
            faults: Faults::new(),
            addr: addr.to_string(),
            auth: authn::Authenticator::new(config.token.clone(), &config.token_users),
            connections: http::Connections::new(config.max_connections),
            certificate,
            persistence,
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        if shared.persistence.is_some() {
            tokio::spawn(compact_state(shared.clone(), stopped.clone()));
        }
        tokio::spawn(expire_events(
            shared.clone(),
            config.event_ttl,
            stopped.clone(),
        ));
        tokio::spawn(collector::run(shared.clone(), stopped.clone()));
        tokio::spawn(http::serve(listener, acceptor, shared.clone(), stopped));
        Ok(Self {
            shared,
            addr,
            stop,
            restored,
        })
    }

    /// Like [`ApiServer::start`], but the server runs on its own thread with its own
    /// single-threaded runtime, apart from its clients, as a real API server is its own process.
    /// The thread ends at [`ApiServer::shutdown`].
    pub fn start_on_own_thread(config: Config) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("apiserver".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match Self::start(config).await {
                        Ok(server) => {
                            let mut stopped = server.stop.subscribe();
                            let _ = tx.send(Ok(server));
                            let _ = stopped.wait_for(|s| *s).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        rx.recv()
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The certificate the server presents (self-signed; what clients trust).
    pub fn certificate(&self) -> &ServerCertificate {
        &self.shared.certificate
    }

    /// Stops accepting and closes connections.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.drop_watches();
    }

    /// The admin's bearer token (for a client of one's own; never for a log).
    pub fn token(&self) -> &str {
        self.shared.auth.admin_token().expose()
    }

    /// A kube client for this server, as the admin.
    pub fn client(&self) -> Result<kube::Client, kube::Error> {
        let mut config = kube::Config::new(
            self.url()
                .parse()
                .map_err(|e: http_parse::InvalidUri| kube::Error::Service(Box::new(e)))?,
        );
        config.auth_info.token = Some(self.token().to_string().into());
        config.root_cert = Some(vec![
            self.certificate()
                .cert_der()
                .map_err(|e| kube::Error::Service(e.into()))?,
        ]);
        kube::Client::try_from(config)
    }

    /// A kubeconfig pointing at this server (HTTPS on loopback, its certificate pinned as the
    /// CA) with the admin's token.
    pub fn kubeconfig_yaml(&self) -> String {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(self.certificate().cert_pem());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: csp-operator\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: csp-operator\n  context:\n    cluster: csp-operator\n    user: admin\n    namespace: default\ncurrent-context: csp-operator\nusers:\n- name: admin\n  user:\n    token: {token}\n",
            url = self.url(),
            token = self.token()
        )
    }

    /// Writes the kubeconfig, creating parent folders; the file is the owner's only (mode
    /// 0600, also when it already exists), as it holds the token.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        authn::write_private(path, self.kubeconfig_yaml().as_bytes())
    }

    /// Accept errors so far (each followed by a pause, not a retry at once).
    pub fn accept_errors(&self) -> u64 {
        self.shared.connections.accept_errors()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.connections.open_count()
    }

    pub fn stats(&self) -> Stats {
        self.shared.store.stats()
    }

    pub fn object_count(&self) -> usize {
        self.shared.store.object_count()
    }

    pub fn stored_bytes(&self) -> usize {
        self.shared.store.stored_bytes()
    }

    /// Calls `f` with the stored JSON of every object of (group, plural), one at a time (for
    /// tests and benchmarks, not for hot paths).
    pub fn for_each_stored(&self, group: &str, plural: &str, f: impl FnMut(&[u8])) {
        self.shared.store.for_each_object(group, plural, f)
    }

    /// A future that resolves when the object `namespace/name` of (group, plural) is next
    /// written in a state that satisfies `pred`, with the time of that write (None after
    /// `timeout`). It listens from the moment this is called.
    pub fn wait_for_change(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        pred: impl Fn(&serde_json::Value) -> bool + Send + 'static,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Option<std::time::Instant>> + Send + 'static {
        let mut rx = self.shared.store.changes();
        let store = (group.to_string(), plural.to_string());
        let (namespace, name) = (namespace.to_string(), name.to_string());
        let wait = async move {
            loop {
                match rx.recv().await {
                    Ok(c) if c.store == store && c.namespace == namespace => {
                        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&c.object.unpack())
                        else {
                            continue;
                        };
                        if v.pointer("/metadata/name").and_then(|n| n.as_str())
                            == Some(name.as_str())
                            && pred(&v)
                        {
                            return Some(std::time::Instant::now());
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return None,
                }
            }
        };
        async move { tokio::time::timeout(timeout, wait).await.ok().flatten() }
    }

    /// The current resourceVersion (it moves on every change).
    pub fn resource_version(&self) -> u64 {
        self.shared.store.resource_version()
    }

    /// Objects loaded from `Config::state` at start (None: nothing had been saved there).
    pub fn restored(&self) -> Option<usize> {
        self.restored
    }

    /// With `Config::state`: folds the write-ahead log into a new snapshot and stops writing
    /// it (call after [`ApiServer::shutdown`]: later writes are not kept). Without: nothing.
    pub fn close_state(&self) -> std::io::Result<()> {
        match &self.shared.persistence {
            Some(p) => p.close(&self.shared.store),
            None => Ok(()),
        }
    }

    // Fault injection (fail_next, drop_watches, compact, set_latency) is in faults.rs.
}

/// Folds the write-ahead log into a new snapshot whenever it has grown enough.
async fn compact_state(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let wants = shared
            .persistence
            .as_ref()
            .is_some_and(|p| p.wants_compaction());
        if !wants {
            continue;
        }
        let s = shared.clone();
        let done = tokio::task::spawn_blocking(move || match &s.persistence {
            Some(p) => p.compact(&s.store),
            None => Ok(()),
        })
        .await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "could not fold the state log into a snapshot");
        }
    }
}

/// Events expire, as on a real cluster, so a long-running server does not grow forever.
async fn expire_events(
    shared: Arc<Shared>,
    ttl: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(
        (ttl / 2)
            .min(Duration::from_secs(60))
            .max(Duration::from_millis(100)),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let cutoff = k8s_openapi::jiff::Timestamp::now() - ttl;
                shared.store.expire_events(cutoff);
            }
            _ = stop.changed() => break,
        }
    }
}
