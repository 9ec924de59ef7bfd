//! Tests of the RoleAssignment status, on a fixed clock.

use super::*;
use crate::api::RoleAssignmentSpec;
use crate::api::conditions::{reasons, types};
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
        management: Default::default(),
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
            observed: crate::policy::Observed::Off,
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
            observed: crate::policy::Observed::Off,
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
