//! Tests of the Customer summary and duplicate tenants, on a fixed clock.

use super::*;
use crate::api::conditions::{reasons, types};
use crate::api::{CustomerPermission, CustomerSpec};
use crate::policy::Claimants;
use crate::policy::conditions::find;
use crate::policy::testing::t;

fn spec() -> CustomerSpec {
    CustomerSpec {
        tenant_id: "6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40".into(),
        company_name: "Contoso".into(),
        domain: None,
    }
}

fn facts(spec: &CustomerSpec) -> CustomerFacts<'_> {
    CustomerFacts {
        spec,
        generation: Some(1),
        current: None,
        claimants: Claimants::default(),
        subscriptions: 0,
        eligible_subscriptions: 0,
        permission_granted: false,
        observed: crate::policy::Observed::Off,
    }
}

#[test]
fn registered_summary() {
    let s = spec();
    let st = customer_status(
        &CustomerFacts {
            subscriptions: 3,
            eligible_subscriptions: 1,
            permission_granted: true,
            observed: crate::policy::Observed::Off,
            ..facts(&s)
        },
        t(0),
    );
    assert_eq!((st.subscriptions, st.eligible_subscriptions), (3, 1));
    assert_eq!(st.purchase_permission, CustomerPermission::Enabled);
    let ready = find(&st.conditions, types::READY).expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", reasons::REGISTERED)
    );
}

#[test]
fn off_by_default() {
    let s = spec();
    assert_eq!(
        customer_status(&facts(&s), t(0)).purchase_permission,
        CustomerPermission::Disabled
    );
}

#[test]
fn duplicate_tenant() {
    let s = spec();
    let st = customer_status(
        &CustomerFacts {
            claimants: crate::policy::testing::lost_to("contoso-old"),
            ..facts(&s)
        },
        t(0),
    );
    let ready = find(&st.conditions, types::READY).expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reasons::DUPLICATE_TENANT)
    );
    assert!(ready.message.contains("contoso-old"));
}
