//! AzureSubscription: eligibility for customer-purchased reservations, and its status.

use super::{Claimants, DesiredCondition, merge_conditions, status_change};
use crate::api::conditions::{reasons, types};
use crate::api::{
    AzureSubscriptionSpec, AzureSubscriptionStatus, BillingType, Condition, Offer,
    SubscriptionState,
};
use k8s_openapi::jiff::Timestamp;

/// Why a subscription is not eligible, first that applies: `CustomerNotFound`,
/// `OfferNotEligible`, `NotUsageBased`, `NotActive`. `Ok` when eligible.
pub fn subscription_eligibility(
    spec: &AzureSubscriptionSpec,
    customer_exists: bool,
) -> Result<(), (&'static str, String)> {
    if !customer_exists {
        return Err((
            reasons::CUSTOMER_NOT_FOUND,
            format!(
                "Customer {:?} does not exist in this namespace",
                spec.customer_ref.name
            ),
        ));
    }
    if spec.offer == Offer::Other {
        return Err((
            reasons::OFFER_NOT_ELIGIBLE,
            "only Azure Plan and Azure Global subscriptions allow customers to buy reservations"
                .into(),
        ));
    }
    if spec.billing_type != BillingType::Usage {
        return Err((
            reasons::NOT_USAGE_BASED,
            "the subscription is license-based; reservations need a usage-based subscription"
                .into(),
        ));
    }
    if spec.state != SubscriptionState::Active {
        return Err((
            reasons::NOT_ACTIVE,
            format!("the subscription is {:?}; it must be Active", spec.state),
        ));
    }
    Ok(())
}

/// What the AzureSubscription reconciler knows about one subscription.
#[derive(Clone, Debug)]
pub struct SubscriptionFacts<'a> {
    pub spec: &'a AzureSubscriptionSpec,
    pub generation: Option<i64>,
    pub current: Option<&'a AzureSubscriptionStatus>,
    pub customer_exists: bool,
    /// The AzureSubscriptions in the namespace with the same subscriptionId (the oldest one
    /// holds it).
    pub claimants: Claimants<'a>,
    /// RoleAssignments with role Owner on this subscription.
    pub owners: i32,
}

/// The status to write for an AzureSubscription: `None` when its current one is already right.
pub fn decide_subscription(
    facts: &SubscriptionFacts<'_>,
    now: Timestamp,
) -> Option<AzureSubscriptionStatus> {
    status_change(facts.current, subscription_status(facts, now))
}

/// The status an AzureSubscription should have.
pub fn subscription_status(
    facts: &SubscriptionFacts<'_>,
    now: Timestamp,
) -> AzureSubscriptionStatus {
    let eligibility = subscription_eligibility(facts.spec, facts.customer_exists);
    let ready = if !facts.customer_exists {
        DesiredCondition::new(
            types::READY,
            false,
            reasons::CUSTOMER_NOT_FOUND,
            format!(
                "Customer {:?} does not exist in this namespace; create it or fix spec.customerRef",
                facts.spec.customer_ref.name
            ),
        )
    } else if let Some(older) = facts.claimants.older() {
        DesiredCondition::new(
            types::READY,
            false,
            reasons::DUPLICATE_SUBSCRIPTION,
            format!(
                "AzureSubscription {older:?} already registers subscription {}; delete one of them",
                facts.spec.subscription_id
            ),
        )
    } else {
        DesiredCondition::new(
            types::READY,
            true,
            reasons::REGISTERED,
            "subscription registered",
        )
    };
    let eligible = match &eligibility {
        Ok(()) => DesiredCondition::new(
            types::RESERVATION_ELIGIBLE,
            true,
            reasons::ELIGIBLE,
            "the customer may buy reservations on this subscription once it holds the Owner role",
        ),
        Err((reason, message)) => {
            DesiredCondition::new(types::RESERVATION_ELIGIBLE, false, reason, message.clone())
        }
    };
    let existing: &[Condition] = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    AzureSubscriptionStatus {
        observed_generation: facts.generation,
        eligible: eligibility.is_ok(),
        owners: facts.owners,
        conditions: merge_conditions(existing, &[ready, eligible], facts.generation, now),
    }
}

#[cfg(test)]
#[path = "tests/subscription.rs"]
mod tests;
