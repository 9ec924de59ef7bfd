//! `--state` unit tests: a store's writes survive a restart without a clean stop, the log is
//! folded into the snapshot, and resourceVersions continue above everything handed out.

use super::*;
use crate::apiserver::admission::WriteOpts;
use serde_json::json;

fn configmap(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default"}, "data": {"k": value}})
}

/// Creates `names` in a fresh store opened on `path`; returns the last resourceVersion.
fn write_then_crash(path: &Path, names: &[&str]) -> u64 {
    let store = Store::new(1000);
    let (persistence, _) = open(&store, path).expect("open");
    let def = store.resolve("", "v1", "configmaps").expect("configmaps");
    for name in names {
        store
            .create(&def, "default", configmap(name, "v"), &WriteOpts::default())
            .expect("create");
    }
    futures::executor::block_on(persistence.durable());
    // No close: the process is gone as after kill -9 (the writer thread is left behind).
    store.resource_version()
}

fn names_in(store: &Store) -> Vec<String> {
    let def = store.resolve("", "v1", "configmaps").expect("configmaps");
    let sel = crate::apiserver::selector::Selection::default();
    let query = crate::apiserver::storage::ListQuery {
        sel: &sel,
        limit: None,
        after: None,
        at: crate::apiserver::storage::ReadAt::Latest,
    };
    let page = store.list(&def, &query).expect("list");
    page.items
        .iter()
        .filter_map(|o| meta_str(o, "name"))
        .filter(|n| n != "kube-root-ca.crt")
        .collect()
}

#[test]
fn acknowledged_writes_survive_without_a_clean_stop_and_versions_go_on_above() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let last = write_then_crash(&path, &["a", "b", "c"]);
    let store = Store::new(1000);
    let (persistence, restored) = open(&store, &path).expect("reopen");
    assert!(restored.is_some());
    assert_eq!(names_in(&store), ["a", "b", "c"]);
    assert!(
        store.resource_version() >= last + CEILING_BLOCK / 2,
        "continues above the reservation: {} after {last}",
        store.resource_version()
    );
    // The log was folded into the new snapshot: one fresh, empty segment.
    let segs = segments(&path).expect("segments");
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(std::fs::metadata(&segs[0].1).expect("segment").len(), 0);
    persistence.close(&store).expect("close");
}

#[test]
fn a_delete_and_a_compaction_are_replayed_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let store = Store::new(1000);
    let (persistence, _) = open(&store, &path).expect("open");
    let def = store.resolve("", "v1", "configmaps").expect("configmaps");
    let opts = WriteOpts::default();
    store
        .create(&def, "default", configmap("a", "1"), &opts)
        .expect("a");
    store
        .create(&def, "default", configmap("b", "1"), &opts)
        .expect("b");
    persistence.compact(&store).expect("compact");
    store
        .delete(&def, "default", "a", &Default::default())
        .expect("delete a");
    store
        .create(&def, "default", configmap("c", "1"), &opts)
        .expect("c");
    futures::executor::block_on(persistence.durable());
    let reopened = Store::new(1000);
    let (_p, _) = open(&reopened, &path).expect("reopen");
    assert_eq!(names_in(&reopened), ["b", "c"]);
}

#[test]
fn a_write_cut_off_by_the_crash_is_dropped_and_damage_elsewhere_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    write_then_crash(&path, &["a", "b"]);
    let (_, segment) = segments(&path).expect("segments").pop().expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("read");
    // Half of a record appended by a write that was never answered.
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
    std::fs::write(&segment, &bytes).expect("write");
    let store = Store::new(1000);
    open(&store, &path).expect("a torn tail is a write never answered");
    assert_eq!(names_in(&store), ["a", "b"]);

    // Damage in a segment that is not the newest is not a crash's doing: refused.
    write_then_crash(&path, &["c"]);
    let segs = segments(&path).expect("segments");
    let newest = segs.last().expect("segment").0;
    std::fs::write(segment_path(&path, newest + 1), b"").expect("newer segment");
    std::fs::write(&segs[0].1, [9u8, 0, 0, 0, 1]).expect("damage");
    let err = open(&Store::new(1000), &path).err().expect("refused");
    assert!(err.contains("is damaged"), "{err}");
}
