//! What Partner Center or Azure reported about an object, as the reconcilers pass it in, and the
//! `InSync` condition it gives. The policy never asks: observations are facts like any other.

use super::DesiredCondition;
use crate::api::Condition;
use crate::api::conditions::{reasons, types};

/// What the outside service said about an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Observed<T> {
    /// Observations are off (cluster backend, or the connection's `observe: false`): the spec
    /// is the truth, and no `InSync` condition is shown.
    #[default]
    Off,
    /// Not (successfully) asked yet: what the status says stays as it is.
    Unknown,
    /// The service does not know the object.
    NotFound,
    /// The service refused to say (a 401 or 403: the connection's user may not read it); the
    /// reason (`PartnerCenterError`, `AzureError`) and what it said.
    Refused(&'static str, String),
    /// What the service reports.
    Seen(T),
}

impl<T> Observed<T> {
    pub fn as_ref(&self) -> Observed<&T> {
        match self {
            Observed::Off => Observed::Off,
            Observed::Unknown => Observed::Unknown,
            Observed::NotFound => Observed::NotFound,
            Observed::Refused(r, m) => Observed::Refused(r, m.clone()),
            Observed::Seen(t) => Observed::Seen(t),
        }
    }
}

/// `InSync` for an observation: True `Observed` (or False `DriftDetected` when `drift` names
/// fields that differ), False with `not_found` when the service does not know the object.
/// `None` when there is nothing to say (observations off or not made yet).
pub fn in_sync<T>(
    observed: &Observed<T>,
    not_found: (&'static str, String),
    seen: impl FnOnce(&T) -> (Vec<String>, String),
) -> Option<DesiredCondition> {
    match observed {
        Observed::Off | Observed::Unknown => None,
        Observed::NotFound => Some(DesiredCondition::new(
            types::IN_SYNC,
            false,
            not_found.0,
            not_found.1,
        )),
        Observed::Refused(reason, message) => Some(DesiredCondition::new(
            types::IN_SYNC,
            false,
            reason,
            format!("{message}; the connection's user must be an Admin Agent of the partner"),
        )),
        Observed::Seen(t) => {
            let (drift, report) = seen(t);
            Some(if drift.is_empty() {
                DesiredCondition::new(types::IN_SYNC, true, reasons::OBSERVED, report)
            } else {
                DesiredCondition::new(
                    types::IN_SYNC,
                    false,
                    reasons::DRIFT_DETECTED,
                    format!("{}; {report}", drift.join(", ")),
                )
            })
        }
    }
}

/// The condition types a status drops for an observation: `InSync` when observations are off;
/// nothing otherwise (an unknown observation keeps the `InSync` it had).
pub fn dropped_for<T>(observed: &Observed<T>) -> &'static [&'static str] {
    match observed {
        Observed::Off => &[types::IN_SYNC],
        _ => &[],
    }
}

/// Whether an object's `InSync` says the service does not have it (or disagrees).
pub fn out_of_sync(conditions: &[Condition]) -> bool {
    super::conditions::find(conditions, types::IN_SYNC).is_some_and(|c| c.status == "False")
}
