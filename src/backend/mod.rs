//! Where a grant lives, behind one trait: `cluster` (the PurchasePermission's status is the
//! record and its Events the activity log) and `partner_center` (Partner Center's
//! SelfServePolicy, through the namespace's PartnerCenterConnection).

mod cluster;

pub use cluster::ClusterBackend;

use crate::api::GrantBackend;
use crate::policy::GrantMade;
use std::future::Future;
use std::pin::Pin;

/// A grant to make, check or withdraw, for one customer tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The namespace of the permission (its PartnerCenterConnection is the partner).
    pub namespace: String,
    pub customer_tenant_id: String,
    /// Partner Center resource names, e.g. "AzureReservedInstances".
    pub resources: Vec<String>,
}

/// The error a backend reports; retried with backoff by the reconciler. Never holds a secret.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// Turns the customer permission on and off where it really lives.
pub trait Backend: Send + Sync {
    /// The metric label: `cluster` or `partner-center`.
    fn name(&self) -> &'static str;
    /// What the status records as the grant's home.
    fn kind(&self) -> GrantBackend;
    /// Why no grant can be changed in this namespace now (e.g. no Ready PartnerCenterConnection);
    /// `None` when it can. Read from memory: never a call.
    fn not_ready(&self, namespace: &str) -> Option<String>;
    /// Switches the permission on, or makes it cover `resources` (idempotent).
    fn grant<'a>(&'a self, grant: &'a Grant) -> BackendFuture<'a, GrantMade>;
    /// Switches it off (idempotent: absent is fine).
    fn revoke<'a>(&'a self, namespace: &'a str, customer_tenant_id: &'a str)
    -> BackendFuture<'a, ()>;
    /// Puts the grant back as declared (`enabled`, covering `grant.resources`) when it was
    /// changed elsewhere; true when something had to be corrected.
    fn verify<'a>(&'a self, grant: &'a Grant, enabled: bool) -> BackendFuture<'a, bool>;
}
