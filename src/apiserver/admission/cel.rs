//! The CEL adapter: `x-kubernetes-validations` rules evaluated as the apiserver does, with
//! `kube_cel`'s Kubernetes function library on top of the `cel` crate it re-exports (kube-cel's
//! own `Validator` sits behind its non-default `validation` feature, so it is not used here).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::objects::{Key, Map as CelMap, OptionalValue};
use kube_cel::cel::{self, Context, Program, Value as CelValue};
use serde_json::{Map, Value};

use super::schema::{
    Cause, DUPLICATE, FORBIDDEN, INVALID, REQUIRED, additional_schema, cached, child, flag, index,
    is_root_meta, json_eq_all, list_map_keys, map_key, properties, quote, schema_type,
};

type CompiledRule = Rc<Result<Program, String>>;

thread_local! {
    static PROGRAMS: RefCell<HashMap<String, CompiledRule>> = RefCell::new(HashMap::new());
}

fn program(source: &str) -> CompiledRule {
    cached(&PROGRAMS, source, || {
        Rc::new(Program::compile(source).map_err(|e| e.to_string()))
    })
}

/// `field.Path.Key` (used by CEL errors under `additionalProperties`).
fn key_path(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

/// Whether the schema has a CEL rule anywhere.
pub(super) fn has_rules(schema: &Value) -> bool {
    if schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
    {
        return true;
    }
    properties(schema).is_some_and(|p| p.values().any(has_rules))
        || additional_schema(schema).is_some_and(has_rules)
        || schema.get("items").is_some_and(has_rules)
        || ["allOf", "anyOf", "oneOf"].iter().any(|k| {
            schema
                .get(*k)
                .and_then(Value::as_array)
                .is_some_and(|b| b.iter().any(has_rules))
        })
}

/// Evaluates every rule of the schema on `obj` (`old` for transition rules), adding a cause
/// per failure.
pub(super) fn check_rules(
    schema: &Value,
    obj: &Value,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
) {
    CEL_CONTEXT.with(|ctx| {
        let runner = CelRunner { ctx };
        runner.walk(schema, obj, old, "", true, causes);
    });
}

thread_local! {
    /// Root CEL context with the Kubernetes function library (built once per thread).
    static CEL_CONTEXT: Context<'static> = Context::default().with_all();
}

struct CelRunner<'c> {
    ctx: &'c Context<'static>,
}

impl CelRunner<'_> {
    /// Evaluates the rules at `value` and everywhere below it.
    fn walk(
        &self,
        schema: &Value,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        root: bool,
        causes: &mut Vec<Cause>,
    ) {
        // Only non-null values are validated, like the apiserver.
        if value.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        // Ratcheting, as the real server does: a value the update leaves unchanged was admitted
        // before and is not evaluated again (status writes leave the spec's rules alone).
        if !root && old.is_some_and(|o| o == value) {
            return;
        }
        if let Some(rules) = schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
        {
            let (scope, old_cel) = self.bind_self(schema, value, old, root);
            for rule in rules {
                eval_rule(&scope, rule, old_cel.as_ref(), schema, path, causes);
            }
        }
        match value {
            Value::Object(map) => self.walk_object(schema, map, old, path, root, causes),
            Value::Array(items) => self.walk_list(schema, items, old, path, causes),
            _ => {}
        }
    }

    /// A scope with `self` (and `oldSelf`, with its CEL value) bound to `value` (and `old`).
    fn bind_self(
        &self,
        schema: &Value,
        value: &Value,
        old: Option<&Value>,
        root: bool,
    ) -> (Context<'_>, Option<CelValue>) {
        let mut scope = self.ctx.new_inner_scope();
        scope.add_variable_from_value("self", to_cel(value, Some(schema), root));
        let old_cel = old.map(|o| to_cel(o, Some(schema), root));
        if let Some(o) = &old_cel {
            scope.add_variable_from_value("oldSelf", o.clone());
        }
        (scope, old_cel)
    }

    fn walk_object(
        &self,
        schema: &Value,
        map: &Map<String, Value>,
        old: Option<&Value>,
        path: &str,
        root: bool,
        causes: &mut Vec<Cause>,
    ) {
        let props = properties(schema);
        let additional = additional_schema(schema);
        for (key, v) in map {
            if is_root_meta(root, key) {
                continue;
            }
            let old_child = old.and_then(|o| o.get(key));
            if let Some(prop) = props.and_then(|p| p.get(key)) {
                self.walk(prop, v, old_child, &child(path, key), false, causes);
            } else if let Some(add) = additional {
                self.walk(add, v, old_child, &key_path(path, key), false, causes);
            }
        }
    }

    fn walk_list(
        &self,
        schema: &Value,
        items: &[Value],
        old: Option<&Value>,
        path: &str,
        causes: &mut Vec<Cause>,
    ) {
        let Some(item_schema) = schema.get("items") else {
            return;
        };
        let keys = list_map_keys(schema).unwrap_or_default();
        let old_items = old.and_then(Value::as_array);
        for (i, item) in items.iter().enumerate() {
            // Only list-type=map items correlate with the old object (by key).
            let old_item = if !keys.is_empty() {
                let key = map_key(&keys, Some(item_schema), item);
                old_items.and_then(|olds| {
                    olds.iter()
                        .find(|o| json_eq_all(&map_key(&keys, Some(item_schema), o), &key))
                })
            } else {
                None
            };
            self.walk(item_schema, item, old_item, &index(path, i), false, causes);
        }
    }
}

fn eval_rule(
    scope: &Context<'_>,
    rule: &Value,
    old: Option<&CelValue>,
    schema: &Value,
    path: &str,
    causes: &mut Vec<Cause>,
) {
    let Some(source) = rule.get("rule").and_then(Value::as_str) else {
        return;
    };
    let message = rule
        .get("message")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let rule_error = message.unwrap_or(source.trim());
    let ty = quote(schema_type(schema).unwrap_or(""));
    // The apiserver's root field.Path is nil and prints as "<nil>".
    let path = if path.is_empty() { "<nil>" } else { path };
    let compiled = program(source);
    let prog = match compiled.as_ref() {
        Ok(p) => p,
        Err(e) => {
            causes.push(Cause::new(
                INVALID,
                path,
                format!("Invalid value: {ty}: compilation failed for rule: {rule_error}: {e}"),
            ));
            return;
        }
    };
    let optional_old_self = flag(rule, "optionalOldSelf");
    let transition = prog.references().has_variable("oldSelf");
    if transition && old.is_none() && !optional_old_self {
        return;
    }
    let optional_scope;
    let ctx = if transition && optional_old_self {
        optional_scope = with_optional_old_self(scope, old);
        &optional_scope
    } else {
        scope
    };
    match prog.execute(ctx) {
        Ok(CelValue::Bool(true)) => {}
        Ok(_) => causes.push(failure(rule, ctx, message, rule_error, &ty, path)),
        Err(e) => causes.push(Cause::new(
            INVALID,
            path,
            format!("Invalid value: {ty}: {e} evaluating rule: {rule_error}"),
        )),
    }
}

/// A scope where `oldSelf` is an optional (`optionalOldSelf: true`): none on create.
fn with_optional_old_self<'a>(scope: &'a Context<'_>, old: Option<&CelValue>) -> Context<'a> {
    let mut s = scope.new_inner_scope();
    let opt = match old {
        Some(o) => OptionalValue::of(o.clone()),
        None => OptionalValue::none(),
    };
    s.add_variable_from_value("oldSelf", CelValue::Opaque(Arc::new(opt)));
    s
}

/// The cause of a rule that did not hold: its messageExpression, message or the rule itself,
/// at its fieldPath, with its reason.
fn failure(
    rule: &Value,
    ctx: &Context<'_>,
    message: Option<&str>,
    rule_error: &str,
    ty: &str,
    path: &str,
) -> Cause {
    let detail = rule
        .get("messageExpression")
        .and_then(Value::as_str)
        .and_then(|expr| match program(expr).as_ref() {
            Ok(p) => match p.execute(ctx) {
                Ok(CelValue::String(s)) => {
                    let s = s.trim();
                    (!s.is_empty() && !s.contains('\n')).then(|| s.to_owned())
                }
                _ => None,
            },
            Err(_) => None,
        })
        .unwrap_or_else(|| match message {
            Some(m) => m.to_owned(),
            None => format!("failed rule: {rule_error}"),
        });
    let field = match rule.get("fieldPath").and_then(Value::as_str) {
        Some(fp) if !fp.is_empty() => {
            if path == "<nil>" {
                fp.trim_start_matches('.').to_owned()
            } else if fp.starts_with('[') || fp.starts_with('.') {
                format!("{path}{fp}")
            } else {
                format!("{path}.{fp}")
            }
        }
        _ => path.to_owned(),
    };
    let msg = match rule.get("reason").and_then(Value::as_str) {
        Some(FORBIDDEN) => (FORBIDDEN, format!("Forbidden: {detail}")),
        Some(REQUIRED) => (REQUIRED, format!("Required value: {detail}")),
        Some(DUPLICATE) => (DUPLICATE, format!("Duplicate value: {ty}")),
        _ => (INVALID, format!("Invalid value: {ty}: {detail}")),
    };
    Cause::new(msg.0, &field, msg.1)
}

/// CEL reserved words that are escaped as `__word__` in field names.
const CEL_RESERVED: [&str; 21] = [
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Kubernetes' escaping of property names for CEL.
fn escape_field(name: &str) -> String {
    if CEL_RESERVED.contains(&name) {
        return format!("__{name}__");
    }
    let mut out = String::with_capacity(name.len());
    for ch in name.chars() {
        match ch {
            '_' => out.push_str("__"),
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c => out.push(c),
        }
    }
    out
}

fn cel_string(s: &str) -> CelValue {
    CelValue::String(Arc::new(s.to_owned()))
}

/// Converts a JSON value to CEL the way the apiserver binds `self`: date-time and
/// duration strings become timestamps/durations, `number` fields are doubles,
/// declared property names are escaped (map keys under additionalProperties are not).
fn to_cel(value: &Value, schema: Option<&Value>, root: bool) -> CelValue {
    match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            let double = schema.and_then(schema_type) == Some("number");
            match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (_, _, Some(f)) if double => CelValue::Float(f),
                (Some(i), _, _) => CelValue::Int(i),
                (None, Some(u), _) => CelValue::UInt(u),
                (_, _, f) => CelValue::Float(f.unwrap_or(f64::NAN)),
            }
        }
        Value::String(s) => {
            let int_or_string = schema.is_some_and(|s| flag(s, "x-kubernetes-int-or-string"));
            match schema.and_then(|s| s.get("format")).and_then(Value::as_str) {
                Some("date-time") if !int_or_string => {
                    cel::functions::timestamp(Arc::new(s.clone())).unwrap_or_else(|_| cel_string(s))
                }
                Some("duration") if !int_or_string => {
                    cel::functions::time::duration(Arc::new(s.clone()))
                        .unwrap_or_else(|_| cel_string(s))
                }
                _ => cel_string(s),
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(|s| s.get("items"));
            CelValue::List(Arc::new(
                items
                    .iter()
                    .map(|i| to_cel(i, item_schema, false))
                    .collect(),
            ))
        }
        Value::Object(map) => {
            let props = schema.and_then(properties);
            let additional = schema.and_then(|s| s.get("additionalProperties"));
            let is_map = additional.is_some_and(|a| a.is_object() || a.as_bool() == Some(true));
            let additional_schema = additional.filter(|a| a.is_object());
            let mut out = HashMap::with_capacity(map.len());
            for (key, v) in map {
                let child_value = if root && key == "metadata" {
                    // Only metadata.name and metadata.generateName are visible to CEL.
                    let mut meta = Map::new();
                    for k in ["name", "generateName"] {
                        if let Some(x) = v.get(k) {
                            meta.insert(k.to_owned(), x.clone());
                        }
                    }
                    to_cel(&Value::Object(meta), None, false)
                } else {
                    let child_schema = props.and_then(|p| p.get(key)).or(additional_schema);
                    to_cel(v, child_schema, false)
                };
                let declared = props.is_some_and(|p| p.contains_key(key));
                let name = if is_map && !declared {
                    key.clone()
                } else {
                    escape_field(key)
                };
                out.insert(Key::String(Arc::new(name)), child_value);
            }
            CelValue::Map(CelMap { map: Arc::new(out) })
        }
    }
}
