//! When a grant is checked where it lives: when the activity log names its customer (a change
//! made elsewhere), and once a day for every grant in effect, spread over the day.

use kube::ResourceExt;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Key = (String, String);

/// The permissions whose grant is to be checked where it lives.
pub struct DriftChecks {
    /// How often a grant in effect is checked anyway; `None`: never (nothing lives elsewhere).
    full_check_every: Option<Duration>,
    state: Mutex<DriftState>,
}

#[derive(Default)]
struct DriftState {
    /// Named by the activity log since their last check.
    requested: HashSet<Key>,
    /// When each grant in effect is next checked anyway.
    next_full_check: HashMap<Key, Instant>,
}

impl DriftChecks {
    pub fn new(full_check_every: Option<Duration>) -> DriftChecks {
        DriftChecks {
            full_check_every,
            state: Mutex::new(DriftState::default()),
        }
    }

    /// The activity log named this permission's customer: check its grant at the next reconcile.
    pub fn request(&self, namespace: &str, name: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.requested
                .insert((namespace.to_string(), name.to_string()));
        }
    }

    /// Whether this permission's grant should be checked now: asked for, or (when `enabled`) its
    /// periodic check is due. A grant first seen is scheduled at a random point of the period,
    /// so thousands of grants do not come due in the same minute.
    pub fn due<K: ResourceExt>(&self, obj: &K, enabled: bool) -> bool {
        let key = key_of(obj);
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        if s.requested.contains(&key) {
            return true;
        }
        let Some(period) = self.full_check_every.filter(|_| enabled) else {
            return false;
        };
        let now = Instant::now();
        let next = *s
            .next_full_check
            .entry(key)
            .or_insert_with(|| now + period.mul_f64(rand::random_range(0.0..1.0)));
        next <= now
    }

    /// The grant was checked (or just made): the request is served, the next periodic check is
    /// a period away.
    pub fn checked<K: ResourceExt>(&self, obj: &K) {
        let key = key_of(obj);
        if let Ok(mut s) = self.state.lock() {
            s.requested.remove(&key);
            if let Some(period) = self.full_check_every {
                s.next_full_check.insert(key, Instant::now() + period);
            }
        }
    }

    /// The permission is gone.
    pub fn forget<K: ResourceExt>(&self, obj: &K) {
        let key = key_of(obj);
        if let Ok(mut s) = self.state.lock() {
            s.requested.remove(&key);
            s.next_full_check.remove(&key);
        }
    }
}

fn key_of<K: ResourceExt>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{PurchasePermission, PurchasePermissionSpec};

    fn permission(name: &str) -> PurchasePermission {
        let spec: PurchasePermissionSpec =
            serde_json::from_value(serde_json::json!({"customerRef": {"name": "c"}}))
                .expect("spec");
        let mut p = PurchasePermission::new(name, spec);
        p.metadata.namespace = Some("ns".into());
        p
    }

    #[test]
    fn a_request_is_due_once_and_served_by_a_check() {
        let checks = DriftChecks::new(None);
        let p = permission("a");
        assert!(!checks.due(&p, true), "nothing asked, no periodic checks");
        checks.request("ns", "a");
        assert!(checks.due(&p, false));
        checks.checked(&p);
        assert!(!checks.due(&p, false));
    }

    #[test]
    fn periodic_checks_come_due_within_the_period_and_only_for_grants() {
        let checks = DriftChecks::new(Some(Duration::from_millis(30)));
        let p = permission("a");
        assert!(
            !checks.due(&p, false),
            "a permission without a grant is not checked"
        );
        let _ = checks.due(&p, true);
        std::thread::sleep(Duration::from_millis(40));
        assert!(checks.due(&p, true), "due within one period of first sight");
        checks.checked(&p);
        assert!(
            !checks.due(&p, true),
            "a check pushes the next one a period away"
        );
        checks.forget(&p);
    }
}
