//! Server-side apply, all of it: the fields an apply configuration sets, merging it into the
//! live object (list-maps by key), removing what its manager no longer applies, conflicts with
//! other appliers, and the managedFields entries that record who owns what.

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
        }
    }

    /// The entry of exactly this manager, operation and subresource.
    fn is(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == Some(manager)
            && self.operation == Some(operation)
            && self.subresource == subresource
    }

    /// Another manager's apply to the same subresource: whose fields an apply conflicts with.
    fn is_other_applier(&self, manager: &str, subresource: &str) -> bool {
        self.manager != Some(manager)
            && self.operation == Some("Apply")
            && self.subresource == subresource
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
/// applier owns. Without `force` these refuse the apply with 409, as the real server does.
pub fn check_conflicts(
    live: &Value,
    applied: &ApplyConfig<'_>,
    manager: &str,
    subresource: &str,
) -> Result<(), ApiError> {
    let mut conflicts = Vec::new();
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for e in entries {
        let owner = Owner::of(e);
        if !owner.is_other_applier(manager, subresource) {
            continue;
        }
        let other = owner.manager.unwrap_or("");
        let mut owned = Vec::new();
        if let Some(f) = e.get("fieldsV1") {
            fields_v1_paths(f, &mut Vec::new(), &mut owned);
        }
        for p in applied.paths.iter().filter(|p| owned.contains(p)) {
            // A field some later update removed is owned by no one any more.
            let current = value_at(live, p);
            if current.is_some() && current != value_at(applied.body, p) {
                conflicts.push((other.to_string(), display_path(p)));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = conflicts
        .iter()
        .map(|(m, p)| format!("conflict with \"{m}\": {p}"))
        .collect();
    Err(ApiError::new(
        409,
        "Conflict",
        format!(
            "Apply failed with {} conflict{}: {}",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" },
            lines.join("\n")
        ),
    ))
}

/// What a forced apply takes over: removes from another applier's fieldsV1 (`other`) every
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
            Seg::Key(k) => format!("[{}]", Value::Object(k.clone())),
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
        fields_v1_paths(child, prefix, out);
        prefix.pop();
    }
}

/// One managedFields entry per (manager, operation, subresource); bounded by the managers.
pub fn update_managed_fields(
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOpts,
    part: Part,
    now: &str,
) {
    let mut entries: Vec<Value> = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(manager) = &opts.field_manager {
        let sub = part.subresource();
        let op = if opts.operation.is_empty() {
            "Update"
        } else {
            opts.operation
        };
        if op == "Apply"
            && let (Some(old), Some(applied)) = (old, opts.applied_fields.as_ref())
        {
            release_forced_fields(&mut entries, manager, sub, applied, old, obj);
        }
        entries.retain(|e| !Owner::of(e).is(manager, op, sub));
        let mut entry = json!({
            "manager": manager,
            "operation": op,
            "apiVersion": obj.get("apiVersion").cloned().unwrap_or(Value::Null),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": opts.applied_fields.clone().unwrap_or(json!({})),
        });
        if !sub.is_empty() {
            entry["subresource"] = sub.into();
        }
        entries.push(entry);
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

/// A forced apply takes over the fields it changed: other appliers' entries lose them, and an
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
        let other_applier = Owner::of(e).is_other_applier(manager, sub);
        match e.get_mut("fieldsV1") {
            Some(f) if other_applier => release_taken_fields(f, applied, old, new),
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
}
