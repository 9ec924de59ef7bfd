//! A PurchasePermission's grant transitions: the `status.history` entry each one adds, and the
//! one activity-log entry (Event) each one has, rebuilt from the entry alone so a transition whose
//! Event was lost to a crash gets the same Event after a restart.

use super::events::{ActivityEvent, EventType, actions};
use crate::api::conditions::reasons;
use crate::api::{GrantTransition, HISTORY_LIMIT, PermissionState, PurchasePermissionStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub(super) const ENABLED_NOTE: &str = "Customer may now purchase its own Azure reservations. The partner pays for \
every purchase and is not notified of them; exchange, cancel, renew and scope changes still go through the partner.";

/// A grant transition about to be made: its Event's reason, and the rival it involves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Transition<'a> {
    pub reason: &'static str,
    pub peer: Option<&'a str>,
}

/// The history after a transition from `from` to `to`: the entry appended (its sequence one past
/// the last), the oldest entries dropped beyond `HISTORY_LIMIT`.
pub(super) fn appended(
    history: &[GrantTransition],
    from: PermissionState,
    to: PermissionState,
    transition: Transition<'_>,
    by: Option<&str>,
    now: Timestamp,
) -> Vec<GrantTransition> {
    let sequence = history.last().map_or(0, |t| t.sequence) + 1;
    let skip = (history.len() + 1).saturating_sub(HISTORY_LIMIT);
    let mut next: Vec<GrantTransition> = history.iter().skip(skip).cloned().collect();
    next.push(GrantTransition {
        sequence,
        time: Time(now),
        from,
        to,
        reason: transition.reason.to_string(),
        by: by.map(String::from),
        peer: transition.peer.map(String::from),
    });
    next
}

/// The entries of `after` that `before` does not hold: the transitions a decision makes.
pub fn new_transitions<'a>(
    before: Option<&PurchasePermissionStatus>,
    after: &'a PurchasePermissionStatus,
) -> impl Iterator<Item = &'a GrantTransition> {
    let last = before
        .and_then(|s| s.history.last())
        .map_or(0, |t| t.sequence);
    after.history.iter().filter(move |t| t.sequence > last)
}

/// The Event of a grant transition: type, reason, action and note, from the entry and the status
/// that holds it (what the grant covers, its id). `deleting`: the permission is being deleted.
pub fn transition_event(
    entry: &GrantTransition,
    status: &PurchasePermissionStatus,
    deleting: bool,
) -> ActivityEvent {
    let (reason, action) = reason_and_action(&entry.reason);
    let peer = entry.peer.as_deref().unwrap_or("unknown");
    let resources = resources(status);
    let what = match reason {
        reasons::PERMISSION_ENABLED => format!("{ENABLED_NOTE} Resources: {resources}."),
        reasons::PERMISSION_ADOPTED => format!(
            "Partner Center already let the customer purchase (policy {}); the operator manages that grant now. The partner pays for every purchase and is not notified of them.",
            status.policy_id.as_deref().unwrap_or("unknown")
        ),
        reasons::PERMISSION_TAKEN_OVER => format!(
            "PurchasePermission {peer:?}, a younger one for the same customer, had made the customer's grant; this one, the oldest, holds it now. {ENABLED_NOTE} Resources: {resources}."
        ),
        reasons::PERMISSION_UPDATED => {
            format!("What the customer may purchase changed. Resources: {resources}.")
        }
        reasons::PERMISSION_HANDED_OVER => format!(
            "The customer's grant stays in effect: PurchasePermission {peer:?}, the oldest for the same customer, holds it now."
        ),
        reasons::PERMISSION_ORPHANED => "PurchasePermission deleted with deletionPolicy Orphan: the customer may still purchase its own Azure reservations, billed to the partner.".to_string(),
        _ => {
            let how = match (&entry.peer, deleting) {
                (Some(peer), _) => format!(
                    "PurchasePermission {peer:?}, the oldest for the same customer, holds its switch and does not ask for the grant"
                ),
                (None, true) => "PurchasePermission deleted".to_string(),
                (None, false) => "switched off".to_string(),
            };
            format!("Customer may no longer purchase its own Azure reservations ({how}).")
        }
    };
    let note = match &entry.by {
        Some(by) => format!("{what} spec.enabled last set by {by}."),
        None => what,
    };
    ActivityEvent {
        type_: EventType::Normal,
        reason,
        action,
        note,
        transition: Some(entry.sequence),
    }
}

/// A transition's reason as a constant, with its action (an unknown one, written by someone
/// else, is logged as a withdrawal: the safe reading of a grant change nobody here made).
fn reason_and_action(reason: &str) -> (&'static str, &'static str) {
    [
        (reasons::PERMISSION_ENABLED, actions::CREATE),
        (reasons::PERMISSION_ADOPTED, actions::ADOPT),
        (reasons::PERMISSION_TAKEN_OVER, actions::HAND_OVER),
        (reasons::PERMISSION_UPDATED, actions::UPDATE),
        (reasons::PERMISSION_HANDED_OVER, actions::HAND_OVER),
        (reasons::PERMISSION_ORPHANED, actions::ORPHAN),
        (reasons::PERMISSION_DISABLED, actions::DELETE),
    ]
    .into_iter()
    .find(|(r, _)| *r == reason)
    .unwrap_or((reasons::PERMISSION_DISABLED, actions::DELETE))
}

fn resources(status: &PurchasePermissionStatus) -> String {
    status
        .granted_resources
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
