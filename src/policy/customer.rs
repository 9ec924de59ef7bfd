//! Customer: the summary a dashboard shows, and duplicate tenants.

use super::observed::{Observed, dropped_for, in_sync};
use super::{Claimants, DesiredCondition, merge_conditions_dropping, status_change};
use crate::api::conditions::{reasons, types};
use crate::api::{Condition, CustomerPermission, CustomerSpec, CustomerStatus, ObservedCustomer};
use k8s_openapi::jiff::Timestamp;

/// What the Customer reconciler knows about one customer.
#[derive(Clone, Debug)]
pub struct CustomerFacts<'a> {
    pub spec: &'a CustomerSpec,
    pub generation: Option<i64>,
    pub current: Option<&'a CustomerStatus>,
    /// The Customers in the namespace with the same tenantId (the oldest one holds it).
    pub claimants: Claimants<'a>,
    /// AzureSubscriptions that reference this customer.
    pub subscriptions: i32,
    /// Of those, the eligible ones.
    pub eligible_subscriptions: i32,
    /// Whether a PurchasePermission's grant for this customer is in effect.
    pub permission_granted: bool,
    /// The customer as Partner Center reports it (`NotFound`: not the partner's customer).
    pub observed: Observed<ObservedCustomer>,
}

/// The status to write for a Customer: `None` when its current one is already right.
pub fn decide_customer(facts: &CustomerFacts<'_>, now: Timestamp) -> Option<CustomerStatus> {
    status_change(facts.current, customer_status(facts, now))
}

/// The status a Customer should have.
pub fn customer_status(facts: &CustomerFacts<'_>, now: Timestamp) -> CustomerStatus {
    let ready = match facts.claimants.older() {
        Some(older) => DesiredCondition::new(
            types::READY,
            false,
            reasons::DUPLICATE_TENANT,
            format!(
                "Customer {older:?} already registers tenant {}; delete one of them",
                facts.spec.tenant_id
            ),
        ),
        None => DesiredCondition::new(
            types::READY,
            true,
            reasons::REGISTERED,
            "customer registered",
        ),
    };
    let sync = in_sync(
        &facts.observed,
        (
            reasons::NOT_FOUND_IN_PARTNER_CENTER,
            format!(
                "tenant {} is not a customer of this partner in Partner Center",
                facts.spec.tenant_id
            ),
        ),
        |o| {
            let differs = (o.company_name != facts.spec.company_name).then(|| {
                format!(
                    "companyName: spec {:?}, Partner Center {:?}",
                    facts.spec.company_name, o.company_name
                )
            });
            (
                differs.into_iter().collect(),
                format!("Partner Center knows it as {:?}", o.company_name),
            )
        },
    );
    let existing: &[Condition] = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let desired: Vec<DesiredCondition> = std::iter::once(ready).chain(sync).collect();
    let current = facts.current.and_then(|s| s.observed.as_ref());
    let observed = match &facts.observed {
        Observed::Seen(o) => Some(match current {
            Some(c) if (&c.company_name, &c.domain) == (&o.company_name, &o.domain) => c.clone(),
            _ => o.clone(),
        }),
        Observed::Unknown => current.cloned(),
        Observed::Off | Observed::NotFound | Observed::Refused(..) => None,
    };
    CustomerStatus {
        observed,
        observed_generation: facts.generation,
        subscriptions: facts.subscriptions,
        eligible_subscriptions: facts.eligible_subscriptions,
        purchase_permission: if facts.permission_granted {
            CustomerPermission::Enabled
        } else {
            CustomerPermission::Disabled
        },
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
#[path = "tests/customer.rs"]
mod tests;
