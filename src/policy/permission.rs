//! PurchasePermission: the switch, its prerequisites, and the activity log it writes.

use super::conditions::find;
use super::events::{ActivityEvent, EventType, actions};
use super::{Claimants, DesiredCondition, merge_conditions, subscription_eligibility};
use crate::api::conditions::{reasons, types};
use crate::api::{
    AzureSubscriptionSpec, Condition, PermissionState, PurchasePermissionSpec,
    PurchasePermissionStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// One of the customer's subscriptions, as the permission reconciler sees it.
#[derive(Clone, Debug)]
pub struct SubscriptionFact<'a> {
    pub name: &'a str,
    pub spec: &'a AzureSubscriptionSpec,
    /// Whether a RoleAssignment gives some principal the Owner role on it.
    pub has_owner: bool,
}

/// What the PurchasePermission reconciler knows about one permission.
#[derive(Clone, Debug)]
pub struct PermissionFacts<'a> {
    pub spec: &'a PurchasePermissionSpec,
    pub generation: Option<i64>,
    pub current: Option<&'a PurchasePermissionStatus>,
    /// The customer's tenant id; `None` when the Customer does not exist.
    pub customer_tenant: Option<&'a str>,
    /// The AzureSubscriptions whose customerRef names this permission's customer.
    pub subscriptions: Vec<SubscriptionFact<'a>>,
    /// The PurchasePermissions for the same customer (the oldest one holds the switch).
    pub claimants: Claimants<'a>,
}

/// What the backend must do with the grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantChange {
    None,
    /// Turn the permission on (Partner Center: create the SelfServePolicy).
    Create,
    /// Turn it off (Partner Center: delete the SelfServePolicy).
    Delete,
}

/// The status a PurchasePermission should have, what to do with the grant, and the activity log
/// entries the transition produces (none when nothing changed).
#[derive(Clone, Debug, PartialEq)]
pub struct PermissionDecision {
    pub status: PurchasePermissionStatus,
    /// Whether `status` differs from the current one (an unchanged status is not written).
    pub status_changed: bool,
    pub grant: GrantChange,
    pub events: Vec<ActivityEvent>,
}

const ENABLED_NOTE: &str = "Customer may now purchase its own Azure reservations. The partner pays for \
every purchase and is not notified of them; exchange, cancel, renew and scope changes still go through the partner.";

/// Decides a PurchasePermission's status from the facts: check the prerequisites, find what
/// blocks the switch, settle its state, then the grant change and the activity log it makes.
pub fn permission_decision(facts: &PermissionFacts<'_>, now: Timestamp) -> PermissionDecision {
    let duplicate_of = facts.claimants.older();
    let checks = Prerequisites::check(facts);
    let blocker = first_blocker(facts, &checks, duplicate_of);
    let was_granted =
        facts.current.map(|s| s.state).unwrap_or_default() == PermissionState::Enabled;
    let (state, ready) = switch_state(facts.spec.enabled, blocker, was_granted, duplicate_of);
    let grant = match (was_granted, state == PermissionState::Enabled) {
        // The grant is the customer's; only the oldest permission for it switches it.
        _ if duplicate_of.is_some() => GrantChange::None,
        (false, true) => GrantChange::Create,
        (true, false) => GrantChange::Delete,
        _ => GrantChange::None,
    };
    let events = activity_log(facts, grant, &ready);
    let status = next_status(facts, state, was_granted, checks, ready, now);
    PermissionDecision {
        status_changed: facts.current != Some(&status),
        status,
        grant,
        events,
    }
}

/// The two prerequisite conditions and the subscriptions that meet both.
struct Prerequisites {
    subscription_eligible: DesiredCondition,
    owner_role: DesiredCondition,
    /// Ids of the eligible subscriptions on which a customer user holds Owner.
    eligible_subscriptions: Vec<String>,
}

impl Prerequisites {
    fn check(facts: &PermissionFacts<'_>) -> Prerequisites {
        let spec = facts.spec;
        // subscriptionRef narrows the check to one subscription of this customer.
        let candidates: Vec<&SubscriptionFact<'_>> = facts
            .subscriptions
            .iter()
            .filter(|s| {
                spec.subscription_ref
                    .as_ref()
                    .is_none_or(|r| r.name == s.name)
            })
            .collect();
        let eligible: Vec<&SubscriptionFact<'_>> = candidates
            .iter()
            .copied()
            .filter(|s| subscription_eligibility(s.spec, facts.customer_tenant.is_some()).is_ok())
            .collect();
        let mut eligible_subscriptions: Vec<String> = eligible
            .iter()
            .filter(|s| s.has_owner)
            .map(|s| s.spec.subscription_id.clone())
            .collect();
        eligible_subscriptions.sort();
        eligible_subscriptions.dedup();
        Prerequisites {
            subscription_eligible: subscription_condition(facts, &candidates, &eligible),
            owner_role: owner_condition(spec, &eligible_subscriptions),
            eligible_subscriptions,
        }
    }
}

/// SubscriptionEligible: which of the checked subscriptions qualify, or why none does.
fn subscription_condition(
    facts: &PermissionFacts<'_>,
    candidates: &[&SubscriptionFact<'_>],
    eligible: &[&SubscriptionFact<'_>],
) -> DesiredCondition {
    let spec = facts.spec;
    let customer = &spec.customer_ref.name;
    if facts.customer_tenant.is_none() {
        return DesiredCondition::new(
            types::SUBSCRIPTION_ELIGIBLE,
            false,
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            format!("Customer {customer:?} does not exist in this namespace"),
        );
    }
    if !eligible.is_empty() {
        let names: Vec<&str> = eligible.iter().map(|s| s.name).collect();
        return DesiredCondition::new(
            types::SUBSCRIPTION_ELIGIBLE,
            true,
            reasons::ELIGIBLE,
            format!("eligible subscriptions: {}", names.join(", ")),
        );
    }
    let why = if candidates.is_empty() {
        match &spec.subscription_ref {
            Some(r) => format!(
                "AzureSubscription {:?} does not exist or belongs to another customer",
                r.name
            ),
            None => format!("customer {customer:?} has no AzureSubscription"),
        }
    } else {
        let reasons: Vec<String> = candidates
            .iter()
            .filter_map(|s| {
                subscription_eligibility(s.spec, true)
                    .err()
                    .map(|(r, _)| format!("{}: {r}", s.name))
            })
            .collect();
        format!("no eligible subscription ({})", reasons.join(", "))
    };
    DesiredCondition::new(
        types::SUBSCRIPTION_ELIGIBLE,
        false,
        reasons::NO_ELIGIBLE_SUBSCRIPTION,
        format!(
            "{why}; buy an active, usage-based Azure Plan or Azure Global subscription for the customer"
        ),
    )
}

/// OwnerRoleAssigned: whether a customer user holds Owner on an eligible subscription.
fn owner_condition(
    spec: &PurchasePermissionSpec,
    eligible_subscriptions: &[String],
) -> DesiredCondition {
    if !eligible_subscriptions.is_empty() {
        return DesiredCondition::new(
            types::OWNER_ROLE_ASSIGNED,
            true,
            reasons::OWNER_ASSIGNED,
            format!("Owner assigned on {}", eligible_subscriptions.join(", ")),
        );
    }
    let scope = match &spec.subscription_ref {
        Some(r) => format!("subscription {:?}", r.name),
        None => "any of the customer's subscriptions".to_string(),
    };
    DesiredCondition::new(
        types::OWNER_ROLE_ASSIGNED,
        false,
        reasons::OWNER_ROLE_MISSING,
        format!(
            "no customer user holds the Owner role on an eligible subscription (checked: {scope}); assign Owner (Contributor or Reader does not count), or the customer gets an error in the Azure portal"
        ),
    )
}

/// The first reason the switch cannot be on, in the contract's order.
fn first_blocker(
    facts: &PermissionFacts<'_>,
    checks: &Prerequisites,
    duplicate_of: Option<&str>,
) -> Option<(&'static str, String)> {
    let customer = &facts.spec.customer_ref.name;
    if facts.customer_tenant.is_none() {
        Some((
            reasons::CUSTOMER_NOT_FOUND,
            format!(
                "Customer {customer:?} does not exist in this namespace; create it or fix spec.customerRef"
            ),
        ))
    } else if !checks.subscription_eligible.status {
        Some((
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            checks.subscription_eligible.message.clone(),
        ))
    } else if !checks.owner_role.status {
        Some((
            reasons::OWNER_ROLE_MISSING,
            checks.owner_role.message.clone(),
        ))
    } else {
        duplicate_of.map(|older| {
            (
                reasons::DUPLICATE_PERMISSION,
                format!("PurchasePermission {older:?} already holds the switch for customer {customer:?}; delete this one"),
            )
        })
    }
}

/// The switch's state and its Ready condition, from what is asked and what blocks it.
fn switch_state(
    enabled: bool,
    blocker: Option<(&'static str, String)>,
    was_granted: bool,
    duplicate_of: Option<&str>,
) -> (PermissionState, DesiredCondition) {
    match (enabled, blocker) {
        (false, _) => (
            PermissionState::Disabled,
            DesiredCondition::new(
                types::READY,
                true,
                reasons::PERMISSION_DISABLED,
                "customer may not purchase Azure reservations (switch is off)",
            ),
        ),
        (true, None) => (
            PermissionState::Enabled,
            DesiredCondition::new(
                types::READY,
                true,
                reasons::PERMISSION_ENABLED,
                "customer may purchase its own Azure reservations",
            ),
        ),
        // A grant in effect is never silently revoked: it stays until switched off. (A duplicate
        // never holds one: the grant is the customer's, and the oldest permission manages it.)
        (true, Some((reason, message))) if was_granted && duplicate_of.is_none() => (
            PermissionState::Enabled,
            DesiredCondition::new(
                types::READY,
                false,
                reason,
                format!(
                    "the grant stays in effect, but the customer will now get an error in the Azure portal when buying reservations: {message}"
                ),
            ),
        ),
        (true, Some((reason, message))) => (
            PermissionState::Blocked,
            DesiredCondition::new(
                types::READY,
                false,
                reason,
                format!("enabling is blocked: {message}"),
            ),
        ),
    }
}

/// The activity-log entries of this decision: the switch flipped, and a warning the first
/// time a given reason keeps it from being ready.
fn activity_log(
    facts: &PermissionFacts<'_>,
    grant: GrantChange,
    ready: &DesiredCondition,
) -> Vec<ActivityEvent> {
    let mut events = Vec::new();
    match grant {
        GrantChange::Create => events.push(ActivityEvent {
            type_: EventType::Normal,
            reason: reasons::PERMISSION_ENABLED,
            action: actions::CREATE,
            note: format!("{ENABLED_NOTE} Resources: {}.", resources(facts.spec)),
        }),
        GrantChange::Delete => events.push(withdrawn_event("switched off")),
        GrantChange::None => {}
    }
    let previous_ready = facts
        .current
        .and_then(|s| find(&s.conditions, types::READY));
    if facts.spec.enabled && !ready.status {
        let already_warned =
            previous_ready.is_some_and(|c| c.status == "False" && c.reason == ready.reason);
        if !already_warned {
            events.push(ActivityEvent {
                type_: EventType::Warning,
                reason: ready.reason,
                action: actions::CHECK_PREREQUISITES,
                note: ready.message.clone(),
            });
        }
    }
    events
}

/// The status the decision leaves: the state, what the grant was made for and since when, and
/// the conditions (merged so that unchanged ones keep their transition times).
fn next_status(
    facts: &PermissionFacts<'_>,
    state: PermissionState,
    was_granted: bool,
    checks: Prerequisites,
    ready: DesiredCondition,
    now: Timestamp,
) -> PurchasePermissionStatus {
    let enabled_since = match state {
        PermissionState::Enabled => facts
            .current
            .and_then(|s| s.enabled_since.clone())
            .filter(|_| was_granted)
            .or(Some(Time(now))),
        _ => None,
    };
    // The tenant a grant was made for stays with it until it is withdrawn.
    let granted_tenant_id = match state {
        PermissionState::Enabled => facts
            .current
            .and_then(|s| s.granted_tenant_id.clone())
            .filter(|_| was_granted)
            .or_else(|| facts.customer_tenant.map(String::from)),
        _ => None,
    };
    let existing: &[Condition] = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    PurchasePermissionStatus {
        granted_tenant_id,
        observed_generation: facts.generation,
        state,
        eligible_subscriptions: checks.eligible_subscriptions,
        enabled_since,
        conditions: merge_conditions(
            existing,
            &[checks.subscription_eligible, checks.owner_role, ready],
            facts.generation,
            now,
        ),
    }
}

fn resources(spec: &PurchasePermissionSpec) -> String {
    spec.resources
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn withdrawn_event(how: &str) -> ActivityEvent {
    ActivityEvent {
        type_: EventType::Normal,
        reason: reasons::PERMISSION_DISABLED,
        action: actions::DELETE,
        note: format!("Customer may no longer purchase its own Azure reservations ({how})."),
    }
}

/// Deleting a PurchasePermission: when its grant is in effect, it must be withdrawn first and
/// the withdrawal logged; otherwise it can go at once.
pub fn withdraw_on_delete(current: Option<&PurchasePermissionStatus>) -> Option<ActivityEvent> {
    current
        .filter(|s| s.state == PermissionState::Enabled)
        .map(|_| withdrawn_event("PurchasePermission deleted"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BillingType, LocalRef, Offer, PurchaseResource, SubscriptionState};
    use crate::policy::testing::t;

    const PLAN_ID: &str = "0b9e3c1d-5a2f-4c8e-b7d6-1e2f3a4b5c6d";
    const TENANT: &str = "6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40";
    const GLOBAL_ID: &str = "1b9e3c1d-5a2f-4c8e-b7d6-1e2f3a4b5c6d";

    fn sub(
        id: &str,
        offer: Offer,
        billing_type: BillingType,
        state: SubscriptionState,
    ) -> AzureSubscriptionSpec {
        AzureSubscriptionSpec {
            customer_ref: LocalRef::new("contoso"),
            subscription_id: id.into(),
            offer,
            billing_type,
            state,
        }
    }

    fn plan() -> AzureSubscriptionSpec {
        sub(
            PLAN_ID,
            Offer::AzurePlan,
            BillingType::Usage,
            SubscriptionState::Active,
        )
    }

    fn perm(enabled: bool) -> PurchasePermissionSpec {
        PurchasePermissionSpec {
            customer_ref: LocalRef::new("contoso"),
            subscription_ref: None,
            resources: vec![PurchaseResource::AzureReservations],
            enabled,
        }
    }

    fn facts<'a>(
        spec: &'a PurchasePermissionSpec,
        subs: Vec<SubscriptionFact<'a>>,
    ) -> PermissionFacts<'a> {
        PermissionFacts {
            spec,
            generation: Some(1),
            current: None,
            customer_tenant: Some(TENANT),
            subscriptions: subs,
            claimants: Claimants::default(),
        }
    }

    fn cond<'a>(d: &'a PermissionDecision, type_: &str) -> (&'a str, &'a str) {
        let c = find(&d.status.conditions, type_).expect("condition present");
        (c.status.as_str(), c.reason.as_str())
    }

    fn ready(d: &PermissionDecision) -> (&str, &str) {
        cond(d, types::READY)
    }

    /// Every path of the decision on a fresh object: (case, enabled, customer, subscriptions,
    /// duplicate) -> (state, Ready, SubscriptionEligible, OwnerRoleAssigned).
    #[test]
    fn decision_table() {
        let plan = plan();
        let global = sub(
            GLOBAL_ID,
            Offer::AzureGlobal,
            BillingType::Usage,
            SubscriptionState::Active,
        );
        let license = sub(
            PLAN_ID,
            Offer::AzurePlan,
            BillingType::License,
            SubscriptionState::Active,
        );
        let suspended = sub(
            PLAN_ID,
            Offer::AzurePlan,
            BillingType::Usage,
            SubscriptionState::Suspended,
        );
        let other = sub(
            PLAN_ID,
            Offer::Other,
            BillingType::Usage,
            SubscriptionState::Active,
        );
        let f = |name, spec, has_owner| SubscriptionFact {
            name,
            spec,
            has_owner,
        };
        type Row<'a> = (
            &'a str,
            bool,
            bool,
            Vec<SubscriptionFact<'a>>,
            Option<&'a str>,
            PermissionState,
            (&'a str, &'a str),
            &'a str,
            &'a str,
        );
        let rows: Vec<Row<'_>> = vec![
            (
                "off by default, nothing else",
                false,
                true,
                vec![],
                None,
                PermissionState::Disabled,
                ("True", reasons::PERMISSION_DISABLED),
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "off, ready underneath",
                false,
                true,
                vec![f("plan", &plan, true)],
                None,
                PermissionState::Disabled,
                ("True", reasons::PERMISSION_DISABLED),
                reasons::ELIGIBLE,
                reasons::OWNER_ASSIGNED,
            ),
            (
                "no subscription",
                true,
                true,
                vec![],
                None,
                PermissionState::Blocked,
                ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "license-based only",
                true,
                true,
                vec![f("lic", &license, true)],
                None,
                PermissionState::Blocked,
                ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "suspended only",
                true,
                true,
                vec![f("sus", &suspended, true)],
                None,
                PermissionState::Blocked,
                ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "other offer only",
                true,
                true,
                vec![f("oth", &other, true)],
                None,
                PermissionState::Blocked,
                ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "eligible, no owner",
                true,
                true,
                vec![f("plan", &plan, false)],
                None,
                PermissionState::Blocked,
                ("False", reasons::OWNER_ROLE_MISSING),
                reasons::ELIGIBLE,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "owner only on the ineligible one",
                true,
                true,
                vec![f("plan", &plan, false), f("lic", &license, true)],
                None,
                PermissionState::Blocked,
                ("False", reasons::OWNER_ROLE_MISSING),
                reasons::ELIGIBLE,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "azure plan with owner",
                true,
                true,
                vec![f("plan", &plan, true)],
                None,
                PermissionState::Enabled,
                ("True", reasons::PERMISSION_ENABLED),
                reasons::ELIGIBLE,
                reasons::OWNER_ASSIGNED,
            ),
            (
                "azure global with owner",
                true,
                true,
                vec![f("global", &global, true)],
                None,
                PermissionState::Enabled,
                ("True", reasons::PERMISSION_ENABLED),
                reasons::ELIGIBLE,
                reasons::OWNER_ASSIGNED,
            ),
            (
                "customer not found",
                true,
                false,
                vec![f("plan", &plan, true)],
                None,
                PermissionState::Blocked,
                ("False", reasons::CUSTOMER_NOT_FOUND),
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "duplicate, prerequisites met",
                true,
                true,
                vec![f("plan", &plan, true)],
                Some("older"),
                PermissionState::Blocked,
                ("False", reasons::DUPLICATE_PERMISSION),
                reasons::ELIGIBLE,
                reasons::OWNER_ASSIGNED,
            ),
            (
                "duplicate reports missing prerequisites first",
                true,
                true,
                vec![],
                Some("older"),
                PermissionState::Blocked,
                ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                reasons::OWNER_ROLE_MISSING,
            ),
            (
                "duplicate, switched off",
                false,
                true,
                vec![f("plan", &plan, true)],
                Some("older"),
                PermissionState::Disabled,
                ("True", reasons::PERMISSION_DISABLED),
                reasons::ELIGIBLE,
                reasons::OWNER_ASSIGNED,
            ),
        ];
        for (
            case,
            enabled,
            customer_exists,
            subs,
            duplicate_of,
            state,
            want_ready,
            want_sub,
            want_owner,
        ) in rows
        {
            let spec = perm(enabled);
            let d = permission_decision(
                &PermissionFacts {
                    customer_tenant: customer_exists.then_some(TENANT),
                    claimants: duplicate_of
                        .map(crate::policy::testing::lost_to)
                        .unwrap_or_default(),
                    ..facts(&spec, subs)
                },
                t(0),
            );
            assert_eq!(d.status.state, state, "{case}: state");
            assert_eq!(ready(&d), want_ready, "{case}: Ready");
            assert_eq!(
                cond(&d, types::SUBSCRIPTION_ELIGIBLE).1,
                want_sub,
                "{case}: SubscriptionEligible"
            );
            assert_eq!(
                cond(&d, types::OWNER_ROLE_ASSIGNED).1,
                want_owner,
                "{case}: OwnerRoleAssigned"
            );
            assert_eq!(
                d.status.observed_generation,
                Some(1),
                "{case}: observedGeneration"
            );
            let ready_cond = find(&d.status.conditions, types::READY).expect("Ready");
            assert!(
                !ready_cond.message.is_empty(),
                "{case}: Ready has a message"
            );
        }
    }

    #[test]
    fn enabling_records_create_event_and_grant() {
        let spec = perm(true);
        let plan = plan();
        let d = permission_decision(
            &facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: true,
                }],
            ),
            t(5),
        );
        assert_eq!(d.grant, GrantChange::Create);
        assert_eq!(d.status.eligible_subscriptions, vec![PLAN_ID.to_string()]);
        assert_eq!(d.status.enabled_since, Some(Time(t(5))));
        assert_eq!(d.events.len(), 1);
        let e = &d.events[0];
        assert_eq!(
            (e.type_, e.reason, e.action),
            (
                EventType::Normal,
                reasons::PERMISSION_ENABLED,
                actions::CREATE
            )
        );
        assert!(
            e.note.contains("pays")
                && e.note.contains("not notified")
                && e.note.contains("exchange, cancel, renew")
        );
    }

    #[test]
    fn settled_grant_makes_no_write_and_no_event() {
        let spec = perm(true);
        let plan = plan();
        let subs = || {
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: true,
            }]
        };
        let first = permission_decision(&facts(&spec, subs()), t(5));
        let again = permission_decision(
            &PermissionFacts {
                current: Some(&first.status),
                ..facts(&spec, subs())
            },
            t(500),
        );
        assert_eq!(again.grant, GrantChange::None);
        assert!(again.events.is_empty());
        assert_eq!(
            crate::policy::status_change(Some(&first.status), again.status),
            None
        );
    }

    #[test]
    fn blocked_warns_once() {
        let spec = perm(true);
        let first = permission_decision(&facts(&spec, vec![]), t(0));
        assert_eq!(first.grant, GrantChange::None);
        assert_eq!(first.events.len(), 1);
        let e = &first.events[0];
        assert_eq!(
            (e.type_, e.reason, e.action),
            (
                EventType::Warning,
                reasons::NO_ELIGIBLE_SUBSCRIPTION,
                actions::CHECK_PREREQUISITES
            )
        );
        let again = permission_decision(
            &PermissionFacts {
                current: Some(&first.status),
                ..facts(&spec, vec![])
            },
            t(60),
        );
        assert!(again.events.is_empty(), "no event without a transition");
        assert_eq!(
            crate::policy::status_change(Some(&first.status), again.status),
            None
        );
        // A different blocking reason is a transition: it warns again.
        let plan = plan();
        let third = permission_decision(
            &PermissionFacts {
                current: Some(&first.status),
                ..facts(
                    &spec,
                    vec![SubscriptionFact {
                        name: "plan",
                        spec: &plan,
                        has_owner: false,
                    }],
                )
            },
            t(120),
        );
        assert_eq!(third.events.len(), 1);
        assert_eq!(third.events[0].reason, reasons::OWNER_ROLE_MISSING);
    }

    #[test]
    fn lost_owner_keeps_grant_and_warns() {
        let spec = perm(true);
        let plan = plan();
        let granted = permission_decision(
            &facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: true,
                }],
            ),
            t(0),
        );
        let lost = permission_decision(
            &PermissionFacts {
                current: Some(&granted.status),
                ..facts(
                    &spec,
                    vec![SubscriptionFact {
                        name: "plan",
                        spec: &plan,
                        has_owner: false,
                    }],
                )
            },
            t(30),
        );
        assert_eq!(lost.status.state, PermissionState::Enabled);
        assert_eq!(lost.grant, GrantChange::None);
        assert_eq!(ready(&lost), ("False", reasons::OWNER_ROLE_MISSING));
        assert_eq!(
            lost.status.enabled_since,
            Some(Time(t(0))),
            "grant time kept"
        );
        assert!(lost.status.eligible_subscriptions.is_empty());
        assert_eq!(lost.events.len(), 1);
        let e = &lost.events[0];
        assert_eq!(
            (e.type_, e.reason, e.action),
            (
                EventType::Warning,
                reasons::OWNER_ROLE_MISSING,
                actions::CHECK_PREREQUISITES
            )
        );
        assert!(e.note.contains("Azure portal"));
        // Owner comes back: Ready again, no new grant, no Create event.
        let back = permission_decision(
            &PermissionFacts {
                current: Some(&lost.status),
                ..facts(
                    &spec,
                    vec![SubscriptionFact {
                        name: "plan",
                        spec: &plan,
                        has_owner: true,
                    }],
                )
            },
            t(60),
        );
        assert_eq!(ready(&back), ("True", reasons::PERMISSION_ENABLED));
        assert_eq!(back.grant, GrantChange::None);
        assert!(back.events.is_empty());
        assert_eq!(back.status.enabled_since, Some(Time(t(0))));
    }

    #[test]
    fn lost_customer_keeps_grant() {
        let spec = perm(true);
        let plan = plan();
        let granted = permission_decision(
            &facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: true,
                }],
            ),
            t(0),
        );
        let lost = permission_decision(
            &PermissionFacts {
                current: Some(&granted.status),
                customer_tenant: None,
                ..facts(&spec, vec![])
            },
            t(30),
        );
        assert_eq!(lost.status.state, PermissionState::Enabled);
        assert_eq!(ready(&lost), ("False", reasons::CUSTOMER_NOT_FOUND));
        assert_eq!(lost.events[0].type_, EventType::Warning);
        // What to withdraw later is still known without the Customer.
        assert_eq!(granted.status.granted_tenant_id.as_deref(), Some(TENANT));
        assert_eq!(lost.status.granted_tenant_id.as_deref(), Some(TENANT));
    }

    #[test]
    fn disabling_records_delete_event() {
        let on = perm(true);
        let plan = plan();
        let granted = permission_decision(
            &facts(
                &on,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: true,
                }],
            ),
            t(0),
        );
        let off = perm(false);
        let d = permission_decision(
            &PermissionFacts {
                current: Some(&granted.status),
                generation: Some(2),
                ..facts(
                    &off,
                    vec![SubscriptionFact {
                        name: "plan",
                        spec: &plan,
                        has_owner: true,
                    }],
                )
            },
            t(10),
        );
        assert_eq!(d.status.state, PermissionState::Disabled);
        assert_eq!(d.grant, GrantChange::Delete);
        assert_eq!(d.status.enabled_since, None);
        assert_eq!(d.status.observed_generation, Some(2));
        assert_eq!(d.events.len(), 1);
        let e = &d.events[0];
        assert_eq!(
            (e.type_, e.reason, e.action),
            (
                EventType::Normal,
                reasons::PERMISSION_DISABLED,
                actions::DELETE
            )
        );
        // Disabling a permission that was only Blocked withdraws nothing.
        let blocked = permission_decision(&facts(&on, vec![]), t(0));
        let d = permission_decision(
            &PermissionFacts {
                current: Some(&blocked.status),
                ..facts(&off, vec![])
            },
            t(10),
        );
        assert_eq!(d.grant, GrantChange::None);
        assert!(d.events.is_empty());
        assert_eq!(ready(&d), ("True", reasons::PERMISSION_DISABLED));
    }

    #[test]
    fn subscription_ref_narrows_the_check() {
        let plan = plan();
        let global = sub(
            GLOBAL_ID,
            Offer::AzureGlobal,
            BillingType::Usage,
            SubscriptionState::Active,
        );
        let subs = || {
            vec![
                SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: false,
                },
                SubscriptionFact {
                    name: "global",
                    spec: &global,
                    has_owner: true,
                },
            ]
        };
        let mut spec = perm(true);
        let any = permission_decision(&facts(&spec, subs()), t(0));
        assert_eq!(any.status.state, PermissionState::Enabled);
        assert_eq!(
            any.status.eligible_subscriptions,
            vec![GLOBAL_ID.to_string()]
        );
        spec.subscription_ref = Some(LocalRef::new("plan"));
        let narrowed = permission_decision(&facts(&spec, subs()), t(0));
        assert_eq!(narrowed.status.state, PermissionState::Blocked);
        assert_eq!(ready(&narrowed), ("False", reasons::OWNER_ROLE_MISSING));
        spec.subscription_ref = Some(LocalRef::new("someone-elses"));
        let missing = permission_decision(&facts(&spec, subs()), t(0));
        assert_eq!(
            ready(&missing),
            ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION)
        );
        assert!(
            find(&missing.status.conditions, types::READY)
                .expect("Ready")
                .message
                .contains("someone-elses")
        );
    }

    #[test]
    fn contributor_does_not_count_is_the_callers_has_owner() {
        // has_owner is computed from Owner assignments only; the message says so.
        let spec = perm(true);
        let plan = plan();
        let d = permission_decision(
            &facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: false,
                }],
            ),
            t(0),
        );
        assert!(
            find(&d.status.conditions, types::OWNER_ROLE_ASSIGNED)
                .expect("cond")
                .message
                .contains("Contributor or Reader does not count")
        );
    }

    #[test]
    fn a_duplicate_never_holds_or_withdraws_the_grant() {
        let spec = perm(true);
        let plan = plan();
        let subs = || {
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: true,
            }]
        };
        // Granted while it was the only one; then an older one shows up.
        let granted = permission_decision(&facts(&spec, subs()), t(0));
        let demoted = permission_decision(
            &PermissionFacts {
                current: Some(&granted.status),
                claimants: crate::policy::testing::lost_to("older"),
                ..facts(&spec, subs())
            },
            t(10),
        );
        assert_eq!(demoted.status.state, PermissionState::Blocked);
        assert_eq!(ready(&demoted), ("False", reasons::DUPLICATE_PERMISSION));
        assert_eq!(
            demoted.grant,
            GrantChange::None,
            "the older permission manages the customer's grant"
        );
        assert!(
            demoted
                .events
                .iter()
                .all(|e| e.action == actions::CHECK_PREREQUISITES)
        );
        assert_eq!(
            withdraw_on_delete(Some(&demoted.status)),
            None,
            "deleting it withdraws nothing"
        );
    }

    #[test]
    fn deleting_an_enabled_permission_withdraws_it() {
        let spec = perm(true);
        let plan = plan();
        let granted = permission_decision(
            &facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: true,
                }],
            ),
            t(0),
        );
        let e = withdraw_on_delete(Some(&granted.status)).expect("withdrawal event");
        assert_eq!(
            (e.type_, e.reason, e.action),
            (
                EventType::Normal,
                reasons::PERMISSION_DISABLED,
                actions::DELETE
            )
        );
        let blocked = permission_decision(&facts(&spec, vec![]), t(0));
        assert_eq!(withdraw_on_delete(Some(&blocked.status)), None);
        assert_eq!(withdraw_on_delete(None), None);
    }
}
