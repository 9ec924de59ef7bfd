//! `up --state FILE`: a snapshot of every stored object in `FILE` (one JSON document, written
//! atomically) plus a write-ahead log of the changes since, `FILE.wal.<n>` (see [`journal`]).
//! A write is answered only once it is in the log on disk, so a killed process loses no
//! acknowledged write; the log is folded into a new snapshot when it grows, at start and on
//! a clean stop.

mod journal;

pub use journal::Journal;

use super::meta::meta_str;
use super::storage::Store;
use journal::{CEILING_BLOCK, create_segment, read_frames, sync_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A log segment this long is folded into a new snapshot (and at least as long as the last
/// snapshot, so compaction costs stay proportional to the writes).
const COMPACT_AFTER_BYTES: u64 = 64 << 20;

/// The snapshot document's kind.
const KIND: &str = "CspOperatorState";

/// An open `--state`: where it lives and the log being written.
pub struct Persistence {
    path: PathBuf,
    journal: Arc<Journal>,
    /// The number of the segment being written.
    segment: Mutex<u64>,
    /// Bytes of the last snapshot.
    snapshot_bytes: Mutex<u64>,
}

/// Where an object is kept: (group, resource, namespace, name).
type ObjectKey = (String, String, String, String);

/// An object as saved, by where it is kept.
type Objects = BTreeMap<ObjectKey, Value>;

/// Opens `path` for a fresh store: loads the snapshot and the log after it (when there are
/// any), continues the resourceVersion above everything handed out before, writes a new
/// snapshot and starts a new log. Returns the objects restored (None: nothing was saved).
pub fn open(store: &Store, path: &Path) -> Result<(Persistence, Option<usize>), String> {
    let unusable = |e: String| format!("{} is not a usable state file: {e}", path.display());
    let saved = read_saved(path).map_err(unusable)?;
    let restored = saved.as_ref().map(|s| s.objects.len());
    if let Some(saved) = saved {
        restore(store, saved.objects, saved.rv).map_err(unusable)?;
    }
    let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let old_segments = segments(path).map_err(io)?;
    let next = old_segments.last().map_or(1, |(n, _)| n + 1);
    let ceiling = store.resource_version() + CEILING_BLOCK;
    let (rv, copied) = store.copy_objects();
    let bytes = write_snapshot(path, rv, ceiling, &copied).map_err(io)?;
    // The snapshot holds everything now: the old log can go.
    for (_, old) in &old_segments {
        std::fs::remove_file(old).map_err(io)?;
    }
    let segment = create_segment(&segment_path(path, next)).map_err(io)?;
    let journal = Journal::start(segment, ceiling).map_err(io)?;
    store.attach_journal(journal.clone());
    let persistence = Persistence {
        path: path.to_path_buf(),
        journal,
        segment: Mutex::new(next),
        snapshot_bytes: Mutex::new(bytes),
    };
    Ok((persistence, restored))
}

impl Persistence {
    /// Resolves once every change made so far is on disk.
    pub async fn durable(&self) {
        if self.journal.is_behind() {
            self.journal.durable().await;
        }
    }

    /// Whether the log has grown enough to be folded into a new snapshot.
    pub fn wants_compaction(&self) -> bool {
        let snapshot = *self
            .snapshot_bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.journal.segment_bytes() > COMPACT_AFTER_BYTES.max(snapshot)
    }

    /// Writes a new snapshot and continues the log in a new segment; the old segments go.
    pub fn compact(&self, store: &Store) -> std::io::Result<()> {
        let mut segment = self.segment.lock().unwrap_or_else(|p| p.into_inner());
        let next = *segment + 1;
        let next_path = segment_path(&self.path, next);
        let (rv, copied, ceiling) =
            store.copy_objects_and(|| self.journal.rotate(next_path.clone()));
        let bytes = write_snapshot(&self.path, rv, ceiling, &copied)?;
        *segment = next;
        *self
            .snapshot_bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = bytes;
        for (n, old) in segments(&self.path)? {
            if n < next {
                std::fs::remove_file(old)?;
            }
        }
        Ok(())
    }

    /// A last snapshot (the log is then empty), and the log's writer stops.
    pub fn close(&self, store: &Store) -> std::io::Result<()> {
        let result = self.compact(store);
        self.journal.stop();
        result
    }
}

/// `FILE.wal.<n>`.
fn segment_path(path: &Path, n: u64) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".wal.{n:08}"));
    PathBuf::from(name)
}

/// The log segments of `path`, oldest first.
fn segments(path: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.wal.");
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let file = entry.file_name();
        let Some(n) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((n, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Writes the snapshot atomically (a temporary file, synced, renamed, the directory synced);
/// returns its size. The objects' JSON is written as stored, without parsing it.
fn write_snapshot(
    path: &Path,
    rv: u64,
    ceiling: u64,
    objects: &[(super::resources::StoreKey, String, super::packed::Packed)],
) -> std::io::Result<u64> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", uuid::Uuid::new_v4().simple()));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    write!(
        out,
        "{{\"kind\":\"{KIND}\",\"version\":2,\"resourceVersion\":{rv},\"resourceVersionCeiling\":{ceiling},\"objects\":["
    )?;
    for (i, ((group, resource), ns, packed)) in objects.iter().enumerate() {
        let head = serde_json::json!({"group": group, "resource": resource, "namespace": ns});
        let mut head = serde_json::to_vec(&head)?;
        head.pop();
        out.write_all(if i == 0 { b"" } else { b"," })?;
        out.write_all(&head)?;
        out.write_all(b",\"object\":")?;
        out.write_all(&packed.unpack())?;
        out.write_all(b"}")?;
    }
    out.write_all(b"]}")?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let bytes = file.metadata()?.len();
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    Ok(bytes)
}

/// What a state holds: its objects, the resourceVersion the snapshot covers, and the one to
/// continue above (the highest handed out or reserved).
struct Saved {
    objects: Objects,
    covered: u64,
    rv: u64,
}

/// The snapshot (if any) with the log after it applied; None when nothing was ever saved.
fn read_saved(path: &Path) -> Result<Option<Saved>, String> {
    let segments = segments(path).map_err(|e| e.to_string())?;
    if !path.exists() && segments.is_empty() {
        return Ok(None);
    }
    let mut saved = match path.exists() {
        true => read_snapshot(path)?,
        false => Saved {
            objects: Objects::new(),
            covered: 0,
            rv: 0,
        },
    };
    let last = segments.len().saturating_sub(1);
    for (i, (_, segment)) in segments.iter().enumerate() {
        let bytes = std::fs::read(segment)
            .map_err(|e| format!("cannot read {}: {e}", segment.display()))?;
        let (frames, torn) = read_frames(&bytes);
        // Only the newest segment can end in a write the crash cut off (never answered).
        if torn && i != last {
            return Err(format!("{} is damaged", segment.display()));
        }
        for payload in frames {
            replay(&mut saved, payload).map_err(|e| format!("{}: {e}", segment.display()))?;
        }
    }
    Ok(Some(saved))
}

fn read_snapshot(path: &Path) -> Result<Saved, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    if doc.get("kind").and_then(Value::as_str) != Some(KIND) {
        return Err(format!(
            "not a csp-operator state file (kind {KIND} missing)"
        ));
    }
    let rv = doc
        .get("resourceVersion")
        .and_then(Value::as_u64)
        .ok_or("resourceVersion missing")?;
    // Version 1 files have no ceiling: their resourceVersion is the last one handed out.
    let ceiling = doc
        .get("resourceVersionCeiling")
        .and_then(Value::as_u64)
        .unwrap_or(rv);
    let Some(Value::Array(items)) = doc.get("objects").cloned() else {
        return Err("objects missing".into());
    };
    let mut objects = Objects::new();
    for (i, item) in items.into_iter().enumerate() {
        let (key, object) = saved_object(item).map_err(|e| format!("objects[{i}]: {e}"))?;
        objects.insert(key, object);
    }
    Ok(Saved {
        objects,
        covered: rv,
        rv: rv.max(ceiling),
    })
}

/// One `{group, resource, namespace, object}` item of a snapshot or record.
fn saved_object(mut item: Value) -> Result<(ObjectKey, Value), &'static str> {
    let field = |k: &str| item.get(k).and_then(Value::as_str).map(String::from);
    let group = field("group").ok_or("group missing")?;
    let resource = field("resource").ok_or("resource missing")?;
    let namespace = field("namespace").ok_or("namespace missing")?;
    let object = item.get_mut("object").ok_or("object missing")?.take();
    let name = meta_str(&object, "name").ok_or("object has no name")?;
    Ok(((group, resource, namespace, name), object))
}

/// Applies one log record: a change newer than the snapshot, or a reservation.
fn replay(saved: &mut Saved, payload: &[u8]) -> Result<(), String> {
    let record: Value =
        serde_json::from_slice(payload).map_err(|e| format!("a record is not JSON: {e}"))?;
    if let Some(ceiling) = record.get("ceiling").and_then(Value::as_u64) {
        saved.rv = saved.rv.max(ceiling);
        return Ok(());
    }
    let rv = record
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or("a record has no rv")?;
    saved.rv = saved.rv.max(rv);
    if rv <= saved.covered {
        return Ok(());
    }
    let deleted = record.get("type").and_then(Value::as_str) == Some("DELETED");
    let (key, object) = saved_object(record)?;
    if deleted {
        saved.objects.remove(&key);
    } else {
        saved.objects.insert(key, object);
    }
    Ok(())
}

/// Loads objects into the (empty) store, CRDs first so their resources are served, and moves
/// its resourceVersion to `rv`.
fn restore(store: &Store, objects: Objects, rv: u64) -> Result<(), String> {
    let mut restoring = store.restoring();
    let is_crd =
        |k: &ObjectKey| k.0 == "apiextensions.k8s.io" && k.1 == "customresourcedefinitions";
    let (crds, rest): (Vec<_>, Vec<_>) = objects.into_iter().partition(|(k, _)| is_crd(k));
    for ((group, resource, ns, name), object) in crds.into_iter().chain(rest) {
        restoring.put((group, resource), ns, name, &object)?;
    }
    restoring.finish(rv);
    Ok(())
}

#[cfg(test)]
mod tests;
