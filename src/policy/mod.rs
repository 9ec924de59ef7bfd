//! The article's rules as pure functions: facts in, decision out. No client, no clock (the
//! caller passes `now`), no I/O. Reconcilers gather facts from caches, call these, then apply.

pub mod conditions;
mod connection;
mod customer;
mod events;
mod history;
mod observed;
mod permission;
mod role_assignment;
mod subscription;

pub use conditions::find as find_condition;
pub use conditions::{DesiredCondition, merge_conditions, merge_conditions_dropping};
pub use connection::{ConnectionFacts, connection_status};
pub use customer::{CustomerFacts, customer_status, decide_customer};
pub use events::{ActivityEvent, EventType, actions};
pub use history::{new_transitions, transition_event};
pub use observed::{Observed, out_of_sync};
pub use permission::{
    BackendFact, DeletionFacts, GrantChange, GrantMade, PermissionDecision, PermissionFacts,
    RivalFact, SubscriptionFact, Withdrawal, drift_corrected, grant_in_doubt, grant_intent,
    grant_pending, permission_decision, with_grant_made, withdraw_on_delete,
};
pub use role_assignment::{RoleAssignmentFacts, decide_role_assignment, role_assignment_status};
pub use subscription::{
    SubscriptionFacts, decide_subscription, observed_eligibility, subscription_eligibility,
    subscription_status,
};

use k8s_openapi::jiff::Timestamp;

/// What "oldest" means when two objects claim the same thing: earlier creation first, then the
/// name, so the order is total and every reconciler agrees on the winner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seniority<'a> {
    pub created: Option<Timestamp>,
    pub name: &'a str,
}

impl<'a> Seniority<'a> {
    pub fn new(created: Option<Timestamp>, name: &'a str) -> Self {
        Self { created, name }
    }
}

/// The oldest claimant other than `me` when it is older than `me` (so `me` loses), else `None`.
pub fn older_claimant<'a>(
    me: Seniority<'a>,
    others: impl IntoIterator<Item = Seniority<'a>>,
) -> Option<&'a str> {
    others
        .into_iter()
        .filter(|o| o.name != me.name && *o < me)
        .min()
        .map(|o| o.name)
}

/// The objects of one kind that claim the same thing (a tenant, an Azure subscription id, a
/// customer's switch): this one, and all of them (this one may be among them).
#[derive(Clone, Debug, Default)]
pub struct Claimants<'a> {
    pub me: Seniority<'a>,
    pub all: Vec<Seniority<'a>>,
}

impl<'a> Claimants<'a> {
    /// The claimant this one loses to: the oldest other one, when it is older.
    pub fn older(&self) -> Option<&'a str> {
        older_claimant(self.me, self.all.iter().copied())
    }
}

/// `Some(desired)` when it differs from `current`, `None` when writing it would change nothing.
pub fn status_change<S: PartialEq>(current: Option<&S>, desired: S) -> Option<S> {
    match current {
        Some(c) if *c == desired => None,
        _ => Some(desired),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use k8s_openapi::jiff::Timestamp;

    /// The fixed clock of every policy test.
    pub fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + secs).expect("valid timestamp")
    }

    /// An AzureSubscription of customer "contoso".
    pub fn subscription(
        id: &str,
        offer: crate::api::Offer,
        billing_type: crate::api::BillingType,
        state: crate::api::SubscriptionState,
    ) -> crate::api::AzureSubscriptionSpec {
        crate::api::AzureSubscriptionSpec {
            customer_ref: crate::api::LocalRef::new("contoso"),
            subscription_id: id.into(),
            offer,
            billing_type,
            state,
        }
    }

    /// Claimants in which this object (created at t(10)) loses to an older one named `older`.
    pub fn lost_to(older: &str) -> super::Claimants<'_> {
        super::Claimants {
            me: super::Seniority::new(Some(t(10)), "me"),
            all: vec![super::Seniority::new(Some(t(0)), older)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::t;
    use super::*;

    #[test]
    fn oldest_claimant_wins_by_time_then_name() {
        let a = Seniority::new(Some(t(0)), "a");
        let b = Seniority::new(Some(t(5)), "b");
        let c = Seniority::new(Some(t(5)), "c");
        assert_eq!(older_claimant(a, [a, b, c]), None);
        assert_eq!(older_claimant(b, [a, b, c]), Some("a"));
        assert_eq!(older_claimant(c, [b, c]), Some("b"));
        assert_eq!(older_claimant(b, [b, c]), None);
    }

    #[test]
    fn claimants_lose_to_the_oldest_other() {
        assert_eq!(Claimants::default().older(), None);
        assert_eq!(testing::lost_to("old").older(), Some("old"));
        let me = Seniority::new(Some(t(0)), "me");
        let younger = Seniority::new(Some(t(5)), "young");
        let all = vec![me, younger];
        assert_eq!(Claimants { me, all }.older(), None);
    }

    #[test]
    fn unchanged_status_is_no_write() {
        assert_eq!(status_change(Some(&1), 1), None);
        assert_eq!(status_change(Some(&1), 2), Some(2));
        assert_eq!(status_change(None, 1), Some(1));
    }
}
