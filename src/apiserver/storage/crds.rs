//! CRD registration: a stored CustomResourceDefinition serves its resources; a deleted one takes
//! them, and their objects, away.

use super::{Change, State};
use crate::apiserver::resources;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;

impl State {
    pub(super) fn register_crd(&mut self, crd: &Value) {
        let Ok(defs) = resources::from_crd(crd) else {
            return;
        };
        for d in defs {
            self.resources.retain(|r| {
                !(r.group == d.group && r.version == d.version && r.plural == d.plural)
            });
            self.resources.push(Arc::new(d));
        }
    }

    pub(super) fn unregister_crd(&mut self, crd: &Value, tx: &broadcast::Sender<Arc<Change>>) {
        let Ok(defs) = resources::from_crd(crd) else {
            return;
        };
        if let Some(first) = defs.first() {
            let keys: Vec<(String, String)> = self
                .objects
                .get(&first.store)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            for (ns, name) in keys {
                self.remove(first, &ns, &name, tx);
            }
            self.objects.remove(&first.store);
            self.packers.remove(&first.store);
        }
        self.resources.retain(|r| {
            !defs
                .iter()
                .any(|d| d.group == r.group && d.plural == r.plural)
        });
    }
}
