//! `csp-operator chaos`: the real controllers against the embedded API server (and the Partner
//! Center simulator) while a seeded generator changes objects the way users and GitOps tools do
//! and injects faults (failing answers, dropped and stale watches, compacted history, Partner
//! Center errors, killed and restarted replicas, crashes at named points). When the generator
//! stops, the run waits for quiet and an oracle checks the end state and the activity log.
//!
//! Where things are: [`generator`] (the seeded operations), `objects` (manifests and the
//! simulated world), `runner` (the environment, replicas, applying operations, what happened),
//! `faults` (applying fault operations), `oracle` (the checks), `shrink` (the shortest failing
//! subsequence).

mod faults;
pub mod generator;
mod objects;
mod oracle;
mod runner;
mod shrink;

pub use generator::{Op, PlanShape, plan};
pub use oracle::Violation;
pub use shrink::shrink;

use crate::backend::BackendChoice;
use std::time::Duration;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Operations of a repro printed one per line (the re-run command names them all).
const PRINTED_OPS: usize = 200;

/// What a chaos run does.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    pub seed: u64,
    /// Operations generated from the seed.
    pub ops: usize,
    /// Run only these operations of the seed's plan (by index), as a printed repro names them.
    pub only: Option<Vec<usize>>,
    pub backend: BackendChoice,
    /// Operator instances; with 2 they elect a leader through a Lease.
    pub replicas: usize,
    /// How long nothing may be written (and no Partner Center call made) before the run counts
    /// as quiet.
    pub quiet: Duration,
    /// After quiet: how long the oracle watches for writes and calls that should not come.
    pub idle_check: Duration,
    /// How long to wait for quiet before declaring the run did not converge.
    pub patience: Duration,
    /// Print each operation as it is applied.
    pub verbose: bool,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        ChaosOptions {
            seed: 1,
            ops: 300,
            only: None,
            backend: BackendChoice::Cluster,
            replicas: 1,
            quiet: Duration::from_millis(1500),
            idle_check: Duration::from_secs(5),
            patience: Duration::from_secs(90),
            verbose: false,
        }
    }
}

impl ChaosOptions {
    pub fn shape(&self) -> PlanShape {
        PlanShape {
            replicas: self.replicas,
            partner_center: self.backend == BackendChoice::PartnerCenter,
        }
    }

    /// The operations this run applies, each with its index in the seed's plan.
    pub fn operations(&self) -> Vec<(usize, Op)> {
        let all = plan(self.seed, self.ops, self.shape());
        match &self.only {
            None => all.into_iter().enumerate().collect(),
            Some(only) => all
                .into_iter()
                .enumerate()
                .filter(|(i, _)| only.contains(i))
                .collect(),
        }
    }
}

/// What a run did and found.
#[derive(Clone, Debug, Default)]
pub struct ChaosReport {
    pub seed: u64,
    /// Operations applied.
    pub ops: usize,
    /// Of those, faults injected.
    pub faults: usize,
    /// Replicas killed or stopped and started again (crash points included).
    pub restarts: usize,
    /// Operations the API server refused (injected failures, invalid objects, terminating
    /// namespaces): expected, counted for the record.
    pub refused: usize,
    /// Grant transitions the store saw (into and out of Enabled): what the oracle's Event
    /// count checks; a run with none exercised little.
    pub transitions: usize,
    pub violations: Vec<Violation>,
    /// From the end of the operations until quiet.
    pub converge: Duration,
}

impl std::fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed={} ops={} faults={} restarts={} violations={}",
            self.seed,
            self.ops,
            self.faults,
            self.restarts,
            self.violations.len()
        )
    }
}

/// Runs one chaos run: the operations of `opts`, then quiet, then the oracle.
pub async fn run(opts: &ChaosOptions) -> Result<ChaosReport, AnyError> {
    runner::run(opts).await
}

/// `csp-operator chaos`: one run; on a violation, the shortest failing subsequence found (with
/// `shrink_budget` runs at most, 0: none) and the command that re-runs it. The summary is the
/// last line printed. Returns the number of violations.
pub async fn command(opts: &ChaosOptions, shrink_budget: usize) -> Result<usize, AnyError> {
    let report = run(opts).await?;
    for v in &report.violations {
        println!("violation {v}");
    }
    eprintln!(
        "refused operations: {}; grant transitions: {}; quiet {:.1} s after the last operation",
        report.refused,
        report.transitions,
        report.converge.as_secs_f64()
    );
    if !report.violations.is_empty() {
        print_repro(opts, &report, shrink_budget).await?;
    }
    println!("{report}");
    Ok(report.violations.len())
}

async fn print_repro(
    opts: &ChaosOptions,
    report: &ChaosReport,
    shrink_budget: usize,
) -> Result<(), AnyError> {
    let mut only: Vec<usize> = opts.operations().into_iter().map(|(i, _)| i).collect();
    if shrink_budget > 0 {
        let checks = report.violations.iter().map(|v| v.check).collect();
        let shrunk = shrink(opts, &checks, shrink_budget, 2).await?;
        println!(
            "shortest failing sequence: {} operations (reproduced {}/{} re-runs; {} runs spent)",
            shrunk.only.len(),
            shrunk.reproduced,
            shrunk.rechecks,
            shrunk.runs
        );
        only = shrunk.only;
    }
    let all = plan(opts.seed, opts.ops, opts.shape());
    for &i in only.iter().take(PRINTED_OPS) {
        if let Some(op) = all.get(i) {
            println!("  #{i} {op}");
        }
    }
    if only.len() > PRINTED_OPS {
        println!("  ... {} more", only.len() - PRINTED_OPS);
    }
    let backend = match opts.backend {
        BackendChoice::Cluster => "cluster",
        BackendChoice::PartnerCenter => "partner-center",
    };
    let mut rerun = format!(
        "re-run: csp-operator chaos --seed {} --ops {} --backend {backend} --replicas {}",
        opts.seed, opts.ops, opts.replicas
    );
    if only.len() < opts.ops {
        let list: Vec<String> = only.iter().map(usize::to_string).collect();
        rerun.push_str(&format!(" --only {}", list.join(",")));
    }
    println!("{rerun}");
    Ok(())
}
