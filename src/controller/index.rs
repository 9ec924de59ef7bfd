//! Secondary indexes over the caches: which objects refer to a given (namespace, key). Kept up
//! to date by the watch feeds, so relation lookups cost O(related) instead of a cache scan.

use std::collections::HashMap;
use std::sync::Mutex;

/// One namespace's entries. Compact on purpose (one per object of the kind, 100k+ of them):
/// boxed strings, and a sorted Vec per key, since a key has one or a few referrers.
#[derive(Default)]
struct Namespace {
    by_key: HashMap<Box<str>, Vec<Box<str>>>,
    key_of: HashMap<Box<str>, Box<str>>,
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
        let old = match key {
            Some(k) => space.key_of.insert(name.into(), k.into()),
            None => space.key_of.remove(name),
        };
        if old.as_deref() == key {
            return None;
        }
        if let Some(o) = &old
            && let Some(names) = space.by_key.get_mut(o)
        {
            names.retain(|n| n.as_ref() != name);
            if names.is_empty() {
                space.by_key.remove(o);
            }
        }
        if let Some(k) = key {
            let names = space.by_key.entry(k.into()).or_default();
            if let Err(at) = names.binary_search_by(|n| n.as_ref().cmp(name)) {
                names.insert(at, name.into());
            }
        }
        if space.key_of.is_empty() {
            inner.remove(ns);
        }
        old.map(String::from)
    }

    /// Names of the objects in `ns` that refer to `key`, sorted.
    pub fn names(&self, ns: &str, key: &str) -> Vec<String> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .get(ns)
            .and_then(|space| space.by_key.get(key))
            .map(|names| names.iter().map(|n| n.to_string()).collect())
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
    }
}
