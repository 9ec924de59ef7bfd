//! PurchasePermission: the switch, its prerequisites, and the activity log it writes.

use super::conditions::find;
use super::events::{ActivityEvent, EventType, actions};
use super::history;
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
    /// The other PurchasePermissions for the same customer, as far as the grant goes.
    pub rivals: Vec<RivalFact<'a>>,
    /// Who last set `spec.enabled` (its field manager), read fresh before a transition.
    pub enabled_by: Option<&'a str>,
    /// Whether the status's `grantedTenantId` was written by the operator (its field manager
    /// owns it): a grant in doubt is then trusted even when the Customer is gone.
    pub tenant_recorded_by_operator: bool,
}

/// Another PurchasePermission for the same customer: whether it holds the customer's one grant
/// (its status says Enabled) and whether it asks for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RivalFact<'a> {
    pub name: &'a str,
    pub holds_grant: bool,
    /// `spec.enabled`, and its status does not (for this generation) say it is blocked.
    pub wants_grant: bool,
}

impl<'a> PermissionFacts<'a> {
    fn rival(&self, name: &str) -> RivalFact<'a> {
        self.rivals
            .iter()
            .find(|r| r.name == name)
            .copied()
            .unwrap_or_default()
    }

    /// A younger rival whose status holds the grant (what this one takes over).
    fn younger_holder(&self) -> Option<&'a str> {
        self.rivals.iter().find(|r| r.holds_grant).map(|r| r.name)
    }
}

/// What a permission that held the grant does once an older rival holds the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handover<'a> {
    /// The older one holds the grant now: let go of it, no backend call.
    HandOver(&'a str),
    /// The older one asks for the grant but has not taken it yet: keep it until it does.
    Keep(&'a str),
    /// The older one does not ask for it: withdraw it.
    Withdraw(&'a str),
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

/// Decides a PurchasePermission's status from the facts: check the prerequisites, find what
/// blocks the switch, settle its state, then the grant change and the activity log it makes.
pub fn permission_decision(facts: &PermissionFacts<'_>, now: Timestamp) -> PermissionDecision {
    let duplicate_of = facts.claimants.older();
    let checks = Prerequisites::check(facts);
    let blocker = first_blocker(facts, &checks, duplicate_of);
    let was = facts.current.map(|s| s.state).unwrap_or_default();
    let was_granted = was == PermissionState::Enabled;
    let handover = duplicate_of
        .filter(|_| was_granted)
        .map(|older| handover(facts, older));
    let (state, ready) = switch_state(
        facts.spec.enabled,
        blocker,
        was_granted,
        duplicate_of,
        handover,
    );
    let grant = match (was_granted, state == PermissionState::Enabled) {
        (_, _) if matches!(handover, Some(Handover::Withdraw(_))) => GrantChange::Delete,
        // The grant is the customer's; only the oldest permission for it switches it.
        _ if duplicate_of.is_some() => GrantChange::None,
        (false, true) => GrantChange::Create,
        (true, false) => GrantChange::Delete,
        (true, true) if resources_changed(facts) => GrantChange::Update,
        _ => GrantChange::None,
    };
    // A grant in doubt that is not wanted is withdrawn, with no transition: none was logged.
    // A rival holding the customer's grant, or an older one asking for it, takes it over.
    let taken_over = facts.rivals.iter().any(|r| r.holds_grant)
        || duplicate_of.is_some_and(|older| facts.rival(older).wants_grant);
    let in_doubt = grant_in_doubt(
        facts.current,
        facts.customer_tenant,
        facts.tenant_recorded_by_operator,
    )
    .filter(|_| !taken_over);
    let withdraw_doubt = in_doubt.is_some() && grant == GrantChange::None && !was_granted;
    let withdraw_doubt = withdraw_doubt && state != PermissionState::Enabled;
    let grant = if withdraw_doubt {
        GrantChange::Delete
    } else {
        grant
    };
    let (state, ready, grant) = match withdraw_doubt {
        true if facts.backend.not_ready.is_some() => (state, ready, GrantChange::None),
        _ => hold_without_backend(facts, state, ready, grant),
    };
    let transition = if withdraw_doubt {
        None
    } else {
        transition_of(facts, grant, handover, state)
    };
    let made = grant != GrantChange::None;
    let mut status = next_status(facts, state, was_granted, made, checks, ready.clone(), now);
    if withdraw_doubt && grant == GrantChange::None {
        // Held until the backend is ready: the doubt stays on record.
        status.granted_tenant_id = in_doubt.map(String::from);
    }
    if let Some(t) = transition {
        let history = facts.current.map(|s| s.history.as_slice()).unwrap_or(&[]);
        status.history = history::appended(history, was, state, t, facts.enabled_by, now);
    }
    let events = activity_log(facts, &status, &ready);
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

/// What a permission that holds the grant does once `older` holds the customer's switch.
fn handover<'a>(facts: &PermissionFacts<'a>, older: &'a str) -> Handover<'a> {
    let rival = facts.rival(older);
    if rival.holds_grant {
        Handover::HandOver(older)
    } else if rival.wants_grant {
        Handover::Keep(older)
    } else {
        Handover::Withdraw(older)
    }
}

/// The grant transition a decision makes, if any: the grant made, changed or withdrawn, or
/// handed over to the oldest rival.
fn transition_of<'a>(
    facts: &PermissionFacts<'a>,
    grant: GrantChange,
    handover: Option<Handover<'a>>,
    state: PermissionState,
) -> Option<history::Transition<'a>> {
    let (reason, peer) = match (grant, handover) {
        (GrantChange::Create, _) => match facts.younger_holder() {
            Some(holder) => (reasons::PERMISSION_TAKEN_OVER, Some(holder)),
            None => (reasons::PERMISSION_ENABLED, None),
        },
        (GrantChange::Update, _) => (reasons::PERMISSION_UPDATED, None),
        (GrantChange::Delete, Some(Handover::Withdraw(older))) => {
            (reasons::PERMISSION_DISABLED, Some(older))
        }
        (GrantChange::Delete, _) => (reasons::PERMISSION_DISABLED, None),
        (GrantChange::None, Some(Handover::HandOver(older)))
            if state != PermissionState::Enabled =>
        {
            (reasons::PERMISSION_HANDED_OVER, Some(older))
        }
        (GrantChange::None, _) => return None,
    };
    Some(history::Transition { reason, peer })
}

/// The switch's state and its Ready condition, from what is asked, what blocks it, and (for a
/// permission that held the grant and lost the switch to an older one) its handover.
fn switch_state(
    enabled: bool,
    blocker: Option<(&'static str, String)>,
    was_granted: bool,
    duplicate_of: Option<&str>,
    handover: Option<Handover<'_>>,
) -> (PermissionState, DesiredCondition) {
    if let Some(Handover::Keep(older)) = handover {
        return (
            PermissionState::Enabled,
            DesiredCondition::new(
                types::READY,
                false,
                reasons::DUPLICATE_PERMISSION,
                format!(
                    "PurchasePermission {older:?} already holds the switch for this customer; this one keeps the customer's grant until that one takes it over, then delete this one"
                ),
            ),
        );
    }
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

/// The customer tenant a grant may have been made for without its status recording it: the
/// status says a grant was about to be made (`grantedTenantId` set while the state is not
/// Enabled, written before the Partner Center call) and the call's outcome never was recorded
/// (a crash, or an answer lost after Partner Center made the grant). The tenant must be the
/// permission's customer's or, with the Customer gone, one the operator recorded itself, so a
/// status someone else wrote cannot point a withdrawal elsewhere.
pub fn grant_in_doubt<'a>(
    current: Option<&'a PurchasePermissionStatus>,
    customer_tenant: Option<&str>,
    recorded_by_operator: bool,
) -> Option<&'a str> {
    let current = current?;
    let tenant = current.granted_tenant_id.as_deref()?;
    let trusted = match customer_tenant {
        Some(customer) => customer.eq_ignore_ascii_case(tenant),
        None => recorded_by_operator,
    };
    (current.state != PermissionState::Enabled && trusted).then_some(tenant)
}

/// The status to write before the backend is asked to make a grant, when the grant lives
/// outside the cluster (Partner Center): the current status with the tenant the grant is for
/// and `Reconciling` True. If the process stops after Partner Center made the grant and before
/// the status recording it is written, the grant is known to be in doubt (see
/// [`grant_in_doubt`]): enabled again it is adopted, switched off it is withdrawn. `None` when
/// no such record is needed or it is already written.
pub fn grant_intent(
    facts: &PermissionFacts<'_>,
    decision: &PermissionDecision,
    now: Timestamp,
) -> Option<PurchasePermissionStatus> {
    let creates = decision.grant == GrantChange::Create;
    if !creates || facts.backend.kind != GrantBackend::PartnerCenter {
        return None;
    }
    let current = facts.current.cloned().unwrap_or_default();
    let reconciling = DesiredCondition::new(
        types::RECONCILING,
        true,
        reasons::GRANT_PENDING,
        "switching the permission on in Partner Center".to_string(),
    );
    let conditions = merge_conditions(&current.conditions, &[reconciling], facts.generation, now);
    let intent = PurchasePermissionStatus {
        granted_tenant_id: decision.status.granted_tenant_id.clone(),
        conditions,
        ..current
    };
    (facts.current != Some(&intent)).then_some(intent)
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

/// The activity-log entries of this decision: the grant transition it makes (its Event is
/// rebuilt from the history entry), and a warning the first time a given reason keeps it from
/// being ready.
fn activity_log(
    facts: &PermissionFacts<'_>,
    status: &PurchasePermissionStatus,
    ready: &DesiredCondition,
) -> Vec<ActivityEvent> {
    let mut events: Vec<ActivityEvent> = history::new_transitions(facts.current, status)
        .map(|t| history::transition_event(t, status, false))
        .collect();
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
                transition: None,
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
        history: facts.current.map(|s| s.history.clone()).unwrap_or_default(),
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
    let Some(last) = decision.status.history.last_mut() else {
        return decision;
    };
    if !made.adopted || last.reason != reasons::PERMISSION_ENABLED {
        return decision;
    }
    last.reason = reasons::PERMISSION_ADOPTED.to_string();
    let entry = last.clone();
    let adopted = history::transition_event(&entry, &decision.status, false);
    for e in decision.events.iter_mut() {
        if e.transition == adopted.transition {
            *e = adopted.clone();
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
        transition: None,
    }
}

/// What deleting a PurchasePermission does: whether its grant is withdrawn first, the status
/// that records it (state Disabled, one more history entry), and that transition's Event.
#[derive(Clone, Debug, PartialEq)]
pub struct Withdrawal {
    pub revoke: bool,
    pub status: PurchasePermissionStatus,
    pub event: ActivityEvent,
}

/// What a permission being deleted knows.
#[derive(Clone, Copy, Debug)]
pub struct DeletionFacts<'a> {
    pub current: Option<&'a PurchasePermissionStatus>,
    pub policy: DeletionPolicy,
    /// Another permission for the same customer whose status holds the grant: it is handed over,
    /// not withdrawn from under it.
    pub rival_holder: Option<&'a str>,
    pub enabled_by: Option<&'a str>,
}

/// Deleting a PurchasePermission: a grant in effect is withdrawn first and the withdrawal
/// recorded, unless the deletion policy orphans it (recorded too: the partner keeps paying) or a
/// rival for the same customer holds it too (handed over). `None`: no grant in effect.
pub fn withdraw_on_delete(facts: DeletionFacts<'_>, now: Timestamp) -> Option<Withdrawal> {
    let current = facts
        .current
        .filter(|s| s.state == PermissionState::Enabled)?;
    let (revoke, reason, message) = match (facts.rival_holder, facts.policy) {
        (Some(_), _) => (
            false,
            reasons::PERMISSION_HANDED_OVER,
            "deleted; the customer's grant stays with the other PurchasePermission for it",
        ),
        (None, DeletionPolicy::Withdraw) => (
            true,
            reasons::PERMISSION_DISABLED,
            "deleted; the customer's grant was withdrawn",
        ),
        (None, DeletionPolicy::Orphan) => (
            false,
            reasons::PERMISSION_ORPHANED,
            "deleted with deletionPolicy Orphan; the grant stays in Partner Center, unmanaged",
        ),
    };
    let ready = DesiredCondition::new(types::READY, true, reason, message);
    let generation = current.observed_generation;
    let transition = history::Transition {
        reason,
        peer: facts.rival_holder,
    };
    let status = PurchasePermissionStatus {
        state: PermissionState::Disabled,
        enabled_since: None,
        granted_tenant_id: None,
        granted_resources: Vec::new(),
        backend: None,
        policy_id: None,
        conditions: merge_conditions_dropping(
            &current.conditions,
            &[ready],
            &[types::RECONCILING, types::STALLED],
            generation,
            now,
        ),
        history: history::appended(
            &current.history,
            PermissionState::Enabled,
            PermissionState::Disabled,
            transition,
            facts.enabled_by,
            now,
        ),
        ..current.clone()
    };
    let entry = status.history.last()?;
    let event = history::transition_event(entry, &status, true);
    Some(Withdrawal {
        revoke,
        status,
        event,
    })
}

#[cfg(test)]
#[path = "tests/permission.rs"]
mod tests;
