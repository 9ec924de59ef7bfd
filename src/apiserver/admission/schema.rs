//! What a real kube-apiserver does with a CustomResourceDefinition's structural
//! `openAPIV3Schema`: defaulting, pruning of unknown fields and validation
//! (OpenAPI value validations, list types and `x-kubernetes-validations` CEL rules).
//!
//! The schema is the `openAPIV3Schema` of one CRD version, i.e. the schema of the
//! whole object. At the root, `apiVersion`, `kind` and `metadata` are handled by
//! the apiserver itself and are never pruned, defaulted or validated here (beyond
//! `metadata` being an object).
//!
//! Error causes mimic the apiserver's `field.Error`s: `field` is the dotted path
//! (`spec.resources[1]`), `message` is `ErrorBody()` (e.g. `Required value`).
//!
//! CEL rules are evaluated in [`super::cel`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::thread::LocalKey;

use regex::Regex;
use serde_json::{Map, Value};

use super::cel;

/// One entry of a 422 Status's details.causes, as the real apiserver writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: String,
    /// The error body, e.g. `Required value`.
    pub message: String,
    /// The field path, e.g. `spec.resources[1]` (`<nil>` for the object root).
    pub field: String,
}

pub(super) const INVALID: &str = "FieldValueInvalid";
pub(super) const REQUIRED: &str = "FieldValueRequired";
const NOT_SUPPORTED: &str = "FieldValueNotSupported";
const TYPE_INVALID: &str = "FieldValueTypeInvalid";
const TOO_LONG: &str = "FieldValueTooLong";
const TOO_MANY: &str = "FieldValueTooMany";
pub(super) const DUPLICATE: &str = "FieldValueDuplicate";
pub(super) const FORBIDDEN: &str = "FieldValueForbidden";

/// Error types that make the apiserver skip CEL rules (`hasBlockingErr`).
const BLOCKING: [&str; 5] = [NOT_SUPPORTED, REQUIRED, TOO_LONG, TOO_MANY, TYPE_INVALID];

const NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; \
                           correct the existing errors to complete validation";

impl Cause {
    pub(super) fn new(reason: &str, field: &str, message: String) -> Self {
        Cause {
            reason: reason.to_owned(),
            message,
            field: field.to_owned(),
        }
    }
}

// ───────────────────────────── schema helpers ─────────────────────────────

pub(super) fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

pub(super) fn schema_type(schema: &Value) -> Option<&str> {
    schema.get("type").and_then(Value::as_str)
}

pub(super) fn properties(schema: &Value) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// `additionalProperties` in its schema form.
pub(super) fn additional_schema(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|a| a.is_object())
}

fn num(schema: &Value, name: &str) -> Option<f64> {
    schema.get(name).and_then(Value::as_f64)
}

fn count(schema: &Value, name: &str) -> Option<u64> {
    schema.get(name).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
    })
}

pub(super) fn is_root_meta(root: bool, key: &str) -> bool {
    root && matches!(key, "apiVersion" | "kind" | "metadata")
}

pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

// ───────────────────────────── value formatting ─────────────────────────────

pub(super) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

fn fmt_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        n.as_f64().map_or_else(|| n.to_string(), |f| f.to_string())
    }
}

fn fmt_f64(f: f64) -> String {
    f.to_string()
}

/// How Go's `%#v` prints an unstructured value nested in a composite.
fn go_sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => fmt_number(n),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(go_sharp).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", quote(k), go_sharp(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// How `field.Error.ErrorBody()` prints a bad value.
fn fmt_value(v: &Value) -> String {
    match v {
        Value::Null => quote("null"),
        Value::String(s) => quote(s),
        other => go_sharp(other),
    }
}

/// The OpenAPI type name of a JSON value, as kube-openapi reports it.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// JSON equality where numbers compare by value (1 == 1.0).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

// ───────────────────────────── caches ─────────────────────────────

const CACHE_LIMIT: usize = 512;

thread_local! {
    // Rc, not Regex clones: a cloned Regex starts a fresh match cache, which is costly.
    static REGEXES: RefCell<HashMap<String, Option<Rc<Regex>>>> = RefCell::new(HashMap::new());
}

/// A per-thread cache keyed by source text (a pattern, a rule), emptied when it is full.
pub(super) fn cached<T: Clone>(
    cache: &'static LocalKey<RefCell<HashMap<String, T>>>,
    source: &str,
    make: impl FnOnce() -> T,
) -> T {
    cache.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(v) = cache.get(source) {
            return v.clone();
        }
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        let v = make();
        cache.insert(source.to_owned(), v.clone());
        v
    })
}

fn regex(pattern: &str) -> Option<Rc<Regex>> {
    cached(&REGEXES, pattern, || Regex::new(pattern).ok().map(Rc::new))
}

// ───────────────────────────── date-time ─────────────────────────────

/// RFC 3339 date-time, as accepted by kube-openapi's `date-time` format
/// (also lowercase `t`/`z`, a space separator and offsets without colon).
fn is_date_time(s: &str) -> bool {
    let Some(re) = regex(
        r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(?:[Zz]|[+-](\d{2}):?(\d{2}))?$",
    ) else {
        return false;
    };
    let Some(c) = re.captures(s) else {
        return false;
    };
    let field = |i: usize| -> u32 {
        c.get(i)
            .and_then(|m| m.as_str().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let (year, month, day) = (field(1), field(2), field(3));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
        && field(4) <= 23
        && field(5) <= 59
        && field(6) <= 60
        && field(7) <= 23
        && field(8) <= 59
}

// ───────────────────────────── defaulting ─────────────────────────────

/// Fills `default`s into obj (recursively, only where the parent object exists; like the apiserver).
///
/// Like the apiserver, a `null` in a non-nullable property is replaced by the
/// property's default, or dropped when the property has none.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    default_node(schema, obj, true);
}

fn default_node(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => {
            let props = properties(schema);
            if let Some(props) = props {
                for (key, prop) in props {
                    if is_root_meta(root, key) {
                        continue;
                    }
                    let default = prop.get("default");
                    match map.get(key) {
                        None => {
                            if let Some(d) = default {
                                map.insert(key.clone(), d.clone());
                            }
                        }
                        Some(Value::Null) if !flag(prop, "nullable") => match default {
                            Some(d) => {
                                map.insert(key.clone(), d.clone());
                            }
                            None => {
                                map.remove(key);
                            }
                        },
                        Some(_) => {}
                    }
                }
            }
            let additional = additional_schema(schema);
            if let Some(add) = additional
                && !flag(add, "nullable")
                && add.get("default").is_none()
            {
                map.retain(|k, v| {
                    !v.is_null()
                        || props.is_some_and(|p| p.contains_key(k))
                        || is_root_meta(root, k)
                });
            }
            for (key, v) in map.iter_mut() {
                if is_root_meta(root, key) {
                    continue;
                }
                if let Some(prop) = props.and_then(|p| p.get(key)) {
                    default_node(prop, v, false);
                } else if let Some(add) = additional {
                    default_node(add, v, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    default_node(item_schema, item, false);
                }
            }
        }
        _ => {}
    }
}

// ───────────────────────────── pruning ─────────────────────────────

/// Removes fields not in the schema (honouring x-kubernetes-preserve-unknown-fields and additionalProperties);
/// never touches apiVersion, kind, metadata at the root. Returns the dotted paths removed, e.g. "spec.foo".
pub fn prune_unknown(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_node(schema, obj, "", true, &mut removed);
    removed
}

fn prune_node(
    schema: &Value,
    value: &mut Value,
    path: &str,
    root: bool,
    removed: &mut Vec<String>,
) {
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let props = properties(schema);
            let additional = schema.get("additionalProperties");
            let additional_schema = additional.filter(|a| a.is_object());
            let additional_any = additional.and_then(Value::as_bool) == Some(true);
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if is_root_meta(root || embedded, &key) {
                    continue;
                }
                let child_path = child(path, &key);
                let child_schema = props.and_then(|p| p.get(&key)).or(additional_schema);
                match child_schema {
                    Some(s) => {
                        if let Some(v) = map.get_mut(&key) {
                            prune_node(s, v, &child_path, false, removed);
                        }
                    }
                    None if preserve || additional_any => {}
                    None => {
                        map.remove(&key);
                        removed.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_node(item_schema, item, &index(path, i), false, removed);
                }
            }
        }
        _ => {}
    }
}

// ───────────────────────────── validation ─────────────────────────────

/// Validates obj (after defaulting/pruning) against the schema; `old` is the stored object on update (for CEL transition rules with oldSelf, evaluated only where old has the same path). Returns every violation.
///
/// Like the apiserver, CEL rules are not evaluated when the OpenAPI validation
/// found a "blocking" error (type, required, enum, too long, too many); one extra
/// cause then says so.
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    check_node(schema, obj, old, "", true, &mut causes);
    if cel::has_rules(schema) {
        if causes.iter().any(|c| BLOCKING.contains(&c.reason.as_str())) {
            causes.push(Cause::new(
                INVALID,
                "<nil>",
                format!("Invalid value: {}: {NOT_CHECKED}", quote("null")),
            ));
        } else {
            cel::check_rules(schema, obj, old, &mut causes);
        }
    }
    causes
}

fn type_invalid(path: &str, expected: &str, value: &Value) -> Cause {
    let actual = json_type(value);
    Cause::new(
        TYPE_INVALID,
        path,
        format!(
            "Invalid value: {q}: {path} in body must be of type {expected}: {q}",
            q = quote(actual)
        ),
    )
}

fn invalid(path: &str, value: &str, detail: &str) -> Cause {
    Cause::new(
        INVALID,
        path,
        format!("Invalid value: {value}: {path} in body {detail}"),
    )
}

/// Returns the expected type name when `value` does not match the schema's type.
fn type_mismatch(schema: &Value, value: &Value) -> Option<String> {
    if flag(schema, "x-kubernetes-int-or-string") {
        return match value {
            Value::String(_) => None,
            Value::Number(n) if is_integer(n) => None,
            _ => Some("integer,string".to_owned()),
        };
    }
    let expected = schema_type(schema)?;
    let ok = match expected {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => matches!(value, Value::Number(n) if is_integer(n)),
        "number" => value.is_number(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    };
    (!ok).then(|| expected.to_owned())
}

fn check_node(
    schema: &Value,
    value: &Value,
    old: Option<&Value>,
    path: &str,
    root: bool,
    causes: &mut Vec<Cause>,
) {
    // Ratcheting, as the real server does: a value an update leaves unchanged is not checked again.
    if !root && old.is_some_and(|o| o == value) {
        return;
    }
    if value.is_null() {
        if !flag(schema, "nullable")
            && let Some(expected) = type_mismatch(schema, value)
        {
            causes.push(type_invalid(path, &expected, value));
        }
        return;
    }
    if let Some(expected) = type_mismatch(schema, value) {
        causes.push(type_invalid(path, &expected, value));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.iter().any(|a| json_eq(a, value))
    {
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => quote(s),
                other => quote(&other.to_string()),
            })
            .collect();
        causes.push(Cause::new(
            NOT_SUPPORTED,
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                fmt_value(value),
                supported.join(", ")
            ),
        ));
    }
    match value {
        Value::String(s) => check_string(schema, s, path, causes),
        Value::Number(n) => check_number(schema, n, path, causes),
        Value::Array(items) => check_array(schema, items, path, causes),
        Value::Object(map) => check_object(
            schema,
            map,
            old.and_then(Value::as_object),
            path,
            root,
            causes,
        ),
        _ => {}
    }
    if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
        for branch in branches {
            check_node(branch, value, old, path, root, causes);
        }
    }
}

fn check_string(schema: &Value, s: &str, path: &str, causes: &mut Vec<Cause>) {
    let len = s.chars().count() as u64;
    if let Some(max) = count(schema, "maxLength")
        && len > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        causes.push(Cause::new(
            TOO_LONG,
            path,
            format!("Too long: may not be more than {max} {unit}"),
        ));
    }
    if let Some(min) = count(schema, "minLength")
        && len < min
    {
        causes.push(invalid(
            path,
            &quote(s),
            &format!("should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && let Some(re) = regex(pattern)
        && !re.is_match(s)
    {
        causes.push(invalid(
            path,
            &quote(s),
            &format!("should match '{pattern}'"),
        ));
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time") && !is_date_time(s) {
        causes.push(Cause::new(
            TYPE_INVALID,
            path,
            format!(
                "Invalid value: {q}: {path} in body must be of type date-time: {q}",
                q = quote(s)
            ),
        ));
    }
}

fn check_number(schema: &Value, n: &serde_json::Number, path: &str, causes: &mut Vec<Cause>) {
    let Some(v) = n.as_f64() else {
        return;
    };
    let shown = fmt_number(n);
    if let Some(max) = num(schema, "maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        if exclusive && v >= max {
            causes.push(invalid(
                path,
                &shown,
                &format!("should be less than {}", fmt_f64(max)),
            ));
        } else if !exclusive && v > max {
            causes.push(invalid(
                path,
                &shown,
                &format!("should be less than or equal to {}", fmt_f64(max)),
            ));
        }
    }
    if let Some(min) = num(schema, "minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        if exclusive && v <= min {
            causes.push(invalid(
                path,
                &shown,
                &format!("should be greater than {}", fmt_f64(min)),
            ));
        } else if !exclusive && v < min {
            causes.push(invalid(
                path,
                &shown,
                &format!("should be greater than or equal to {}", fmt_f64(min)),
            ));
        }
    }
    if let Some(factor) = num(schema, "multipleOf")
        && factor > 0.0
        && (v / factor).fract() != 0.0
    {
        causes.push(invalid(
            path,
            &shown,
            &format!("should be a multiple of {}", fmt_f64(factor)),
        ));
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    check_count(
        schema,
        ("maxItems", "minItems"),
        items.len(),
        "items",
        path,
        causes,
    );
    let item_schema = schema.get("items");
    if let Some(item_schema) = item_schema {
        for (i, item) in items.iter().enumerate() {
            check_node(item_schema, item, None, &index(path, i), false, causes);
        }
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => check_set(items, path, causes),
        Some("map") => check_list_map(schema, item_schema, items, path, causes),
        _ => {}
    }
}

/// The bounds on how many entries an array or object has (`maxItems`/`minItems`,
/// `maxProperties`/`minProperties`); `noun` names them in the lower bound's message.
fn check_count(
    schema: &Value,
    (max_key, min_key): (&str, &str),
    len: usize,
    noun: &str,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    let len = len as u64;
    if let Some(max) = count(schema, max_key)
        && len > max
    {
        causes.push(Cause::new(
            TOO_MANY,
            path,
            format!("Too many: {len}: must have at most {max} items"),
        ));
    }
    if let Some(min) = count(schema, min_key)
        && len < min
    {
        causes.push(invalid(
            path,
            &len.to_string(),
            &format!("should have at least {min} {noun}"),
        ));
    }
}

/// `x-kubernetes-list-type: set`: no item twice.
fn check_set(items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    for (i, item) in items.iter().enumerate() {
        if items[..i].iter().any(|earlier| json_eq(earlier, item)) {
            causes.push(Cause::new(
                DUPLICATE,
                &index(path, i),
                format!("Duplicate value: {}", fmt_value(item)),
            ));
        }
    }
}

/// `x-kubernetes-list-type: map`: no key twice.
fn check_list_map(
    schema: &Value,
    item_schema: Option<&Value>,
    items: &[Value],
    path: &str,
    causes: &mut Vec<Cause>,
) {
    let keys = list_map_keys(schema).unwrap_or_default();
    let mut seen: Vec<Vec<Value>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            continue;
        }
        let key = map_key(&keys, item_schema, item);
        if seen.iter().any(|k| json_eq_all(k, &key)) {
            let shown: Map<String, Value> = keys
                .iter()
                .zip(&key)
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            causes.push(Cause::new(
                DUPLICATE,
                &index(path, i),
                format!("Duplicate value: {}", fmt_value(&Value::Object(shown))),
            ));
        }
        seen.push(key);
    }
}

pub(super) fn json_eq_all(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_eq(x, y))
}

/// The key fields of a list-map (`x-kubernetes-list-type: map`); None when the schema is not
/// one or names no `x-kubernetes-list-map-keys`. Admission and server-side apply both read it.
pub(in crate::apiserver) fn list_map_keys(schema: &Value) -> Option<Vec<&str>> {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    Some(
        schema
            .get("x-kubernetes-list-map-keys")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect(),
    )
}

/// The key tuple of a list-map item (missing keys take the key property's default).
pub(super) fn map_key(keys: &[&str], item_schema: Option<&Value>, item: &Value) -> Vec<Value> {
    keys.iter()
        .map(|k| {
            item.get(*k)
                .or_else(|| {
                    item_schema
                        .and_then(properties)
                        .and_then(|p| p.get(*k))
                        .and_then(|p| p.get("default"))
                })
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect()
}

fn check_object(
    schema: &Value,
    map: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
    path: &str,
    root: bool,
    causes: &mut Vec<Cause>,
) {
    check_count(
        schema,
        ("maxProperties", "minProperties"),
        map.len(),
        "properties",
        path,
        causes,
    );
    let props = properties(schema);
    let non_nullable_null = |key: &str, v: &Value| {
        v.is_null()
            && !props
                .and_then(|p| p.get(key))
                .or_else(|| additional_schema(schema))
                .is_some_and(|s| flag(s, "nullable"))
    };
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            let present = map.get(key).is_some_and(|v| !non_nullable_null(key, v));
            if !present {
                causes.push(Cause::new(
                    REQUIRED,
                    &child(path, key),
                    "Required value".to_owned(),
                ));
            }
        }
    }
    for (key, v) in map {
        if root && key == "metadata" {
            if !v.is_object() {
                causes.push(type_invalid("metadata", "object", v));
            }
            continue;
        }
        if is_root_meta(root, key) && props.is_none_or(|p| !p.contains_key(key)) {
            continue;
        }
        // A null in a non-nullable optional field is treated as absent.
        if non_nullable_null(key, v) {
            continue;
        }
        let old_v = old.and_then(|o| o.get(key));
        if let Some(prop) = props.and_then(|p| p.get(key)) {
            check_node(prop, v, old_v, &child(path, key), false, causes);
        } else if let Some(add) = additional_schema(schema) {
            check_node(add, v, old_v, &child(path, key), false, causes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "id": {"type": "string", "pattern": "^[0-9]+$",
                       "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "id is immutable"}]},
                "name": {"type": "string", "maxLength": 3}
            }},
            "status": {"type": "object", "properties": {"n": {"type": "integer"}}}
        }})
    }

    #[test]
    fn unchanged_values_are_not_checked_again_but_changed_ones_are() {
        // Stored before a stricter schema: invalid today, but the update leaves it alone.
        let old = json!({"spec": {"id": "abc", "name": "toolong"}, "status": {"n": 1}});
        let status_only = json!({"spec": {"id": "abc", "name": "toolong"}, "status": {"n": 2}});
        assert!(validate(&schema(), &status_only, Some(&old)).is_empty());
        // A changed field is checked, and so are the rules on it.
        let changed = json!({"spec": {"id": "123", "name": "toolong"}, "status": {"n": 2}});
        let causes = validate(&schema(), &changed, Some(&old));
        assert!(
            causes
                .iter()
                .any(|c| c.field == "spec.id" && c.message.contains("immutable")),
            "{causes:?}"
        );
        // On create nothing is ratcheted.
        let causes = validate(&schema(), &old, None);
        assert!(causes.iter().any(|c| c.field == "spec.id"), "{causes:?}");
        assert!(causes.iter().any(|c| c.field == "spec.name"), "{causes:?}");
    }
}
