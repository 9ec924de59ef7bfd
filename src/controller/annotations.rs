//! The annotations a user drives a single object with: `csp.operator.dev/paused: "true"` (no
//! external calls and no writes for it, shown by a `Paused` condition and one Normal Event) and
//! `csp.operator.dev/refresh: <any new value>` (ask Partner Center and Azure about it again now).

use super::context::Context;
use super::{Error, events, metrics};
use crate::api::conditions::types;
use crate::policy::{ActivityEvent, EventType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

pub const PAUSED: &str = "csp.operator.dev/paused";
pub const REFRESH: &str = "csp.operator.dev/refresh";
/// The prefix of the annotations the caches keep (all others are dropped to save memory).
pub const PREFIX: &str = "csp.operator.dev/";

const REASON_PAUSED: &str = "ReconcilePaused";

/// Whether the object is paused.
pub fn paused<K: ResourceExt>(obj: &K) -> bool {
    obj.annotations().get(PAUSED).is_some_and(|v| v == "true")
}

/// The `refresh` values each object was last refreshed for.
#[derive(Default)]
pub struct Refreshes(Mutex<HashMap<(String, String, String), String>>);

impl Refreshes {
    /// Whether the object carries a `refresh` value not acted on yet (and records it as acted on).
    pub fn asked<K: Resource<DynamicType = ()>>(&self, obj: &K) -> bool {
        let Some(value) = obj.meta().annotations.as_ref().and_then(|a| a.get(REFRESH)) else {
            return false;
        };
        let key = (
            K::kind(&()).into_owned(),
            obj.meta().namespace.clone().unwrap_or_default(),
            obj.meta().name.clone().unwrap_or_default(),
        );
        let Ok(mut seen) = self.0.lock() else {
            return false;
        };
        seen.insert(key, value.clone()).as_deref() != Some(value.as_str())
    }
}

/// The status with the `Paused` condition set (paused) or removed (resumed); `None` when it
/// already says so.
fn with_paused<S: Serialize>(status: Option<&S>, paused: bool, now: Timestamp) -> Option<Value> {
    let mut status = status
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_else(|| Value::Object(Default::default()));
    let conditions = status
        .as_object_mut()?
        .entry("conditions")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()?;
    let present = conditions.iter().any(|c| c["type"] == types::PAUSED);
    if present == paused {
        return None;
    }
    conditions.retain(|c| c["type"] != types::PAUSED);
    if paused {
        conditions.push(serde_json::json!({
            "type": types::PAUSED,
            "status": "True",
            "reason": REASON_PAUSED,
            "message": format!("{PAUSED} is \"true\": no calls to Partner Center or Azure and no status changes until it is removed"),
            "lastTransitionTime": Time(now),
        }));
    }
    Some(status)
}

/// Brings the `Paused` condition in line with the annotation. Returns whether the object is
/// paused (the reconcile then stops here). Pausing logs one Normal Event. `conditions` are the
/// status's: when they already agree (nearly always) nothing is serialized.
pub async fn hold_if_paused<K, S>(
    ctx: &Context,
    kind: metrics::Kind,
    obj: &K,
    status: Option<&S>,
    conditions: &[crate::api::Condition],
) -> Result<bool, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    S: Serialize,
{
    let paused = paused(obj);
    if conditions.iter().any(|c| c.type_ == types::PAUSED) == paused {
        return Ok(paused);
    }
    let Some(next) = with_paused(status, paused, Timestamp::now()) else {
        return Ok(paused);
    };
    ctx.write_status_value(kind, obj, &next).await?;
    if paused {
        let e = ActivityEvent {
            type_: EventType::Normal,
            reason: REASON_PAUSED,
            action: "Pause",
            note: format!(
                "{PAUSED} is \"true\": the operator leaves this object alone until it is removed."
            ),
            transition: None,
        };
        events::publish_regarding(ctx, obj.object_ref(&()), &e, kind).await;
    }
    Ok(paused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CustomerStatus;
    use crate::policy::testing::t;

    #[test]
    fn the_paused_condition_follows_the_annotation_and_keeps_the_rest() {
        let status = CustomerStatus::default();
        let paused = with_paused(Some(&status), true, t(0)).expect("added");
        assert_eq!(paused["conditions"][0]["type"], "Paused");
        assert_eq!(paused["conditions"][0]["reason"], REASON_PAUSED);
        let parsed: CustomerStatus = serde_json::from_value(paused).expect("a status still");
        assert!(
            with_paused(Some(&parsed), true, t(5)).is_none(),
            "already paused"
        );
        let resumed = with_paused(Some(&parsed), false, t(9)).expect("removed");
        assert_eq!(resumed["conditions"], serde_json::json!([]));
        assert!(
            with_paused(Some(&status), false, t(9)).is_none(),
            "never paused"
        );
    }
}
