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
    /// How long each live watch event is held before it is sent (a stale client cache).
    watch_delay: tokio::sync::watch::Sender<Option<Duration>>,
}

impl Faults {
    pub(super) fn new() -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            latency: Mutex::new(None),
            drops: tokio::sync::watch::channel(0).0,
            watch_delay: tokio::sync::watch::channel(None).0,
        }
    }

    pub(super) fn latency(&self) -> Option<Duration> {
        *self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes when the open watches are to end.
    pub(super) fn watch_drops(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drops.subscribe()
    }

    /// How long live watch events are currently held (read by each open watch per event).
    pub(super) fn watch_delay(&self) -> tokio::sync::watch::Receiver<Option<Duration>> {
        self.watch_delay.subscribe()
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

    /// Holds every live watch event this long before sending it (None sends at once): clients'
    /// caches fall behind the store, as a slow or distant API server's do.
    pub fn set_watch_delay(&self, delay: Option<Duration>) {
        self.shared.faults.watch_delay.send_replace(delay);
    }

    /// Removes every pending failure rule, the latency and the watch delay.
    pub fn clear_faults(&self) {
        self.shared
            .faults
            .rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.set_latency(None);
        self.set_watch_delay(None);
    }

    /// Every stored change of (group, plural) from now on, as (event type, object JSON), read
    /// in process (no HTTP, so no injected fault reaches it). `None` in the stream: changes
    /// were missed (the reader fell behind the change feed).
    pub fn stored_changes(
        &self,
        group: &str,
        plural: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Option<(&'static str, serde_json::Value)>> {
        let mut rx = self.shared.store.changes();
        let (tx, out) = tokio::sync::mpsc::unbounded_channel();
        let (group, plural) = (group.to_string(), plural.to_string());
        tokio::spawn(async move {
            loop {
                let sent = match rx.recv().await {
                    Ok(c) if c.store.0 == group && c.store.1 == plural => {
                        let object = serde_json::from_slice(&c.object.unpack());
                        object.map_or(Ok(()), |v| tx.send(Some((c.type_, v))))
                    }
                    Ok(_) => Ok(()),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => tx.send(None),
                    Err(_) => return,
                };
                if sent.is_err() {
                    return;
                }
            }
        });
        out
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
