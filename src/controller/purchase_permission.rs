//! The PurchasePermission reconciler: behind a finalizer, gather the facts (customer,
//! subscriptions, owner roles, rival permissions), decide through `policy`, then apply the
//! decision: the grant in the backend, the status, the activity log. Deleting an enabled
//! permission withdraws its grant first.

use super::caches::{Caches, seniority};
use super::context::Context;
use super::{Error, events, now};
use crate::api::{
    AzureSubscription, Customer, FINALIZER, PurchasePermission, PurchasePermissionStatus,
};
use crate::backend::Grant;
use crate::policy::{self, Claimants, GrantChange, PermissionDecision};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer;
use std::sync::Arc;

pub async fn reconcile(obj: Arc<PurchasePermission>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<PurchasePermission> = Api::namespaced(ctx.client.clone(), &ns);
    let ctx2 = ctx.clone();
    let result = finalizer::finalizer(&api, FINALIZER, obj, |event| async move {
        match event {
            finalizer::Event::Apply(p) => switch(p, ctx2).await,
            finalizer::Event::Cleanup(p) => withdraw_on_delete(p, ctx2).await,
        }
    })
    .await;
    match result {
        Ok(action) => Ok(action),
        // The finalizer patch tests the finalizers it read from the cache; 422 means the cache
        // is behind our own previous write. Its watch event re-triggers this object.
        Err(
            finalizer::Error::AddFinalizer(kube::Error::Api(s))
            | finalizer::Error::RemoveFinalizer(kube::Error::Api(s)),
        ) if s.code == 422 => {
            tracing::debug!(message = %s.message, "finalizer patch raced the cache; waiting for the watch");
            Ok(Action::await_change())
        }
        Err(finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(other) => Err(Error::Finalizer(other.to_string())),
    }
}

/// Gather -> decide -> apply for a live permission.
async fn switch(obj: Arc<PurchasePermission>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let known = ctx.written.known_status(&obj);
    let (known, forged) = ctx.owned.with_recorded_grant(&obj, known);
    let related = Related::gather(&ctx.caches, &ns, &obj);
    let facts = related.facts(&obj, known.as_ref());
    let mut decision = policy::permission_decision(&facts, now());
    // Someone else's status is written over even where it matches the corrected one.
    decision.status_changed |= forged;
    if let Err(error) = switch_grant(&ctx, &obj, known.as_ref(), &decision).await {
        show_grant_pending(&ctx, &obj, &facts, &decision, &error).await;
        return Err(error);
    }
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
}

impl Related {
    fn gather(c: &Caches, ns: &str, obj: &PurchasePermission) -> Related {
        let customer = &obj.spec.customer_ref.name;
        let subscriptions = c
            .subscriptions_of(ns, customer)
            .into_iter()
            .map(|s| {
                let name = s.name_any();
                let has_owner = c.owners_on(ns, &name) > 0;
                (name, s, has_owner)
            })
            .collect();
        Related {
            customer: c.customer(ns, customer),
            subscriptions,
            claimants: c.permissions_of(ns, customer),
        }
    }

    fn facts<'a>(
        &'a self,
        obj: &'a PurchasePermission,
        current: Option<&'a PurchasePermissionStatus>,
    ) -> policy::PermissionFacts<'a> {
        let subscriptions = self
            .subscriptions
            .iter()
            .map(|(name, s, has_owner)| policy::SubscriptionFact {
                name,
                spec: &s.spec,
                has_owner: *has_owner,
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
        }
    }
}

/// Carries out the decision's grant change in the backend. It comes first, so a status never
/// claims what the backend lacks.
async fn switch_grant(
    ctx: &Context,
    obj: &PurchasePermission,
    known: Option<&PurchasePermissionStatus>,
    decision: &PermissionDecision,
) -> Result<(), Error> {
    match decision.grant {
        GrantChange::Create => {
            let grant = Grant {
                customer_tenant_id: decision
                    .status
                    .granted_tenant_id
                    .clone()
                    .unwrap_or_default(),
                resources: obj
                    .spec
                    .resources
                    .iter()
                    .map(|r| r.partner_center_name().to_string())
                    .collect(),
            };
            ctx.grant(&grant).await?;
        }
        GrantChange::Delete => ctx.revoke(&granted_tenant(known)).await?,
        GrantChange::None => {}
    }
    Ok(())
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
    if let Some(event) = policy::withdraw_on_delete(known.as_ref()) {
        ctx.revoke(&granted_tenant(known.as_ref())).await?;
        events::publish(&ctx, obj.as_ref(), &event).await;
    }
    Ok(Action::await_change())
}

/// The tenant an in-effect grant was made for (recorded in the status when it was granted).
fn granted_tenant(status: Option<&PurchasePermissionStatus>) -> String {
    status
        .and_then(|s| s.granted_tenant_id.clone())
        .unwrap_or_default()
}
