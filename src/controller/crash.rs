//! Named crash points: places in a reconcile where a process dying leaves work half done (a
//! grant made but not recorded, a status written but its Event not sent). Always compiled in,
//! inert until armed: an unarmed point costs one atomic load. The chaos runner arms them through
//! `RunOptions::crash_points`; a reached point reports itself and never returns, so the runner
//! can kill the process right there.

use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::watch;

/// Where a reconcile can be stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// The backend granted (Partner Center created or updated the policy); the status does not
    /// say so yet.
    AfterGrant,
    /// The backend withdrew the grant; the status (or the deletion) does not say so yet.
    AfterRevoke,
    /// A permission's status recorded a transition; its activity-log Event is not sent yet.
    AfterStatusWrite,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 3] = [
        CrashPoint::AfterGrant,
        CrashPoint::AfterRevoke,
        CrashPoint::AfterStatusWrite,
    ];

    fn bit(self) -> u8 {
        match self {
            CrashPoint::AfterGrant => 1,
            CrashPoint::AfterRevoke => 2,
            CrashPoint::AfterStatusWrite => 4,
        }
    }
}

/// The armed points of one process, and the one it stopped at.
#[derive(Debug)]
pub struct CrashPoints {
    armed: AtomicU8,
    reached: watch::Sender<Option<CrashPoint>>,
}

impl Default for CrashPoints {
    fn default() -> Self {
        CrashPoints {
            armed: AtomicU8::new(0),
            reached: watch::channel(None).0,
        }
    }
}

impl CrashPoints {
    /// The next reconcile to reach `point` stops there (once).
    pub fn arm(&self, point: CrashPoint) {
        self.armed.fetch_or(point.bit(), Ordering::SeqCst);
    }

    /// Whether `point` is armed and not reached yet.
    pub fn is_armed(&self, point: CrashPoint) -> bool {
        self.armed.load(Ordering::SeqCst) & point.bit() != 0
    }

    /// Resolves with the first point a reconcile stopped at.
    pub async fn stopped_at(&self) -> CrashPoint {
        let mut rx = self.reached.subscribe();
        loop {
            if let Some(point) = *rx.borrow_and_update() {
                return point;
            }
            if rx.changed().await.is_err() {
                futures::future::pending::<()>().await;
            }
        }
    }

    /// Called at `point`: returns at once unless it is armed; an armed point disarms itself,
    /// reports, and never returns (the process is about to be killed).
    pub async fn reach(&self, point: CrashPoint) {
        let bit = point.bit();
        if self.armed.load(Ordering::Relaxed) & bit == 0 {
            return;
        }
        if self.armed.fetch_and(!bit, Ordering::SeqCst) & bit == 0 {
            return;
        }
        tracing::warn!(?point, "stopped at an armed crash point");
        self.reached.send_replace(Some(point));
        futures::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_armed_point_stops_once_and_reports() {
        let points = std::sync::Arc::new(CrashPoints::default());
        points.reach(CrashPoint::AfterGrant).await; // unarmed: returns
        points.arm(CrashPoint::AfterGrant);
        assert!(points.is_armed(CrashPoint::AfterGrant));
        let p = points.clone();
        let stuck = tokio::spawn(async move { p.reach(CrashPoint::AfterGrant).await });
        let reached = tokio::time::timeout(Duration::from_secs(5), points.stopped_at()).await;
        assert_eq!(reached.ok(), Some(CrashPoint::AfterGrant));
        assert!(!stuck.is_finished(), "the reconcile stays stopped");
        assert!(!points.is_armed(CrashPoint::AfterGrant), "one-shot");
        points.reach(CrashPoint::AfterGrant).await; // disarmed: returns
        stuck.abort();
    }
}
