//! What every reconcile shares: the client, caches, backend and metrics, the status write, and
//! the memo of permission statuses this process wrote before the cache showed them.

use super::backoff::Backoff;
use super::caches::Caches;
use super::metrics::{self, Metrics};
use super::{Error, MANAGER};
use crate::api::{PurchasePermission, PurchasePermissionStatus};
use crate::backend::{Backend, Grant};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    /// Who the activity-log Events are reported by.
    pub reporter: Reporter,
    pub caches: Caches,
    pub backend: Arc<dyn Backend>,
    pub metrics: Arc<Metrics>,
    /// Failed attempts per object since its last success.
    pub backoff: Backoff,
    /// Permission statuses written but not yet seen by the cache.
    pub written: WrittenStatuses,
}

impl Context {
    pub fn new(
        client: Client,
        caches: Caches,
        backend: Arc<dyn Backend>,
        metrics: Arc<Metrics>,
    ) -> Context {
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            client,
            reporter,
            caches,
            backend,
            metrics,
            backoff: Backoff::default(),
            written: WrittenStatuses::default(),
        }
    }

    /// Switches a grant on where it lives, counted by result.
    pub async fn grant(&self, grant: &Grant) -> Result<(), Error> {
        let result = self.backend.grant(grant).await;
        self.count_backend_call("grant", result.is_ok());
        Ok(result?)
    }

    /// Withdraws the grant of a customer tenant where it lives, counted by result.
    pub async fn revoke(&self, customer_tenant_id: &str) -> Result<(), Error> {
        let result = self.backend.revoke(customer_tenant_id).await;
        self.count_backend_call("revoke", result.is_ok());
        Ok(result?)
    }

    fn count_backend_call(&self, call: &'static str, ok: bool) {
        let labels = metrics::BackendLabels {
            backend: self.backend.name(),
            call,
            result: if ok { "ok" } else { "error" },
        };
        self.metrics.backend_calls.get_or_create(&labels).inc();
    }

    /// Writes an object's status by server-side apply (forced: the operator owns status).
    pub async fn write_status<K>(
        &self,
        kind: metrics::Kind,
        obj: &K,
        status: impl Serialize,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let ns = obj.meta().namespace.as_deref().ok_or(Error::NoNamespace)?;
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        // The answer (the whole object, managedFields and all) is not read: the watch brings the
        // object to the cache anyway, so parsing it into `K` here would be wasted work.
        let request = kube::core::Request::new(api.resource_url())
            .patch_subresource(
                "status",
                &obj.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .map_err(kube::Error::BuildRequest)?;
        self.client.request_text(request).await?;
        self.metrics.write(kind, "status");
        Ok(())
    }
}

/// The permission statuses this process wrote, by uid, with the resourceVersion they were based
/// on: until the cache shows a newer object, that written status is the current one (so a
/// reconcile racing the watch does not re-announce a transition it already made).
#[derive(Default)]
pub struct WrittenStatuses(Mutex<HashMap<String, (String, PurchasePermissionStatus)>>);

impl WrittenStatuses {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (String, PurchasePermissionStatus)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The permission's status as this process last knows it: the cached one, or the one it
    /// wrote itself when the cache has not caught up with that write yet.
    pub fn known_status(&self, obj: &PurchasePermission) -> Option<PurchasePermissionStatus> {
        // Entries the cache has moved past are dropped by the watch feed (`forget_superseded`).
        let uid = obj.metadata.uid.as_deref().unwrap_or("");
        match self.lock().get(uid) {
            Some((base, status))
                if obj.metadata.resource_version.as_deref() == Some(base.as_str()) =>
            {
                Some(status.clone())
            }
            _ => obj.status.clone(),
        }
    }

    /// Remembers a status just written for `obj` (as cached when the write was decided).
    pub fn remember(
        &self,
        caches: &Caches,
        obj: &PurchasePermission,
        status: &PurchasePermissionStatus,
    ) {
        if let (Some(uid), Some(rv)) = (&obj.metadata.uid, &obj.metadata.resource_version) {
            let mut written = self.lock();
            written.insert(uid.clone(), (rv.clone(), status.clone()));
            // The watch may have brought the written object before this write returned.
            if let Some(cached) = caches.permissions.get(&ObjectRef::from_obj(obj))
                && cached.metadata.resource_version.as_ref() != Some(rv)
            {
                written.remove(uid);
            }
        }
    }

    /// Drops the remembered write once the cache holds a newer object than it was based on
    /// (called by the watch feed, so entries do not outlive their use).
    pub fn forget_superseded(&self, obj: &PurchasePermission) {
        let uid = obj.metadata.uid.as_deref().unwrap_or("");
        let mut written = self.lock();
        if let Some((base, _)) = written.get(uid)
            && obj.metadata.resource_version.as_deref() != Some(base.as_str())
        {
            written.remove(uid);
        }
    }

    /// Forgets the object altogether (it is being deleted).
    pub fn forget(&self, obj: &PurchasePermission) {
        self.lock()
            .remove(obj.metadata.uid.as_deref().unwrap_or(""));
    }
}
