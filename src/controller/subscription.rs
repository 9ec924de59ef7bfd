//! The AzureSubscription reconciler: eligibility (offer, billing, state: as Partner Center
//! reports them, with observations on), owners, and duplicate subscription ids.

use super::annotations;
use super::caches::seniority;
use super::context::Context;
use super::{Error, metrics, now};
use crate::api::conditions::{reasons, types};
use crate::api::{AzureSubscription, ObservedSubscription};
use crate::policy::{self, Claimants, Observed};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use std::sync::Arc;

pub async fn reconcile(obj: Arc<AzureSubscription>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let name = obj.name_any();
    // Gather.
    let c = &ctx.caches;
    let same_id = c.subscriptions_with_id(&ns, &obj.spec.subscription_id);
    let customer = c.customer(&ns, &obj.spec.customer_ref.name);
    let kind = metrics::Kind::azuresubscription;
    if annotations::hold_if_paused(
        &ctx,
        kind,
        obj.as_ref(),
        obj.status.as_ref(),
        obj.status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or(&[]),
    )
    .await?
    {
        return Ok(Action::await_change());
    }
    if let (Some(o), Some(cust)) = (&ctx.observations, &customer)
        && ctx.refreshes.asked(obj.as_ref())
    {
        o.forget_customer(&ns, &cust.spec.tenant_id);
    }
    let observed = match (&ctx.observations, &customer) {
        (Some(o), Some(cust)) => {
            o.subscription(&ns, &cust.spec.tenant_id, &obj.spec.subscription_id)
                .await
        }
        (Some(o), None) if o.observes(&ns) => Observed::Unknown,
        _ => Observed::Off,
    };
    let facts = policy::SubscriptionFacts {
        spec: &obj.spec,
        generation: obj.metadata.generation,
        current: obj.status.as_ref(),
        customer_exists: customer.is_some(),
        claimants: Claimants {
            me: seniority(obj.as_ref()),
            all: same_id.iter().map(|o| seniority(o.as_ref())).collect(),
        },
        owners: c.owners_on(&ns, &name),
        observed,
    };
    // Decide, then apply.
    if let Some(status) = policy::decide_subscription(&facts, now()) {
        let kind = metrics::Kind::azuresubscription;
        ctx.write_status(kind, obj.as_ref(), status).await?;
    }
    Ok(recheck(&ctx, &ns))
}

/// With observations on, the object is looked at again when they go stale.
pub(super) fn recheck(ctx: &Context, ns: &str) -> Action {
    match ctx.observations.as_ref().and_then(|o| o.recheck_after(ns)) {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    }
}

/// What the subscription's status says Partner Center reported (as the permission and the
/// customer read it): `Unknown` while a namespace that observes has not asked yet.
pub fn reported(s: &AzureSubscription, observes: bool) -> Observed<&ObservedSubscription> {
    let status = s.status.as_ref();
    if let Some(o) = status.and_then(|s| s.observed.as_ref()) {
        return Observed::Seen(o);
    }
    let in_sync = status.and_then(|s| policy::find_condition(&s.conditions, types::IN_SYNC));
    match (in_sync, observes) {
        (_, false) => Observed::Off,
        (Some(c), true) if c.reason == reasons::NOT_FOUND_IN_PARTNER_CENTER => Observed::NotFound,
        (Some(c), true) if c.reason == reasons::PARTNER_CENTER_ERROR => {
            Observed::Refused(reasons::PARTNER_CENTER_ERROR, c.message.clone())
        }
        _ => Observed::Unknown,
    }
}
