//! What every reconcile shares: the client, caches, backend and metrics, the status write, and
//! the memo of permission statuses this process wrote before the cache showed them.

use super::backoff::Backoff;
use super::caches::Caches;
use super::drift::DriftChecks;
use super::metrics::{self, Metrics};
use super::{Error, MANAGER};
use crate::api::{GrantBackend, PermissionState, PurchasePermission, PurchasePermissionStatus};
use crate::backend::{Backend, Grant, Observations};
use crate::policy::GrantMade;
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

/// Every grant in effect is checked where it lives this often, besides the checks the activity
/// log asks for.
const FULL_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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
    /// What this process last wrote as each object's status, to tell its own writes from others'.
    pub owned: OwnedStatuses,
    /// Which grants to check where they live (drift made elsewhere).
    pub drift: DriftChecks,
    /// What Partner Center and Azure report (`None`: the backend does not observe).
    pub observations: Option<Observations>,
    /// The `refresh` annotation values already acted on.
    pub refreshes: super::annotations::Refreshes,
    /// Which grant transitions' Events are known recorded.
    pub logged: super::events::LoggedTransitions,
    /// Where a reconcile may be stopped on purpose (the chaos runner's; `None` in production).
    pub crash_points: Option<Arc<super::CrashPoints>>,
}

impl Context {
    pub fn new(
        client: Client,
        caches: Caches,
        backend: Arc<dyn Backend>,
        metrics: Arc<Metrics>,
    ) -> Context {
        let backend_kind = backend.kind();
        let reporter = Reporter {
            controller: MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            client,
            reporter,
            caches,
            metrics,
            backoff: Backoff::default(),
            written: WrittenStatuses::default(),
            owned: OwnedStatuses::default(),
            observations: backend.observations(),
            refreshes: Default::default(),
            logged: Default::default(),
            crash_points: None,
            backend,
            drift: DriftChecks::new(match backend_kind {
                GrantBackend::Cluster => None,
                GrantBackend::PartnerCenter => Some(FULL_CHECK_EVERY),
            }),
        }
    }

    /// Stops here when the chaos runner armed `point` (returns at once otherwise).
    pub async fn crash_point(&self, point: super::CrashPoint) {
        if let Some(points) = &self.crash_points {
            points.reach(point).await;
        }
    }

    /// Makes a grant where it lives (or makes it cover its resources), counted by result.
    pub async fn grant(&self, grant: &Grant) -> Result<GrantMade, Error> {
        let result = self.backend.grant(grant).await;
        self.count_backend_call("grant", result.is_ok());
        Ok(result?)
    }

    /// Withdraws the grant of a customer tenant where it lives, counted by result.
    pub async fn revoke(&self, namespace: &str, customer_tenant_id: &str) -> Result<(), Error> {
        let result = self.backend.revoke(namespace, customer_tenant_id).await;
        self.count_backend_call("revoke", result.is_ok());
        Ok(result?)
    }

    /// Puts a grant back as declared if it was changed elsewhere, counted by result.
    pub async fn verify(&self, grant: &Grant, enabled: bool) -> Result<bool, Error> {
        let result = self.backend.verify(grant, enabled).await;
        self.count_backend_call("verify", result.is_ok());
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
        let written = Written::Status { granted: false };
        self.write_owned_status(kind, obj, status, written)
            .await
            .map(drop)
    }

    /// Writes a status given as JSON (any kind), recording whether it holds a grant (a
    /// PurchasePermission's `state: Enabled`), so the status this process owns stays known.
    pub async fn write_status_value<K>(
        &self,
        kind: metrics::Kind,
        obj: &K,
        status: &serde_json::Value,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let granted = status["state"] == "Enabled";
        let written = Written::Status { granted };
        self.write_owned_status(kind, obj, status, written)
            .await
            .map(drop)
    }

    /// Writes a permission's status, recording whether it holds a grant.
    pub async fn write_permission_status(
        &self,
        obj: &PurchasePermission,
        status: &PurchasePermissionStatus,
    ) -> Result<(), Error> {
        let granted = status.state == PermissionState::Enabled;
        let kind = metrics::Kind::purchasepermission;
        self.write_owned_status(kind, obj, status, Written::Status { granted })
            .await
            .map(drop)
    }

    /// Writes the status a grant is about to be made under (`policy::grant_intent`) and
    /// remembers it, so the status that records the grant a moment later is known over both
    /// the copy the reconcile started from and the intent's own copy in the cache.
    pub async fn write_permission_intent(
        &self,
        obj: &PurchasePermission,
        intent: &PurchasePermissionStatus,
    ) -> Result<(), Error> {
        let kind = metrics::Kind::purchasepermission;
        let answer = self
            .write_owned_status(kind, obj, intent, Written::Intent)
            .await?;
        let written: WrittenObject =
            serde_json::from_str(&answer).map_err(kube::Error::SerdeError)?;
        let version = written.metadata.resource_version.unwrap_or_default();
        self.written
            .remember_intent(&self.caches, obj, intent, version);
        Ok(())
    }

    async fn write_owned_status<K>(
        &self,
        kind: metrics::Kind,
        obj: &K,
        status: impl Serialize,
        written: Written,
    ) -> Result<String, Error>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let ns = obj.meta().namespace.as_deref().ok_or(Error::NoNamespace)?;
        // Noted before the write: its watch event may arrive before the answer does.
        let granted = matches!(written, Written::Status { granted: true });
        self.owned.writing(obj, status_hash(&status), granted);
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        let body = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        // The answer (the whole object, managedFields and all) is not parsed here: the watch
        // brings the object to the cache anyway, so parsing it into `K` would be wasted work.
        let request = kube::core::Request::new(api.resource_url())
            .patch_subresource(
                "status",
                &obj.name_any(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .map_err(kube::Error::BuildRequest)?;
        let answer = self.client.request_text(request).await?;
        self.owned.written(obj, written == Written::Intent);
        self.metrics.write(kind, "status");
        Ok(answer)
    }
}

/// What a status write records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Written {
    /// A status that stands (for a permission: whether it records a grant).
    Status { granted: bool },
    /// A permission's status just before its grant is made (it records no grant).
    Intent,
}

/// The part of a written object's answer the intent write reads.
#[derive(serde::Deserialize)]
struct WrittenObject {
    metadata: WrittenMeta,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct WrittenMeta {
    resource_version: Option<String>,
}

/// The permission statuses this process wrote, by uid, with the resourceVersions they supersede
/// (the copy the write was based on, and an intent written on the way): until the cache shows
/// a newer object, that written status is the current one (so a reconcile racing the watch does
/// not re-announce a transition it already made, nor decide on the intent it wrote).
#[derive(Default)]
pub struct WrittenStatuses(Mutex<HashMap<String, Remembered>>);

/// A written status and the resourceVersions of the copies it supersedes.
struct Remembered {
    bases: Vec<String>,
    status: PurchasePermissionStatus,
}

impl Remembered {
    fn supersedes(&self, obj: &PurchasePermission) -> bool {
        let rv = obj.metadata.resource_version.as_deref();
        self.bases.iter().any(|base| Some(base.as_str()) == rv)
    }
}

impl WrittenStatuses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Remembered>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The permission's status as this process last knows it: the cached one, or the one it
    /// wrote itself when the cache has not caught up with that write yet.
    pub fn known_status(&self, obj: &PurchasePermission) -> Option<PurchasePermissionStatus> {
        // Entries the cache has moved past are dropped by the watch feed (`forget_superseded`).
        let uid = obj.metadata.uid.as_deref().unwrap_or("");
        match self.lock().get(uid) {
            Some(written) if written.supersedes(obj) => Some(written.status.clone()),
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
        self.remember_over(caches, obj, status, None);
    }

    /// Remembers an intent just written for `obj`; the server holds it at `version`.
    pub fn remember_intent(
        &self,
        caches: &Caches,
        obj: &PurchasePermission,
        intent: &PurchasePermissionStatus,
        version: String,
    ) {
        self.remember_over(caches, obj, intent, Some(version));
    }

    fn remember_over(
        &self,
        caches: &Caches,
        obj: &PurchasePermission,
        status: &PurchasePermissionStatus,
        intent_version: Option<String>,
    ) {
        let (Some(uid), Some(rv)) = (&obj.metadata.uid, &obj.metadata.resource_version) else {
            return;
        };
        let mut written = self.lock();
        // A second write from the same copy (after an intent) supersedes what the first did.
        let mut bases = match written.remove(uid) {
            Some(earlier) if earlier.supersedes(obj) => earlier.bases,
            _ => vec![rv.clone()],
        };
        bases.extend(intent_version);
        let remembered = Remembered {
            bases,
            status: status.clone(),
        };
        // The watch may have brought the written object before this write returned.
        let cached = caches.permissions.get(&ObjectRef::from_obj(obj));
        if cached.is_none_or(|cached| remembered.supersedes(&cached)) {
            written.insert(uid.clone(), remembered);
        }
    }

    /// Drops the remembered write once the cache holds a newer object than it was based on
    /// (called by the watch feed, so entries do not outlive their use).
    pub fn forget_superseded(&self, obj: &PurchasePermission) {
        let uid = obj.metadata.uid.as_deref().unwrap_or("");
        let mut written = self.lock();
        if written.get(uid).is_some_and(|w| !w.supersedes(obj)) {
            written.remove(uid);
        }
    }

    /// Forgets the object altogether (it is being deleted).
    pub fn forget(&self, obj: &PurchasePermission) {
        self.lock()
            .remove(obj.metadata.uid.as_deref().unwrap_or(""));
    }
}

/// A hash of a status as it goes on the wire: equal statuses hash equal, whoever holds them.
pub fn status_hash(status: &impl Serialize) -> u64 {
    use std::hash::Hasher;
    /// Feeds the serialized bytes straight into the hasher (no buffer).
    struct HashWriter(std::collections::hash_map::DefaultHasher);
    impl std::io::Write for HashWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.write(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = HashWriter(Default::default());
    // Serializing our own status types cannot fail; a failure would only cost a reconcile.
    let _ = serde_json::to_writer(&mut writer, status);
    writer.0.finish()
}

/// What this process last wrote as each object's status (a hash of it) and, for a permission,
/// whether that status recorded a grant: a few dozen bytes of memo per object. A status-only change to
/// anything else was made by someone else (a person, another tool, a stale replica): the object
/// is reconciled so the status it owns heals, and a permission's grant is taken from this
/// record rather than from the forged status.
#[derive(Default)]
pub struct OwnedStatuses(Mutex<HashMap<u64, Owned>>);

#[derive(Clone, Copy, Default)]
struct Owned {
    /// The status last written for sure, and whether it recorded a grant.
    status: Option<(u64, bool)>,
    /// Whether that status was an intent (written just before a grant is made).
    status_is_intent: bool,
    /// The intent the last status followed: its watch event may arrive after that status was
    /// written, and it is no one else's.
    intent_before: Option<(u64, bool)>,
    /// A write sent but not confirmed: it may have landed even if its answer was lost.
    pending: Option<(u64, bool)>,
    /// A reconcile ran on a copy older than the last write: the write's arrival in the cache
    /// must reconcile the object again (the decision was made against a stale status).
    recheck: bool,
}

impl Owned {
    /// The record a status of this hash belongs to, when it is one of ours.
    fn ours(&self, hash: u64) -> Option<(u64, bool)> {
        [self.pending, self.status, self.intent_before]
            .into_iter()
            .flatten()
            .find(|(h, _)| *h == hash)
    }
}

/// The memo's key for an object: a hash of its uid (keeping the uid itself would cost 60 bytes).
fn uid_key<K: Resource>(obj: &K) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    obj.meta().uid.hash(&mut h);
    h.finish()
}

impl OwnedStatuses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Owned>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writing<K: Resource>(&self, obj: &K, status: u64, granted: bool) {
        let mut owned = self.lock();
        owned.entry(uid_key(obj)).or_default().pending = Some((status, granted));
    }

    fn written<K: Resource>(&self, obj: &K, intent: bool) {
        if let Some(o) = self.lock().get_mut(&uid_key(obj)) {
            o.intent_before = o.status.filter(|_| o.status_is_intent);
            o.status = o.pending.take().or(o.status);
            o.status_is_intent = intent;
        }
    }

    /// Whether `hash` is a status this process wrote (or is writing) for the object.
    pub fn is_ours<K: Resource>(&self, obj: &K, hash: u64) -> bool {
        let owned = self.lock();
        owned
            .get(&uid_key(obj))
            .and_then(|o| o.ours(hash))
            .is_some()
    }

    /// A permission's status with the grant as this process recorded it, when someone else
    /// changed the status since: a forged `Enabled` is no grant, and a grant this process made
    /// is not lost to a forged `Disabled`. (After a restart there is no record: the status is.)
    /// The flag says the status was someone else's, so it must be written back even where the
    /// decision matches the corrected one.
    pub fn with_recorded_grant(
        &self,
        obj: &PurchasePermission,
        status: Option<PurchasePermissionStatus>,
    ) -> (Option<PurchasePermissionStatus>, bool) {
        let owned = self.lock().get(&uid_key(obj)).copied();
        let Some(mut status) = status else {
            return (None, false);
        };
        // No record (nothing written since start-up), or the status is one of ours.
        let Some(owned) = owned.filter(|o| o.ours(status_hash(&status)).is_none()) else {
            return (Some(status), false);
        };
        // The grant as last written for sure (a pending write may not have landed).
        let granted = owned.status.or(owned.pending).is_some_and(|(_, g)| g);
        let claims_grant = status.state == PermissionState::Enabled;
        if granted != claims_grant {
            status.state = if granted {
                PermissionState::Enabled
            } else {
                PermissionState::Disabled
            };
            if !granted {
                status.enabled_since = None;
                status.granted_tenant_id = None;
            }
        }
        (Some(status), true)
    }

    /// Notes that a reconcile is deciding on a copy whose status is not the one this process
    /// last wrote (the cache has not caught up with that write yet, or someone else wrote
    /// since): the next watch event of the object reconciles it again. Returns whether it did.
    pub fn mark_if_behind<K: Resource>(&self, obj: &K, hash: u64) -> bool {
        let mut owned = self.lock();
        let Some(o) = owned.get_mut(&uid_key(obj)) else {
            return false;
        };
        let behind = o.pending.or(o.status).is_some_and(|(h, _)| h != hash);
        o.recheck |= behind;
        behind
    }

    /// Whether the object was marked by [`Self::mark_if_behind`]; clears the mark.
    pub fn take_recheck<K: Resource>(&self, obj: &K) -> bool {
        let mut owned = self.lock();
        owned
            .get_mut(&uid_key(obj))
            .is_some_and(|o| std::mem::take(&mut o.recheck))
    }

    /// Forgets a deleted object.
    pub fn forget<K: Resource>(&self, obj: &K) {
        self.lock().remove(&uid_key(obj));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permission(state: &str) -> PurchasePermission {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "csp.operator.dev/v1alpha1", "kind": "PurchasePermission",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"customerRef": {"name": "c"}, "enabled": true},
            "status": {"state": state, "grantedTenantId": "t"}}))
        .expect("a permission")
    }

    #[test]
    fn own_writes_are_told_from_forged_statuses() {
        let owned = OwnedStatuses::default();
        let enabled = permission("Enabled");
        let status = enabled.status.clone().expect("status");
        // No record since start-up: the status is the record.
        assert_eq!(
            owned.with_recorded_grant(&enabled, Some(status.clone())),
            (Some(status.clone()), false)
        );
        owned.writing(&enabled, status_hash(&status), true);
        assert!(
            owned.is_ours(&enabled, status_hash(&status)),
            "pending counts"
        );
        owned.written(&enabled, false);
        assert!(owned.is_ours(&enabled, status_hash(&status)));

        // Someone writes Disabled over the grant this process made: the grant stays.
        let forged = permission("Disabled").status.expect("status");
        assert!(!owned.is_ours(&enabled, status_hash(&forged)));
        let (corrected, was_forged) = owned.with_recorded_grant(&enabled, Some(forged));
        assert!(was_forged);
        assert_eq!(corrected.map(|s| s.state), Some(PermissionState::Enabled));

        // This process records Disabled; a forged Enabled is then no grant.
        let disabled = permission("Disabled").status.expect("status");
        owned.writing(&enabled, status_hash(&disabled), false);
        owned.written(&enabled, false);
        let (corrected, was_forged) = owned.with_recorded_grant(&enabled, Some(status));
        assert!(was_forged);
        let corrected = corrected.expect("status");
        assert_eq!(corrected.state, PermissionState::Disabled);
        assert_eq!(corrected.granted_tenant_id, None);

        owned.forget(&enabled);
        assert!(!owned.is_ours(&enabled, status_hash(&disabled)));
    }

    fn at_version(obj: &PurchasePermission, rv: &str) -> PurchasePermission {
        let mut copy = obj.clone();
        copy.metadata.resource_version = Some(rv.into());
        copy
    }

    #[test]
    fn the_status_after_an_intent_is_known_over_both_older_copies() {
        let (caches, _writers) = Caches::new();
        let written = WrittenStatuses::default();
        let base = at_version(&permission("Disabled"), "10");
        let intent = permission("Disabled").status.expect("status");
        let enabled = permission("Enabled").status.expect("status");
        // The intent is written from copy 10 and lands as 11; the grant's status follows.
        written.remember_intent(&caches, &base, &intent, "11".into());
        assert_eq!(
            written.known_status(&base).map(|s| s.state),
            Some(intent.state)
        );
        written.remember(&caches, &base, &enabled);
        for copy in ["10", "11"] {
            let cached = at_version(&base, copy);
            written.forget_superseded(&cached);
            assert_eq!(
                written.known_status(&cached).map(|s| s.state),
                Some(PermissionState::Enabled),
                "the cache at {copy} is behind the last write"
            );
        }
        // The cache shows the last write (12): the memo goes, the cache is the status.
        let caught_up = at_version(&permission("Enabled"), "12");
        written.forget_superseded(&caught_up);
        assert_eq!(
            written
                .known_status(&at_version(&base, "11"))
                .map(|s| s.state),
            Some(PermissionState::Disabled)
        );
    }

    #[test]
    fn an_intent_stays_ours_through_the_write_that_follows_it() {
        let owned = OwnedStatuses::default();
        let obj = permission("Disabled");
        let (intent, enabled, later) = (1, 2, 3);
        owned.writing(&obj, intent, false);
        owned.written(&obj, true);
        owned.writing(&obj, enabled, true);
        owned.written(&obj, false);
        assert!(
            owned.is_ours(&obj, intent),
            "the intent's watch event is late"
        );
        assert!(owned.is_ours(&obj, enabled));
        owned.writing(&obj, later, false);
        owned.written(&obj, false);
        assert!(
            !owned.is_ours(&obj, intent),
            "an intent two writes old is someone else's"
        );
        // An ordinary status is no longer ours once another follows it.
        assert!(!owned.is_ours(&obj, enabled));
    }

    #[test]
    fn a_decision_on_a_copy_older_than_the_last_write_is_marked_once() {
        let owned = OwnedStatuses::default();
        let obj = permission("Enabled");
        let (old, new) = (1, 2);
        assert!(
            !owned.mark_if_behind(&obj, old),
            "no write yet: nothing to be behind"
        );
        owned.writing(&obj, new, true);
        owned.written(&obj, false);
        assert!(
            !owned.mark_if_behind(&obj, new),
            "the copy holds the last write"
        );
        assert!(!owned.take_recheck(&obj));
        assert!(
            owned.mark_if_behind(&obj, old),
            "the copy predates the last write"
        );
        assert!(owned.take_recheck(&obj));
        assert!(!owned.take_recheck(&obj), "taken once");
        // A write still in flight counts as the last one.
        owned.writing(&obj, 3, true);
        assert!(owned.mark_if_behind(&obj, new));
    }
}
