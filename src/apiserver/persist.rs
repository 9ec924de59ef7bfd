//! `up --state`: every stored object saved to one JSON document (written atomically) and loaded
//! back at start.

use super::meta::meta_str;
use super::storage::Store;
use serde_json::{Value, json};
use std::path::Path;

/// Every stored object with its store, as one JSON document.
fn snapshot(store: &Store) -> Result<Vec<u8>, serde_json::Error> {
    // Copy the (shared) bytes under the lock; serialise after releasing it.
    let (rv, copied) = store.copy_objects();
    let mut objects = Vec::with_capacity(copied.len());
    for ((group, plural), ns, bytes) in copied {
        let object: Value = serde_json::from_slice(&bytes.unpack())?;
        objects
            .push(json!({"group": group, "resource": plural, "namespace": ns, "object": object}));
    }
    serde_json::to_vec(
        &json!({"kind": "CspOperatorState", "version": 1, "resourceVersion": rv, "objects": objects}),
    )
}

/// Loads a snapshot into an empty store (CRDs first, so their resources are served).
fn restore(store: &Store, bytes: &[u8]) -> Result<usize, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    if doc.get("kind").and_then(Value::as_str) != Some("CspOperatorState") {
        return Err("not a csp-operator state file (kind CspOperatorState missing)".into());
    }
    let rv = doc
        .get("resourceVersion")
        .and_then(Value::as_u64)
        .ok_or("resourceVersion missing")?;
    let objects = doc
        .get("objects")
        .and_then(Value::as_array)
        .ok_or("objects missing")?;
    let mut restoring = store.restoring();
    let mut loaded = 0;
    for pass in [true, false] {
        for (i, o) in objects.iter().enumerate() {
            let field = |k: &str| {
                o.get(k)
                    .and_then(Value::as_str)
                    .map(String::from)
                    .ok_or_else(|| format!("objects[{i}].{k} missing"))
            };
            let (group, resource, ns) = (field("group")?, field("resource")?, field("namespace")?);
            let is_crd = group == "apiextensions.k8s.io" && resource == "customresourcedefinitions";
            if is_crd != pass {
                continue;
            }
            let object = o
                .get("object")
                .ok_or_else(|| format!("objects[{i}].object missing"))?;
            let name =
                meta_str(object, "name").ok_or_else(|| format!("objects[{i}] has no name"))?;
            restoring.put((group, resource), ns, name, object)?;
            loaded += 1;
        }
    }
    restoring.finish(rv);
    Ok(loaded)
}

/// Writes every object to `path` atomically (a temporary file, then a rename).
pub fn save(store: &Store, path: &Path) -> std::io::Result<()> {
    let bytes = snapshot(store).map_err(std::io::Error::other)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    // A unique temporary name, synced before the rename: a crash leaves the old or the new
    // file, never a torn one.
    let tmp = path.with_extension(format!("tmp.{}", uuid::Uuid::new_v4().simple()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Loads objects saved by [`save`]; call before anything is written.
pub fn load(store: &Store, path: &Path) -> Result<usize, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    restore(store, &bytes)
        .map_err(|e| format!("{} is not a usable state file: {e}", path.display()))
}
