//! RoleAssignment: whether it points at a known subscription, and the Azure role definition.

use super::observed::{Observed, dropped_for, in_sync};
use super::{DesiredCondition, merge_conditions_dropping, status_change};
use crate::api::conditions::{reasons, types};
use crate::api::{Condition, ObservedAssignment, RoleAssignmentSpec, RoleAssignmentStatus};
use k8s_openapi::jiff::Timestamp;

/// What the RoleAssignment reconciler knows about one assignment.
#[derive(Clone, Debug)]
pub struct RoleAssignmentFacts<'a> {
    pub spec: &'a RoleAssignmentSpec,
    pub generation: Option<i64>,
    pub current: Option<&'a RoleAssignmentStatus>,
    pub subscription_exists: bool,
    /// The assignment as Azure Resource Manager lists it at the subscription's scope (`NotFound`:
    /// no assignment of this role to this principal there). Only a listed Owner counts.
    pub observed: Observed<ObservedAssignment>,
}

/// The status to write for a RoleAssignment: `None` when its current one is already right.
pub fn decide_role_assignment(
    facts: &RoleAssignmentFacts<'_>,
    now: Timestamp,
) -> Option<RoleAssignmentStatus> {
    status_change(facts.current, role_assignment_status(facts, now))
}

/// The status a RoleAssignment should have.
pub fn role_assignment_status(
    facts: &RoleAssignmentFacts<'_>,
    now: Timestamp,
) -> RoleAssignmentStatus {
    let ready = if facts.subscription_exists {
        DesiredCondition::new(
            types::READY,
            true,
            reasons::ASSIGNED,
            format!(
                "{:?} holds {:?} on subscription {:?}",
                facts.spec.principal.id, facts.spec.role, facts.spec.subscription_ref.name
            ),
        )
    } else {
        DesiredCondition::new(
            types::READY,
            false,
            reasons::SUBSCRIPTION_NOT_FOUND,
            format!(
                "AzureSubscription {:?} does not exist in this namespace; create it or fix spec.subscriptionRef",
                facts.spec.subscription_ref.name
            ),
        )
    };
    let spec = facts.spec;
    let sync = in_sync(
        &facts.observed,
        (
            reasons::NOT_FOUND_IN_AZURE,
            format!(
                "Azure Resource Manager lists no {:?} assignment for principal {} at the subscription's scope; it does not count until it exists in Azure",
                spec.role, spec.principal.id
            ),
        ),
        |o| (Vec::new(), format!("Azure lists it as {}", o.assignment_id)),
    );
    let existing: &[Condition] = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let desired: Vec<DesiredCondition> = std::iter::once(ready).chain(sync).collect();
    let current = facts.current.and_then(|s| s.observed.as_ref());
    let observed = match &facts.observed {
        Observed::Seen(o) => Some(match current {
            Some(c) if c.assignment_id == o.assignment_id => c.clone(),
            _ => o.clone(),
        }),
        Observed::Unknown => current.cloned(),
        Observed::Off | Observed::NotFound | Observed::Refused(..) => None,
    };
    RoleAssignmentStatus {
        observed_generation: facts.generation,
        role_definition_id: Some(spec.role.definition_id()),
        observed,
        conditions: merge_conditions_dropping(
            existing,
            &desired,
            dropped_for(&facts.observed),
            facts.generation,
            now,
        ),
    }
}

#[cfg(test)]
#[path = "tests/role_assignment.rs"]
mod tests;
