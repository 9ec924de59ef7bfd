//! Fault injection, reachable from Rust only: failing answers, added latency and dropped
//! watches, for the tests and benchmarks that check how clients cope.

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

    /// Fails the next `count` requests with `verb` on `resource` with `code`.
    pub(super) fn fail_next(
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
        self.rules
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

    pub(super) fn latency(&self) -> Option<Duration> {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn set_latency(&self, latency: Option<Duration>) {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// Ends every open watch.
    pub(super) fn drop_watches(&self) {
        self.drops.send_modify(|n| *n += 1);
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
