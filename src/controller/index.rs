//! Secondary indexes over the caches: which objects refer to a given (namespace, key). Kept up
//! to date by the watch feeds, so relation lookups cost O(related) instead of a cache scan.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

type NsKey = (String, String);

#[derive(Default)]
struct Inner {
    by_key: HashMap<NsKey, BTreeSet<String>>,
    key_of: HashMap<NsKey, String>,
}

/// Object names by the key they refer to (customerRef, subscriptionRef, tenantId, ...).
#[derive(Default)]
pub struct RefIndex {
    inner: Mutex<Inner>,
}

impl RefIndex {
    /// Records that `ns/name` refers to `key` now (`None` when the object is gone). Returns the
    /// key it referred to before, when that differs.
    pub fn set(&self, ns: &str, name: &str, key: Option<&str>) -> Option<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let id = (ns.to_string(), name.to_string());
        let old = match key {
            Some(k) => inner.key_of.insert(id, k.to_string()),
            None => inner.key_of.remove(&id),
        };
        if old.as_deref() == key {
            return None;
        }
        if let Some(o) = &old {
            let ok = (ns.to_string(), o.clone());
            if let Some(set) = inner.by_key.get_mut(&ok) {
                set.remove(name);
                if set.is_empty() {
                    inner.by_key.remove(&ok);
                }
            }
        }
        if let Some(k) = key {
            inner
                .by_key
                .entry((ns.to_string(), k.to_string()))
                .or_default()
                .insert(name.to_string());
        }
        old
    }

    /// Names of the objects in `ns` that refer to `key`.
    pub fn names(&self, ns: &str, key: &str) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .by_key
            .get(&(ns.to_string(), key.to_string()))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_moves_and_removals() {
        let idx = RefIndex::default();
        assert_eq!(idx.set("ns", "a", Some("k1")), None);
        idx.set("ns", "b", Some("k1"));
        idx.set("other", "c", Some("k1"));
        assert_eq!(idx.names("ns", "k1"), vec!["a", "b"]);
        assert_eq!(idx.set("ns", "a", Some("k2")), Some("k1".to_string()));
        assert_eq!(idx.names("ns", "k1"), vec!["b"]);
        assert_eq!(idx.names("ns", "k2"), vec!["a"]);
        assert_eq!(idx.set("ns", "a", Some("k2")), None, "unchanged");
        idx.set("ns", "b", None);
        assert!(idx.names("ns", "k1").is_empty());
        assert_eq!(idx.names("other", "k1"), vec!["c"]);
    }
}
