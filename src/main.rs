//! The `csp-operator` command line (clap): each command calls into the library.

use clap::{Parser, Subcommand, ValueEnum};
use csp_operator::backend::BackendChoice;
use csp_operator::up::ApplyMode;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

// Allocation-heavy JSON work (API server and caches) runs markedly faster on mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kubernetes operator for CSP partners: lets customers buy their own Azure reservations.
#[derive(Parser)]
#[command(name = "csp-operator", version, about)]
struct Cli {
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CRDs as YAML (or write one file per kind with --dir).
    Crd {
        /// Write `<plural>.yaml` files into this folder instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the controllers against the cluster of the current kubeconfig or in-cluster config.
    Run {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Benchmark the controllers at scale against the embedded API server; prints one summary line.
    Bench {
        #[command(flatten)]
        args: BenchArgs,
    },
    /// Chaos run: the controllers under seeded random changes and faults, then an oracle;
    /// prints `seed=S ops=N faults=F restarts=R violations=V` last, exits 1 on a violation.
    Chaos {
        #[command(flatten)]
        args: ChaosArgs,
    },
    /// Benchmark the embedded API server: creates/s, status patches/s, watch fan-out, memory.
    BenchApiserver {
        #[command(flatten)]
        args: ApiBenchArgs,
    },
    /// Start an embedded Kubernetes API server with the CRDs and controllers, apply manifests,
    /// and write a kubeconfig for kubectl.
    Up {
        /// Port on 127.0.0.1 for the API server.
        #[arg(long, default_value_t = 6550)]
        port: u16,
        /// Where to write the kubeconfig (never ~/.kube/config).
        #[arg(long, default_value = ".csp/kubeconfig")]
        kubeconfig: PathBuf,
        /// Manifest files or folders to apply once the controllers run.
        #[arg(long)]
        apply: Vec<PathBuf>,
        /// Serve the controllers' /metrics, /healthz and /readyz here (off by default).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        /// Keep the objects in this file across restarts: every write is in its log on disk
        /// (FILE.wal.N) before it is answered, and folded into FILE as it grows and on exit;
        /// a corrupt file stops start-up.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Where grants live: partner-center (with a Partner Center simulator started next to the
        /// API server) or cluster (no external calls).
        #[arg(long, value_enum, default_value = "partner-center")]
        backend: BackendChoice,
        /// Port on 127.0.0.1 for the Partner Center simulator (examples/05-partner-center.yaml
        /// points the connection at 6551).
        #[arg(long, default_value_t = 6551)]
        partner_center_port: u16,
    },
    /// Read a partner's customers, subscriptions, Owner role assignments and purchase permissions
    /// from Partner Center and Azure through a PartnerCenterConnection, and print them as
    /// Customer, AzureSubscription, RoleAssignment and PurchasePermission YAML for a GitOps
    /// repository. Applying the output changes nothing in Partner Center.
    ///
    /// Uses the cluster of the current kubeconfig (or in-cluster config), as `run` does, to read
    /// the connection and its Secret (keys clientId, clientSecret, refreshToken). Only GETs go
    /// to Partner Center and Azure. The refresh token rotates on use, so the newest one is
    /// written back to the Secret's `refreshToken` key afterwards, as the operator does.
    Import {
        /// The PartnerCenterConnection, as NAMESPACE/NAME; the objects go into that namespace.
        #[arg(long, value_name = "NAMESPACE/NAME")]
        connection: String,
        /// Write the YAML to this file instead of stdout (only when the import succeeded).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Serve the Partner Center + Azure Resource Manager simulator (login, Partner Center and
    /// ARM endpoints on one plain-HTTP loopback origin) until Ctrl-C.
    PartnerCenterSim {
        /// The world to serve (YAML; see examples/partner-center/world.yaml).
        #[arg(long)]
        world: PathBuf,
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 6551)]
        port: u16,
        /// Partner Center requests per minute per partner tenant (the real limit is 500).
        #[arg(long, default_value_t = 500)]
        requests_per_minute: u32,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Customers to create (each with a subscription, an Owner and an enabled permission).
    #[arg(long, default_value_t = 10_000)]
    customers: usize,
    /// Concurrent HTTP clients creating them.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Role changes timed for the change-to-status latency (each timed twice).
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// The controllers' --debounce-ms.
    #[arg(long, default_value_t = 0)]
    debounce_ms: u64,
    /// Runtime worker threads for the controllers and the load generator.
    #[arg(long, default_value_t = 1)]
    worker_threads: usize,
    /// Run the embedded server on the controllers' runtime instead of a thread of its own.
    #[arg(long)]
    shared_runtime: bool,
    /// Where grants live: cluster (no external calls) or partner-center (a Partner Center
    /// simulator in process, with a PartnerCenterConnection to it; prints the calls made).
    #[arg(long, value_enum, default_value = "cluster")]
    backend: BackendChoice,
    /// partner-center: the simulator's limit, Partner Center requests per minute per partner
    /// tenant (the real service: 500).
    #[arg(long, default_value_t = 500)]
    pc_requests_per_minute: u32,
    /// partner-center: the connection's requestsPerMinute, the client's own budget (the CRD's
    /// default: 300).
    #[arg(long, default_value_t = 300)]
    requests_per_minute: u32,
    /// partner-center: seconds during which calls are counted once every permission is Enabled.
    #[arg(long, default_value_t = 60)]
    settle_secs: u64,
}

#[derive(clap::Args)]
struct ChaosArgs {
    /// The seed of the operations and faults (a run is re-run with the same seed).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Operations to generate.
    #[arg(long, default_value_t = 300)]
    ops: usize,
    /// Apply only these operations of the seed's plan (indices, comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<usize>>,
    /// Where grants live: cluster, or partner-center (with a simulator in process).
    #[arg(long, value_enum, default_value = "partner-center")]
    backend: BackendChoice,
    /// Operator replicas (2: leader election, and the leader gets killed).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    replicas: u8,
    /// Seconds after quiet during which no write and no call may come.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Runs to spend looking for the shortest failing sequence (0: print the whole one).
    #[arg(long, default_value_t = 40)]
    shrink_runs: usize,
    /// Print each operation as it is applied.
    #[arg(long)]
    verbose: bool,
}

#[derive(clap::Args)]
struct ApiBenchArgs {
    /// Objects to create and patch.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Watches that receive every change (fan-out).
    #[arg(long, default_value_t = 50)]
    watchers: usize,
    /// Keep the objects in this file, as `up --state` does (every write synced before it is
    /// answered); in memory when not given.
    #[arg(long)]
    state: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Serve /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "CSP_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Reconcile only while holding a coordination.k8s.io Lease (for several replicas).
    #[arg(long, env = "CSP_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader Lease (default: the pod's namespace, else "default").
    #[arg(long, env = "POD_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(long, default_value = "csp-operator-leader")]
    lease_name: String,
    /// This replica's identity in the Lease (default: the pod name, else a random id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Reconciles running at once, per kind.
    #[arg(long, default_value_t = 16)]
    concurrency: u16,
    /// Milliseconds to wait after a change for related ones before reconciling (0: none).
    #[arg(long, default_value_t = 0)]
    debounce_ms: u64,
    /// Seconds between re-checks of every object (jittered; 0: never). Costs no writes when
    /// nothing changed.
    #[arg(long, default_value_t = 3600)]
    resync_secs: u64,
    /// Where grants live: partner-center (each namespace's PartnerCenterConnection) or cluster
    /// (no external calls; the status is the record).
    #[arg(
        long,
        env = "CSP_BACKEND",
        value_enum,
        default_value = "partner-center"
    )]
    backend: BackendChoice,
}

impl RunArgs {
    fn options(&self) -> csp_operator::controller::RunOptions {
        csp_operator::controller::RunOptions {
            metrics_addr: Some(self.metrics_addr),
            leader_election: self.leader_elect.then(|| {
                csp_operator::controller::LeaderElection::new(
                    self.lease_namespace.as_deref().unwrap_or("default"),
                    &self.lease_name,
                    &self.identity.clone().unwrap_or_else(|| {
                        format!("csp-operator-{}", uuid::Uuid::new_v4().simple())
                    }),
                )
            }),
            concurrency: self.concurrency,
            metrics: None,
            debounce: std::time::Duration::from_millis(self.debounce_ms),
            resync: Some(std::time::Duration::from_secs(self.resync_secs)),
            crash_points: None,
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    // Logs go to stderr (stdout is what `up` tells the user, and what `crd` prints), coloured
    // only on a terminal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Bench { args } = &cli.command {
        // The embedded server has a thread of its own (unless --shared-runtime), as a real API
        // server is a process of its own; the controllers get the workers asked for.
        builder.worker_threads(args.worker_threads.max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(main_async(cli))
}

async fn main_async(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Chaos { args } => return chaos(args).await,
        Command::Crd { dir } => crd(dir),
        Command::Run { run: args } => run(args).await,
        Command::Bench { args } => {
            csp_operator::bench::controllers(csp_operator::bench::BenchOptions {
                customers: args.customers,
                clients: args.clients,
                samples: args.samples,
                debounce: std::time::Duration::from_millis(args.debounce_ms),
                server_thread: !args.shared_runtime,
                backend: args.backend,
                partner_center: csp_operator::bench::PartnerCenterOptions {
                    simulator_per_minute: args.pc_requests_per_minute,
                    requests_per_minute: args.requests_per_minute,
                    settle: std::time::Duration::from_secs(args.settle_secs),
                },
            })
            .await
            .map(|line| println!("{line}"))
        }
        Command::BenchApiserver { args } => {
            csp_operator::bench::api_server(args.objects, args.clients, args.watchers, args.state)
                .await
                .map(|line| println!("{line}"))
        }
        Command::Up {
            port,
            kubeconfig,
            apply,
            metrics_addr,
            state,
            backend,
            partner_center_port,
        } => {
            up(csp_operator::up::UpOptions {
                port,
                kubeconfig,
                apply,
                metrics_addr,
                state,
                backend,
                partner_center_port,
            })
            .await
        }
        Command::Import { connection, output } => import(&connection, output).await,
        Command::PartnerCenterSim {
            world,
            port,
            requests_per_minute,
        } => partner_center_sim(world, port, requests_per_minute).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

async fn chaos(args: ChaosArgs) -> ExitCode {
    let opts = csp_operator::chaos::ChaosOptions {
        seed: args.seed,
        ops: args.ops,
        only: args.only,
        backend: args.backend,
        replicas: usize::from(args.replicas),
        idle_check: std::time::Duration::from_secs(args.idle_secs),
        verbose: args.verbose,
        ..Default::default()
    };
    match csp_operator::chaos::command(&opts, args.shrink_runs).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn crd(dir: Option<PathBuf>) -> Result<(), AnyError> {
    match dir {
        None => print!("{}", csp_operator::api::crds_yaml()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for (name, yaml) in csp_operator::api::crd_files()? {
                std::fs::write(dir.join(name), yaml)?;
            }
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP (the terminal was closed). The handlers are
/// installed when this is called, not when it is first awaited, so a signal during start-up
/// also stops cleanly (state saved).
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    let hangup = signal(SignalKind::hangup());
    async move {
        match (interrupt, terminate, hangup) {
            (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                    _ = hangup.recv() => {}
                }
            }
            // No handler could be installed: wait for Ctrl-C the portable way.
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(args: RunArgs) -> Result<(), AnyError> {
    let client = kube::Client::try_default().await?;
    csp_operator::controller::run(
        client,
        args.backend.build(),
        args.options(),
        shutdown_signal(),
    )
    .await?;
    tracing::info!("controllers stopped");
    Ok(())
}

/// `import`: read the partner through its connection, then print (or write) the YAML.
async fn import(connection: &str, output: Option<PathBuf>) -> Result<(), AnyError> {
    let client = kube::Client::try_default().await?;
    let imported = csp_operator::import::from_connection(client, connection).await?;
    let yaml = imported.to_yaml()?;
    match output {
        Some(path) => {
            std::fs::write(&path, yaml)?;
            eprintln!(
                "{} objects written to {}",
                imported.documents.len(),
                path.display()
            );
        }
        None => print!("{yaml}"),
    }
    for note in &imported.notes {
        tracing::warn!("left out: {note}");
    }
    Ok(())
}

async fn partner_center_sim(
    world: PathBuf,
    port: u16,
    requests_per_minute: u32,
) -> Result<(), AnyError> {
    use csp_operator::simulator::{Limits, Simulator, SimulatorOptions, World};
    let stop = shutdown_signal();
    let options = SimulatorOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        limits: Limits {
            partner_center_per_minute: requests_per_minute,
            ..Limits::default()
        },
    };
    let sim = Simulator::start(World::load(&world)?, options).await?;
    println!("Partner Center simulator listening on {}", sim.base_url());
    println!(
        "use it as the login, Partner Center and Azure Resource Manager endpoint; Ctrl-C stops"
    );
    stop.await;
    sim.shutdown().await;
    Ok(())
}

async fn up(opts: csp_operator::up::UpOptions) -> Result<(), AnyError> {
    let stop = shutdown_signal();
    let running = csp_operator::up::start(&opts).await?;
    let (apply, kubeconfig) = (opts.apply, opts.kubeconfig);
    let (server, client) = (&running.server, &running.client);
    println!("API server listening on {}", server.url());
    if let Some(sim) = &running.simulator {
        println!(
            "Partner Center simulator listening on {} (login, Partner Center and Azure Resource Manager; fake world of examples/partner-center/world.yaml)",
            sim.base_url()
        );
    }
    println!("CRDs installed; controllers running");
    let mode = match running.restored {
        Some(n) => {
            println!("{n} objects restored from the saved state");
            if !apply.is_empty() {
                println!(
                    "--apply creates what is missing and leaves the saved objects as they are"
                );
            }
            ApplyMode::CreateMissing
        }
        None => ApplyMode::Apply,
    };
    if !apply.is_empty() {
        for line in csp_operator::up::apply_paths(client, &apply, mode).await? {
            println!("{line}");
        }
    }
    let shown = std::path::absolute(&kubeconfig).unwrap_or(kubeconfig);
    println!();
    println!(
        "Kubeconfig written to {}. Point kubectl at it:",
        shown.display()
    );
    println!("  export KUBECONFIG={}", shown.display());
    println!("  kubectl get csp -A");
    println!();
    println!("Press Ctrl-C to stop.");
    stop.await;
    let saved = running.stop().await?;
    // After SIGHUP the terminal may be gone: these lines are best effort, never a panic.
    use std::io::Write;
    let mut out = std::io::stdout();
    if let Some(path) = saved {
        let _ = writeln!(out, "state saved to {}", path.display());
    }
    let _ = writeln!(out, "stopped");
    Ok(())
}
