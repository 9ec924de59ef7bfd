//! The Customer reconciler: the summary a dashboard shows (subscriptions, eligible ones, whether
//! the grant is in effect) and duplicate tenants.

use super::annotations;
use super::caches::seniority;
use super::context::Context;
use super::subscription::{recheck, reported};
use super::{Error, metrics, now};
use crate::api::{Customer, PermissionState};
use crate::policy::{self, Claimants, Observed};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use std::sync::Arc;

pub async fn reconcile(obj: Arc<Customer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let name = obj.name_any();
    let kind = metrics::Kind::customer;
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
    if let Some(o) = ctx
        .observations
        .as_ref()
        .filter(|_| ctx.refreshes.asked(obj.as_ref()))
    {
        o.forget_customers(&ns);
    }
    // Gather.
    let c = &ctx.caches;
    let subscriptions = c.subscriptions_of(&ns, &name);
    let observes = ctx.observations.as_ref().is_some_and(|o| o.observes(&ns));
    let eligible = subscriptions
        .iter()
        .filter(|s| {
            let reported = reported(s, observes);
            policy::observed_eligibility(&s.spec, true, &reported).is_ok()
        })
        .count() as i32;
    let observed = match &ctx.observations {
        Some(o) => o.customer(&ns, &obj.spec.tenant_id).await,
        None => Observed::Off,
    };
    let granted = c.permissions_of(&ns, &name).iter().any(|p| {
        p.status
            .as_ref()
            .is_some_and(|s| s.state == PermissionState::Enabled)
    });
    let same_tenant = c.customers_with_tenant(&ns, &obj.spec.tenant_id);
    let facts = policy::CustomerFacts {
        spec: &obj.spec,
        generation: obj.metadata.generation,
        current: obj.status.as_ref(),
        claimants: Claimants {
            me: seniority(obj.as_ref()),
            all: same_tenant.iter().map(|o| seniority(o.as_ref())).collect(),
        },
        subscriptions: subscriptions.len() as i32,
        eligible_subscriptions: eligible,
        permission_granted: granted,
        observed,
    };
    // Decide, then apply.
    if let Some(status) = policy::decide_customer(&facts, now()) {
        let kind = metrics::Kind::customer;
        ctx.write_status(kind, obj.as_ref(), status).await?;
    }
    Ok(recheck(&ctx, &ns))
}
