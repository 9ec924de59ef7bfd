//! The RoleAssignment reconciler: whether the assignment points at a known subscription.

use super::context::Context;
use super::{Error, metrics, now};
use crate::api::RoleAssignment;
use crate::policy;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use std::sync::Arc;

pub async fn reconcile(obj: Arc<RoleAssignment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    // Gather.
    let subscription = &obj.spec.subscription_ref.name;
    let facts = policy::RoleAssignmentFacts {
        spec: &obj.spec,
        generation: obj.metadata.generation,
        current: obj.status.as_ref(),
        subscription_exists: ctx.caches.subscription(&ns, subscription).is_some(),
    };
    // Decide, then apply.
    if let Some(status) = policy::decide_role_assignment(&facts, now()) {
        let kind = metrics::Kind::roleassignment;
        ctx.write_status(kind, obj.as_ref(), status).await?;
    }
    Ok(Action::await_change())
}
