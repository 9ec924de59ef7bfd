//! The live link of each namespace to Partner Center: the client its PartnerCenterConnection
//! built and whether grants can be changed through it.

use crate::backend::Readiness;
use crate::partnercenter::PartnerCenter;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One namespace's link: the client (when credentials were readable) and its state.
#[derive(Clone)]
pub struct Link {
    /// The PartnerCenterConnection's name.
    pub connection: String,
    pub client: Option<PartnerCenter>,
    pub readiness: Readiness,
    /// Whether objects are checked against Partner Center and Azure (`spec.observe`).
    pub observe: bool,
    /// How long observations hold (`spec.resyncInterval`).
    pub resync: std::time::Duration,
    /// Which credentials the client was built from (hashes).
    pub credentials: KnownCredentials,
    /// A refusal Partner Center gave a call with these credentials (reason, message).
    pub refusal: Option<(&'static str, String)>,
}

/// Which credentials a link's client was built from: the connection and app (`identity`) and
/// the refresh tokens that are its own (the Secret's, and those it wrote back), as hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KnownCredentials {
    pub identity: u64,
    pub tokens: Vec<u64>,
}

/// The links of every namespace, shared by the connection reconciler (which writes them) and
/// the Partner Center backend (which reads them). Cheap to clone.
#[derive(Clone, Default)]
pub struct Connections {
    inner: Arc<RwLock<State>>,
    /// Asks the connection reconciler to check a namespace's connection again now.
    recheck: Arc<std::sync::Mutex<Option<RecheckTx>>>,
}

/// Where requests to check a connection again go (the connection controller's trigger stream).
pub type RecheckTx = futures::channel::mpsc::UnboundedSender<
    kube::runtime::reflector::ObjectRef<crate::api::PartnerCenterConnection>,
>;

#[derive(Default)]
struct State {
    links: HashMap<String, Link>,
    /// Namespaces that have a PartnerCenterConnection (from its watch), checked or not.
    declared: HashMap<String, String>,
    /// Whether the connections' watch has listed once.
    listed: bool,
    /// The MS-CorrelationId of each namespace's clients, for the life of this process.
    correlation_ids: HashMap<String, String>,
    /// Namespaces whose connection is being deleted and waits for their grants to be withdrawn.
    deleting: std::collections::HashSet<String>,
}

impl Connections {
    /// Whether grants can be changed in `namespace` now.
    pub fn readiness(&self, namespace: &str) -> Readiness {
        let Ok(s) = self.inner.read() else {
            return Readiness::Settling;
        };
        if let Some(link) = s.links.get(namespace) {
            return link.readiness.clone();
        }
        match s.declared.get(namespace) {
            Some(_) => Readiness::Settling,
            None if !s.listed => Readiness::Settling,
            None => Readiness::NotReady(format!(
                "no PartnerCenterConnection in namespace {namespace:?}; create one (see examples/)"
            )),
        }
    }

    /// The client of a namespace whose connection is Ready.
    pub fn client(&self, namespace: &str) -> Result<PartnerCenter, String> {
        let s = self
            .inner
            .read()
            .map_err(|_| "connections unavailable".to_string())?;
        match s.links.get(namespace) {
            Some(Link {
                client: Some(c),
                readiness: Readiness::Ready,
                ..
            }) => Ok(c.clone()),
            Some(Link {
                readiness: Readiness::NotReady(why),
                ..
            }) => Err(why.clone()),
            _ => Err(format!(
                "no Ready PartnerCenterConnection in namespace {namespace:?}"
            )),
        }
    }

    /// The MS-CorrelationId this process uses for a namespace's Partner Center calls (the same for
    /// every client it builds there: the activity log's records of them are ours).
    pub fn correlation_id(&self, namespace: &str) -> String {
        let fresh = || uuid::Uuid::new_v4().to_string();
        match self.inner.write() {
            Ok(mut s) => s
                .correlation_ids
                .entry(namespace.to_string())
                .or_insert_with(fresh)
                .clone(),
            Err(_) => fresh(),
        }
    }

    /// How long observations hold in a namespace that observes (`None`: it does not, or has no
    /// link yet). Asked on every reconcile: nothing is cloned.
    pub fn observing(&self, namespace: &str) -> Option<std::time::Duration> {
        let s = self.inner.read().ok()?;
        s.links
            .get(namespace)
            .filter(|l| l.observe)
            .map(|l| l.resync)
    }

    /// The current link of a namespace.
    pub fn link(&self, namespace: &str) -> Option<Link> {
        self.inner.read().ok()?.links.get(namespace).cloned()
    }

    /// Records a namespace's link; returns whether its readiness changed (the permissions that
    /// wait for it, or that show why it is not ready, are decided again).
    pub fn set(&self, namespace: &str, link: Link) -> bool {
        let Ok(mut s) = self.inner.write() else {
            return false;
        };
        let before = s.links.get(namespace).map(|l| l.readiness.clone());
        let changed = before.as_ref() != Some(&link.readiness);
        s.declared
            .insert(namespace.to_string(), link.connection.clone());
        s.links.insert(namespace.to_string(), link);
        changed
    }

    /// A call through a namespace's client was refused for its credentials (e.g. the user is
    /// not an Admin Agent): no grant changes, and the connection shows why, until other
    /// credentials are given (signing in again with the same ones would succeed and hide it).
    pub fn refused(&self, namespace: &str, reason: &'static str, why: String) {
        if let Ok(mut s) = self.inner.write()
            && let Some(link) = s.links.get_mut(namespace)
        {
            link.readiness = Readiness::NotReady(why.clone());
            link.refusal = Some((reason, why));
            let target =
                kube::runtime::reflector::ObjectRef::new(&link.connection).within(namespace);
            if let Ok(tx) = self.recheck.lock()
                && let Some(tx) = tx.as_ref()
            {
                let _ = tx.unbounded_send(target);
            }
        }
    }

    /// The namespace's connection is being deleted: it waits for the namespace's grants to be
    /// withdrawn, and [`Self::permission_changed`] wakes it when one may have been.
    pub fn deleting(&self, namespace: &str) {
        if let Ok(mut s) = self.inner.write() {
            s.deleting.insert(namespace.to_string());
        }
    }

    /// A PurchasePermission of the namespace changed or went: a connection being deleted there
    /// is checked again now (it may be free to go), not on its next poll.
    pub fn permission_changed(&self, namespace: &str) {
        let connection = match self.inner.read() {
            Ok(s) if s.deleting.contains(namespace) => s.declared.get(namespace).cloned(),
            _ => None,
        };
        if let Some(name) = connection
            && let Ok(tx) = self.recheck.lock()
            && let Some(tx) = tx.as_ref()
        {
            let target = kube::runtime::reflector::ObjectRef::new(&name).within(namespace);
            let _ = tx.unbounded_send(target);
        }
    }

    /// Where checks of a connection are requested (the connection controller listens).
    pub fn on_recheck(&self, tx: RecheckTx) {
        if let Ok(mut slot) = self.recheck.lock() {
            *slot = Some(tx);
        }
    }

    /// The connections' watch saw a connection (or lost it: `None`).
    pub fn declared(&self, namespace: &str, connection: Option<&str>) {
        if let Ok(mut s) = self.inner.write() {
            match connection {
                Some(name) => {
                    s.declared.insert(namespace.to_string(), name.to_string());
                }
                None => {
                    s.declared.remove(namespace);
                    s.links.remove(namespace);
                    s.deleting.remove(namespace);
                }
            }
        }
    }

    /// The connections' watch has listed once: a namespace without one now has none.
    pub fn listed(&self) {
        if let Ok(mut s) = self.inner.write() {
            s.listed = true;
        }
    }
}
