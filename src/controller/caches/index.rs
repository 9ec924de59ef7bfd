//! Secondary indexes over the caches: which objects refer to a given (namespace, key). Kept up
//! to date by the watch feeds, so relation lookups cost O(related) instead of a cache scan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One namespace's entries. Compact on purpose (one per object of the kind, 100k+ of them):
/// each name and key is allocated once and shared by both maps, and a key with one referrer
/// (the usual case) holds it inline.
#[derive(Default)]
struct Namespace {
    by_key: HashMap<Arc<str>, Names>,
    key_of: HashMap<Arc<str>, Arc<str>>,
}

/// The names referring to one key, sorted.
enum Names {
    One(Arc<str>),
    Many(Vec<Arc<str>>),
}

impl Names {
    fn insert(&mut self, name: Arc<str>) {
        match self {
            Names::One(only) if *only == name => {}
            Names::One(only) => {
                let mut all = vec![only.clone(), name];
                all.sort();
                *self = Names::Many(all);
            }
            Names::Many(all) => {
                if let Err(at) = all.binary_search(&name) {
                    all.insert(at, name);
                }
            }
        }
    }

    /// Removes `name`; returns whether none are left (`Many` always keeps two or more).
    fn remove(&mut self, name: &str) -> bool {
        match self {
            Names::One(only) => only.as_ref() == name,
            Names::Many(all) => {
                all.retain(|n| n.as_ref() != name);
                if let [last] = all.as_slice() {
                    *self = Names::One(last.clone());
                }
                false
            }
        }
    }

    fn to_vec(&self) -> Vec<String> {
        match self {
            Names::One(only) => vec![only.to_string()],
            Names::Many(all) => all.iter().map(|n| n.to_string()).collect(),
        }
    }
}

/// Object names by the key they refer to (customerRef, subscriptionRef, tenantId, ...).
#[derive(Default)]
pub struct RefIndex {
    inner: Mutex<HashMap<String, Namespace>>,
}

impl RefIndex {
    /// Records that `ns/name` refers to `key` now (`None` when the object is gone). Returns the
    /// key it referred to before, when that differs.
    pub fn set(&self, ns: &str, name: &str, key: Option<&str>) -> Option<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.contains_key(ns) {
            // Nothing to remove from a namespace with no entries.
            key?;
            inner.insert(ns.to_string(), Namespace::default());
        }
        let space = inner.get_mut(ns)?;
        let before = space.key_of.get(name).cloned();
        if before.as_deref() == key {
            return None;
        }
        // The name's shared allocation, reused when it has one already.
        let shared_name: Arc<str> = space
            .key_of
            .get_key_value(name)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| Arc::from(name));
        if let Some(old) = &before
            && let Some(names) = space.by_key.get_mut(old)
            && names.remove(name)
        {
            space.by_key.remove(old);
        }
        match key {
            Some(k) => {
                let shared_key: Arc<str> = space
                    .by_key
                    .get_key_value(k)
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| Arc::from(k));
                space
                    .by_key
                    .entry(shared_key.clone())
                    .and_modify(|names| names.insert(shared_name.clone()))
                    .or_insert_with(|| Names::One(shared_name.clone()));
                space.key_of.insert(shared_name, shared_key);
            }
            None => {
                space.key_of.remove(name);
            }
        }
        if space.key_of.is_empty() {
            inner.remove(ns);
        }
        before.map(|k| k.to_string())
    }

    /// Names of the objects in `ns` that refer to `key`, sorted.
    pub fn names(&self, ns: &str, key: &str) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .get(ns)
            .and_then(|space| space.by_key.get(key))
            .map(Names::to_vec)
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
        // Sorted whatever the order of arrival; removing what is not there changes nothing.
        idx.set("ns", "z", Some("k3"));
        idx.set("ns", "m", Some("k3"));
        idx.set("ns", "m", Some("k3"));
        assert_eq!(idx.names("ns", "k3"), vec!["m", "z"]);
        assert_eq!(idx.set("gone", "x", None), None);
        assert_eq!(idx.set("ns", "x", None), None);
        assert_eq!(idx.names("ns", "k2"), vec!["a"]);
        // Three on one key, then back down to one.
        idx.set("ns", "y", Some("k3"));
        assert_eq!(idx.names("ns", "k3"), vec!["m", "y", "z"]);
        idx.set("ns", "m", None);
        idx.set("ns", "z", Some("k2"));
        assert_eq!(idx.names("ns", "k3"), vec!["y"]);
        assert_eq!(idx.names("ns", "k2"), vec!["a", "z"]);
        idx.set("ns", "y", None);
        assert!(idx.names("ns", "k3").is_empty());
    }
}
