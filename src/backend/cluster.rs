//! The cluster backend: the PurchasePermission's status is the grant; nothing to call.

use super::{Backend, BackendFuture, Grant, Readiness};
use crate::api::GrantBackend;
use crate::policy::GrantMade;

/// The grant is the PurchasePermission's status; nothing to call.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterBackend;

impl Backend for ClusterBackend {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn kind(&self) -> GrantBackend {
        GrantBackend::Cluster
    }

    fn readiness(&self, _namespace: &str) -> Readiness {
        Readiness::Ready
    }

    fn grant<'a>(&'a self, _grant: &'a Grant) -> BackendFuture<'a, GrantMade> {
        Box::pin(async { Ok(GrantMade::default()) })
    }

    fn revoke<'a>(&'a self, _ns: &'a str, _customer_tenant_id: &'a str) -> BackendFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    fn verify<'a>(&'a self, _grant: &'a Grant, _enabled: bool) -> BackendFuture<'a, bool> {
        Box::pin(async { Ok(false) })
    }
}
