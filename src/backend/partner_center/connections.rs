//! The live link of each namespace to Partner Center: the client its PartnerCenterConnection
//! built, whether grants can be changed through it, and the grant changes this operator made
//! (so the activity log's echo of our own changes is not taken for drift).

use crate::backend::Readiness;
use crate::partnercenter::PartnerCenter;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// One namespace's link: the client (when credentials were readable) and its state.
#[derive(Clone)]
pub struct Link {
    /// The PartnerCenterConnection's name.
    pub connection: String,
    pub client: Option<PartnerCenter>,
    pub readiness: Readiness,
    /// Which credentials the client was built from (hashes).
    pub credentials: KnownCredentials,
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
}

#[derive(Default)]
struct State {
    links: HashMap<String, Link>,
    /// Namespaces that have a PartnerCenterConnection (from its watch), checked or not.
    declared: HashMap<String, String>,
    /// Whether the connections' watch has listed once.
    listed: bool,
    /// (namespace, customer tenant) -> when this operator last changed that customer's policy.
    own_changes: HashMap<(String, String), SystemTime>,
}

/// Activity-log records within this long of our own change to a customer are its echo.
const ECHO_WINDOW: Duration = Duration::from_secs(120);

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
        let s = self.inner.read().map_err(|_| "connections unavailable".to_string())?;
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

    /// The current link of a namespace.
    pub fn link(&self, namespace: &str) -> Option<Link> {
        self.inner.read().ok()?.links.get(namespace).cloned()
    }

    /// Records a namespace's link; returns whether it became Ready (waiting grants can go on).
    pub fn set(&self, namespace: &str, link: Link) -> bool {
        let Ok(mut s) = self.inner.write() else {
            return false;
        };
        let was_ready = s
            .links
            .get(namespace)
            .is_some_and(|l| l.readiness == Readiness::Ready);
        let ready = link.readiness == Readiness::Ready;
        s.declared
            .insert(namespace.to_string(), link.connection.clone());
        s.links.insert(namespace.to_string(), link);
        ready && !was_ready
    }

    /// A call through a namespace's client was refused for its credentials: no grant changes
    /// until the connection is checked again.
    pub fn refused(&self, namespace: &str, why: String) {
        if let Ok(mut s) = self.inner.write()
            && let Some(link) = s.links.get_mut(namespace)
        {
            link.readiness = Readiness::NotReady(why);
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

    /// This operator changed a customer's policy now.
    pub fn changed_by_us(&self, namespace: &str, customer_tenant_id: &str) {
        if let Ok(mut s) = self.inner.write() {
            let key = (namespace.to_string(), customer_tenant_id.to_lowercase());
            s.own_changes.insert(key, SystemTime::now());
        }
    }

    /// Whether an activity-log record of a customer at `when` is the echo of our own change.
    pub fn is_our_echo(&self, namespace: &str, customer_tenant_id: &str, when: SystemTime) -> bool {
        let Ok(s) = self.inner.read() else {
            return false;
        };
        let key = (namespace.to_string(), customer_tenant_id.to_lowercase());
        s.own_changes.get(&key).is_some_and(|ours| {
            let gap = ours
                .duration_since(when)
                .or_else(|_| when.duration_since(*ours))
                .unwrap_or_default();
            gap <= ECHO_WINDOW
        })
    }

    /// Forgets our own changes older than the echo window (called at each audit read).
    pub fn prune_own_changes(&self) {
        if let Ok(mut s) = self.inner.write() {
            let now = SystemTime::now();
            s.own_changes.retain(|_, t| {
                now.duration_since(*t).unwrap_or_default() <= ECHO_WINDOW * 2
            });
        }
    }
}
