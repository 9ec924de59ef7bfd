//! The activity log: policy events published through kube's events Recorder.

use super::Context;
use crate::api::PurchasePermission;
use crate::policy::{ActivityEvent, EventType};
use kube::Resource;
use kube::runtime::events::{Event, EventType as KubeEventType};

/// Event notes are limited to 1 KiB by the API.
const NOTE_LIMIT: usize = 1024;

/// Publishes one activity-log entry regarding the permission. A failure is logged, not fatal:
/// the status already records the transition.
pub async fn publish(ctx: &Context, obj: &PurchasePermission, e: &ActivityEvent) {
    let mut note = e.note.clone();
    if note.len() > NOTE_LIMIT {
        let mut cut = NOTE_LIMIT - 3;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let event = Event {
        type_: match e.type_ {
            EventType::Normal => KubeEventType::Normal,
            EventType::Warning => KubeEventType::Warning,
        },
        reason: e.reason.to_string(),
        note: Some(note),
        action: e.action.to_string(),
        secondary: None,
    };
    let reference = obj.object_ref(&());
    let shard = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&reference.namespace, &reference.name).hash(&mut h);
        (h.finish() as usize) % ctx.recorders.len().max(1)
    };
    let Some(recorder) = ctx.recorders.get(shard) else {
        return;
    };
    match recorder.publish(&event, &reference).await {
        Ok(()) => {
            ctx.metrics
                .write(super::metrics::Kind::purchasepermission, "event");
        }
        Err(err) => {
            tracing::warn!(error = %err, reason = e.reason, "could not record activity-log event")
        }
    }
}
