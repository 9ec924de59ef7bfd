//! Server-side apply, all of it: the fields an apply configuration sets, merging it into the
//! live object (list-maps by key), removing what its manager no longer applies, conflicts with
//! other managers, and the managedFields entries that record who owns what (for applies, and
//! for updates and patches the fields they changed).

use super::super::admission::schema::list_map_keys;
use super::super::admission::{Part, WriteOpts};
use super::super::error::ApiError;
use serde_json::{Map, Value, json};

/// Who a managedFields entry is filed under, (manager, operation, subresource), as the real
/// server keys field ownership. Every lookup of entries goes through here.
struct Owner<'a> {
    manager: Option<&'a str>,
    operation: Option<&'a str>,
    subresource: &'a str,
    api_version: &'a str,
}

impl<'a> Owner<'a> {
    fn of(entry: &'a Value) -> Self {
        Self {
            manager: entry.get("manager").and_then(Value::as_str),
            operation: entry.get("operation").and_then(Value::as_str),
            subresource: entry
                .get("subresource")
                .and_then(Value::as_str)
                .unwrap_or(""),
            api_version: entry
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        }
    }

    /// The entry of exactly this manager, operation and subresource.
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == Some(manager)
            && self.operation == Some(operation)
            && self.subresource == subresource
    }

    /// Another manager of the same subresource (an applier, or an updater, which is another
    /// manager even under the same name): whose fields an apply conflicts with.
    fn is_other_manager(&self, manager: &str, subresource: &str) -> bool {
        !self.is(manager, "Apply", subresource) && self.subresource == subresource
    }

    /// The manager as the real server names it in a conflict: `"name"`, `with subresource`,
    /// and `using <apiVersion>` for an updater.
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager.unwrap_or(""));
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Some("Update") {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// One step of a field path: an object field, or a list-map item by its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Field(String),
    Key(Map<String, Value>),
}

/// An apply configuration and the fields it sets, worked out once per request.
pub struct ApplyConfig<'a> {
    pub body: &'a Value,
    paths: Vec<Vec<Seg>>,
}

impl<'a> ApplyConfig<'a> {
    pub fn new(body: &'a Value, schema: Option<&Value>) -> Self {
        let mut paths = Vec::new();
        collect_paths(body, schema, &mut Vec::new(), &mut paths);
        Self { body, paths }
    }

    /// The fieldsV1 the configuration owns (its managedFields entry).
    pub fn fields_v1(&self) -> Value {
        to_fields_v1(&self.paths)
    }
}

/// The object a server-side apply makes of `live`: the configuration merged in and the fields
/// this manager applied before but no longer applies removed. Without `force`, fields another
/// applier owns and this configuration changes are a 409.
pub fn apply(
    live: Option<&Value>,
    config: &ApplyConfig<'_>,
    manager: &str,
    subresource: &str,
    force: bool,
    schema: Option<&Value>,
) -> Result<Value, ApiError> {
    let owned = live
        .and_then(|l| l.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .find(|e| Owner::of(e).is(manager, "Apply", subresource))
        })
        .and_then(|e| e.get("fieldsV1"));
    if !force && let Some(live) = live {
        check_conflicts(live, config, manager, subresource)?;
    }
    let mut merged = server_side_apply(live, config, owned, schema)?;
    // Apply never conflicts on resourceVersion unless the configuration names one.
    if config.body.pointer("/metadata/resourceVersion").is_none()
        && let Some(rv) = live.and_then(|l| l.pointer("/metadata/resourceVersion"))
    {
        merged["metadata"]["resourceVersion"] = rv.clone();
    }
    Ok(merged)
}

/// Server-side apply conflicts: fields the configuration sets to a new value that another
/// manager (applier or updater) owns. Without `force` these refuse the apply with 409, worded
/// as the real server.
pub fn check_conflicts(
    live: &Value,
    applied: &ApplyConfig<'_>,
    manager: &str,
    subresource: &str,
) -> Result<(), ApiError> {
    // (manager as named, path) of every conflict.
    let mut conflicts: Vec<(String, String)> = Vec::new();
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for e in entries {
        let owner = Owner::of(e);
        if !owner.is_other_manager(manager, subresource) {
            continue;
        }
        let mut owned = Vec::new();
        if let Some(f) = e.get("fieldsV1") {
            fields_v1_paths(f, &mut Vec::new(), &mut owned);
        }
        for p in applied.paths.iter().filter(|p| owned.contains(p)) {
            // A field some later update removed is owned by no one any more.
            let current = value_at(live, p);
            if current.is_some() && current != value_at(applied.body, p) {
                conflicts.push((owner.describe(), display_path(p)));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(m, p)| json!({"type": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p}))
        .collect();
    let mut e = ApiError::new(409, "Conflict", conflict_message(&conflicts));
    e.details = Some(json!({"causes": causes}));
    Err(e)
}

/// The real server's conflict message: one conflict on a line, several grouped by manager.
fn conflict_message(conflicts: &[(String, String)]) -> String {
    if let [(m, p)] = conflicts {
        return format!("Apply failed with 1 conflict: conflict with {m}: {p}");
    }
    let mut managers: Vec<&String> = conflicts.iter().map(|(m, _)| m).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        lines.extend(
            conflicts
                .iter()
                .filter(|(cm, _)| cm == m)
                .map(|(_, p)| format!("- {p}")),
        );
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// What a forced apply takes over: removes from another manager's fieldsV1 (`other`) every
/// field this apply (`applied`, its fieldsV1) changed from `old` to `new`; those were the
/// conflicts `force` overrode, and the real server moves their ownership to the forcing manager.
/// Returns whether the other applier still owns anything.
pub fn release_taken_fields(other: &mut Value, applied: &Value, old: &Value, new: &Value) -> bool {
    let mut owned = Vec::new();
    fields_v1_paths(other, &mut Vec::new(), &mut owned);
    let mut taken = Vec::new();
    fields_v1_paths(applied, &mut Vec::new(), &mut taken);
    let before = owned.len();
    owned.retain(|p| !(taken.contains(p) && value_at(old, p) != value_at(new, p)));
    if owned.len() != before {
        *other = to_fields_v1(&owned);
    }
    !owned.is_empty()
}

fn value_at<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            Seg::Field(f) => cur.get(f)?,
            Seg::Key(k) => cur
                .as_array()?
                .iter()
                .find(|i| k.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))?,
        };
    }
    Some(cur)
}

fn display_path(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Field(f) => format!(".{f}"),
            Seg::Key(k) => format!(
                "[{}]",
                k.iter()
                    .map(|(name, v)| format!("{name}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        })
        .collect()
}

/// Server-side apply: merges `applied` into `live`, removing fields this manager applied before
/// (`owned`, its previous fieldsV1) that the new configuration no longer has.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &ApplyConfig<'_>,
    owned: Option<&Value>,
    schema: Option<&Value>,
) -> Result<Value, ApiError> {
    if !applied.body.is_object() {
        return Err(ApiError::bad_request(
            "an apply configuration must be an object",
        ));
    }
    let new_paths = &applied.paths;
    let mut out = live.cloned().unwrap_or_else(|| json!({}));
    if let Some(owned) = owned {
        let mut old_paths = Vec::new();
        fields_v1_paths(owned, &mut Vec::new(), &mut old_paths);
        for p in old_paths {
            // Remove at the shortest prefix the new configuration no longer reaches.
            if let Some(len) =
                (1..=p.len()).find(|&l| !new_paths.iter().any(|n| n.starts_with(&p[..l])))
            {
                remove_path(&mut out, &p[..len]);
            }
        }
    }
    merge_applied(&mut out, applied.body, schema);
    Ok(out)
}

fn collect_paths(
    v: &Value,
    schema: Option<&Value>,
    prefix: &mut Vec<Seg>,
    out: &mut Vec<Vec<Seg>>,
) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if prefix.is_empty() && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                if prefix.is_empty() && k == "metadata" {
                    collect_metadata_paths(child, out);
                    continue;
                }
                let child_schema = schema
                    .and_then(|s| s.get("properties"))
                    .and_then(|p| p.get(k));
                prefix.push(Seg::Field(k.clone()));
                collect_paths(child, child_schema, prefix, out);
                prefix.pop();
            }
            if m.is_empty() && !prefix.is_empty() {
                out.push(prefix.clone());
            }
        }
        Value::Array(items) => match schema.and_then(list_map_keys) {
            Some(keys) => {
                let item_schema = schema.and_then(|s| s.get("items"));
                for item in items {
                    let key = item_key(item, &keys);
                    prefix.push(Seg::Key(key));
                    collect_paths(item, item_schema, prefix, out);
                    prefix.pop();
                }
                if items.is_empty() {
                    out.push(prefix.clone());
                }
            }
            None => out.push(prefix.clone()),
        },
        _ => out.push(prefix.clone()),
    }
}

/// Of metadata, only labels and annotations are owned fields here.
fn collect_metadata_paths(meta: &Value, out: &mut Vec<Vec<Seg>>) {
    let Some(meta) = meta.as_object() else {
        return;
    };
    for key in ["labels", "annotations"] {
        if let Some(Value::Object(items)) = meta.get(key) {
            for item in items.keys() {
                out.push(vec![
                    Seg::Field("metadata".into()),
                    Seg::Field(key.into()),
                    Seg::Field(item.clone()),
                ]);
            }
        }
    }
}

fn item_key(item: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

fn merge_applied(live: &mut Value, applied: &Value, schema: Option<&Value>) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                let child_schema = schema
                    .and_then(|s| s.get("properties"))
                    .and_then(|p| p.get(k));
                match l.get_mut(k) {
                    Some(lv) if lv.is_object() && av.is_object() => {
                        merge_applied(lv, av, child_schema)
                    }
                    Some(lv)
                        if lv.is_array()
                            && av.is_array()
                            && child_schema.and_then(list_map_keys).is_some() =>
                    {
                        merge_applied(lv, av, child_schema)
                    }
                    _ => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => {
            let keys = schema.and_then(list_map_keys).unwrap_or_default();
            let item_schema = schema.and_then(|s| s.get("items"));
            for ai in a {
                let key = item_key(ai, &keys);
                match l.iter_mut().find(|li| item_key(li, &keys) == key) {
                    Some(li) => merge_applied(li, ai, item_schema),
                    None => l.push(ai.clone()),
                }
            }
        }
        (l, a) => *l = a.clone(),
    }
}

fn remove_path(v: &mut Value, path: &[Seg]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (first, v) {
        (Seg::Field(f), Value::Object(m)) => {
            if rest.is_empty() {
                m.remove(f);
            } else if let Some(child) = m.get_mut(f) {
                remove_path(child, rest);
            }
        }
        (Seg::Key(k), Value::Array(items)) => {
            if rest.is_empty() {
                items.retain(|i| !k.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
            } else if let Some(item) = items
                .iter_mut()
                .find(|i| k.iter().all(|(kk, kv)| i.get(kk) == Some(kv)))
            {
                remove_path(item, rest);
            }
        }
        _ => {}
    }
}

fn to_fields_v1(paths: &[Vec<Seg>]) -> Value {
    let mut root = json!({});
    for p in paths {
        let mut node = &mut root;
        for seg in p {
            let key = match seg {
                Seg::Field(f) => format!("f:{f}"),
                Seg::Key(k) => format!("k:{}", Value::Object(k.clone())),
            };
            if !node.get(&key).is_some_and(Value::is_object) {
                node[&key] = json!({});
            }
            node = &mut node[&key];
        }
        if !p.is_empty() {
            node["."] = json!({});
        }
    }
    root
}

fn fields_v1_paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    let Some(m) = v.as_object() else {
        return;
    };
    for (k, child) in m {
        if k == "." {
            out.push(prefix.clone());
            continue;
        }
        let seg = if let Some(f) = k.strip_prefix("f:") {
            Seg::Field(f.to_string())
        } else if let Some(key) = k.strip_prefix("k:") {
            match serde_json::from_str::<Map<String, Value>>(key) {
                Ok(map) => Seg::Key(map),
                Err(_) => continue,
            }
        } else {
            continue;
        };
        prefix.push(seg);
        // The real server writes an owned leaf as an empty object (`"f:x": {}`).
        if child.as_object().is_some_and(Map::is_empty) {
            out.push(prefix.clone());
        }
        fields_v1_paths(child, prefix, out);
        prefix.pop();
    }
}

/// One managedFields entry per (manager, operation, subresource); bounded by the managers. An
/// apply owns the fields of its configuration; an update (PUT, or a patch other than apply) the
/// fields it changed, which other managers then no longer own (structured-merge-diff's Update).
pub fn update_managed_fields(
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOpts,
    part: Part,
    schema: Option<&Value>,
    now: &str,
) {
    let mut entries: Vec<Value> = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(manager) = &opts.field_manager {
        let sub = part.subresource();
        let api_version = obj.get("apiVersion").cloned().unwrap_or(Value::Null);
        if opts.operation == "Apply" {
            if let (Some(old), Some(applied)) = (old, opts.applied_fields.as_ref()) {
                release_forced_fields(&mut entries, manager, sub, applied, old, obj);
            }
            entries.retain(|e| !Owner::of(e).is(manager, "Apply", sub));
            let owned = opts.applied_fields.clone().unwrap_or(json!({}));
            entries.push(entry(manager, "Apply", sub, api_version, now, owned));
        } else {
            let changes = FieldChanges::between(old, obj, schema);
            if let Some(owned) = record_update(&mut entries, manager, sub, &changes) {
                entries.push(entry(manager, "Update", sub, api_version, now, owned));
            }
        }
        // Bounded: the oldest entries go first.
        let excess = entries.len().saturating_sub(16);
        entries.drain(..excess);
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        if entries.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(entries));
        }
    }
}

fn entry(
    manager: &str,
    operation: &str,
    subresource: &str,
    api_version: Value,
    now: &str,
    fields: Value,
) -> Value {
    let mut entry = json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    });
    if !subresource.is_empty() {
        entry["subresource"] = subresource.into();
    }
    entry
}

/// An update's effect on ownership: other managers lose the fields it changed or removed (an
/// entry left owning nothing goes), and its own entry, taken out of `entries`, owns what it
/// owned before (less what it removed) and what it changed. Returns that entry's fieldsV1, None
/// when it owns nothing. Nothing is touched when the update changed no owned field.
fn record_update(
    entries: &mut Vec<Value>,
    manager: &str,
    sub: &str,
    changes: &FieldChanges,
) -> Option<Value> {
    if changes.changed.is_empty() && changes.removed.is_empty() {
        return None;
    }
    let mut own: Vec<Vec<Seg>> = Vec::new();
    entries.retain_mut(|e| {
        let mut owned = Vec::new();
        if let Some(f) = e.get("fieldsV1") {
            fields_v1_paths(f, &mut Vec::new(), &mut owned);
        }
        let before = owned.len();
        owned.retain(|p| !changes.removes(p));
        if Owner::of(e).is(manager, "Update", sub) {
            own = owned;
            return false;
        }
        owned.retain(|p| !changes.changed.contains(p));
        if owned.len() != before {
            e["fieldsV1"] = to_fields_v1(&owned);
        }
        // An entry left owning nothing goes (one that owned nothing before is left alone).
        !owned.is_empty() || before == 0
    });
    for c in &changes.changed {
        if !own.contains(c) {
            own.push(c.clone());
        }
    }
    (!own.is_empty()).then(|| to_fields_v1(&own))
}

/// The owned fields an update changed between the stored object and the new one, found in one
/// walk of both: `changed` are the leaves it added or set to another value (what its manager
/// now owns), `removed` the roots of what it took away (no one owns anything under them).
/// Owned fields are those of an apply configuration: all but apiVersion, kind and metadata,
/// and of metadata the labels and annotations.
#[derive(Debug, Default)]
struct FieldChanges {
    changed: Vec<Vec<Seg>>,
    removed: Vec<Vec<Seg>>,
}

impl FieldChanges {
    fn between(old: Option<&Value>, new: &Value, schema: Option<&Value>) -> Self {
        let mut c = Self::default();
        let Some(old) = old else {
            collect_paths(new, schema, &mut Vec::new(), &mut c.changed);
            return c;
        };
        let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
            return c;
        };
        for (k, nv) in n {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    for key in ["labels", "annotations"] {
                        c.diff_string_map(
                            old.pointer(&format!("/metadata/{key}")),
                            nv.get(key),
                            key,
                        );
                    }
                }
                _ => {
                    let child_schema = schema
                        .and_then(|s| s.get("properties"))
                        .and_then(|p| p.get(k));
                    let mut prefix = vec![Seg::Field(k.clone())];
                    c.diff(o.get(k), nv, child_schema, &mut prefix);
                }
            }
        }
        for k in o.keys() {
            if !n.contains_key(k) && !matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                c.removed.push(vec![Seg::Field(k.clone())]);
            }
        }
        c
    }

    fn diff(
        &mut self,
        old: Option<&Value>,
        new: &Value,
        schema: Option<&Value>,
        prefix: &mut Vec<Seg>,
    ) {
        let Some(old) = old else {
            collect_paths(new, schema, prefix, &mut self.changed);
            return;
        };
        match (old, new) {
            (Value::Object(o), Value::Object(n)) if !n.is_empty() => {
                for (k, nv) in n {
                    let child_schema = schema
                        .and_then(|s| s.get("properties"))
                        .and_then(|p| p.get(k));
                    prefix.push(Seg::Field(k.clone()));
                    self.diff(o.get(k), nv, child_schema, prefix);
                    prefix.pop();
                }
                for k in o.keys().filter(|k| !n.contains_key(*k)) {
                    let mut gone = prefix.clone();
                    gone.push(Seg::Field(k.clone()));
                    self.removed.push(gone);
                }
            }
            (Value::Array(o), Value::Array(n)) if schema.and_then(list_map_keys).is_some() => {
                let keys = schema.and_then(list_map_keys).unwrap_or_default();
                let item_schema = schema.and_then(|s| s.get("items"));
                for ni in n {
                    let key = item_key(ni, &keys);
                    let before = o.iter().find(|oi| item_key(oi, &keys) == key);
                    prefix.push(Seg::Key(key));
                    self.diff(before, ni, item_schema, prefix);
                    prefix.pop();
                }
                for oi in o {
                    let key = item_key(oi, &keys);
                    if !n.iter().any(|ni| item_key(ni, &keys) == key) {
                        let mut gone = prefix.clone();
                        gone.push(Seg::Key(key));
                        self.removed.push(gone);
                    }
                }
            }
            (o, n) if o == n => {}
            (o, n) => {
                // A structure replaced whole (a type change, an atomic list): all of it was removed.
                if o.is_object() || o.is_array() {
                    self.removed.push(prefix.clone());
                }
                collect_paths(n, schema, prefix, &mut self.changed);
            }
        }
    }

    /// Labels or annotations: each key a leaf.
    fn diff_string_map(&mut self, old: Option<&Value>, new: Option<&Value>, key: &str) {
        let empty = Map::new();
        let o = old.and_then(Value::as_object).unwrap_or(&empty);
        let n = new.and_then(Value::as_object).unwrap_or(&empty);
        let path = |item: &str| {
            vec![
                Seg::Field("metadata".into()),
                Seg::Field(key.into()),
                Seg::Field(item.into()),
            ]
        };
        for (k, v) in n {
            if o.get(k) != Some(v) {
                self.changed.push(path(k));
            }
        }
        for k in o.keys().filter(|k| !n.contains_key(*k)) {
            self.removed.push(path(k));
        }
    }

    /// Whether `path` is gone: under something this update removed.
    fn removes(&self, path: &[Seg]) -> bool {
        self.removed.iter().any(|r| path.starts_with(r))
    }
}

/// A forced apply takes over the fields it changed: other managers' entries lose them, and an
/// entry left owning nothing goes.
fn release_forced_fields(
    entries: &mut Vec<Value>,
    manager: &str,
    sub: &str,
    applied: &Value,
    old: &Value,
    new: &Value,
) {
    entries.retain_mut(|e| {
        let other = Owner::of(e).is_other_manager(manager, sub);
        match e.get_mut("fieldsV1") {
            Some(f) if other => release_taken_fields(f, applied, old, new),
            _ => true,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions_schema() -> Value {
        json!({"properties": {"status": {"properties": {"conditions": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
            "items": {"type": "object"}}}}}})
    }

    #[test]
    fn apply_merges_list_maps_by_key() {
        let live = json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]}});
        let applied = json!({"status": {"conditions": [{"type": "B", "status": "False"}]}});
        let schema = conditions_schema();
        let out = server_side_apply(
            Some(&live),
            &ApplyConfig::new(&applied, Some(&schema)),
            None,
            Some(&schema),
        )
        .expect("apply");
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "A", "status": "True"}, {"type": "B", "status": "False"}])
        );
    }

    #[test]
    fn apply_removes_fields_the_manager_no_longer_applies() {
        let schema = conditions_schema();
        let first = json!({"spec": {"a": 1, "b": 2}, "status": {"conditions": [{"type": "A", "status": "True"}]}});
        let out = server_side_apply(
            None,
            &ApplyConfig::new(&first, Some(&schema)),
            None,
            Some(&schema),
        )
        .expect("apply");
        let owned = ApplyConfig::new(&first, Some(&schema)).fields_v1();
        let second = json!({"spec": {"a": 1}, "status": {"conditions": []}});
        let out2 = server_side_apply(
            Some(&out),
            &ApplyConfig::new(&second, Some(&schema)),
            Some(&owned),
            Some(&schema),
        )
        .expect("apply");
        assert_eq!(out2["spec"], json!({"a": 1}));
        assert_eq!(out2["status"]["conditions"], json!([]));
    }

    #[test]
    fn apply_keeps_fields_of_other_managers() {
        let live = json!({"spec": {"a": 1, "other": true}});
        let out = server_side_apply(
            Some(&live),
            &ApplyConfig::new(&json!({"spec": {"a": 2}}), None),
            None,
            None,
        )
        .expect("apply");
        assert_eq!(out["spec"], json!({"a": 2, "other": true}));
    }

    #[test]
    fn apply_conflicts_with_another_appliers_field_unless_equal() {
        let live = json!({"spec": {"holder": "a"}, "metadata": {"managedFields": [
            {"manager": "a", "operation": "Apply", "fieldsV1": ApplyConfig::new(&json!({"spec": {"holder": "a"}}), None).fields_v1()}
        ]}});
        let err = check_conflicts(
            &live,
            &ApplyConfig::new(&json!({"spec": {"holder": "b"}}), None),
            "b",
            "",
        )
        .expect_err("conflict");
        assert_eq!(err.code, 409);
        assert!(err.message.contains(".spec.holder"), "{}", err.message);
        check_conflicts(
            &live,
            &ApplyConfig::new(&json!({"spec": {"holder": "a"}}), None),
            "b",
            "",
        )
        .expect("same value is shared");
        check_conflicts(
            &live,
            &ApplyConfig::new(&json!({"spec": {"holder": "b"}}), None),
            "a",
            "",
        )
        .expect("own field");
    }

    fn paths(v: &Value) -> Vec<String> {
        let mut out = Vec::new();
        fields_v1_paths(v, &mut Vec::new(), &mut out);
        let mut shown: Vec<String> = out.iter().map(|p| display_path(p)).collect();
        shown.sort();
        shown
    }

    #[test]
    fn updates_own_what_they_change_and_take_it_from_others() {
        let schema = conditions_schema();
        let old = json!({"apiVersion": "v1", "metadata": {"labels": {"a": "1"}, "managedFields": [
            {"manager": "applier", "operation": "Apply", "fieldsV1": ApplyConfig::new(&json!({"spec": {"x": 1, "y": 2}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}), Some(&schema)).fields_v1()}
        ]}, "spec": {"x": 1, "y": 2}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let mut new = json!({"apiVersion": "v1", "metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"x": 5, "y": 2}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let opts = WriteOpts {
            field_manager: Some("editor".into()),
            operation: "Update",
            ..WriteOpts::default()
        };
        update_managed_fields(
            &mut new,
            Some(&old),
            &opts,
            Part::Main,
            Some(&schema),
            "now",
        );
        let entries = new["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(
            paths(&entries[0]["fieldsV1"]),
            [".spec.y", ".status.conditions[type=\"Ready\"].type"]
        );
        assert_eq!(entries[1]["operation"], "Update");
        assert_eq!(
            paths(&entries[1]["fieldsV1"]),
            [
                ".metadata.labels.b",
                ".spec.x",
                ".status.conditions[type=\"Ready\"].status"
            ]
        );

        // Removing what only the editor owned leaves it nothing: its entry goes.
        let mut removed = new.clone();
        removed["spec"] = json!({"y": 2});
        removed["metadata"]["labels"] = json!({"a": "1"});
        removed["status"]["conditions"] = json!([{"type": "Ready"}]);
        update_managed_fields(
            &mut removed,
            Some(&new),
            &WriteOpts {
                field_manager: Some("other".into()),
                operation: "Update",
                ..WriteOpts::default()
            },
            Part::Main,
            Some(&schema),
            "now",
        );
        let entries = removed["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0]["manager"], "applier");
    }

    #[test]
    fn conflicts_are_worded_as_the_real_server() {
        let live = json!({"apiVersion": "v1", "spec": {"a": 1, "b": 2}, "metadata": {"managedFields": [
            {"manager": "kubectl-replace", "operation": "Update", "apiVersion": "example.com/v1",
             "fieldsV1": {"f:spec": {"f:a": {}, "f:b": {}}}}
        ]}});
        let one = check_conflicts(
            &live,
            &ApplyConfig::new(&json!({"spec": {"a": 9}}), None),
            "kubectl",
            "",
        )
        .expect_err("conflict");
        assert_eq!(
            one.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-replace\" using example.com/v1: .spec.a"
        );
        let two = check_conflicts(
            &live,
            &ApplyConfig::new(&json!({"spec": {"a": 9, "b": 9}}), None),
            "kubectl",
            "",
        )
        .expect_err("conflicts");
        assert_eq!(
            two.message,
            "Apply failed with 2 conflicts: conflicts with \"kubectl-replace\" using example.com/v1:\n- .spec.a\n- .spec.b"
        );
    }
}
