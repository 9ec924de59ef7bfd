//! What a list or watch selects ([`Selection`]: a namespace, label and field selectors), with
//! label and field selectors parsed and matched the way the real apiserver does
//! (`k8s.io/apimachinery/pkg/labels` and `.../pkg/fields`), including the wording of its parse
//! errors.

mod fields;
mod labels;

pub use fields::{FieldSelector, field_value};
pub use labels::{LabelOp, LabelSelector, Requirement};

use super::packed::Packed;
use super::resources::{ResourceDef, event_view};
use super::storage::Change;
use serde_json::{Map, Value};

/// Selection for lists and watches.
#[derive(Debug, Default)]
pub struct Selection {
    pub namespace: Option<String>,
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
}

impl Selection {
    /// The event type a watch with this selection reports for a change, if any: an object that
    /// enters the selection is ADDED, one that leaves it is DELETED, as the real server does.
    pub fn event_for(&self, c: &Change, def: &ResourceDef) -> Option<&'static str> {
        let now = self.matches(&c.namespace, &c.object, def);
        if c.type_ != "MODIFIED" || (self.labels.is_none() && self.fields.is_none()) {
            return now.then_some(c.type_);
        }
        let before = c
            .prev
            .as_ref()
            .is_some_and(|p| self.matches(&c.namespace, p, def));
        match (before, now) {
            (true, true) => Some("MODIFIED"),
            (false, true) => Some("ADDED"),
            (true, false) => Some("DELETED"),
            (false, false) => None,
        }
    }

    /// Whether a stored object is selected (unpacked only when a selector needs its fields).
    pub fn matches(&self, namespace: &str, object: &Packed, def: &ResourceDef) -> bool {
        if let Some(ns) = &self.namespace
            && ns != namespace
        {
            return false;
        }
        if self.labels.is_none() && self.fields.is_none() {
            return true;
        }
        let Ok(mut v) = serde_json::from_slice::<Value>(&object.unpack()) else {
            return false;
        };
        if def.is_events_k8s_io() {
            v = event_view::to_new(&v);
        }
        if let Some(l) = &self.labels {
            let empty = Map::new();
            let labels = v
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            if !l.matches(labels) {
                return false;
            }
        }
        if let Some(f) = &self.fields
            && !f.matches(|path| field_value(&v, path))
        {
            return false;
        }
        true
    }
}
