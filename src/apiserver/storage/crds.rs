//! CRD registration and termination: a stored CustomResourceDefinition serves its resources; a
//! deleted one is Terminating (no new objects) while its objects are deleted, their finalizers
//! honoured, and goes with its last object, taking its resources away (the real server's
//! `customresourcecleanup` finalizer controller).

use super::{Change, State};
use crate::apiserver::error::ApiError;
use crate::apiserver::meta::{finalizers, now_string, set_meta};
use crate::apiserver::resources::{self, ResourceDef, StoreKey};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The finalizer a deleted CRD carries until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

impl State {
    pub(super) fn register_crd(&mut self, crd: &Value) {
        let Ok(defs) = resources::from_crd(crd) else {
            return;
        };
        if let Some(first) = defs.first()
            && crd.pointer("/metadata/deletionTimestamp").is_some()
        {
            self.terminating_crds.insert(first.store.clone());
        }
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
            // Objects left only when the cleanup finalizer was removed by hand: they go too.
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
            self.terminating_crds.remove(&first.store);
        }
        self.resources.retain(|r| {
            !defs
                .iter()
                .any(|d| d.group == r.group && d.plural == r.plural)
        });
    }

    /// New objects of a terminating CRD are refused, as the real server does.
    pub(super) fn check_crd_open(&self, def: &ResourceDef) -> Result<(), ApiError> {
        if self.terminating_crds.is_empty() || !self.terminating_crds.contains(&def.store) {
            return Ok(());
        }
        let mut e = ApiError::method_not_allowed(
            "create not allowed while custom resource definition is terminating",
        );
        e.details = Some(json!({"group": def.group, "kind": def.plural}));
        Err(e)
    }

    /// DELETE of a CRD: Terminating (deletionTimestamp, the cleanup finalizer, condition
    /// `Terminating`), its objects deleted (those with finalizers only marked), and the CRD gone
    /// once none is left. Answers the Terminating CRD.
    pub(super) fn terminate_crd(
        &mut self,
        def: &ResourceDef,
        name: &str,
        old: Value,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Result<Value, ApiError> {
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(old);
        }
        let now = now_string();
        let mut terminating = old;
        set_meta(&mut terminating, "deletionTimestamp", now.clone().into());
        let mut held = finalizers(&terminating);
        if !held.iter().any(|f| f == CLEANUP_FINALIZER) {
            held.push(CLEANUP_FINALIZER.into());
            set_meta(&mut terminating, "finalizers", json!(held));
        }
        set_terminating(
            &mut terminating,
            true,
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            &now,
        );
        let written = self.commit(def, "", name, terminating, false, tx)?;
        let Some(instances) = resources::from_crd(&written)
            .ok()
            .and_then(|d| d.into_iter().next())
        else {
            return Ok(written);
        };
        self.terminating_crds.insert(instances.store.clone());
        self.delete_crd_instances(&instances, tx);
        self.finish_crd_if_empty(&instances.store, tx);
        Ok(written)
    }

    /// Deletes every object of a terminating CRD: those with finalizers are marked (their
    /// controllers still see and finish them), the rest go.
    fn delete_crd_instances(&mut self, def: &ResourceDef, tx: &broadcast::Sender<Arc<Change>>) {
        let keys: Vec<(String, String)> = self
            .objects
            .get(&def.store)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            self.delete_as_controller(def, &ns, &name, None, tx);
        }
    }

    /// Once a terminating CRD has no objects left: its cleanup finalizer goes, and with it the
    /// CRD (unless other finalizers still hold it).
    pub(super) fn finish_crd_if_empty(
        &mut self,
        store: &StoreKey,
        tx: &broadcast::Sender<Arc<Change>>,
    ) {
        if !self.terminating_crds.contains(store)
            || self.objects.get(store).is_some_and(|m| !m.is_empty())
        {
            return;
        }
        let Some(crd_def) = self.resources.iter().find(|r| r.is_crd()).cloned() else {
            return;
        };
        let name = format!("{}.{}", store.1, store.0);
        let Ok(Some(mut crd)) = self.current(&crd_def, "", &name) else {
            return;
        };
        let held: Vec<String> = finalizers(&crd)
            .into_iter()
            .filter(|f| f != CLEANUP_FINALIZER)
            .collect();
        if held.is_empty() {
            self.remove(&crd_def, "", &name, tx);
            self.unregister_crd(&crd, tx);
            return;
        }
        set_meta(&mut crd, "finalizers", json!(held));
        let now = now_string();
        set_terminating(
            &mut crd,
            false,
            "InstanceDeletionCompleted",
            "removed all instances",
            &now,
        );
        let _ = self.commit(&crd_def, "", &name, crd, false, tx);
    }
}

/// Sets the CRD's `Terminating` condition (added, or replaced in place).
fn set_terminating(crd: &mut Value, on: bool, reason: &str, message: &str, now: &str) {
    let condition = json!({
        "type": "Terminating",
        "status": if on { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    });
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    let conditions = &mut crd["status"]["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    if let Some(list) = conditions.as_array_mut() {
        match list.iter_mut().find(|c| c["type"] == "Terminating") {
            Some(c) => *c = condition,
            None => list.push(condition),
        }
    }
}
