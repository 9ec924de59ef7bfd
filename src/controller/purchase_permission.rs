//! The PurchasePermission reconciler: behind a finalizer, gather the facts (customer,
//! subscriptions, owner roles, rival permissions), decide through `policy`, then apply the
//! decision: the grant in the backend, the status, the activity log. A decision that makes a grant
//! transition is first confirmed on a fresh read of the object (never on a stale cache). Deleting
//! an enabled permission withdraws its grant first, and its status says so while other
//! finalizers hold the object.

use super::caches::seniority;
use super::context::Context;
use super::subscription::reported;
use super::{Error, events, now};
use crate::api::{
    AzureSubscription, Customer, FINALIZER, PermissionState, PurchasePermission,
    PurchasePermissionStatus,
};
use crate::backend::{Grant, Readiness};
use crate::policy::{
    self, Claimants, GrantChange, GrantMade, Observed, PermissionDecision, RivalFact,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer;
use kube::{Resource, ResourceExt};
use std::sync::Arc;

/// How soon a grant change waiting for its namespace's connection to be checked is retried.
const SETTLING_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// How soon a transition whose Event could not be recorded is tried again.
const EVENT_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn reconcile(obj: Arc<PurchasePermission>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    // Paused: not even a deletion is carried out (its grant would be withdrawn) until resumed.
    let kind = super::metrics::Kind::purchasepermission;
    let status = ctx.written.known_status(&obj);
    if super::annotations::hold_if_paused(
        &ctx,
        kind,
        obj.as_ref(),
        status.as_ref(),
        status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[]),
    )
    .await?
    {
        return Ok(Action::await_change());
    }
    if ctx.refreshes.asked(obj.as_ref()) {
        ctx.drift.request(&ns, &obj.name_any());
    }
    let api: Api<PurchasePermission> = Api::namespaced(ctx.client.clone(), &ns);
    let ctx2 = ctx.clone();
    let result = finalizer::finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            finalizer::Event::Apply(p) => switch(p, ctx2).await,
            finalizer::Event::Cleanup(p) => withdraw_on_delete(p, ctx2).await,
        }
    })
    .await;
    super::finalizers::settle(result)
}

/// Gather -> decide -> (confirm) -> apply for a live permission.
async fn switch(obj: Arc<PurchasePermission>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let mut plan = Plan::make(&ctx, &ns, &obj, None);
    if plan.waits_for_settling() {
        return Ok(Action::requeue(SETTLING_RETRY));
    }
    let mut obj = obj;
    if plan.makes_transition() || plan.doubt_to_confirm(&obj) {
        // Decided on the cache: confirm on the object as it is now before acting for it.
        obj = match confirm(&ctx, &ns, &obj).await? {
            Confirmed::Fresh(fresh) => Arc::new(*fresh),
            Confirmed::Gone => return Ok(Action::await_change()),
            Confirmed::Deleting => return Ok(Action::requeue(SETTLING_RETRY)),
        };
        let by = enabled_manager(&obj);
        plan = Plan::make(&ctx, &ns, &obj, by.as_deref());
        if plan.waits_for_settling() {
            return Ok(Action::requeue(SETTLING_RETRY));
        }
    }
    let facts = plan.facts(&obj);
    let mut decision = plan.decision.clone();
    // Someone else's status is written over even where it matches the corrected one.
    decision.status_changed |= plan.forged;
    // A grant made outside the cluster is put on record before it is made (see grant_intent).
    let intent = policy::grant_intent(&facts, &decision, now());
    if let Some(intent) = &intent {
        ctx.write_permission_intent(&obj, intent).await?;
    }
    let facts = policy::PermissionFacts {
        current: intent.as_ref().or(facts.current),
        ..facts
    };
    let decision = match switch_grant(&ctx, &ns, &obj, plan.known.as_ref(), &decision).await {
        Ok(Some(made)) => policy::with_grant_made(decision, &made),
        Ok(None) => correct_drift(&ctx, &ns, &obj, decision).await?,
        Err(error) => {
            show_grant_pending(&ctx, &obj, &facts, &decision, &error).await;
            return Err(error);
        }
    };
    record(&ctx, &obj, decision).await
}

/// One decision for a permission, with what it was made from.
struct Plan {
    related: Related,
    /// The status as this process knows it (its own unseen write, a forged grant corrected).
    known: Option<PurchasePermissionStatus>,
    /// The status was someone else's.
    forged: bool,
    readiness: Readiness,
    enabled_by: Option<String>,
    decision: PermissionDecision,
}

impl Plan {
    fn make(ctx: &Context, ns: &str, obj: &PurchasePermission, enabled_by: Option<&str>) -> Plan {
        let known = ctx.written.known_status(obj);
        let (known, forged) = ctx.owned.with_recorded_grant(obj, known);
        let observes = ctx.observations.as_ref().is_some_and(|o| o.observes(ns));
        let mut plan = Plan {
            related: Related::gather(ctx, ns, obj, observes),
            known,
            forged,
            readiness: ctx.backend.readiness(ns),
            enabled_by: enabled_by.map(String::from),
            decision: PermissionDecision {
                status: Default::default(),
                status_changed: false,
                grant: GrantChange::None,
                events: Vec::new(),
            },
        };
        plan.decision = policy::permission_decision(&plan.facts(obj), now());
        plan
    }

    fn facts<'a>(&'a self, obj: &'a PurchasePermission) -> policy::PermissionFacts<'a> {
        let backend = policy::BackendFact {
            kind: self.related.backend_kind,
            not_ready: match &self.readiness {
                Readiness::NotReady(why) => Some(why.as_str()),
                _ => None,
            },
        };
        let mut facts = self.related.facts(obj, self.known.as_ref(), backend);
        facts.enabled_by = self.enabled_by.as_deref();
        facts
    }

    /// The connection, or what Partner Center and Azure report, is being checked: grant once
    /// it is, rather than on what the YAML says.
    fn waits_for_settling(&self) -> bool {
        let settling = self.readiness == Readiness::Settling || self.related.unobserved;
        settling && self.decision.grant == GrantChange::Create
    }

    /// A grant in doubt whose Customer is gone is trusted only if the operator recorded its
    /// tenant, which the object's managedFields say (the cache keeps none): read it fresh.
    fn doubt_to_confirm(&self, obj: &PurchasePermission) -> bool {
        let doubt = self
            .known
            .as_ref()
            .is_some_and(|s| s.state != PermissionState::Enabled && s.granted_tenant_id.is_some());
        doubt && self.related.customer.is_none() && obj.metadata.managed_fields.is_none()
    }

    /// Whether the decision switches the grant (a backend call) or records a transition.
    fn makes_transition(&self) -> bool {
        self.decision.grant != GrantChange::None
            || policy::new_transitions(self.known.as_ref(), &self.decision.status)
                .next()
                .is_some()
    }
}

/// What a fresh read found of the object a reconcile acts for.
enum Confirmed {
    Fresh(Box<PurchasePermission>),
    /// Deleted (or deleted and made again: another uid).
    Gone,
    /// Being deleted: the finalizer's cleanup decides, once the cache shows it.
    Deleting,
}

/// One GET of the permission, only on the way to a grant transition: a permission disabled a
/// moment ago is never granted from a cache that has not seen it yet.
async fn confirm(ctx: &Context, ns: &str, obj: &PurchasePermission) -> Result<Confirmed, Error> {
    let api: Api<PurchasePermission> = Api::namespaced(ctx.client.clone(), ns);
    Ok(match api.get_opt(&obj.name_any()).await? {
        Some(fresh) if fresh.metadata.uid != obj.metadata.uid => Confirmed::Gone,
        Some(fresh) if fresh.metadata.deletion_timestamp.is_some() => Confirmed::Deleting,
        Some(fresh) => Confirmed::Fresh(Box::new(fresh)),
        None => Confirmed::Gone,
    })
}

/// Who last set `spec.enabled`: the field manager owning it in the object's managedFields (the
/// most recent, when appliers share it).
fn enabled_manager(obj: &PurchasePermission) -> Option<String> {
    let owns_enabled = |e: &&ManagedFieldsEntry| {
        e.fields_v1
            .as_ref()
            .is_some_and(|f| f.0.get("f:spec").and_then(|s| s.get("f:enabled")).is_some())
    };
    obj.metadata
        .managed_fields
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(owns_enabled)
        .max_by_key(|e| e.time.as_ref().map(|t| t.0))
        .and_then(|e| e.manager.clone())
}

/// What a permission's decision reads from the caches.
struct Related {
    customer: Option<Arc<Customer>>,
    /// The customer's subscriptions, each with whether someone holds Owner on it.
    subscriptions: Vec<(String, Arc<AzureSubscription>, bool)>,
    /// The customer's permissions, this one included.
    claimants: Vec<Arc<PurchasePermission>>,
    /// Whether the namespace checks subscriptions and roles against Partner Center and Azure.
    observes: bool,
    /// With observations on: a subscription or Owner role not checked yet.
    unobserved: bool,
    /// Where grants live.
    backend_kind: crate::api::GrantBackend,
}

impl Related {
    fn gather(ctx: &Context, ns: &str, obj: &PurchasePermission, observes: bool) -> Related {
        let c = &ctx.caches;
        let customer = &obj.spec.customer_ref.name;
        let mut unobserved = false;
        let subscriptions = c
            .subscriptions_of(ns, customer)
            .into_iter()
            .map(|s| {
                let name = s.name_any();
                let has_owner = c.owners_on(ns, &name) > 0;
                unobserved |= observes
                    && (reported(&s, true) == Observed::Unknown || c.owner_unobserved(ns, &name));
                (name, s, has_owner)
            })
            .collect();
        Related {
            customer: c.customer(ns, customer),
            subscriptions,
            claimants: c.permissions_of(ns, customer),
            observes,
            unobserved,
            backend_kind: ctx.backend.kind(),
        }
    }

    fn facts<'a>(
        &'a self,
        obj: &'a PurchasePermission,
        current: Option<&'a PurchasePermissionStatus>,
        backend: policy::BackendFact<'a>,
    ) -> policy::PermissionFacts<'a> {
        let subscriptions = self
            .subscriptions
            .iter()
            .map(|(name, s, has_owner)| policy::SubscriptionFact {
                name,
                spec: &s.spec,
                has_owner: *has_owner,
                observed: reported(s, self.observes),
            })
            .collect();
        policy::PermissionFacts {
            spec: &obj.spec,
            generation: obj.metadata.generation,
            current,
            customer_tenant: self.customer.as_ref().map(|c| c.spec.tenant_id.as_str()),
            subscriptions,
            claimants: Claimants {
                me: seniority(obj),
                all: self
                    .claimants
                    .iter()
                    .map(|o| seniority(o.as_ref()))
                    .collect(),
            },
            backend,
            rivals: self
                .claimants
                .iter()
                .filter(|o| o.metadata.name != obj.metadata.name)
                .map(|o| rival(o))
                .collect(),
            enabled_by: None,
            tenant_recorded_by_operator: tenant_recorded_by_operator(obj),
        }
    }
}

/// Whether the operator's field manager owns the status's `grantedTenantId` (it wrote it, and no
/// one changed it since).
pub fn tenant_recorded_by_operator(obj: &PurchasePermission) -> bool {
    let owns_tenant = |e: &ManagedFieldsEntry| {
        e.manager.as_deref() == Some(super::MANAGER)
            && e.subresource.as_deref() == Some("status")
            && e.fields_v1.as_ref().is_some_and(|f| {
                f.0.get("f:status")
                    .and_then(|s| s.get("f:grantedTenantId"))
                    .is_some()
            })
    };
    obj.metadata
        .managed_fields
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .any(owns_tenant)
}

/// A rival permission for the same customer, as the grant's handover reads it.
pub fn rival(o: &PurchasePermission) -> RivalFact<'_> {
    let status = o.status.as_ref();
    let state = status.map(|s| s.state).unwrap_or_default();
    let decided = status.is_some_and(|s| s.observed_generation == o.metadata.generation);
    RivalFact {
        name: o.metadata.name.as_deref().unwrap_or(""),
        holds_grant: state == PermissionState::Enabled,
        wants_grant: o.spec.enabled && !(decided && state == PermissionState::Blocked),
    }
}

/// Carries out the decision's grant change in the backend. It comes first, so a status never
/// claims what the backend lacks. Returns what the backend made, when it made a grant.
async fn switch_grant(
    ctx: &Context,
    ns: &str,
    obj: &PurchasePermission,
    known: Option<&PurchasePermissionStatus>,
    decision: &PermissionDecision,
) -> Result<Option<GrantMade>, Error> {
    match decision.grant {
        GrantChange::Create | GrantChange::Update => {
            let grant = grant_of(ns, obj, &decision.status);
            let made = ctx.grant(&grant).await?;
            ctx.crash_point(super::CrashPoint::AfterGrant).await;
            ctx.drift.checked(obj);
            Ok(Some(made))
        }
        GrantChange::Delete => {
            ctx.revoke(ns, &granted_tenant(known)).await?;
            ctx.crash_point(super::CrashPoint::AfterRevoke).await;
            ctx.drift.checked(obj);
            Ok(None)
        }
        GrantChange::None => Ok(None),
    }
}

/// The grant a status records (or is about to), as the backend takes it.
fn grant_of(ns: &str, obj: &PurchasePermission, status: &PurchasePermissionStatus) -> Grant {
    let resources = if status.granted_resources.is_empty() {
        &obj.spec.resources
    } else {
        &status.granted_resources
    };
    Grant {
        namespace: ns.to_string(),
        customer_tenant_id: status.granted_tenant_id.clone().unwrap_or_default(),
        resources: resources
            .iter()
            .map(|r| r.partner_center_name().to_string())
            .collect(),
    }
}

/// When the activity log named this customer, or the daily check is due: the grant is checked
/// where it lives and put back as declared if someone changed it there (logged as drift).
async fn correct_drift(
    ctx: &Context,
    ns: &str,
    obj: &PurchasePermission,
    mut decision: PermissionDecision,
) -> Result<PermissionDecision, Error> {
    let holds_switch = decision.status.conditions.iter().all(|c| {
        c.reason != crate::api::conditions::reasons::DUPLICATE_PERMISSION
            && c.reason != crate::api::conditions::reasons::CONNECTION_NOT_READY
    });
    let enabled = decision.status.state == PermissionState::Enabled;
    if !holds_switch || !ctx.drift.due(obj, enabled) {
        return Ok(decision);
    }
    let mut grant = grant_of(ns, obj, &decision.status);
    if !enabled {
        let customer = ctx.caches.customer(ns, &obj.spec.customer_ref.name);
        match customer {
            Some(c) => grant.customer_tenant_id = c.spec.tenant_id.clone(),
            None => return Ok(decision),
        }
    }
    if ctx.verify(&grant, enabled).await? {
        decision.events.push(policy::drift_corrected(enabled));
    }
    ctx.drift.checked(obj);
    Ok(decision)
}

/// The grant change failed and will be retried: the status says so (`Reconciling` True) until
/// it succeeds. Best effort: the retry is what matters, and it is already scheduled.
async fn show_grant_pending(
    ctx: &Context,
    obj: &PurchasePermission,
    facts: &policy::PermissionFacts<'_>,
    decision: &PermissionDecision,
    error: &Error,
) {
    let Some(pending) = policy::grant_pending(facts, decision, &error.to_string(), now()) else {
        return;
    };
    match ctx.write_permission_status(obj, &pending).await {
        Ok(()) => ctx.written.remember(&ctx.caches, obj, &pending),
        Err(e) => tracing::warn!(error = %e, "could not show the pending grant change"),
    }
}

/// Records a carried-out decision: the status (when it changed), then the activity log: the
/// Event of each transition not yet recorded, and any warning.
async fn record(
    ctx: &Context,
    obj: &PurchasePermission,
    decision: PermissionDecision,
) -> Result<Action, Error> {
    if decision.status_changed {
        ctx.write_permission_status(obj, &decision.status).await?;
        ctx.written.remember(&ctx.caches, obj, &decision.status);
        ctx.crash_point(super::CrashPoint::AfterStatusWrite).await;
    }
    let kind = super::metrics::Kind::purchasepermission;
    for e in decision.events.iter().filter(|e| e.transition.is_none()) {
        events::publish_regarding(ctx, obj.object_ref(&()), e, kind).await;
    }
    match events::log_transitions(ctx, obj, &decision.status).await {
        Ok(()) => Ok(Action::await_change()),
        Err(events::Unrecorded) => Ok(Action::requeue(EVENT_RETRY)),
    }
}

/// The permission is being deleted: an enabled grant is withdrawn (or handed over, or orphaned)
/// first, on a fresh read, and the status and activity log record it before the object goes.
async fn withdraw_on_delete(
    obj: Arc<PurchasePermission>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    ctx.drift.forget(obj.as_ref());
    let (known, _) = ctx
        .owned
        .with_recorded_grant(&obj, ctx.written.known_status(&obj));
    let holds_grant = known
        .as_ref()
        .is_some_and(|s| s.state == PermissionState::Enabled);
    if !holds_grant && let Some(status) = &known {
        withdraw_grant_in_doubt(&ctx, &ns, &obj, status).await?;
    }
    let (obj, status) = if holds_grant {
        let fresh = match confirm_deleting(&ctx, &ns, &obj).await? {
            Some(fresh) => Arc::new(fresh),
            None => return Ok(Action::await_change()),
        };
        let status = withdraw(&ctx, &ns, &fresh).await?;
        (fresh, status)
    } else {
        (obj, known)
    };
    let Some(status) = status else {
        return Ok(Action::await_change());
    };
    // Once the finalizer goes the status goes with it: its Events are recorded first.
    match events::log_transitions(&ctx, &obj, &status).await {
        Ok(()) => Ok(Action::await_change()),
        Err(events::Unrecorded) => Err(Error::Finalizer(
            "the withdrawal's activity-log Event is not recorded yet".into(),
        )),
    }
}

/// A permission deleted while its grant is in doubt (see `policy::grant_in_doubt`): the grant
/// Partner Center may hold is withdrawn (404 counts as done), unless another permission for the
/// customer holds it or the deletion policy orphans grants, and the doubt is cleared.
async fn withdraw_grant_in_doubt(
    ctx: &Context,
    ns: &str,
    obj: &PurchasePermission,
    status: &PurchasePermissionStatus,
) -> Result<(), Error> {
    let customer = ctx.caches.customer(ns, &obj.spec.customer_ref.name);
    let customer_tenant = customer.as_ref().map(|c| c.spec.tenant_id.as_str());
    let doubt = status.state != PermissionState::Enabled && status.granted_tenant_id.is_some();
    // Without the Customer, who recorded the tenant decides; the cache keeps no managedFields.
    let recorded = match customer_tenant {
        None if doubt => confirm_deleting(ctx, ns, obj)
            .await?
            .is_some_and(|fresh| tenant_recorded_by_operator(&fresh)),
        _ => false,
    };
    let Some(tenant) = policy::grant_in_doubt(Some(status), customer_tenant, recorded) else {
        return Ok(());
    };
    let rivals = ctx.caches.permissions_of(ns, &obj.spec.customer_ref.name);
    let rival_holds = rivals
        .iter()
        .filter(|o| o.metadata.name != obj.metadata.name)
        .any(|o| rival(o).holds_grant);
    if !rival_holds && obj.spec.deletion_policy == crate::api::DeletionPolicy::Withdraw {
        ctx.revoke(ns, tenant).await?;
    }
    let cleared = PurchasePermissionStatus {
        granted_tenant_id: None,
        ..status.clone()
    };
    ctx.write_permission_status(obj, &cleared).await?;
    ctx.written.remember(&ctx.caches, obj, &cleared);
    Ok(())
}

/// The object being deleted, read fresh (`None`: already gone).
async fn confirm_deleting(
    ctx: &Context,
    ns: &str,
    obj: &PurchasePermission,
) -> Result<Option<PurchasePermission>, Error> {
    let api: Api<PurchasePermission> = Api::namespaced(ctx.client.clone(), ns);
    Ok(api
        .get_opt(&obj.name_any())
        .await?
        .filter(|fresh| fresh.metadata.uid == obj.metadata.uid))
}

/// Withdraws (hands over, orphans) the grant a deleted permission's fresh status holds, and
/// writes the status that records it. Returns the status as it now stands.
async fn withdraw(
    ctx: &Context,
    ns: &str,
    fresh: &PurchasePermission,
) -> Result<Option<PurchasePermissionStatus>, Error> {
    let current = fresh.status.as_ref();
    let name = fresh.metadata.name.as_deref();
    let rivals = ctx.caches.permissions_of(ns, &fresh.spec.customer_ref.name);
    let rival_holder = rivals
        .iter()
        .filter(|o| o.metadata.name.as_deref() != name)
        .find(|o| rival(o).holds_grant)
        .and_then(|o| o.metadata.name.as_deref());
    let by = enabled_manager(fresh);
    let facts = policy::DeletionFacts {
        current,
        policy: fresh.spec.deletion_policy,
        rival_holder,
        enabled_by: by.as_deref(),
    };
    let Some(withdrawal) = policy::withdraw_on_delete(facts, now()) else {
        return Ok(fresh.status.clone());
    };
    if withdrawal.revoke {
        ctx.revoke(ns, &granted_tenant(current)).await?;
        ctx.crash_point(super::CrashPoint::AfterRevoke).await;
    }
    ctx.write_permission_status(fresh, &withdrawal.status)
        .await?;
    ctx.written.remember(&ctx.caches, fresh, &withdrawal.status);
    Ok(Some(withdrawal.status))
}

/// The tenant an in-effect grant was made for (recorded in the status when it was granted).
fn granted_tenant(status: Option<&PurchasePermissionStatus>) -> String {
    status
        .and_then(|s| s.granted_tenant_id.clone())
        .unwrap_or_default()
}
