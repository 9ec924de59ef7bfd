//! The RoleAssignment reconciler: whether the assignment points at a known subscription, and
//! (with observations on) whether Azure Resource Manager lists it there.

use super::context::Context;
use super::subscription::recheck;
use super::{Error, metrics, now};
use crate::api::RoleAssignment;
use crate::policy::{self, Observed};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use std::sync::Arc;

pub async fn reconcile(obj: Arc<RoleAssignment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    // Gather.
    let c = &ctx.caches;
    let subscription = c.subscription(&ns, &obj.spec.subscription_ref.name);
    let tenant = subscription
        .as_ref()
        .and_then(|s| c.customer(&ns, &s.spec.customer_ref.name))
        .map(|cust| cust.spec.tenant_id.clone());
    let observed = match (&ctx.observations, &subscription, &tenant) {
        (Some(o), Some(s), Some(tenant)) => {
            let role = obj.spec.role.definition_guid();
            let principal = &obj.spec.principal.id;
            o.role_assignment(&ns, tenant, &s.spec.subscription_id, principal, role)
                .await
        }
        (Some(o), _, _) if o.observes(&ns) => Observed::Unknown,
        _ => Observed::Off,
    };
    let facts = policy::RoleAssignmentFacts {
        spec: &obj.spec,
        generation: obj.metadata.generation,
        current: obj.status.as_ref(),
        subscription_exists: subscription.is_some(),
        observed,
    };
    // Decide, then apply.
    if let Some(status) = policy::decide_role_assignment(&facts, now()) {
        let kind = metrics::Kind::roleassignment;
        ctx.write_status(kind, obj.as_ref(), status).await?;
    }
    Ok(recheck(&ctx, &ns))
}
