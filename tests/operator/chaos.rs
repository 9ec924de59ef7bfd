//! `csp-operator chaos` in process on a handful of fixed seeds, a few hundred operations each:
//! both backends, one and two replicas. Each run must end quiet with no oracle violation; a
//! failing seed prints its violations and the command that re-runs it.

use csp_operator::backend::BackendChoice;
use csp_operator::chaos::{self, ChaosOptions, Op};
use std::time::Duration;

fn options(seed: u64, ops: usize, backend: BackendChoice, replicas: usize) -> ChaosOptions {
    ChaosOptions {
        seed,
        ops,
        backend,
        replicas,
        idle_check: Duration::from_secs(2),
        // Longer than the CLI's 1.5 s: a reconcile retried after a few injected failures in a
        // row comes 2 s or more later, and a loaded CI machine stretches that further.
        quiet: Duration::from_secs(3),
        ..Default::default()
    }
}

/// Runs a seed and fails with its violations and re-run command.
async fn must_hold(opts: ChaosOptions) {
    let report = chaos::run(&opts).await.expect("the chaos run starts");
    eprintln!("{report}");
    assert!(report.ops > 0 && report.faults > 0, "{report}");
    assert!(report.transitions > 0, "no grant was switched: {report}");
    let found: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    assert!(
        found.is_empty(),
        "{report}\n{}\nre-run: csp-operator chaos --seed {} --ops {} --backend {:?} --replicas {}",
        found.join("\n"),
        opts.seed,
        opts.ops,
        opts.backend,
        opts.replicas
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_backend_seed_1() {
    must_hold(options(1, 300, BackendChoice::Cluster, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_backend_seed_2() {
    must_hold(options(2, 300, BackendChoice::Cluster, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_center_seed_8() {
    must_hold(options(8, 400, BackendChoice::PartnerCenter, 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_center_two_replicas_seed_4() {
    must_hold(options(4, 200, BackendChoice::PartnerCenter, 2)).await;
}

/// The repro path: `--only` runs exactly the named operations of the seed's plan.
#[test]
fn only_selects_operations_of_the_seed_plan() {
    let all = options(9, 50, BackendChoice::PartnerCenter, 2).operations();
    assert_eq!(all.len(), 50);
    let some = ChaosOptions {
        only: Some(vec![3, 17, 40]),
        ..options(9, 50, BackendChoice::PartnerCenter, 2)
    }
    .operations();
    let picked: Vec<(usize, Op)> = [3, 17, 40].iter().map(|&i| all[i].clone()).collect();
    assert_eq!(some, picked);
}
