//! The PurchasePermission reconciler: behind a finalizer, gather the facts (customer,
//! subscriptions, owner roles, rival permissions), decide through `policy`, then apply the
//! decision: the grant in the backend, the status, the activity log. Deleting an enabled
//! permission withdraws its grant first.

use super::caches::{Caches, seniority};
use super::context::Context;
use super::subscription::reported;
use super::{Error, events, now};
use crate::api::{
    AzureSubscription, Customer, FINALIZER, PermissionState, PurchasePermission,
    PurchasePermissionStatus,
};
use crate::backend::{Grant, Readiness};
use crate::policy::{self, Claimants, GrantChange, GrantMade, Observed, PermissionDecision};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer;
use std::sync::Arc;

/// How soon a grant change waiting for its namespace's connection to be checked is retried.
const SETTLING_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

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

/// Gather -> decide -> apply for a live permission.
async fn switch(obj: Arc<PurchasePermission>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let known = ctx.written.known_status(&obj);
    let (known, forged) = ctx.owned.with_recorded_grant(&obj, known);
    let observes = ctx.observations.as_ref().is_some_and(|o| o.observes(&ns));
    let related = Related::gather(&ctx.caches, &ns, &obj, observes);
    let readiness = ctx.backend.readiness(&ns);
    let backend = policy::BackendFact {
        kind: ctx.backend.kind(),
        not_ready: match &readiness {
            Readiness::NotReady(why) => Some(why.as_str()),
            _ => None,
        },
    };
    let facts = related.facts(&obj, known.as_ref(), backend);
    let mut decision = policy::permission_decision(&facts, now());
    let settling = readiness == Readiness::Settling || related.unobserved;
    if settling && decision.grant == GrantChange::Create {
        // The connection, or what Partner Center and Azure report, is being checked: grant once
        // it is, rather than on what the YAML says.
        return Ok(Action::requeue(SETTLING_RETRY));
    }
    // Someone else's status is written over even where it matches the corrected one.
    decision.status_changed |= forged;
    let decision = match switch_grant(&ctx, &ns, &obj, known.as_ref(), &decision).await {
        Ok(Some(made)) => policy::with_grant_made(decision, &made),
        Ok(None) => correct_drift(&ctx, &ns, &obj, decision).await?,
        Err(error) => {
            show_grant_pending(&ctx, &obj, &facts, &decision, &error).await;
            return Err(error);
        }
    };
    record(&ctx, &obj, decision).await?;
    Ok(Action::await_change())
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
}

impl Related {
    fn gather(c: &Caches, ns: &str, obj: &PurchasePermission, observes: bool) -> Related {
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
        }
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

/// Records a carried-out decision: the status (when it changed), then the activity log.
async fn record(
    ctx: &Context,
    obj: &PurchasePermission,
    decision: PermissionDecision,
) -> Result<(), Error> {
    if decision.status_changed {
        ctx.write_permission_status(obj, &decision.status).await?;
        ctx.written.remember(&ctx.caches, obj, &decision.status);
        ctx.crash_point(super::CrashPoint::AfterStatusWrite).await;
    }
    for e in &decision.events {
        events::publish(ctx, obj, e).await;
    }
    Ok(())
}

/// The permission is being deleted: an enabled grant is withdrawn and logged first.
async fn withdraw_on_delete(
    obj: Arc<PurchasePermission>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let known = ctx.written.known_status(&obj);
    ctx.written.forget(&obj);
    ctx.drift.forget(obj.as_ref());
    let policy = obj.spec.deletion_policy;
    if let Some(withdrawal) = policy::withdraw_on_delete(known.as_ref(), policy) {
        if withdrawal.revoke {
            let ns = obj.namespace().ok_or(Error::NoNamespace)?;
            ctx.revoke(&ns, &granted_tenant(known.as_ref())).await?;
            ctx.crash_point(super::CrashPoint::AfterRevoke).await;
        }
        events::publish(&ctx, obj.as_ref(), &withdrawal.event).await;
    }
    Ok(Action::await_change())
}

/// The tenant an in-effect grant was made for (recorded in the status when it was granted).
fn granted_tenant(status: Option<&PurchasePermissionStatus>) -> String {
    status
        .and_then(|s| s.granted_tenant_id.clone())
        .unwrap_or_default()
}
