//! Where a grant lives, behind one trait: `cluster` (the PurchasePermission's status is the
//! record and its Events the activity log) and `partner_center` (Partner Center's
//! SelfServePolicy, through the namespace's PartnerCenterConnection).

mod cluster;
mod partner_center;

pub use cluster::ClusterBackend;
pub use partner_center::{
    Connections, KnownCredentials, Link, Observations, PartnerCenterBackend, WantedAssignment,
    connection_client, credentials_from_secret,
};

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
#[error("{message}")]
pub struct BackendError {
    /// The Warning Event reason a run of these failures records (`PartnerCenterError`,
    /// `AzureError`, ...).
    pub reason: &'static str,
    pub message: String,
}

impl BackendError {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        BackendError {
            reason,
            message: message.into(),
        }
    }
}

pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// Turns the customer permission on and off where it really lives.
pub trait Backend: Send + Sync {
    /// The metric label: `cluster` or `partner-center`.
    fn name(&self) -> &'static str;
    /// What the status records as the grant's home.
    fn kind(&self) -> GrantBackend;
    /// Whether a grant can be changed in this namespace now (e.g. it has a Ready
    /// PartnerCenterConnection). Read from memory: never a call.
    fn readiness(&self, namespace: &str) -> Readiness;
    /// Switches the permission on, or makes it cover `resources` (idempotent).
    fn grant<'a>(&'a self, grant: &'a Grant) -> BackendFuture<'a, GrantMade>;
    /// Switches it off (idempotent: absent is fine).
    fn revoke<'a>(
        &'a self,
        namespace: &'a str,
        customer_tenant_id: &'a str,
    ) -> BackendFuture<'a, ()>;
    /// Puts the grant back as declared (`enabled`, covering `grant.resources`) when it was
    /// changed elsewhere; true when something had to be corrected.
    fn verify<'a>(&'a self, grant: &'a Grant, enabled: bool) -> BackendFuture<'a, bool>;
    /// The namespaces' links to Partner Center, kept by the PartnerCenterConnection reconciler
    /// (`None`: this backend needs no connection).
    fn connections(&self) -> Option<Connections> {
        None
    }
    /// What Partner Center and Azure report about the declared objects (`None`: this backend
    /// does not observe).
    fn observations(&self) -> Option<Observations> {
        None
    }
}

/// Whether grants can be changed in a namespace now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// A connection exists but has not been checked yet: wait a moment rather than report it.
    Settling,
    /// Why not (no connection, credentials refused, ...).
    NotReady(String),
}

/// Where grants live, as `run --backend` and `up --backend` choose it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// Partner Center's SelfServePolicy, through each namespace's PartnerCenterConnection.
    #[default]
    PartnerCenter,
    /// No external calls: the PurchasePermission's status is the record (for trying the rules).
    Cluster,
}

impl BackendChoice {
    pub fn build(self) -> std::sync::Arc<dyn Backend> {
        match self {
            BackendChoice::PartnerCenter => {
                std::sync::Arc::new(PartnerCenterBackend::new(Connections::default()))
            }
            BackendChoice::Cluster => std::sync::Arc::new(ClusterBackend),
        }
    }
}
