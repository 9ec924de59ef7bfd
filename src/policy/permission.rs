//! PurchasePermission: the switch, its prerequisites, and the activity log it writes.

use super::conditions::find;
use super::events::{ActivityEvent, EventType, actions};
use super::{
    Claimants, DesiredCondition, Observed, merge_conditions, merge_conditions_dropping,
    observed_eligibility,
};
use crate::api::conditions::{reasons, types};
use crate::api::{
    AzureSubscriptionSpec, Condition, DeletionPolicy, GrantBackend, ObservedSubscription,
    PermissionState, PurchasePermissionSpec, PurchasePermissionStatus, PurchaseResource,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// One of the customer's subscriptions, as the permission reconciler sees it.
#[derive(Clone, Debug)]
pub struct SubscriptionFact<'a> {
    pub name: &'a str,
    pub spec: &'a AzureSubscriptionSpec,
    /// Whether a RoleAssignment gives some principal the Owner role on it (with observations
    /// on: one Azure lists).
    pub has_owner: bool,
    /// What Partner Center reports of it (its values count for eligibility).
    pub observed: Observed<&'a ObservedSubscription>,
}

impl SubscriptionFact<'_> {
    fn eligibility(&self, customer_exists: bool) -> Result<(), (&'static str, String)> {
        observed_eligibility(self.spec, customer_exists, &self.observed)
    }
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
    /// Where grants live, and whether a grant change can be made now.
    pub backend: BackendFact<'a>,
}

/// Where grants live and whether they can be switched now.
#[derive(Clone, Copy, Debug)]
pub struct BackendFact<'a> {
    pub kind: GrantBackend,
    /// Why no grant change can be made now (no Ready PartnerCenterConnection); `None` when one can.
    pub not_ready: Option<&'a str>,
}

impl Default for BackendFact<'_> {
    fn default() -> Self {
        BackendFact {
            kind: GrantBackend::Cluster,
            not_ready: None,
        }
    }
}

/// What the backend must do with the grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantChange {
    None,
    /// Turn the permission on (Partner Center: create the SelfServePolicy).
    Create,
    /// Turn it off (Partner Center: delete the SelfServePolicy).
    Delete,
    /// Change what the grant in effect covers (Partner Center: update the SelfServePolicy).
    Update,
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
        (true, true) if resources_changed(facts) => GrantChange::Update,
        _ => GrantChange::None,
    };
    let (state, ready, grant) = hold_without_backend(facts, state, ready, grant);
    let events = activity_log(facts, grant, &ready);
    let made = grant != GrantChange::None;
    let status = next_status(facts, state, was_granted, made, checks, ready, now);
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
            .filter(|s| s.eligibility(facts.customer_tenant.is_some()).is_ok())
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
                s.eligibility(true)
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

/// Whether `spec.resources` differs from what the grant in effect covers (a status from before
/// `grantedResources` was recorded counts as covering the spec).
fn resources_changed(facts: &PermissionFacts<'_>) -> bool {
    let granted = facts
        .current
        .map(|s| s.granted_resources.as_slice())
        .unwrap_or(&[]);
    !granted.is_empty() && sorted(granted) != sorted(&facts.spec.resources)
}

fn sorted(resources: &[PurchaseResource]) -> Vec<PurchaseResource> {
    let mut v = resources.to_vec();
    v.sort_by_key(|r| r.partner_center_name());
    v.dedup();
    v
}

/// Without a ready backend no grant changes: the state stays where the grant is, and Ready says
/// what the change waits for. A decision that changes no grant needs no backend.
fn hold_without_backend(
    facts: &PermissionFacts<'_>,
    state: PermissionState,
    ready: DesiredCondition,
    grant: GrantChange,
) -> (PermissionState, DesiredCondition, GrantChange) {
    let Some(why) = facts
        .backend
        .not_ready
        .filter(|_| grant != GrantChange::None)
    else {
        return (state, ready, grant);
    };
    let (state, waiting) = match grant {
        GrantChange::Create => (PermissionState::Blocked, "enabling"),
        GrantChange::Delete => (PermissionState::Enabled, "switching off"),
        _ => (PermissionState::Enabled, "changing the resources"),
    };
    let ready = DesiredCondition::new(
        types::READY,
        false,
        reasons::CONNECTION_NOT_READY,
        format!("{waiting} waits for Partner Center: {why}"),
    );
    (state, ready, GrantChange::None)
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
        GrantChange::Update => events.push(ActivityEvent {
            type_: EventType::Normal,
            reason: reasons::PERMISSION_UPDATED,
            action: actions::UPDATE,
            note: format!(
                "What the customer may purchase changed. Resources: {}.",
                resources(facts.spec)
            ),
        }),
        GrantChange::None => {}
    }
    let previous_ready = facts
        .current
        .and_then(|s| find(&s.conditions, types::READY));
    let waits = facts.spec.enabled || ready.reason == reasons::CONNECTION_NOT_READY;
    if waits && !ready.status {
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
    made: bool,
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
    let grant = granted_record(facts, state, was_granted, made);
    // kstatus' abnormal-true conditions are present only while they hold: `Reconciling` is
    // dropped (any grant change is made before this status is written), `Stalled` is kept only
    // while something waits for a human. (Absent is what kstatus reads as False, and it keeps
    // 100k statuses small.)
    let existing: &[Condition] = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let stalled = (!ready.status).then(|| stalled_condition(&ready));
    let dropped: &[&str] = match stalled {
        Some(_) => &[types::RECONCILING],
        None => &[types::RECONCILING, types::STALLED],
    };
    let desired: Vec<DesiredCondition> = [checks.subscription_eligible, checks.owner_role]
        .into_iter()
        .chain(stalled)
        .chain([ready])
        .collect();
    PurchasePermissionStatus {
        granted_tenant_id,
        granted_resources: grant.resources,
        backend: grant.backend,
        policy_id: grant.policy_id,
        observed_generation: facts.generation,
        state,
        eligible_subscriptions: checks.eligible_subscriptions,
        enabled_since,
        conditions: merge_conditions_dropping(existing, &desired, dropped, facts.generation, now),
    }
}

/// What the status records of the grant in effect: what it covers, where it lives, its id.
struct GrantedRecord {
    resources: Vec<PurchaseResource>,
    backend: Option<GrantBackend>,
    policy_id: Option<String>,
}

/// The grant record after this decision: none when no grant is in effect; the spec's resources
/// and this backend when the decision makes a grant change; otherwise what was recorded. The
/// policy id comes from the backend (`with_grant_made`).
fn granted_record(
    facts: &PermissionFacts<'_>,
    state: PermissionState,
    was_granted: bool,
    made: bool,
) -> GrantedRecord {
    let current = facts.current.filter(|_| was_granted);
    if state != PermissionState::Enabled {
        return GrantedRecord {
            resources: Vec::new(),
            backend: None,
            policy_id: None,
        };
    }
    let kept = current
        .map(|s| s.granted_resources.clone())
        .unwrap_or_default();
    GrantedRecord {
        resources: if made || kept.is_empty() {
            sorted(&facts.spec.resources)
        } else {
            kept
        },
        backend: current
            .and_then(|s| s.backend)
            .filter(|_| !made)
            .or(Some(facts.backend.kind)),
        policy_id: current.and_then(|s| s.policy_id.clone()),
    }
}

/// kstatus' `Stalled` (Flux fails its health check at once, with our message), for a Ready that
/// is False: every Ready=False reason waits for a human to fix a prerequisite.
fn stalled_condition(ready: &DesiredCondition) -> DesiredCondition {
    DesiredCondition::new(types::STALLED, true, ready.reason, ready.message.clone())
}

/// The status to write when the backend failed to carry out the decision's grant change: the
/// current status with `Reconciling` True (the change is in flight, being retried), so
/// dashboards and kstatus show it. `None` when that is already the status.
pub fn grant_pending(
    facts: &PermissionFacts<'_>,
    decision: &PermissionDecision,
    error: &str,
    now: Timestamp,
) -> Option<PurchasePermissionStatus> {
    let switching = match decision.grant {
        GrantChange::Create => "switching the permission on",
        GrantChange::Delete => "switching the permission off",
        GrantChange::Update => "changing what the permission covers",
        GrantChange::None => return None,
    };
    let current = facts.current.cloned().unwrap_or_default();
    let reconciling = DesiredCondition::new(
        types::RECONCILING,
        true,
        reasons::GRANT_PENDING,
        format!("{switching}; the backend failed, retrying: {error}"),
    );
    let conditions = merge_conditions(&current.conditions, &[reconciling], facts.generation, now);
    let pending = PurchasePermissionStatus {
        conditions,
        ..current
    };
    (facts.current != Some(&pending)).then_some(pending)
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

/// What the backend reported when it made a grant: its id there, and whether it already
/// existed (made elsewhere, now managed here).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantMade {
    pub policy_id: Option<String>,
    pub adopted: bool,
}

/// The decision once its grant change is made: the status records the backend's id for it, and
/// a grant that already existed is logged as adopted rather than enabled.
pub fn with_grant_made(mut decision: PermissionDecision, made: &GrantMade) -> PermissionDecision {
    if made.policy_id.is_some() && decision.status.state == PermissionState::Enabled {
        decision.status.policy_id = made.policy_id.clone();
        decision.status_changed = true;
    }
    if made.adopted {
        for e in decision.events.iter_mut() {
            if e.reason == reasons::PERMISSION_ENABLED {
                *e = ActivityEvent {
                    type_: EventType::Normal,
                    reason: reasons::PERMISSION_ADOPTED,
                    action: actions::ADOPT,
                    note: format!(
                        "Partner Center already let the customer purchase (policy {}); the operator manages that grant now. The partner pays for every purchase and is not notified of them.",
                        made.policy_id.as_deref().unwrap_or("unknown")
                    ),
                };
            }
        }
    }
    decision
}

/// The switch was found changed outside the cluster and put back as declared.
pub fn drift_corrected(enabled: bool) -> ActivityEvent {
    let (action, how) = if enabled {
        (actions::CREATE, "turned back on")
    } else {
        (actions::DELETE, "turned back off")
    };
    ActivityEvent {
        type_: EventType::Warning,
        reason: reasons::DRIFT_CORRECTED,
        action,
        note: format!(
            "The permission was changed outside the cluster (in Partner Center) and was {how} as declared."
        ),
    }
}

/// What deleting a PurchasePermission does: whether its grant is withdrawn first, and the
/// activity-log entry (none when no grant is in effect).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    pub revoke: bool,
    pub event: ActivityEvent,
}

/// Deleting a PurchasePermission: a grant in effect is withdrawn first and the withdrawal
/// logged, unless the deletion policy orphans it (logged too: the partner keeps paying).
pub fn withdraw_on_delete(
    current: Option<&PurchasePermissionStatus>,
    policy: DeletionPolicy,
) -> Option<Withdrawal> {
    current.filter(|s| s.state == PermissionState::Enabled)?;
    Some(match policy {
        DeletionPolicy::Withdraw => Withdrawal {
            revoke: true,
            event: withdrawn_event("PurchasePermission deleted"),
        },
        DeletionPolicy::Orphan => Withdrawal {
            revoke: false,
            event: ActivityEvent {
                type_: EventType::Normal,
                reason: reasons::PERMISSION_ORPHANED,
                action: actions::ORPHAN,
                note: "PurchasePermission deleted with deletionPolicy Orphan: the customer may still purchase its own Azure reservations, billed to the partner.".into(),
            },
        },
    })
}

#[cfg(test)]
#[path = "tests/permission.rs"]
mod tests;
