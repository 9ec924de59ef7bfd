//! Watch fan-out: every change goes to the bounded history (for watches that resume from a
//! resourceVersion) and to one broadcast channel that every open watch receives.

use super::{State, Store};
use crate::apiserver::error::ApiError;
use crate::apiserver::packed::Packed;
use crate::apiserver::resources::{ResourceDef, StoreKey, event_view};
use crate::apiserver::selector::Selection;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;

/// One change, as watches see it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub type_: &'static str,
    pub store: StoreKey,
    pub namespace: String,
    pub name: Box<str>,
    /// The object as stored (compressed: the history holds thousands of changes).
    pub object: Packed,
    /// The version this change replaced (for MODIFIED and DELETED), so selector watches can tell
    /// an object entering or leaving their selection and a list can read an earlier version.
    pub prev: Option<Packed>,
}

impl Store {
    /// A receiver of every change from now on.
    pub fn changes(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }

    /// Starts a watch: the events to replay (or the current objects as ADDED when `from` is
    /// None), and the receiver of live changes, taken atomically so nothing falls in between.
    #[allow(clippy::type_complexity)]
    pub fn watch(
        &self,
        def: &ResourceDef,
        sel: &Selection,
        from: Option<u64>,
    ) -> Result<(Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>, u64), ApiError> {
        let st = self.lock();
        let rx = self.tx.subscribe();
        let initial = match from {
            None => st
                .objects
                .get(&def.store)
                .map(|m| {
                    m.iter()
                        .filter(|(k, b)| sel.matches(&k.0, b, def))
                        .map(|(k, b)| {
                            Arc::new(Change {
                                rv: st.rv,
                                type_: "ADDED",
                                store: def.store.clone(),
                                namespace: k.0.clone(),
                                name: k.1.as_str().into(),
                                object: b.clone(),
                                prev: None,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some(rv) => {
                if rv < st.horizon {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        st.horizon
                    )));
                }
                st.history
                    .iter()
                    .filter(|c| c.rv > rv && c.store == def.store)
                    .cloned()
                    .collect()
            }
        };
        // A watch from a version not reached yet starts there: nothing up to it is sent.
        Ok((initial, rx, st.rv.max(from.unwrap_or(0))))
    }
}

impl State {
    /// Keeps a change in the history and tells every watcher.
    pub(super) fn record(
        &mut self,
        store: StoreKey,
        (ns, name): (&str, &str),
        type_: &'static str,
        object: Packed,
        prev: Option<Packed>,
        tx: &broadcast::Sender<Arc<Change>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            type_,
            store,
            namespace: ns.to_string(),
            name: name.into(),
            object,
            prev,
        });
        // Logged first (with --state): the answer to the write waits until it is on disk.
        if let Some(journal) = &self.journal {
            journal.append(change.clone());
        }
        self.history.push_back(change.clone());
        while self.history.len() > self.history_cap {
            if let Some(c) = self.history.pop_front() {
                self.horizon = c.rv;
            }
        }
        // No receivers is fine.
        let _ = tx.send(change);
    }
}

/// The change's object in the watching resource's view, as JSON bytes.
pub fn change_bytes(def: &ResourceDef, change: &Change) -> Bytes {
    let object = change.object.unpack();
    if def.is_events_k8s_io() {
        serde_json::from_slice::<Value>(&object)
            .ok()
            .and_then(|v| serde_json::to_vec(&event_view::to_new(&v)).ok())
            .map(Bytes::from)
            .unwrap_or(object)
    } else {
        object
    }
}
