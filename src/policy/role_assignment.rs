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
mod tests {
    use super::*;
    use crate::api::{LocalRef, Principal, PrincipalType, Role};
    use crate::policy::conditions::find;
    use crate::policy::testing::t;

    fn spec(role: Role) -> RoleAssignmentSpec {
        RoleAssignmentSpec {
            subscription_ref: LocalRef::new("plan"),
            principal: Principal {
                id: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f".into(),
                type_: PrincipalType::User,
                display_name: None,
            },
            role,
        }
    }

    #[test]
    fn assigned_with_role_definition() {
        let s = spec(Role::Owner);
        let st = role_assignment_status(
            &RoleAssignmentFacts {
                spec: &s,
                generation: Some(3),
                current: None,
                subscription_exists: true,
            },
            t(0),
        );
        assert_eq!(
            st.role_definition_id.as_deref(),
            Some(
                "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
            )
        );
        let ready = find(&st.conditions, types::READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", reasons::ASSIGNED)
        );
        assert_eq!(st.observed_generation, Some(3));
    }

    #[test]
    fn subscription_not_found() {
        let s = spec(Role::Contributor);
        let st = role_assignment_status(
            &RoleAssignmentFacts {
                spec: &s,
                generation: Some(1),
                current: None,
                subscription_exists: false,
            },
            t(0),
        );
        let ready = find(&st.conditions, types::READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", reasons::SUBSCRIPTION_NOT_FOUND)
        );
        assert_eq!(
            st.role_definition_id.as_deref(),
            Some(
                "/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"
            )
        );
    }
}
