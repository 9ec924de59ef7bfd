//! Lists: a page of a resource's objects at one resourceVersion, the latest or an earlier one
//! rebuilt from the change history, so that every page of a paged list is the same snapshot
//! (as the real server reads every page from etcd at the first page's revision).

use super::{State, Store, view};
use crate::apiserver::error::ApiError;
use crate::apiserver::packed::Packed;
use crate::apiserver::resources::{ResourceDef, StoreKey};
use crate::apiserver::selector::Selection;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ops::Bound;

/// A stored object's key: (namespace, name).
type Key = (String, String);

/// Which version of the objects a list reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadAt {
    /// The latest objects.
    Latest,
    /// The objects as they were at exactly this resourceVersion.
    Exact(u64),
    /// The latest objects, once the store has reached this resourceVersion.
    NotOlderThan(u64),
}

/// A list request as the store sees it.
pub struct ListQuery<'a> {
    pub sel: &'a Selection,
    pub limit: Option<usize>,
    /// Continue after this key (namespace, name).
    pub after: Option<Key>,
    pub at: ReadAt,
}

/// A page of a list, in the resource's view.
pub struct Page {
    pub items: Vec<Value>,
    /// The resourceVersion the page was read at (every page of a list shares it).
    pub rv: u64,
    /// The key of the page's last object, when more follow.
    pub next: Option<Key>,
    /// How many objects follow this page, counted only without label and field selectors, as
    /// the real server does.
    pub remaining: Option<u64>,
}

/// The real server's answer to a list at a version compacted away.
pub const EXPIRED_LIST: &str = "The resourceVersion for the provided list is too old.";

/// 504 Timeout for a version the store has not reached, as the real server words it
/// (`storage.NewTooLargeResourceVersionError`, retry after a second).
pub fn too_large_resource_version(wanted: u64, current: u64) -> ApiError {
    let mut e = ApiError::new(
        504,
        "Timeout",
        format!("Timeout: Too large resource version: {wanted}, current: {current}"),
    );
    e.details = Some(json!({"causes": [{
        "reason": "ResourceVersionTooLarge",
        "message": "Too large resource version",
    }]}));
    e.retry_after = Some(1);
    e
}

impl Store {
    /// A page of a list. Objects are unpacked after the lock is released.
    pub fn list(&self, def: &ResourceDef, q: &ListQuery<'_>) -> Result<Page, ApiError> {
        let (rv, selected, next, remaining) = self.lock().select_page(def, q)?;
        let items = selected
            .iter()
            .map(|b| view(def, &b.unpack()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            rv,
            next,
            remaining,
        })
    }
}

/// A page as selected under the lock: version, objects, continue key, how many follow.
type Selected = (u64, Vec<Packed>, Option<Key>, Option<u64>);

impl State {
    /// The objects of one page at the list's version.
    fn select_page(&self, def: &ResourceDef, q: &ListQuery<'_>) -> Result<Selected, ApiError> {
        let (rv, earlier) = self.version_to_read(&def.store, q.at)?;
        let start = match &q.after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
        let latest = self
            .objects
            .get(&def.store)
            .map(|m| m.range::<Key, _>((start.clone(), Bound::Unbounded)))
            .into_iter()
            .flatten();
        let mut objects = at_version(latest, earlier.range::<Key, _>((start, Bound::Unbounded)))
            .filter(|(k, packed)| q.sel.matches(&k.0, packed, def));
        let mut selected: Vec<Packed> = Vec::new();
        let mut last: Option<&Key> = None;
        let (mut next, mut remaining) = (None, None);
        for (k, packed) in objects.by_ref() {
            if q.limit.is_some_and(|l| selected.len() == l) {
                next = last.cloned();
                if q.sel.labels.is_none() && q.sel.fields.is_none() {
                    remaining = Some(1 + objects.count() as u64);
                }
                break;
            }
            selected.push(packed.clone());
            last = Some(k);
        }
        Ok((rv, selected, next, remaining))
    }

    /// The version a list reads and, for an earlier one, the objects that differed then (None:
    /// absent then). 410 once the history no longer reaches back; 504 past the latest.
    fn version_to_read(
        &self,
        store: &StoreKey,
        at: ReadAt,
    ) -> Result<(u64, BTreeMap<Key, Option<Packed>>), ApiError> {
        match at {
            ReadAt::Latest => Ok((self.rv, BTreeMap::new())),
            ReadAt::NotOlderThan(rv) | ReadAt::Exact(rv) if rv > self.rv => {
                Err(too_large_resource_version(rv, self.rv))
            }
            ReadAt::NotOlderThan(_) => Ok((self.rv, BTreeMap::new())),
            ReadAt::Exact(rv) if rv == self.rv => Ok((rv, BTreeMap::new())),
            ReadAt::Exact(rv) if rv < self.horizon => Err(ApiError::expired(EXPIRED_LIST)),
            ReadAt::Exact(rv) => Ok((rv, self.objects_changed_since(store, rv))),
        }
    }

    /// Each object of `store` changed after `rv`, as it was at `rv`: the state before its first
    /// later change (absent before an ADDED).
    fn objects_changed_since(&self, store: &StoreKey, rv: u64) -> BTreeMap<Key, Option<Packed>> {
        let first_after = self.history.partition_point(|c| c.rv <= rv);
        let mut earlier = BTreeMap::new();
        for c in self.history.range(first_after..) {
            if &c.store != store {
                continue;
            }
            let key = (c.namespace.clone(), c.name.to_string());
            earlier.entry(key).or_insert_with(|| match c.type_ {
                "ADDED" => None,
                _ => c.prev.clone(),
            });
        }
        earlier
    }
}

/// The latest objects (in key order) with the earlier versions laid over them: an object
/// changed since is replaced by what it was, or left out if it did not exist yet.
fn at_version<'a>(
    latest: impl Iterator<Item = (&'a Key, &'a Packed)>,
    earlier: impl Iterator<Item = (&'a Key, &'a Option<Packed>)>,
) -> impl Iterator<Item = (&'a Key, &'a Packed)> {
    let mut latest = latest.peekable();
    let mut earlier = earlier.peekable();
    std::iter::from_fn(move || {
        loop {
            let take_earlier = match (latest.peek(), earlier.peek()) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((lk, _)), Some((ek, _))) => ek <= lk,
            };
            if !take_earlier {
                return latest.next();
            }
            let (key, then) = earlier.next()?;
            if latest.peek().is_some_and(|(lk, _)| *lk == key) {
                latest.next();
            }
            if let Some(packed) = then {
                return Some((key, packed));
            }
        }
    })
}
