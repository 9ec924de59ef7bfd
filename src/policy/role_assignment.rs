//! RoleAssignment: whether it points at a known subscription, and the Azure role definition.

use super::{DesiredCondition, merge_conditions, status_change};
use crate::api::conditions::{reasons, types};
use crate::api::{Condition, RoleAssignmentSpec, RoleAssignmentStatus};
use k8s_openapi::jiff::Timestamp;

/// What the RoleAssignment reconciler knows about one assignment.
#[derive(Clone, Debug)]
pub struct RoleAssignmentFacts<'a> {
    pub spec: &'a RoleAssignmentSpec,
    pub generation: Option<i64>,
    pub current: Option<&'a RoleAssignmentStatus>,
    pub subscription_exists: bool,
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
    let existing: &[Condition] = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    RoleAssignmentStatus {
        observed_generation: facts.generation,
        role_definition_id: Some(facts.spec.role.definition_id()),
        conditions: merge_conditions(existing, &[ready], facts.generation, now),
    }
}

#[cfg(test)]
#[path = "tests/role_assignment.rs"]
mod tests;
