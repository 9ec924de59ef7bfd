//! The controllers. Each of the four reconcilers (one file per kind) gathers facts from shared
//! reflector caches, calls the pure `policy` decision once, then applies it: backend grant,
//! status (only when changed), activity-log Events.
//!
//! Where things are: `caches` (stores, relation indexes, queries), `triggers` (who depends on
//! a change: one feed per kind, beside the indexes it keeps), `wiring` (channels and the four
//! controllers), `run`, `leader` and `fence` (options, metrics endpoint, the Lease and the
//! fence that keeps a replica without it from writing), `context` (what every
//! reconcile shares, the status write), `drift` (which grants to check where they live),
//! `backoff` (error policy), `events` (activity log),
//! `metrics`, `error`.

mod annotations;
mod backoff;
mod caches;
mod connection;
mod context;
pub mod crash;
mod customer;
mod drift;
mod error;
mod events;
mod fence;
mod finalizers;
mod leader;
pub mod metrics;
mod purchase_permission;
mod role_assignment;
mod run;
mod subscription;
mod triggers;
mod wiring;

pub use caches::Caches;
pub use context::Context;
pub use crash::{CrashPoint, CrashPoints};
pub use error::Error;
pub use fence::Fence;
pub use leader::{LeaderElection, LeaseTiming};
pub use metrics::Metrics;
pub use purchase_permission::{rival as rival_permission, tenant_recorded_by_operator};
pub use run::{Operator, RunOptions, run};
pub use subscription::reported as reported_subscription;

use k8s_openapi::jiff::Timestamp;

/// Name under which the operator writes (field manager, Event reporter).
pub const MANAGER: &str = "csp-operator";

/// The clock the reconcilers pass to `policy`.
fn now() -> Timestamp {
    Timestamp::now()
}
