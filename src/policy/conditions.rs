//! Condition merging that never churns: `lastTransitionTime` moves only when `status` flips,
//! conditions owned by someone else are kept, and the order is stable.

use crate::api::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// A condition as a rule decides it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl DesiredCondition {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }
}

fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// Merges `desired` into `existing`: each desired condition replaces the one of its type,
/// keeping `lastTransitionTime` unless `status` changed; other types are kept as they are.
pub fn merge_conditions(
    existing: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    merge_conditions_dropping(existing, desired, &[], generation, now)
}

/// [`merge_conditions`], also removing the conditions of the `dropped` types (conditions that
/// are present only while they hold, such as kstatus' `Stalled`).
pub fn merge_conditions_dropping(
    existing: &[Condition],
    desired: &[DesiredCondition],
    dropped: &[&str],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .filter(|c| !dropped.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    for d in desired {
        let status = status_str(d.status);
        let last_transition_time = existing
            .iter()
            .find(|c| c.type_ == d.type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(Condition {
            type_: d.type_.to_string(),
            status: status.to_string(),
            reason: d.reason.to_string(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out
}

/// The condition of a type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::t;

    fn ready(status: bool, reason: &'static str) -> DesiredCondition {
        DesiredCondition::new("Ready", status, reason, format!("{reason} message"))
    }

    #[test]
    fn new_condition_gets_now() {
        let merged = merge_conditions(&[], &[ready(true, "Registered")], Some(1), t(10));
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].status, "True");
        assert_eq!(merged[0].last_transition_time, Time(t(10)));
        assert_eq!(merged[0].observed_generation, Some(1));
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let first = merge_conditions(&[], &[ready(false, "A")], Some(1), t(10));
        // Same status, different reason: the time stays.
        let second = merge_conditions(&first, &[ready(false, "B")], Some(1), t(20));
        assert_eq!(second[0].last_transition_time, Time(t(10)));
        assert_eq!(second[0].reason, "B");
        // Status flips: the time moves.
        let third = merge_conditions(&second, &[ready(true, "C")], Some(1), t(30));
        assert_eq!(third[0].last_transition_time, Time(t(30)));
    }

    #[test]
    fn same_decision_merges_to_identical_conditions() {
        let first = merge_conditions(&[], &[ready(true, "A")], Some(2), t(10));
        let again = merge_conditions(&first, &[ready(true, "A")], Some(2), t(99));
        assert_eq!(first, again);
    }

    #[test]
    fn foreign_conditions_are_kept() {
        let foreign = Condition {
            type_: "example.com/Audited".into(),
            status: "True".into(),
            reason: "Done".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(t(1)),
        };
        let merged = merge_conditions(
            std::slice::from_ref(&foreign),
            &[ready(true, "A")],
            None,
            t(10),
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0], foreign);
        assert!(find(&merged, "Ready").is_some());
    }
}
