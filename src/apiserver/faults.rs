//! Fault injection, reachable from Rust only: failing answers, added latency and dropped
//! watches, for the tests and benchmarks that check how clients cope.

use super::ApiServer;
use super::error::ApiError;
use std::sync::Mutex;
use std::time::Duration;

/// One injected failure rule.
#[derive(Clone, Debug)]
struct FaultRule {
    verb: String,
    resource: String,
    remaining: usize,
    code: u16,
    retry_after: Option<u32>,
}

/// Fault injection, reachable from Rust only.
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
    latency: Mutex<Option<Duration>>,
    drops: tokio::sync::watch::Sender<u64>,
}

impl Faults {
    pub(super) fn new() -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            latency: Mutex::new(None),
            drops: tokio::sync::watch::channel(0).0,
        }
    }

    pub(super) fn latency(&self) -> Option<Duration> {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes when the open watches are to end.
    pub(super) fn watch_drops(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drops.subscribe()
    }

    /// The error to answer instead, when a rule matches (and counts it down).
    pub(super) fn take(&self, verb: &str, resource: &str) -> Option<ApiError> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let i = rules.iter().position(|r| {
            (r.verb == "*" || r.verb == verb) && (r.resource == "*" || r.resource == resource)
        })?;
        let rule = rules[i].clone();
        rules[i].remaining -= 1;
        if rules[i].remaining == 0 {
            rules.remove(i);
        }
        let (reason, msg): (&'static str, &str) = match rule.code {
            409 => ("Conflict", "injected conflict"),
            410 => ("Expired", "injected expiry"),
            429 => ("TooManyRequests", "injected throttling"),
            503 => ("ServiceUnavailable", "injected unavailability"),
            _ => ("InternalError", "injected internal error"),
        };
        let mut e = ApiError::new(rule.code, reason, msg);
        e.retry_after = rule.retry_after;
        Some(e)
    }
}

/// Fault injection on a running server.
impl ApiServer {
    /// Fails the next `count` requests with `verb` ("get", "list", "watch", "create", "update",
    /// "patch", "delete" or "*") on `resource` (plural or "*") with `code`.
    pub fn fail_next(
        &self,
        verb: &str,
        resource: &str,
        count: usize,
        code: u16,
        retry_after: Option<u32>,
    ) {
        if count == 0 {
            return;
        }
        self.shared
            .faults
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(FaultRule {
                verb: verb.into(),
                resource: resource.into(),
                remaining: count,
                code,
                retry_after,
            });
    }

    /// Ends every open watch (clients re-watch from their last resourceVersion).
    pub fn drop_watches(&self) {
        self.shared.faults.drops.send_modify(|n| *n += 1);
    }

    /// Forgets the change history: resuming a watch from an older version gets 410 Expired.
    pub fn compact(&self) {
        self.shared.store.compact();
    }

    /// Adds latency to every request (None removes it).
    pub fn set_latency(&self, latency: Option<Duration>) {
        *self
            .shared
            .faults
            .latency
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = latency;
    }
}
