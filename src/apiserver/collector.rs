//! The garbage collector (kube-controller-manager's, in the server): it works through the
//! objects the store queues as they change, and acts as the real one does. A dependent whose
//! owners are all gone (absent, or another object of that name with another uid) is deleted; a
//! dependent that still has an owner loses the references to the gone ones. An owner deleted
//! with `orphan` has its references removed from its dependents, then the finalizer; one deleted
//! with `foregroundDeletion` has its dependents deleted and keeps the finalizer until none with
//! `blockOwnerDeletion` is left. Every deletion and change goes through the store's DELETE and
//! write paths, so finalizers hold, watches see it and the namespace controller is unaffected.

use super::Shared;
use super::admission::{Part, WriteOpts};
use super::error::ApiError;
use super::meta::{finalizers, meta_str, set_meta};
use super::storage::Store;
use super::storage::gc::{
    DeleteOptions, FOREGROUND_FINALIZER, GcView, ORPHAN_FINALIZER, ObjectKey, OwnerState,
    Propagation, owner_refs,
};
use serde_json::{Value, json};
use std::sync::Arc;

/// The field manager of the collector's writes (the real one's User-Agent prefix).
const MANAGER: &str = "kube-controller-manager";

/// Runs until `stop` changes: every queued object is looked at, then it waits for more.
pub async fn run(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let store = &shared.store;
    let wake = store.gc_wake();
    store.gc_enqueue_all();
    loop {
        while let Some(key) = store.gc_next() {
            collect(store, &key);
            // Let requests in between: a long cascade does not hold the runtime.
            tokio::task::yield_now().await;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = stop.changed() => break,
        }
    }
}

/// Looks at one object: an owner being deleted with a GC finalizer, or a dependent.
fn collect(store: &Store, key: &ObjectKey) {
    let Some(view) = store.gc_view(key) else {
        return;
    };
    if view.object.pointer("/metadata/deletionTimestamp").is_some() {
        let held = finalizers(&view.object);
        if held.iter().any(|f| f == ORPHAN_FINALIZER) {
            orphan_dependents(store, key, &view);
        }
        if held.iter().any(|f| f == FOREGROUND_FINALIZER) {
            delete_dependents(store, key, &view);
        }
        // Being deleted is a one-way trip: its own owners no longer matter.
        return;
    }
    attempt_to_delete(store, key, &view);
}

/// `orphan`: every dependent loses its references to this owner, then the finalizer goes.
fn orphan_dependents(store: &Store, key: &ObjectKey, owner: &GcView) {
    let uid = meta_str(&owner.object, "uid").unwrap_or_default();
    for (dependent, _) in &owner.dependents {
        let _ = remove_owner_refs(store, dependent, None, &[uid.as_str()]);
    }
    remove_finalizer(store, key, &uid, ORPHAN_FINALIZER);
}

/// `foregroundDeletion`: the dependents are deleted; the finalizer goes once no dependent
/// that blocks the owner's deletion (`blockOwnerDeletion`) is left.
fn delete_dependents(store: &Store, key: &ObjectKey, owner: &GcView) {
    let uid = meta_str(&owner.object, "uid").unwrap_or_default();
    let blocking = owner
        .dependents
        .iter()
        .any(|(_, refs)| refs.iter().any(|r| r.uid == uid && r.block_owner_deletion));
    if !blocking {
        remove_finalizer(store, key, &uid, FOREGROUND_FINALIZER);
    }
    for (dependent, _) in &owner.dependents {
        if let Some(view) = store.gc_view(dependent)
            && view.object.pointer("/metadata/deletionTimestamp").is_none()
        {
            attempt_to_delete(store, dependent, &view);
        }
    }
}

/// A dependent's owners, classified (`classifyReferences`); what happens to it follows.
fn attempt_to_delete(store: &Store, key: &ObjectKey, view: &GcView) {
    let refs = owner_refs(&view.object);
    if refs.is_empty() {
        return;
    }
    let (mut solid, mut gone, mut waiting) = (0, Vec::new(), Vec::new());
    for r in &refs {
        match store.gc_owner_state(&key.namespace, r) {
            // A reference that cannot be resolved keeps the dependent, as the real collector
            // (which retries it forever) does.
            OwnerState::UnknownKind | OwnerState::InvalidNamespace => return,
            OwnerState::Absent => gone.push(r.uid.as_str()),
            OwnerState::WaitingForDependents => waiting.push(r.uid.as_str()),
            OwnerState::Present => solid += 1,
        }
    }
    let uid = meta_str(&view.object, "uid").unwrap_or_default();
    if solid > 0 {
        if !gone.is_empty() || !waiting.is_empty() {
            let drop: Vec<&str> = gone.iter().chain(waiting.iter()).copied().collect();
            let _ = remove_owner_refs(store, key, Some(&uid), &drop);
        }
        return;
    }
    let policy = if !waiting.is_empty() && store.gc_has_dependents(&uid) {
        // Its own dependents go first, so the owner waiting for it waits for them too.
        Propagation::Foreground
    } else {
        let held = finalizers(&view.object);
        if held.iter().any(|f| f == ORPHAN_FINALIZER) {
            Propagation::Orphan
        } else if held.iter().any(|f| f == FOREGROUND_FINALIZER) {
            Propagation::Foreground
        } else {
            Propagation::Background
        }
    };
    let opts = DeleteOptions {
        propagation: Some(policy),
        precondition_uid: Some(uid),
        ..DeleteOptions::default()
    };
    let _ = store.delete(&view.def, &key.namespace, &key.name, &opts);
}

/// Removes the owner references with the `owner_uids` from the object (only while it is the
/// object with `uid`, when given).
fn remove_owner_refs(
    store: &Store,
    key: &ObjectKey,
    uid: Option<&str>,
    owner_uids: &[&str],
) -> Result<(), ApiError> {
    let Some(view) = store.gc_view(key) else {
        return Ok(());
    };
    let expected = uid
        .map(String::from)
        .or_else(|| meta_str(&view.object, "uid"));
    write_metadata(store, key, &view, expected.as_deref(), |obj| {
        if let Some(refs) = obj
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            refs.retain(|r| {
                !owner_uids.contains(&r.get("uid").and_then(Value::as_str).unwrap_or(""))
            });
        }
    })
}

/// Removes one finalizer from the object with `uid` (it then goes if it was the last).
fn remove_finalizer(store: &Store, key: &ObjectKey, uid: &str, finalizer: &str) {
    let Some(view) = store.gc_view(key) else {
        return;
    };
    let _ = write_metadata(store, key, &view, Some(uid), |obj| {
        let kept: Vec<String> = finalizers(obj)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        set_meta(obj, "finalizers", json!(kept));
    });
}

/// A read-modify-write of the object's metadata through the store's write path, refused when
/// the object is no longer the one with `uid` (a precondition, as the real collector's patches
/// carry).
fn write_metadata(
    store: &Store,
    key: &ObjectKey,
    view: &GcView,
    uid: Option<&str>,
    change: impl FnOnce(&mut Value),
) -> Result<(), ApiError> {
    let opts = WriteOpts {
        field_manager: Some(MANAGER.into()),
        operation: "Update",
        ..WriteOpts::default()
    };
    store
        .modify(
            &view.def,
            &key.namespace,
            &key.name,
            Part::Main,
            false,
            &opts,
            |current| {
                let current = current.ok_or_else(|| ApiError::not_found("", &key.name))?;
                if uid.is_some() && meta_str(current, "uid").as_deref() != uid {
                    return Err(ApiError::conflict(
                        &view.def.qualified_resource(),
                        &key.name,
                    ));
                }
                let mut next = current.clone();
                change(&mut next);
                Ok(next)
            },
        )
        .map(|_| ())
}
