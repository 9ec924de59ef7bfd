//! The activity log: policy events published through kube's events Recorder.

use super::context::Context;
use crate::api::PurchasePermission;
use crate::policy::{ActivityEvent, EventType};
use kube::Resource;
use kube::runtime::events::{Event, EventType as KubeEventType, Recorder};

/// Event notes are limited to 1 KiB by the API.
const NOTE_LIMIT: usize = 1024;

/// Publishes one activity-log entry regarding the permission. A failure is logged, not fatal:
/// the status already records the transition.
pub async fn publish(ctx: &Context, obj: &PurchasePermission, e: &ActivityEvent) {
    publish_on(
        ctx,
        obj.object_ref(&()),
        e,
        super::metrics::Kind::purchasepermission,
    )
    .await;
}

/// A Warning Event for a reconcile that failed: reason = the error's category, note = the
/// readable chain. Sent on the first failure of a run of retries, not on every retry (a write
/// refused as invalid is not retried: one per change it waits for).
pub async fn publish_failure(
    ctx: &Context,
    reference: k8s_openapi::api::core::v1::ObjectReference,
    kind: super::metrics::Kind,
    reason: &'static str,
    note: String,
) {
    let e = ActivityEvent {
        type_: EventType::Warning,
        reason,
        action: "Reconcile",
        note,
    };
    publish_on(ctx, reference, &e, kind).await;
}

/// Publishes one entry regarding any object.
pub async fn publish_regarding(
    ctx: &Context,
    reference: k8s_openapi::api::core::v1::ObjectReference,
    e: &ActivityEvent,
    kind: super::metrics::Kind,
) {
    publish_on(ctx, reference, e, kind).await;
}

async fn publish_on(
    ctx: &Context,
    reference: k8s_openapi::api::core::v1::ObjectReference,
    e: &ActivityEvent,
    kind: super::metrics::Kind,
) {
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
    // A Recorder per entry: every switch is an Event of its own. A long-lived Recorder would
    // fold a repeat within six minutes into the first Event's series count (not what an audit
    // trail wants) and keeps every Event it sent for those six minutes (100k customers switched
    // on at once would hold ~280 MB).
    let recorder = Recorder::new(ctx.client.clone(), ctx.reporter.clone());
    match recorder.publish(&event, &reference).await {
        Ok(()) => {
            ctx.metrics.write(kind, "event");
        }
        Err(err) => {
            tracing::warn!(error = %err, reason = e.reason, "could not record activity-log event")
        }
    }
}
