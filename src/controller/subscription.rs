//! The AzureSubscription reconciler: eligibility (offer, billing, state), owners, and duplicate
//! subscription ids.

use super::caches::seniority;
use super::context::Context;
use super::{Error, metrics, now};
use crate::api::AzureSubscription;
use crate::policy::{self, Claimants};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use std::sync::Arc;

pub async fn reconcile(obj: Arc<AzureSubscription>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or(Error::NoNamespace)?;
    let name = obj.name_any();
    // Gather.
    let c = &ctx.caches;
    let same_id = c.subscriptions_with_id(&ns, &obj.spec.subscription_id);
    let facts = policy::SubscriptionFacts {
        spec: &obj.spec,
        generation: obj.metadata.generation,
        current: obj.status.as_ref(),
        customer_exists: c.customer(&ns, &obj.spec.customer_ref.name).is_some(),
        claimants: Claimants {
            me: seniority(obj.as_ref()),
            all: same_id.iter().map(|o| seniority(o.as_ref())).collect(),
        },
        owners: c.owners_on(&ns, &name),
    };
    // Decide, then apply.
    if let Some(status) = policy::decide_subscription(&facts, now()) {
        let kind = metrics::Kind::azuresubscription;
        ctx.write_status(kind, obj.as_ref(), status).await?;
    }
    Ok(Action::await_change())
}
