//! The Partner Center backend: a grant is the customer's SelfServePolicy, made, adopted,
//! updated and deleted through the namespace's PartnerCenterConnection.

mod connect;
mod connections;
mod observations;

pub use connect::{connection_client, credentials_from_secret};
pub use connections::{Connections, KnownCredentials, Link};
pub use observations::{Observations, WantedAssignment};

use super::{Backend, BackendError, BackendFuture, Grant, Readiness};
use crate::api::GrantBackend;
use crate::api::conditions::reasons;
use crate::partnercenter::{PartnerCenter, PartnerCenterError, SelfServePolicy};
use crate::policy::GrantMade;
use std::collections::BTreeSet;

/// Conflicting writes (stale etags) are re-read and retried this many times.
const CONFLICT_RETRIES: usize = 3;

/// Grants live in Partner Center.
#[derive(Clone, Default)]
pub struct PartnerCenterBackend {
    connections: Connections,
    observations: Observations,
}

impl PartnerCenterBackend {
    pub fn new(connections: Connections) -> Self {
        PartnerCenterBackend {
            observations: Observations::new(connections.clone()),
            connections,
        }
    }

    /// The namespace's client, or why there is none.
    fn client(&self, namespace: &str) -> Result<PartnerCenter, Failure> {
        self.connections
            .client(namespace)
            .map_err(Failure::NotReady)
    }

    /// A failure as the reconciler shows it; credential refusals also stop grant changes in the
    /// namespace until the connection is checked again.
    fn failed(&self, namespace: &str, failure: Failure) -> BackendError {
        let error = match failure {
            Failure::NotReady(why) => {
                return BackendError::new(
                    reasons::PARTNER_CENTER_ERROR,
                    format!("ConnectionNotReady: {why}"),
                );
            }
            Failure::Call(e) => e,
        };
        let reason = error.reason();
        let message = format!("{reason}: {error}");
        let refusal = match reason {
            "CredentialsInvalid" => Some(reasons::CREDENTIALS_INVALID),
            "MfaRequired" => Some(reasons::MFA_REQUIRED),
            "AdminAgentRequired" => Some(reasons::ADMIN_AGENT_REQUIRED),
            _ => None,
        };
        if let Some(refusal) = refusal {
            self.connections
                .refused(namespace, refusal, message.clone());
        }
        BackendError::new(reasons::PARTNER_CENTER_ERROR, message)
    }

    async fn make(&self, grant: &Grant) -> Result<GrantMade, Failure> {
        let pc = self.client(&grant.namespace)?;
        match pc.create_self_serve_policy(&wanted(&pc, grant)).await {
            Ok(created) => Ok(GrantMade {
                policy_id: Some(created.id),
                adopted: false,
            }),
            // It exists (made elsewhere, or by us before a crash): adopt it, as declared.
            Err(PartnerCenterError::AlreadyExists { .. }) => {
                let (id, _) = self.align(&pc, grant).await?;
                Ok(GrantMade {
                    policy_id: Some(id),
                    adopted: true,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Makes the customer's existing policy cover exactly the grant's resources (PUT with its
    /// etag, re-read on a conflict); creates it if it vanished meanwhile. Returns its id and
    /// whether anything had to change.
    async fn align(&self, pc: &PartnerCenter, grant: &Grant) -> Result<(String, bool), Failure> {
        // Resource names compared in any casing, as Partner Center's enums are.
        let lower = |r: &String| r.to_ascii_lowercase();
        let declared: BTreeSet<String> = grant.resources.iter().map(lower).collect();
        let mut last = None;
        for _ in 0..CONFLICT_RETRIES {
            let Some(mut policy) = existing(pc, &grant.customer_tenant_id).await? else {
                return match pc.create_self_serve_policy(&wanted(pc, grant)).await {
                    Ok(created) => Ok((created.id, true)),
                    Err(e @ PartnerCenterError::AlreadyExists { .. }) => {
                        last = Some(e);
                        continue;
                    }
                    Err(e) => Err(e.into()),
                };
            };
            let granted: BTreeSet<String> = policy.resources().iter().map(lower).collect();
            if granted == declared {
                return Ok((policy.id, false));
            }
            policy.permissions = wanted(pc, grant).permissions;
            match pc.update_self_serve_policy(&policy).await {
                Ok(updated) => return Ok((updated.id, true)),
                Err(e @ PartnerCenterError::Conflict { .. }) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(match last {
            Some(e) => e.into(),
            None => Failure::NotReady("the self-serve policy kept changing".into()),
        })
    }

    async fn withdraw(&self, namespace: &str, tenant: &str) -> Result<bool, Failure> {
        let pc = self.client(namespace)?;
        let Some(policy) = existing(&pc, tenant).await? else {
            return Ok(false);
        };
        pc.delete_self_serve_policy(&policy.id).await?;
        Ok(true)
    }

    async fn check(&self, grant: &Grant, enabled: bool) -> Result<bool, Failure> {
        if !enabled {
            return self
                .withdraw(&grant.namespace, &grant.customer_tenant_id)
                .await;
        }
        let pc = self.client(&grant.namespace)?;
        Ok(self.align(&pc, grant).await?.1)
    }
}

/// The policy a grant declares: the customer may purchase its resources, billed to the partner.
fn wanted(pc: &PartnerCenter, grant: &Grant) -> SelfServePolicy {
    let resources: Vec<&str> = grant.resources.iter().map(String::as_str).collect();
    SelfServePolicy::for_customer(
        pc.partner_tenant_id(),
        &grant.customer_tenant_id,
        &resources,
    )
}

/// The customer's policy, if any (listed by customer, as the Partner Center SDK finds it).
async fn existing(
    pc: &PartnerCenter,
    customer_tenant_id: &str,
) -> Result<Option<SelfServePolicy>, PartnerCenterError> {
    let policies = pc.self_serve_policies(customer_tenant_id).await?;
    Ok(policies.into_iter().find(|p| {
        p.self_serve_entity
            .tenant_id
            .eq_ignore_ascii_case(customer_tenant_id)
    }))
}

/// Why a grant change failed: no usable connection, or a call that failed.
enum Failure {
    NotReady(String),
    Call(PartnerCenterError),
}

impl From<PartnerCenterError> for Failure {
    fn from(e: PartnerCenterError) -> Self {
        Failure::Call(e)
    }
}

impl Backend for PartnerCenterBackend {
    fn name(&self) -> &'static str {
        "partner-center"
    }

    fn kind(&self) -> GrantBackend {
        GrantBackend::PartnerCenter
    }

    fn readiness(&self, namespace: &str) -> Readiness {
        self.connections.readiness(namespace)
    }

    fn grant<'a>(&'a self, grant: &'a Grant) -> BackendFuture<'a, GrantMade> {
        Box::pin(async move {
            self.make(grant)
                .await
                .map_err(|e| self.failed(&grant.namespace, e))
        })
    }

    fn revoke<'a>(
        &'a self,
        namespace: &'a str,
        customer_tenant_id: &'a str,
    ) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            self.withdraw(namespace, customer_tenant_id)
                .await
                .map(|_| ())
                .map_err(|e| self.failed(namespace, e))
        })
    }

    fn verify<'a>(&'a self, grant: &'a Grant, enabled: bool) -> BackendFuture<'a, bool> {
        Box::pin(async move {
            self.check(grant, enabled)
                .await
                .map_err(|e| self.failed(&grant.namespace, e))
        })
    }

    fn connections(&self) -> Option<Connections> {
        Some(self.connections.clone())
    }

    fn observations(&self) -> Option<Observations> {
        Some(self.observations.clone())
    }
}
