//! The activity log: `events.k8s.io/v1` Events, created directly. A grant transition's Event is
//! named after the permission's uid and the transition's `status.history` sequence, so a retry, a
//! restart or a second replica creating it again gets 409 AlreadyExists: exactly one per
//! transition. Every other entry is named as kube's Recorder names them (name, then time).

use super::context::Context;
use crate::api::{PurchasePermission, PurchasePermissionStatus};
use crate::policy::{self, ActivityEvent, EventType};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use std::collections::HashMap;
use std::sync::Mutex;

/// Event notes are limited to 1 KiB by the API.
const NOTE_LIMIT: usize = 1024;
/// Object names (and so Event names) are DNS subdomains of at most 253 characters.
const NAME_LIMIT: usize = 253;
/// How long a real cluster keeps an Event (the API server's `--event-ttl` default): an older
/// transition's Event is gone anyway, so it is not made again (`status.history` keeps it).
const EVENT_TTL: SignedDuration = SignedDuration::from_hours(1);

/// A grant transition's Event could not be recorded (and will be tried again).
#[derive(Debug)]
pub struct Unrecorded;

/// The highest transition sequence whose Event this process knows exists, per permission (by a
/// hash of its uid): a reconcile that changes nothing checks this and makes no call.
#[derive(Default)]
pub struct LoggedTransitions(Mutex<HashMap<u64, i64>>);

impl LoggedTransitions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, i64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn through(&self, obj: &PurchasePermission) -> i64 {
        self.lock().get(&uid_key(obj)).copied().unwrap_or(0)
    }

    fn note(&self, obj: &PurchasePermission, sequence: i64) {
        let mut logged = self.lock();
        let through = logged.entry(uid_key(obj)).or_default();
        *through = (*through).max(sequence);
    }

    /// Forgets a deleted object.
    pub fn forget<K: Resource>(&self, obj: &K) {
        self.lock().remove(&uid_key(obj));
    }
}

fn uid_key<K: Resource>(obj: &K) -> u64 {
    stable_hash(obj.meta().uid.as_deref().unwrap_or("").as_bytes())
}

/// FNV-1a: the same on every replica and every build (std's hasher promises neither).
fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Makes sure every recent grant transition in `status.history` has its Event: creates the
/// ones this process has not seen recorded (409 AlreadyExists counts as recorded). Nothing to do,
/// and no call, when the newest transition is known recorded.
pub async fn log_transitions(
    ctx: &Context,
    obj: &PurchasePermission,
    status: &PurchasePermissionStatus,
) -> Result<(), Unrecorded> {
    let Some(newest) = status.history.last() else {
        return Ok(());
    };
    let through = ctx.logged.through(obj);
    if newest.sequence <= through {
        return Ok(());
    }
    let deleting = obj.metadata.deletion_timestamp.is_some();
    let cutoff = Timestamp::now() - EVENT_TTL;
    let mut all_recorded = true;
    for entry in status.history.iter().filter(|t| t.sequence > through) {
        if entry.time.0 < cutoff {
            continue;
        }
        let e = policy::transition_event(entry, status, deleting);
        let name = transition_event_name(obj, entry.sequence);
        let outcome = create(ctx, obj.object_ref(&()), &e, name, entry.time.0).await;
        all_recorded &= outcome != Outcome::Failed;
    }
    if !all_recorded {
        return Err(Unrecorded);
    }
    ctx.logged.note(obj, newest.sequence);
    Ok(())
}

/// The Event name of a permission's transition: its name (cut to fit), then a hash of its uid
/// and the sequence.
pub fn transition_event_name(obj: &PurchasePermission, sequence: i64) -> String {
    let uid = obj.metadata.uid.as_deref().unwrap_or("");
    let key = format!("{uid}/{sequence}");
    event_name(&obj.name_any(), stable_hash(key.as_bytes()))
}

/// `<object name>.<16 hex digits>`, the object name cut so the whole fits 253 characters and
/// still ends in an alphanumeric (a DNS subdomain).
fn event_name(object: &str, suffix: u64) -> String {
    let keep = NAME_LIMIT - 17;
    let mut cut = &object[..object.len().min(keep)];
    while !object.is_char_boundary(cut.len()) {
        cut = &cut[..cut.len() - 1];
    }
    let cut = cut.trim_end_matches(['-', '.']);
    format!("{cut}.{suffix:016x}")
}

/// A Warning Event for a reconcile that failed: reason = the error's category, note = the
/// readable chain. Sent on the first failure of a run of retries, not on every retry (a write
/// refused as invalid is not retried: one per change it waits for).
pub async fn publish_failure(
    ctx: &Context,
    reference: ObjectReference,
    kind: super::metrics::Kind,
    reason: &'static str,
    note: String,
) {
    let e = ActivityEvent {
        type_: EventType::Warning,
        reason,
        action: "Reconcile",
        note,
        transition: None,
    };
    publish_regarding(ctx, reference, &e, kind).await;
}

/// Publishes one entry that is no grant transition regarding any object, named as kube's
/// Recorder names Events (a failure is logged, not fatal).
pub async fn publish_regarding(
    ctx: &Context,
    reference: ObjectReference,
    e: &ActivityEvent,
    kind: super::metrics::Kind,
) {
    let now = Timestamp::now();
    let object = reference.name.clone().unwrap_or_default();
    let name = event_name(&object, now.as_nanosecond() as u64);
    if create(ctx, reference, e, name, now).await == Outcome::Created {
        ctx.metrics.write(kind, "event");
    }
}

/// What became of an Event create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Created,
    /// 409: made before (by this process before a crash, or by another replica).
    Existed,
    /// The namespace is being deleted: no Event can be made there; the log line is the record.
    Refused,
    Failed,
}

/// Creates one Event; a grant transition's is also the operator's structured log line.
async fn create(
    ctx: &Context,
    reference: ObjectReference,
    e: &ActivityEvent,
    name: String,
    time: Timestamp,
) -> Outcome {
    let ns = reference
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let event = event_body(ctx, reference, e, name, time);
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
    match api.create(&PostParams::default(), &event).await {
        Ok(_) => {
            if e.transition.is_some() {
                ctx.metrics
                    .write(super::metrics::Kind::purchasepermission, "event");
                log_line(&event, "grant transition recorded");
            }
            Outcome::Created
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Outcome::Existed,
        Err(kube::Error::Api(status)) if status.code == 403 && terminating(&status.message) => {
            tracing::warn!(event = ?event.metadata.name, "namespace is being deleted: no Event can be made");
            log_line(&event, "grant transition recorded in this log line only");
            Outcome::Refused
        }
        Err(err) => {
            tracing::warn!(error = %err, reason = e.reason, "could not record activity-log event");
            Outcome::Failed
        }
    }
}

/// The API server's refusal of new objects in a namespace being deleted.
fn terminating(message: &str) -> bool {
    message.contains("being terminated")
}

/// The Event as kube's Recorder builds it (what `kubectl describe` and dashboards show).
fn event_body(
    ctx: &Context,
    regarding: ObjectReference,
    e: &ActivityEvent,
    name: String,
    time: Timestamp,
) -> Event {
    let reporter = &ctx.reporter;
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: regarding.namespace.clone(),
            ..Default::default()
        },
        action: Some(e.action.to_string()),
        reason: Some(e.reason.to_string()),
        note: Some(truncated(&e.note)),
        event_time: Some(MicroTime(time)),
        regarding: Some(regarding),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(
            reporter
                .instance
                .clone()
                .unwrap_or_else(|| reporter.controller.clone()),
        ),
        type_: Some(
            match e.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .into(),
        ),
        ..Default::default()
    }
}

/// The operator's structured log line of a grant transition, with every field of its Event.
fn log_line(event: &Event, what: &str) {
    let regarding = event.regarding.as_ref();
    tracing::info!(
        event = event.metadata.name.as_deref().unwrap_or(""),
        namespace = event.metadata.namespace.as_deref().unwrap_or(""),
        regarding = regarding.and_then(|r| r.name.as_deref()).unwrap_or(""),
        uid = regarding.and_then(|r| r.uid.as_deref()).unwrap_or(""),
        reason = event.reason.as_deref().unwrap_or(""),
        action = event.action.as_deref().unwrap_or(""),
        note = event.note.as_deref().unwrap_or(""),
        time = %event.event_time.as_ref().map(|t| t.0).unwrap_or_default(),
        "{what}"
    );
}

fn truncated(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    let mut cut = NOTE_LIMIT - 3;
    while !note.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &note[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(name: &str, uid: &str) -> PurchasePermission {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "csp.operator.dev/v1alpha1", "kind": "PurchasePermission",
            "metadata": {"name": name, "namespace": "ns", "uid": uid},
            "spec": {"customerRef": {"name": "c"}}}))
        .expect("a permission")
    }

    #[test]
    fn transition_event_names_are_deterministic_and_fit() {
        let short = permission("contoso", "u1");
        let name = transition_event_name(&short, 3);
        assert_eq!(
            name,
            transition_event_name(&short, 3),
            "same transition, same name"
        );
        assert!(name.starts_with("contoso."));
        assert_ne!(
            name,
            transition_event_name(&short, 4),
            "each transition its own"
        );
        let other_uid = permission("contoso", "u2");
        assert_ne!(
            name,
            transition_event_name(&other_uid, 3),
            "a new object, new names"
        );

        // The longest valid names (237 to 253 characters) still fit, and end in an alphanumeric.
        for len in [236, 237, 240, 252, 253] {
            let mut long = "a".repeat(len - 2);
            long.push_str("-b");
            let name = transition_event_name(&permission(&long, "u1"), 1);
            assert!(name.len() <= NAME_LIMIT, "{len}: {}", name.len());
            let label_end = name.split('.').next().expect("a label");
            assert!(!label_end.ends_with('-'), "{name}");
        }
        let dotted = format!("{}.{}", "a".repeat(235), "b".repeat(17));
        let name = transition_event_name(&permission(&dotted, "u1"), 1);
        assert!(name.len() <= NAME_LIMIT && !name.contains(".."), "{name}");
    }

    #[test]
    fn long_notes_are_cut_at_the_api_limit() {
        let note = "é".repeat(NOTE_LIMIT);
        let cut = truncated(&note);
        assert!(cut.len() <= NOTE_LIMIT && cut.ends_with("..."));
        assert_eq!(truncated("short"), "short");
    }
}
