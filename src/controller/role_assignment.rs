//! The RoleAssignment reconciler: whether the assignment points at a known subscription, and
//! (with observations on) whether Azure Resource Manager lists it there. A managed one is made
//! in Azure, and removed from it (behind a finalizer) when the object is deleted.

use super::annotations;
use super::context::Context;
use super::subscription::recheck;
use super::{Error, metrics, now};
use crate::api::{Management, ROLE_FINALIZER, RoleAssignment};
use crate::backend::WantedAssignment;
use crate::policy::{self, Observed};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer;
use std::sync::Arc;
use std::time::Duration;

/// A managed assignment Azure could not be asked about is tried again this soon.
const RETRY_MANAGED: Duration = Duration::from_secs(30);

pub async fn reconcile(obj: Arc<RoleAssignment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let kind = metrics::Kind::roleassignment;
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
    let managed = obj.spec.management == Management::Manage;
    if !managed && !obj.finalizers().iter().any(|f| f == ROLE_FINALIZER) {
        return assess(obj, ctx).await;
    }
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<RoleAssignment> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer::finalizer(&api, ROLE_FINALIZER, obj, |event| async move {
        match event {
            finalizer::Event::Apply(o) => assess(o, ctx).await,
            finalizer::Event::Cleanup(o) => remove(o, ctx).await,
        }
    })
    .await;
    super::finalizers::settle(result)
}

/// Gather (and, when managed, make it in Azure) -> decide -> write the status.
async fn assess(obj: Arc<RoleAssignment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let c = &ctx.caches;
    let subscription = c.subscription(&ns, &obj.spec.subscription_ref.name);
    let tenant = subscription
        .as_ref()
        .and_then(|s| c.customer(&ns, &s.spec.customer_ref.name))
        .map(|cust| cust.spec.tenant_id.clone());
    let mut retry = None;
    let observed = match (&ctx.observations, &subscription, &tenant) {
        (Some(o), Some(s), Some(tenant)) => {
            let want = wanted(&obj, &ns, tenant, &s.spec.subscription_id);
            if ctx.refreshes.asked(obj.as_ref()) {
                o.forget_subscription_roles(&ns, want.subscription_id);
            }
            if obj.spec.management == Management::Manage {
                o.assign(&want).await.unwrap_or_else(|why| {
                    tracing::warn!(namespace = %ns, name = %obj.name_any(), error = %why, "could not assign the role in Azure");
                    retry = Some(RETRY_MANAGED);
                    Observed::Unknown
                })
            } else {
                o.role_assignment(
                    &ns,
                    tenant,
                    want.subscription_id,
                    want.principal_id,
                    want.role_guid,
                )
                .await
            }
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
    if let Some(status) = policy::decide_role_assignment(&facts, now()) {
        let kind = metrics::Kind::roleassignment;
        ctx.write_status(kind, obj.as_ref(), status).await?;
    }
    Ok(retry
        .map(Action::requeue)
        .unwrap_or_else(|| recheck(&ctx, &ns)))
}

/// The object is being deleted: a managed assignment is removed from Azure first.
async fn remove(obj: Arc<RoleAssignment>, ctx: Arc<Context>) -> Result<Action, Error> {
    if obj.spec.management != Management::Manage {
        return Ok(Action::await_change());
    }
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let c = &ctx.caches;
    let subscription = c.subscription(&ns, &obj.spec.subscription_ref.name);
    let tenant = subscription
        .as_ref()
        .and_then(|s| c.customer(&ns, &s.spec.customer_ref.name));
    // Without its subscription or customer there is nothing the operator can name in Azure.
    let (Some(o), Some(s), Some(tenant)) = (&ctx.observations, &subscription, &tenant) else {
        return Ok(Action::await_change());
    };
    let want = wanted(&obj, &ns, &tenant.spec.tenant_id, &s.spec.subscription_id);
    o.unassign(&want).await.map_err(|why| {
        Error::Backend(crate::backend::BackendError::new(
            crate::api::conditions::reasons::AZURE_ERROR,
            why,
        ))
    })?;
    Ok(Action::await_change())
}

fn wanted<'a>(
    obj: &'a RoleAssignment,
    ns: &'a str,
    tenant: &'a str,
    subscription_id: &'a str,
) -> WantedAssignment<'a> {
    WantedAssignment {
        ns,
        tenant,
        subscription_id,
        principal_id: &obj.spec.principal.id,
        principal_type: match obj.spec.principal.type_ {
            crate::api::PrincipalType::User => "User",
            crate::api::PrincipalType::Group => "Group",
            crate::api::PrincipalType::ServicePrincipal => "ServicePrincipal",
        },
        role_guid: obj.spec.role.definition_guid(),
    }
}
