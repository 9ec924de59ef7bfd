//! Where a grant lives. `cluster`: the PurchasePermission's status is the record and its Events
//! are the activity log. A Partner Center backend (SelfServePolicy API) drops in behind the same
//! trait without touching the reconcilers.

use std::future::Future;
use std::pin::Pin;

/// A grant to create or withdraw, for one customer tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub customer_tenant_id: String,
    /// Partner Center resource names, e.g. "AzureReservedInstances".
    pub resources: Vec<String>,
}

/// The error a backend reports; retried with backoff by the reconciler.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

pub type BackendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BackendError>> + Send + 'a>>;

/// Turns the customer permission on and off where it really lives.
pub trait Backend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Switches the permission on (idempotent).
    fn grant<'a>(&'a self, grant: &'a Grant) -> BackendFuture<'a>;
    /// Switches it off (idempotent: absent is fine).
    fn revoke<'a>(&'a self, customer_tenant_id: &'a str) -> BackendFuture<'a>;
}

/// The grant is the PurchasePermission's status; nothing to call.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterBackend;

impl Backend for ClusterBackend {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn grant<'a>(&'a self, _grant: &'a Grant) -> BackendFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    fn revoke<'a>(&'a self, _customer_tenant_id: &'a str) -> BackendFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}
