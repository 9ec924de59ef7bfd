//! Per-object exponential backoff with jitter after a failed reconcile, and the one Warning
//! Event a run of failures records on the object.

use super::context::Context;
use super::{Error, events, metrics};
use kube::Resource;
use kube::runtime::controller::Action;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Failed attempts per object since its last success.
#[derive(Default)]
pub struct Backoff(Mutex<HashMap<String, u32>>);

impl Backoff {
    /// Counts one more failure of the object; returns how many in a row.
    fn failed(&self, key: &str) -> u32 {
        let mut failures = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// Forgets the object's failures (it reconciled).
    pub fn succeeded<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&object_key(obj));
    }
}

/// `Kind/namespace/name`, the key of an object's failures and of its log lines.
fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

/// The controllers' error policy: 0.5 s doubling to 5 min, reset on success; a write refused as
/// invalid waits for the object to change instead.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    // Refused as invalid: retrying the same write cannot help; wait for the object to change.
    let invalid = error.is_invalid();
    let key = object_key(obj.as_ref());
    let attempts = if invalid { 1 } else { ctx.backoff.failed(&key) };
    if attempts == 1 {
        warn_on_object(obj.as_ref(), error, invalid, &ctx);
    }
    if invalid {
        tracing::error!(error = %error, object = %key, "write refused as invalid; waiting for a change");
        return Action::await_change();
    }
    let base_ms = 500u64.saturating_mul(1u64 << attempts.min(11).saturating_sub(1));
    let delay = Duration::from_millis(base_ms.min(300_000));
    let jitter = Duration::from_millis(rand::random::<u64>() % (delay.as_millis() as u64 / 4 + 1));
    tracing::warn!(error = %error, category = error.metric_label(), object = %key, attempts, "reconcile failed; retrying");
    Action::requeue(delay + jitter)
}

/// Tells the people looking at the object (kubectl describe), once per run of failures.
fn warn_on_object<K: Resource<DynamicType = ()>>(
    obj: &K,
    error: &Error,
    invalid: bool,
    ctx: &Arc<Context>,
) {
    let reference = obj.object_ref(&());
    let verb = if invalid {
        "refused as invalid; waiting for a change"
    } else {
        "retrying"
    };
    let (reason, note) = (
        error.event_reason(),
        format!("reconcile failed, {verb}: {error}"),
    );
    let kind = metrics::kind_of(K::kind(&()).as_ref());
    let ctx = ctx.clone();
    tokio::spawn(async move {
        events::publish_failure(&ctx, reference, kind, reason, note).await;
    });
}
