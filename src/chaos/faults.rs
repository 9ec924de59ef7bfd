//! Fault operations, applied: the API server's injected answers, dropped, stale and compacted
//! watches and latency; the simulator's Partner Center and Azure failures; replicas killed,
//! stopped, or armed to crash at a named point.

use super::AnyError;
use super::generator::{Op, PartnerCenterFault};
use super::runner::{Env, Replicas};
use crate::simulator::{FaultAction, FaultRule};
use std::time::Duration;

/// Applies one fault operation.
pub async fn apply(env: &Env, replicas: &mut Replicas, op: &Op) -> Result<(), AnyError> {
    let server = &env.server;
    match op {
        Op::ApiFailures(f) => {
            // 429 and 503 tell the client when to come back, as the real server does.
            let retry_after = matches!(f.code, 429 | 503).then_some(1);
            server.fail_next(f.verb, f.resource, f.count, f.code, retry_after);
        }
        Op::DropWatches => server.drop_watches(),
        Op::Compact => {
            server.compact();
            server.drop_watches();
        }
        Op::WatchDelay { ms } => {
            server.set_watch_delay((*ms > 0).then(|| Duration::from_millis(*ms)));
        }
        Op::Latency { ms } => server.set_latency((*ms > 0).then(|| Duration::from_millis(*ms))),
        Op::PartnerCenter(fault) => {
            if let Some(sim) = &env.simulator {
                sim.faults().add(partner_center_rule(fault));
            }
        }
        Op::Kill { replica } => replicas.kill(*replica).await?,
        Op::KillLeader => {
            let leader = replicas.leader(&env.client).await?;
            replicas.kill(leader).await?
        }
        Op::Restart { replica } => replicas.restart(*replica).await?,
        Op::ArmCrash { replica, point } => replicas.arm(*replica, *point),
        _ => {}
    }
    Ok(())
}

/// The simulator rule of a Partner Center fault.
fn partner_center_rule(fault: &PartnerCenterFault) -> FaultRule {
    match *fault {
        PartnerCenterFault::Status { path, code, count } => {
            FaultRule::new(FaultAction::Status(code))
                .path(path)
                .times(count)
        }
        PartnerCenterFault::Throttle { path, count } => FaultRule::new(FaultAction::Throttle {
            retry_after_secs: 1,
        })
        .path(path)
        .times(count),
        PartnerCenterFault::Timeout {
            path,
            ms,
            after_effect,
        } => FaultRule::new(FaultAction::Timeout {
            delay: Duration::from_millis(ms),
            after_effect,
        })
        .path(path),
    }
}
