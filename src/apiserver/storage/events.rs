//! Event expiry: Events last seen longer ago than the TTL go, as on a real cluster, so a
//! long-running server does not grow forever.

use super::Store;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

impl Store {
    /// Deletes Events last seen before `cutoff` (the real server keeps them for an hour);
    /// returns how many went.
    pub fn expire_events(&self, cutoff: Timestamp) -> usize {
        let mut st = self.lock();
        let Some(def) = st
            .resources
            .iter()
            .find(|r| r.group.is_empty() && r.plural == "events")
            .cloned()
        else {
            return 0;
        };
        let stale: Vec<(String, String)> = st
            .objects
            .get(&def.store)
            .map(|m| {
                m.iter()
                    .filter(|(_, b)| {
                        serde_json::from_slice::<Value>(&b.unpack())
                            .map(|v| last_seen(&v).is_some_and(|t| t < cutoff))
                            .unwrap_or(false)
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for (ns, name) in &stale {
            st.remove(&def, ns, name, &self.tx);
        }
        stale.len()
    }
}

/// When an Event (core/v1 shape) was last seen: the latest of its timestamps.
fn last_seen(event: &Value) -> Option<Timestamp> {
    [
        "/metadata/creationTimestamp",
        "/lastTimestamp",
        "/eventTime",
        "/series/lastObservedTime",
    ]
    .iter()
    .filter_map(|p| event.pointer(p).and_then(Value::as_str))
    .filter_map(|t| t.parse::<Timestamp>().ok())
    .max()
}
