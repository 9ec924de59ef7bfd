//! The namespace controller: the boot namespaces, no new objects in a missing or Terminating
//! namespace, and a deleted namespace Terminating until its contents are gone (their finalizers
//! honoured), then removed.

use super::gc::Propagation;
use super::{Change, State, Store};
use crate::apiserver::admission::WriteOpts;
use crate::apiserver::error::ApiError;
use crate::apiserver::meta::{now_string, set_meta};
use crate::apiserver::resources::ResourceDef;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::broadcast;

const BOOT_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

impl Store {
    pub(super) fn create_boot_namespaces(&self) {
        for ns in BOOT_NAMESPACES {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            // Cannot fail: the namespace resource is built in and the names are valid.
            let _ = self.create_by_path("", "v1", "namespaces", None, obj, &WriteOpts::default());
        }
    }
}

impl State {
    fn namespace_exists(&self, ns: &str) -> bool {
        self.objects
            .get(&("".to_string(), "namespaces".to_string()))
            .is_some_and(|m| m.contains_key(&(String::new(), ns.to_string())))
    }

    fn namespace_terminating(&self, ns: &str) -> bool {
        self.objects
            .get(&("".to_string(), "namespaces".to_string()))
            .and_then(|m| m.get(&(String::new(), ns.to_string())))
            .and_then(|b| serde_json::from_slice::<Value>(&b.unpack()).ok())
            .is_some_and(|v| v.pointer("/metadata/deletionTimestamp").is_some())
    }

    /// A new object needs its namespace, and one that is not being terminated.
    pub(super) fn check_namespace_open(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        if !self.namespace_exists(ns) {
            return Err(ApiError::not_found("namespaces", ns));
        }
        if self.namespace_terminating(ns) {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                def.qualified_resource()
            )));
        }
        Ok(())
    }

    /// DELETE of a namespace, as the namespace controller: Terminating until its contents are
    /// gone, finalizers of the contents honoured.
    pub(super) fn terminate_namespace(
        &mut self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: Value,
        tx: &broadcast::Sender<Arc<Change>>,
    ) -> Result<Value, ApiError> {
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(old);
        }
        let mut terminating = old;
        set_meta(&mut terminating, "deletionTimestamp", now_string().into());
        terminating["status"] = json!({"phase": "Terminating"});
        let written = self.commit(def, ns, name, terminating, false, tx)?;
        self.delete_namespace_contents(name, tx);
        Ok(written)
    }

    /// Deletes everything in a terminating namespace: objects with finalizers are marked, the
    /// rest go; the namespace itself goes with its last object.
    fn delete_namespace_contents(&mut self, ns: &str, tx: &broadcast::Sender<Arc<Change>>) {
        let defs: Vec<Arc<ResourceDef>> = self
            .resources
            .iter()
            .filter(|r| r.namespaced)
            .cloned()
            .collect();
        let mut seen_stores = Vec::new();
        self.draining = Some(ns.to_string());
        for def in defs {
            // Two resources can share a store (the two Event APIs): visit it once.
            if seen_stores.contains(&def.store) {
                continue;
            }
            seen_stores.push(def.store.clone());
            let names: Vec<String> = self
                .objects
                .get(&def.store)
                .map(|m| {
                    m.keys()
                        .filter(|k| k.0 == ns)
                        .map(|k| k.1.clone())
                        .collect()
                })
                .unwrap_or_default();
            for n in names {
                self.delete_as_controller(&def, ns, &n, Some(Propagation::Background), tx);
            }
        }
        self.draining = None;
        self.finish_namespace_if_empty(ns, tx);
    }

    /// Removes a terminating namespace once nothing is left in it.
    pub(super) fn finish_namespace_if_empty(
        &mut self,
        ns: &str,
        tx: &broadcast::Sender<Arc<Change>>,
    ) {
        if ns.is_empty() || self.draining.as_deref() == Some(ns) || !self.namespace_terminating(ns)
        {
            return;
        }
        let empty = self.resources.iter().filter(|r| r.namespaced).all(|r| {
            self.objects
                .get(&r.store)
                .is_none_or(|m| !m.keys().any(|k| k.0 == ns))
        });
        if !empty {
            return;
        }
        if let Some(def) = self.resources.iter().find(|r| r.is_namespace()).cloned() {
            self.remove(&def, "", ns, tx);
        }
    }
}
