//! Tests of AzureSubscription eligibility and status, on a fixed clock.

use super::*;
use crate::api::conditions::{reasons, types};
use crate::api::{AzureSubscriptionSpec, BillingType, Offer, SubscriptionState};
use crate::policy::Claimants;
use crate::policy::conditions::find;
use crate::policy::testing::t;

fn spec(
    offer: Offer,
    billing_type: BillingType,
    state: SubscriptionState,
) -> AzureSubscriptionSpec {
    let id = "0b9e3c1d-5a2f-4c8e-b7d6-1e2f3a4b5c6d";
    crate::policy::testing::subscription(id, offer, billing_type, state)
}

#[test]
fn eligibility_reasons_in_order() {
    use BillingType::*;
    use Offer::*;
    use SubscriptionState::*;
    let cases: &[(Offer, BillingType, SubscriptionState, bool, Option<&str>)] = &[
        (AzurePlan, Usage, Active, true, None),
        (AzureGlobal, Usage, Active, true, None),
        // Customer missing comes first, whatever else is wrong.
        (
            Other,
            License,
            Suspended,
            false,
            Some(reasons::CUSTOMER_NOT_FOUND),
        ),
        (
            AzurePlan,
            Usage,
            Active,
            false,
            Some(reasons::CUSTOMER_NOT_FOUND),
        ),
        (
            Other,
            License,
            Suspended,
            true,
            Some(reasons::OFFER_NOT_ELIGIBLE),
        ),
        (
            Other,
            Usage,
            Active,
            true,
            Some(reasons::OFFER_NOT_ELIGIBLE),
        ),
        (
            AzurePlan,
            License,
            Suspended,
            true,
            Some(reasons::NOT_USAGE_BASED),
        ),
        (
            AzureGlobal,
            License,
            Active,
            true,
            Some(reasons::NOT_USAGE_BASED),
        ),
        (AzurePlan, Usage, Suspended, true, Some(reasons::NOT_ACTIVE)),
        (AzurePlan, Usage, Pending, true, Some(reasons::NOT_ACTIVE)),
        (AzurePlan, Usage, Expired, true, Some(reasons::NOT_ACTIVE)),
        (AzurePlan, Usage, Disabled, true, Some(reasons::NOT_ACTIVE)),
        (AzurePlan, Usage, Deleted, true, Some(reasons::NOT_ACTIVE)),
    ];
    for (offer, billing, state, customer, want) in cases {
        let got = subscription_eligibility(&spec(*offer, *billing, *state), *customer)
            .err()
            .map(|e| e.0);
        assert_eq!(
            got, *want,
            "{offer:?} {billing:?} {state:?} customer={customer}"
        );
    }
}

fn facts<'a>(spec: &'a AzureSubscriptionSpec) -> SubscriptionFacts<'a> {
    SubscriptionFacts {
        spec,
        generation: Some(1),
        current: None,
        customer_exists: true,
        claimants: Claimants::default(),
        owners: 0,
        observed: crate::policy::Observed::Off,
    }
}

#[test]
fn status_ready_and_eligible() {
    let s = spec(
        Offer::AzurePlan,
        BillingType::Usage,
        SubscriptionState::Active,
    );
    let st = subscription_status(
        &SubscriptionFacts {
            owners: 2,
            ..facts(&s)
        },
        t(0),
    );
    assert!(st.eligible);
    assert_eq!(st.owners, 2);
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(
        find(&st.conditions, types::READY).map(|c| c.reason.as_str()),
        Some(reasons::REGISTERED)
    );
    assert_eq!(
        find(&st.conditions, types::RESERVATION_ELIGIBLE).map(|c| c.reason.as_str()),
        Some(reasons::ELIGIBLE)
    );
}

#[test]
fn status_customer_not_found() {
    let s = spec(
        Offer::AzurePlan,
        BillingType::Usage,
        SubscriptionState::Active,
    );
    let st = subscription_status(
        &SubscriptionFacts {
            customer_exists: false,
            ..facts(&s)
        },
        t(0),
    );
    assert!(!st.eligible);
    let ready = find(&st.conditions, types::READY).expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reasons::CUSTOMER_NOT_FOUND)
    );
    let el = find(&st.conditions, types::RESERVATION_ELIGIBLE).expect("eligible");
    assert_eq!(
        (el.status.as_str(), el.reason.as_str()),
        ("False", reasons::CUSTOMER_NOT_FOUND)
    );
}

#[test]
fn status_duplicate_subscription() {
    let s = spec(
        Offer::AzurePlan,
        BillingType::Usage,
        SubscriptionState::Active,
    );
    let st = subscription_status(
        &SubscriptionFacts {
            claimants: crate::policy::testing::lost_to("older"),
            ..facts(&s)
        },
        t(0),
    );
    let ready = find(&st.conditions, types::READY).expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", reasons::DUPLICATE_SUBSCRIPTION)
    );
    assert!(ready.message.contains("older"));
}

#[test]
fn settled_status_is_stable() {
    let s = spec(
        Offer::AzureGlobal,
        BillingType::License,
        SubscriptionState::Active,
    );
    let first = subscription_status(&facts(&s), t(0));
    let again = subscription_status(
        &SubscriptionFacts {
            current: Some(&first),
            ..facts(&s)
        },
        t(60),
    );
    assert_eq!(crate::policy::status_change(Some(&first), again), None);
}
