//! Shrinking a failing run: drop chunks of operations (halves, then quarters, ...) while the
//! rest still fails with a violation of the same kind. Timing is not deterministic, so each
//! candidate gets a few tries, and the final sequence is re-checked.

use super::{AnyError, ChaosOptions, Op, run};
use std::collections::BTreeSet;

/// The shortest failing subsequence found.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// Indices into the seed's plan (`--only`).
    pub only: Vec<usize>,
    /// How many of the final re-checks failed, of how many.
    pub reproduced: usize,
    pub rechecks: usize,
    /// Runs spent shrinking.
    pub runs: usize,
}

/// Shrinks the failing run `opts` whose violations were of the kinds `checks`, spending at most
/// `budget` runs; each candidate is tried up to `tries` times.
pub async fn shrink(
    opts: &ChaosOptions,
    checks: &BTreeSet<&'static str>,
    budget: usize,
    tries: usize,
) -> Result<Shrunk, AnyError> {
    let operations = opts.operations();
    let mut current: Vec<usize> = operations.iter().map(|(i, _)| *i).collect();
    let mut runs = 0;
    // First whole families of operations (every crash point, every API failure, ...): a
    // family whose removal keeps the failure is not its cause.
    for family in FAMILIES {
        if runs >= budget {
            break;
        }
        let candidate: Vec<usize> = operations
            .iter()
            .filter(|(i, op)| current.contains(i) && family_of(op) != *family)
            .map(|(i, _)| *i)
            .collect();
        if candidate.len() == current.len() {
            continue;
        }
        let (fails, spent) = fails(opts, &candidate, checks, tries).await?;
        runs += spent;
        if fails {
            eprintln!(
                "shrink: without {family}: {} operations still fail",
                candidate.len()
            );
            current = candidate;
        }
    }
    let mut chunk = current.len().div_ceil(2);
    while chunk >= 1 && runs < budget {
        let mut start = 0;
        let mut removed_any = false;
        while start < current.len() && runs < budget {
            let candidate: Vec<usize> = current
                .iter()
                .enumerate()
                .filter(|(k, _)| *k < start || *k >= start + chunk)
                .map(|(_, i)| *i)
                .collect();
            let (fails, spent) = fails(opts, &candidate, checks, tries).await?;
            runs += spent;
            if fails {
                eprintln!("shrink: {} operations still fail", candidate.len());
                current = candidate;
                removed_any = true;
            } else {
                start += chunk;
            }
        }
        if !removed_any {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2).max(1);
            if chunk == 1 && current.len() > 64 {
                // One-by-one over a long list costs too many runs; stop at this size.
                break;
            }
        }
    }
    let rechecks = 3;
    let mut reproduced = 0;
    for _ in 0..rechecks {
        reproduced += usize::from(fails(opts, &current, checks, 1).await?.0);
    }
    Ok(Shrunk {
        only: current,
        reproduced,
        rechecks,
        runs,
    })
}

/// Whether the operations `only` fail with a violation of one of `checks` in up to `tries`
/// runs; also how many runs that took.
async fn fails(
    opts: &ChaosOptions,
    only: &[usize],
    checks: &BTreeSet<&'static str>,
    tries: usize,
) -> Result<(bool, usize), AnyError> {
    let candidate = ChaosOptions {
        only: Some(only.to_vec()),
        verbose: false,
        ..opts.clone()
    };
    for attempt in 1..=tries {
        let report = run(&candidate).await?;
        if report.violations.iter().any(|v| checks.contains(v.check)) {
            return Ok((true, attempt));
        }
    }
    Ok((false, tries))
}

/// The families of operations tried away first.
const FAMILIES: &[&str] = &[
    "crash points",
    "kills and restarts",
    "API failures",
    "watch faults and latency",
    "Partner Center faults",
    "pauses",
    "invalid objects",
];

fn family_of(op: &Op) -> &'static str {
    match op {
        Op::ArmCrash { .. } => "crash points",
        Op::Kill { .. } | Op::KillLeader | Op::Restart { .. } => "kills and restarts",
        Op::ApiFailures(_) => "API failures",
        Op::DropWatches | Op::Compact | Op::WatchDelay { .. } | Op::Latency { .. } => {
            "watch faults and latency"
        }
        Op::PartnerCenter(_) => "Partner Center faults",
        Op::Pause { .. } => "pauses",
        Op::ApplyInvalid { .. } => "invalid objects",
        _ => "objects",
    }
}
