//! AzureSubscription: eligibility for customer-purchased reservations, and its status.

use super::observed::{Observed, dropped_for, in_sync};
use super::{Claimants, DesiredCondition, merge_conditions_dropping, status_change};
use crate::api::conditions::{reasons, types};
use crate::api::{
    AzureSubscriptionSpec, AzureSubscriptionStatus, BillingType, Condition, ObservedSubscription,
    Offer, SubscriptionState,
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

/// Eligibility as Partner Center has it, when it was asked: its offer, billing type and state
/// count rather than the spec's (Partner Center is the truth the article asks the partner to
/// check); a subscription it does not know is not eligible.
pub fn observed_eligibility(
    spec: &AzureSubscriptionSpec,
    customer_exists: bool,
    observed: &Observed<&ObservedSubscription>,
) -> Result<(), (&'static str, String)> {
    match observed {
        Observed::Refused(reason, message) if customer_exists => Err((reason, message.clone())),
        Observed::NotFound if customer_exists => Err((
            reasons::NOT_FOUND_IN_PARTNER_CENTER,
            format!(
                "Partner Center has no subscription {} for this customer",
                spec.subscription_id
            ),
        )),
        Observed::Seen(o) => {
            let reported = AzureSubscriptionSpec {
                offer: o.offer,
                billing_type: o.billing_type,
                state: o.state,
                ..spec.clone()
            };
            subscription_eligibility(&reported, customer_exists).map_err(|(reason, message)| {
                (reason, format!("{message} (as Partner Center reports it)"))
            })
        }
        _ => subscription_eligibility(spec, customer_exists),
    }
}

/// The spec's fields Partner Center reports otherwise, e.g. `state: spec Active, Partner Center
/// Suspended`.
fn drift(spec: &AzureSubscriptionSpec, o: &ObservedSubscription) -> Vec<String> {
    let mut out = Vec::new();
    if spec.offer != o.offer {
        out.push(format!(
            "offer: spec {:?}, Partner Center {:?}",
            spec.offer, o.offer
        ));
    }
    if spec.billing_type != o.billing_type {
        out.push(format!(
            "billingType: spec {:?}, Partner Center {:?}",
            spec.billing_type, o.billing_type
        ));
    }
    if spec.state != o.state {
        out.push(format!(
            "state: spec {:?}, Partner Center {:?}",
            spec.state, o.state
        ));
    }
    out
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
    /// What Partner Center reports of it.
    pub observed: Observed<ObservedSubscription>,
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
    let observed = facts.observed.as_ref();
    let eligibility = observed_eligibility(facts.spec, facts.customer_exists, &observed);
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
    let sync = in_sync(
        &observed,
        (
            reasons::NOT_FOUND_IN_PARTNER_CENTER,
            format!(
                "Partner Center has no subscription {} for this customer (an Azure plan's Azure subscriptions are its entitlements)",
                facts.spec.subscription_id
            ),
        ),
        |o| {
            (
                drift(facts.spec, o),
                format!(
                    "Partner Center reports {:?}, {:?}, {:?}",
                    o.offer, o.billing_type, o.state
                ),
            )
        },
    );
    let existing: &[Condition] = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let desired: Vec<DesiredCondition> = [ready, eligible].into_iter().chain(sync).collect();
    AzureSubscriptionStatus {
        observed_generation: facts.generation,
        eligible: eligibility.is_ok(),
        owners: facts.owners,
        observed: kept_observation(facts),
        conditions: merge_conditions_dropping(
            existing,
            &desired,
            dropped_for(&facts.observed),
            facts.generation,
            now,
        ),
    }
}

/// The observation to record: unchanged values keep the time they were first reported at (so a
/// re-check that finds nothing new writes nothing); an unknown one keeps what the status had.
fn kept_observation(facts: &SubscriptionFacts<'_>) -> Option<ObservedSubscription> {
    let current = facts.current.and_then(|s| s.observed.as_ref());
    match &facts.observed {
        Observed::Seen(o) => Some(match current {
            Some(c) if (c.offer, c.billing_type, c.state) == (o.offer, o.billing_type, o.state) => {
                c.clone()
            }
            _ => o.clone(),
        }),
        Observed::Unknown => current.cloned(),
        Observed::Off | Observed::NotFound | Observed::Refused(..) => None,
    }
}

#[cfg(test)]
#[path = "tests/subscription.rs"]
mod tests;
