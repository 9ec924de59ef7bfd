//! A chaos run: start the embedded API server (and the simulator), the operator replicas and a
//! recorder of permission transitions; apply the operations; wait for quiet; ask the oracle.

use super::generator::{NAMESPACES, Op, Rng};
use super::objects::{self, kind_resource, namespace};
use super::oracle::{self, History};
use super::{AnyError, ChaosOptions, ChaosReport, faults};
use crate::apiserver::{ApiServer, Config};
use crate::backend::BackendChoice;
use crate::controller::{CrashPoint, CrashPoints, LeaderElection, LeaseTiming, RunOptions};
use crate::simulator::{Simulator, SimulatorOptions};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Where the replicas' Lease lives.
const LEASE_NAMESPACE: &str = "chaos-leases";
/// The replicas' leader Lease.
const LEASE_NAME: &str = "csp-operator";
/// The field manager of the runner's applies (as a GitOps tool has one).
const APPLIER: &str = "chaos-gitops";

/// The server, the simulator, and the client the runner acts through.
pub struct Env {
    pub server: ApiServer,
    pub client: kube::Client,
    pub simulator: Option<Simulator>,
    pub backend: BackendChoice,
}

/// One operator process, in process: its task, its stop signal, its crash points.
struct Replica {
    task: tokio::task::JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
    crash: Arc<CrashPoints>,
    /// Which start of this replica (crash reports of an older one are stale).
    start: usize,
    started_at: Instant,
}

/// The operator replicas and how to start them again.
pub struct Replicas {
    list: Vec<Replica>,
    server: ApiServer,
    backend: BackendChoice,
    leader_election: bool,
    crashed_tx: mpsc::UnboundedSender<(usize, usize, CrashPoint)>,
    crashed: mpsc::UnboundedReceiver<(usize, usize, CrashPoint)>,
    pub restarts: usize,
    starts: usize,
}

impl Replicas {
    fn new(env: &Env, count: usize) -> Result<Replicas, AnyError> {
        let (crashed_tx, crashed) = mpsc::unbounded_channel();
        let mut replicas = Replicas {
            list: Vec::new(),
            server: env.server.clone(),
            backend: env.backend,
            leader_election: count > 1,
            crashed_tx,
            crashed,
            restarts: 0,
            starts: 0,
        };
        for i in 0..count.max(1) {
            let replica = replicas.start(i)?;
            replicas.list.push(replica);
        }
        Ok(replicas)
    }

    /// Starts replica `i` as a fresh process would: new client, new backend, empty memory.
    fn start(&mut self, i: usize) -> Result<Replica, AnyError> {
        self.starts += 1;
        let start = self.starts;
        let crash = Arc::new(CrashPoints::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let options = RunOptions {
            leader_election: self.leader_election.then(|| LeaderElection {
                // Shorter than the default 15 s, so a killed leader's standby takes over within the run,
                // yet long enough that a loaded machine does not lose the Lease by itself.
                timing: LeaseTiming {
                    lease_duration: Duration::from_secs(8),
                    retry_period: Duration::from_secs(1),
                    write_margin: Duration::from_secs(3),
                },
                ..LeaderElection::new(
                    LEASE_NAMESPACE,
                    LEASE_NAME,
                    &format!("replica-{i}-start-{start}"),
                )
            }),
            crash_points: Some(crash.clone()),
            ..Default::default()
        };
        let client = self.server.client()?;
        let backend = self.backend.build();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = crate::controller::run(client, backend, options, shutdown).await {
                tracing::info!(error = %e, replica = i, "replica ended");
            }
        });
        let (report, points) = (self.crashed_tx.clone(), crash.clone());
        tokio::spawn(async move {
            let point = points.stopped_at().await;
            let _ = report.send((i, start, point));
        });
        Ok(Replica {
            task,
            stop: Some(stop),
            crash,
            start,
            started_at: Instant::now(),
        })
    }

    /// How long the operator has been able to act: the leader's time since it took the Lease
    /// (or, without leader election, since the replica started). `None` while no running
    /// replica holds an unexpired Lease: quiet then only means nobody is working yet.
    pub async fn acting_for(&self, client: &kube::Client) -> Result<Option<Duration>, AnyError> {
        if !self.leader_election {
            let running = self.list.first().filter(|r| !r.task.is_finished());
            return Ok(running.map(|r| r.started_at.elapsed()));
        }
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(client.clone(), LEASE_NAMESPACE);
        let Some(spec) = leases.get_opt(LEASE_NAME).await?.and_then(|l| l.spec) else {
            return Ok(None);
        };
        // Identities read `replica-{i}-start-{n}`.
        let holder = spec.holder_identity.unwrap_or_default();
        let mut parts = holder.split('-').skip(1).step_by(2);
        let (i, start) = (parts.next(), parts.next());
        let (Some(i), Some(start)) = (
            i.and_then(|i| i.parse::<usize>().ok()),
            start.and_then(|n| n.parse::<usize>().ok()),
        ) else {
            return Ok(None);
        };
        let holds = self
            .list
            .get(i)
            .is_some_and(|r| r.start == start && !r.task.is_finished());
        let now = k8s_openapi::jiff::Timestamp::now();
        let seconds = |t: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime>| {
            t.map(|t| now.duration_since(t.0).as_secs_f64())
        };
        let duration = f64::from(spec.lease_duration_seconds.unwrap_or(0));
        let unexpired = seconds(spec.renew_time).is_some_and(|s| s < duration);
        let leading = seconds(spec.acquire_time).map(|s| Duration::from_secs_f64(s.max(0.0)));
        Ok(leading.filter(|_| holds && unexpired))
    }

    /// Aborts replica `i` wherever it is and starts it again.
    pub async fn kill(&mut self, i: usize) -> Result<(), AnyError> {
        let Some(old) = self.list.get(i) else {
            return Ok(());
        };
        old.task.abort();
        let replica = self.start(i)?;
        let old = std::mem::replace(&mut self.list[i], replica);
        let _ = old.task.await;
        self.restarts += 1;
        Ok(())
    }

    /// Stops replica `i` as SIGTERM does (in-flight reconciles finish, the Lease is released),
    /// then starts it again.
    pub async fn restart(&mut self, i: usize) -> Result<(), AnyError> {
        let Some(old) = self.list.get_mut(i) else {
            return Ok(());
        };
        if let Some(stop) = old.stop.take() {
            let _ = stop.send(());
        }
        let graceful = tokio::time::timeout(Duration::from_secs(10), &mut old.task).await;
        if graceful.is_err() {
            old.task.abort();
        }
        let replica = self.start(i)?;
        self.list[i] = replica;
        self.restarts += 1;
        Ok(())
    }

    /// The replica holding the leader Lease (0 without leader election or without a holder).
    pub async fn leader(&self, client: &kube::Client) -> Result<usize, AnyError> {
        if !self.leader_election {
            return Ok(0);
        }
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(client.clone(), LEASE_NAMESPACE);
        let lease = leases.get_opt(LEASE_NAME).await?;
        let holder = lease
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        // Identities read `replica-{i}-start-{n}`.
        let replica = holder.split('-').nth(1).and_then(|i| i.parse().ok());
        Ok(replica.unwrap_or(0))
    }

    pub fn arm(&self, i: usize, point: CrashPoint) {
        if let Some(r) = self.list.get(i) {
            r.crash.arm(point);
        }
    }

    /// Kills and starts again every replica that stopped at a crash point, and starts again
    /// any that ended by itself (a lost Lease ends the process; its supervisor restarts it).
    pub async fn tend(&mut self) -> Result<(), AnyError> {
        while let Ok((i, start, _point)) = self.crashed.try_recv() {
            if self.list.get(i).is_some_and(|r| r.start == start) {
                self.kill(i).await?;
            }
        }
        for i in 0..self.list.len() {
            if self.list[i].task.is_finished() {
                let replica = self.start(i)?;
                self.list[i] = replica;
                self.restarts += 1;
            }
        }
        Ok(())
    }

    fn abort_all(&self) {
        for r in &self.list {
            r.task.abort();
        }
    }
}

/// Runs the operations of `opts`, waits for quiet, and checks the oracle.
pub async fn run(opts: &ChaosOptions) -> Result<ChaosReport, AnyError> {
    let env = start_env(opts.backend).await?;
    let history = Arc::new(Mutex::new(History::default()));
    let recorder = oracle::record(&env.server, history.clone());
    let mut replicas = Replicas::new(&env, opts.replicas)?;
    let mut report = ChaosReport {
        seed: opts.seed,
        ..Default::default()
    };
    let mut actor = Actor {
        env: &env,
        ready: HashSet::new(),
        history: history.clone(),
    };
    for (i, op) in opts.operations() {
        if opts.verbose {
            eprintln!("#{i} {op}");
        }
        report.ops += 1;
        report.faults += usize::from(op.is_fault());
        if let Err(e) = actor.apply(&op, &mut replicas).await {
            report.refused += 1;
            if opts.verbose {
                eprintln!("   refused: {e}");
            }
        }
        replicas.tend().await?;
        let pace = Rng::new(opts.seed ^ (i as u64).wrapping_mul(0x9E37)).below(15);
        tokio::time::sleep(Duration::from_millis(pace)).await;
    }
    env.server.clear_faults();
    if let Some(sim) = &env.simulator {
        sim.faults().clear();
    }
    let ended = Instant::now();
    let converged = wait_for_quiet(&env, &mut replicas, opts).await?;
    report.converge = ended.elapsed();
    let mut violations = Vec::new();
    if !converged {
        violations.push(oracle::Violation::new(
            "quiet",
            format!(
                "no quiet within {:.0} s of the last operation",
                opts.patience.as_secs_f64()
            ),
        ));
    }
    violations.extend(oracle::idle(&env, &mut replicas, opts.idle_check).await?);
    violations.extend(oracle::check(&env, &history).await?);
    report.violations = violations;
    report.transitions = history
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .transitions();
    report.restarts = replicas.restarts;
    replicas.abort_all();
    recorder.abort();
    env.server.shutdown();
    if let Some(sim) = env.simulator {
        sim.shutdown().await;
    }
    Ok(report)
}

/// A fresh server with our CRDs and the Lease namespace, and with the Partner Center backend a
/// simulator of the matching world.
async fn start_env(backend: BackendChoice) -> Result<Env, AnyError> {
    let server = ApiServer::start(Config {
        port: 0,
        history: 50_000,
        ..Default::default()
    })
    .await?;
    let client = server.client()?;
    crate::up::install_crds(&client).await?;
    create_namespace(&client, LEASE_NAMESPACE).await?;
    let simulator = match backend {
        BackendChoice::PartnerCenter => Some(
            Simulator::start(
                objects::world(),
                SimulatorOptions {
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                    limits: Default::default(),
                },
            )
            .await?,
        ),
        BackendChoice::Cluster => None,
    };
    Ok(Env {
        server,
        client,
        simulator,
        backend,
    })
}

async fn create_namespace(client: &kube::Client, name: &str) -> Result<(), kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}}))
        .map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &ns).await {
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Waits until nothing is written and nothing is called for `opts.quiet` and every status is
/// what the rules say; false when `opts.patience` runs out first.
async fn wait_for_quiet(
    env: &Env,
    replicas: &mut Replicas,
    opts: &ChaosOptions,
) -> Result<bool, AnyError> {
    let started = Instant::now();
    let mut last = activity(env);
    let mut since = Instant::now();
    while started.elapsed() < opts.patience {
        tokio::time::sleep(Duration::from_millis(100)).await;
        replicas.tend().await?;
        let now = activity(env);
        if now != last {
            (last, since) = (now, Instant::now());
            continue;
        }
        if since.elapsed() < opts.quiet {
            continue;
        }
        let acting = replicas.acting_for(&env.client).await?;
        if acting.is_some_and(|d| d >= opts.quiet) && oracle::converged(env).await {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes to the API server (Lease renewals aside) and requests to the simulator so far.
pub fn activity(env: &Env) -> (u64, u64) {
    let stats = env.server.stats();
    let leases = stats.writes_by_resource.get("leases").copied().unwrap_or(0);
    let calls = env.simulator.as_ref().map_or(0, |s| s.stats().total);
    (stats.writes - leases, calls)
}

/// Applies operations: the objects' side here, faults in [`faults`].
struct Actor<'a> {
    env: &'a Env,
    /// Namespaces created (with their Partner Center connection) and not deleted since.
    ready: HashSet<usize>,
    history: Arc<Mutex<History>>,
}

impl Actor<'_> {
    async fn apply(&mut self, op: &Op, replicas: &mut Replicas) -> Result<(), AnyError> {
        if op.is_fault() {
            return faults::apply(self.env, replicas, op).await;
        }
        match *op {
            Op::Pause { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            Op::DeleteNamespace { ns } => self.delete_namespace(ns).await,
            ref op => {
                let ns = op_namespace(op);
                self.ensure_namespace(ns).await?;
                self.change_objects(op, ns).await
            }
        }
    }

    async fn change_objects(&self, op: &Op, ns: usize) -> Result<(), AnyError> {
        let (cust, perm) = ("Customer", "PurchasePermission");
        match *op {
            Op::ApplyCustomer { c, .. } => self.put(ns, cust, objects::customer(ns, c)).await,
            Op::DeleteCustomer { c, .. } => self.delete(ns, cust, &objects::customer_name(c)).await,
            Op::ApplySubscription { c, eligible, .. } => {
                let s = objects::subscription(ns, c, eligible);
                self.put(ns, "AzureSubscription", s).await
            }
            Op::DeleteSubscription { c, .. } => {
                self.delete(ns, "AzureSubscription", &format!("c{c}-plan"))
                    .await
            }
            Op::ApplyRole { c, owner, .. } => {
                self.put(ns, "RoleAssignment", objects::role(ns, c, owner))
                    .await
            }
            Op::DeleteRole { c, .. } => {
                self.delete(ns, "RoleAssignment", &format!("c{c}-owner"))
                    .await
            }
            Op::ApplyPermission {
                c,
                enabled,
                resources,
                ..
            } => {
                let name = objects::permission_name(c);
                let p = objects::permission(&name, &objects::customer_name(c), enabled, resources);
                self.put(ns, perm, p).await
            }
            Op::SetEnabled { c, enabled, .. } => self.set_enabled(ns, c, enabled).await,
            Op::FlipFlop { c, times, .. } => {
                for k in 0..times {
                    self.set_enabled(ns, c, k % 2 == 0).await?;
                }
                Ok(())
            }
            Op::SetResources { c, resources, .. } => {
                let spec = json!({"spec": {"resources": resources.names()}});
                self.merge(ns, perm, &objects::permission_name(c), spec)
                    .await
            }
            _ => self.change_more_objects(op, ns).await,
        }
    }

    async fn change_more_objects(&self, op: &Op, ns: usize) -> Result<(), AnyError> {
        let perm = "PurchasePermission";
        let all = super::generator::Resources::Reservations;
        match *op {
            Op::DeletePermission { c, .. } => {
                self.delete(ns, perm, &objects::permission_name(c)).await
            }
            Op::RecreatePermission { c, enabled, .. } => {
                let name = objects::permission_name(c);
                // A refused delete (nothing to delete) still leads to the create.
                let _ = self.delete(ns, perm, &name).await;
                let p = objects::permission(&name, &objects::customer_name(c), enabled, all);
                self.put(ns, perm, p).await
            }
            Op::ApplyRival { c, .. } => {
                let name = objects::rival_name(c);
                let p = objects::permission(&name, &objects::customer_name(c), true, all);
                self.put(ns, perm, p).await
            }
            Op::DeleteRival { c, .. } => self.delete(ns, perm, &objects::rival_name(c)).await,
            Op::ApplyDangling { c, .. } => {
                let p = objects::permission(&format!("p{c}-dangling"), "ghost", true, all);
                self.put(ns, perm, p).await
            }
            Op::ApplyInvalid { which, .. } => self.apply_invalid(ns, which).await,
            _ => Ok(()),
        }
    }

    /// An invalid object must be refused; one the server accepts is a finding of its own.
    async fn apply_invalid(&self, ns: usize, which: usize) -> Result<(), AnyError> {
        let obj = objects::invalid(which);
        let kind = obj["kind"].as_str().unwrap_or_default().to_string();
        match self.put(ns, &kind, obj.clone()).await {
            Err(_) => Ok(()),
            Ok(()) => {
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                self.history
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .accepted_invalid
                    .push(format!("{}/{kind}/{name}", namespace(ns)));
                self.delete(ns, &kind, name).await
            }
        }
    }

    async fn ensure_namespace(&mut self, ns: usize) -> Result<(), AnyError> {
        if self.ready.contains(&ns) {
            return Ok(());
        }
        let name = namespace(ns);
        create_namespace(&self.env.client, &name).await?;
        if let Some(sim) = &self.env.simulator {
            for (ar, obj) in objects::connection_objects(&sim.base_url()) {
                self.put_as(&name, &ar, obj).await?;
            }
        }
        self.ready.insert(ns);
        Ok(())
    }

    async fn delete_namespace(&mut self, ns: usize) -> Result<(), AnyError> {
        self.ready.remove(&ns);
        let name = namespace(ns);
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .namespace_deleted(&name);
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.env.client.clone());
        api.delete(&name, &DeleteParams::default()).await?;
        Ok(())
    }

    async fn put(&self, ns: usize, kind: &str, obj: Value) -> Result<(), AnyError> {
        self.put_as(&namespace(ns), &kind_resource(kind), obj).await
    }

    /// Server-side apply, forced, as GitOps tools do.
    async fn put_as(&self, ns: &str, ar: &ApiResource, obj: Value) -> Result<(), AnyError> {
        let api: Api<DynamicObject> = Api::namespaced_with(self.env.client.clone(), ns, ar);
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let params = PatchParams::apply(APPLIER).force();
        api.patch(&name, &params, &Patch::Apply(&obj)).await?;
        Ok(())
    }

    async fn merge(&self, ns: usize, kind: &str, name: &str, patch: Value) -> Result<(), AnyError> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.env.client.clone(),
            &namespace(ns),
            &kind_resource(kind),
        );
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn set_enabled(&self, ns: usize, c: usize, enabled: bool) -> Result<(), AnyError> {
        let patch = json!({"spec": {"enabled": enabled}});
        let name = objects::permission_name(c);
        self.merge(ns, "PurchasePermission", &name, patch).await
    }

    async fn delete(&self, ns: usize, kind: &str, name: &str) -> Result<(), AnyError> {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.env.client.clone(),
            &namespace(ns),
            &kind_resource(kind),
        );
        api.delete(name, &DeleteParams::default()).await?;
        Ok(())
    }
}

/// The namespace an object operation touches.
fn op_namespace(op: &Op) -> usize {
    let ns = match *op {
        Op::ApplyCustomer { ns, .. }
        | Op::DeleteCustomer { ns, .. }
        | Op::ApplySubscription { ns, .. }
        | Op::DeleteSubscription { ns, .. }
        | Op::ApplyRole { ns, .. }
        | Op::DeleteRole { ns, .. }
        | Op::ApplyPermission { ns, .. }
        | Op::SetEnabled { ns, .. }
        | Op::FlipFlop { ns, .. }
        | Op::SetResources { ns, .. }
        | Op::DeletePermission { ns, .. }
        | Op::RecreatePermission { ns, .. }
        | Op::ApplyRival { ns, .. }
        | Op::DeleteRival { ns, .. }
        | Op::ApplyDangling { ns, .. }
        | Op::ApplyInvalid { ns, .. }
        | Op::DeleteNamespace { ns } => ns,
        _ => 0,
    };
    ns.min(NAMESPACES - 1)
}
