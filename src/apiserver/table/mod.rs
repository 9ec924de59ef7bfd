//! Server-side `meta.k8s.io/v1` `Table` rendering, as kubectl requests with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Mirrors the real apiserver: the apiextensions `tableconvertor` for custom
//! resources (Name column + `additionalPrinterColumns`, first JSONPath match
//! per cell, typed cells, `date` rendered as an age) and the built-in printers
//! for Events, Namespaces, Services and Deployments. Every column is always sent, whatever its
//! priority: the server always prints "wide" and kubectl hides priority > 0
//! columns unless `-o wide`.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

/// One column of a table (a `TableColumnDefinition` plus where its cells come from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column header as the server sends it (kubectl upper-cases it).
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// e.g. `name` for the Name column; usually empty.
    pub format: String,
    /// Human readable description.
    pub description: String,
    /// 0 = shown by default; > 0 only with `-o wide`.
    pub priority: i32,
    /// JSONPath of the cell value, or one of the `COMPUTED_*` markers.
    pub json_path: String,
}

mod kinds;
mod printers;

pub use super::jsonpath::jsonpath;
pub use printers::*;

/// What each row's `object` holds (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `includeObject=None`: no object.
    None,
    /// `includeObject=Metadata` (the default): a `PartialObjectMetadata`.
    #[default]
    Metadata,
    /// `includeObject=Object` (kubectl sends it with `--sort-by`): the full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter ("" means Metadata).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(format!("unrecognized includeObject value: {other:?}")),
        }
    }
}

/// Builds the Table with rows carrying a `PartialObjectMetadata` (the server default).
pub fn table(
    columns: &[Column],
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    now: Timestamp,
) -> Value {
    table_with(
        columns,
        objects,
        resource_version,
        continue_token,
        now,
        IncludeObject::Metadata,
    )
}

/// Like [`table`], with an explicit `includeObject` mode. With
/// `IncludeObject::Object` the objects are embedded as given (they should
/// carry `apiVersion` and `kind`).
pub fn table_with(
    columns: &[Column],
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    now: Timestamp,
    include: IncludeObject,
) -> Value {
    let column_definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let cells: Vec<Value> = columns.iter().map(|c| cell(c, obj, now)).collect();
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            match include {
                IncludeObject::None => {}
                IncludeObject::Object => {
                    row.insert("object".into(), obj.clone());
                }
                IncludeObject::Metadata => {
                    let metadata = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
                    row.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": metadata,
                        }),
                    );
                }
            }
            Value::Object(row)
        })
        .collect();
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(resource_version));
    if let Some(c) = continue_token.filter(|c| !c.is_empty()) {
        metadata.insert("continue".into(), json!(c));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

/// The cell of column `c` for `obj`.
pub fn cell(c: &Column, obj: &Value, now: Timestamp) -> Value {
    if let Some(path) = c.json_path.strip_prefix(COMPUTED_STRING_PREFIX) {
        return match jsonpath(obj, path).first() {
            Some(Value::String(s)) => json!(s),
            Some(Value::Null) | None => json!(""),
            Some(v) => json!(v.to_string()),
        };
    }
    if c.json_path.starts_with(COMPUTED_PREFIX) {
        return computed_cell(&c.json_path, obj, now);
    }
    let results = jsonpath(obj, &c.json_path);
    let Some(value) = results.first() else {
        return Value::Null;
    };
    cell_for_json_value(&c.type_, value, now)
}

fn cell_for_json_value(type_: &str, value: &Value, now: Timestamp) -> Value {
    match (type_, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(s)) => json!(s),
        // The server prints non-strings with the JSONPath printer: scalars as
        // text, maps and arrays as compact JSON.
        ("string", v) => json!(v.to_string()),
        ("integer", Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                // float64 -> int64 truncation, like Go.
                n.as_f64().map_or(Value::Null, |f| json!(f.trunc() as i64))
            }
        }
        ("number", Value::Number(n)) => Value::Number(n.clone()),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => match s.parse::<Timestamp>() {
            Ok(t) => json!(age_since(Some(t), now)),
            Err(_) => json!("<invalid>"),
        },
        _ => Value::Null,
    }
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Whether `t` is Go's zero `time.Time`, which the printers treat as unset.
fn is_go_zero(t: Timestamp) -> bool {
    t.as_second() == GO_ZERO_TIME_SECONDS && t.subsec_nanosecond() == 0
}

/// `translateTimestampSince` / `ConvertToHumanReadableDateType`: "<unknown>"
/// for an unset time, "<invalid>" for one more than a second in the future,
/// otherwise the age.
fn age_since(t: Option<Timestamp>, now: Timestamp) -> String {
    let Some(t) = t.filter(|t| !is_go_zero(*t)) else {
        return "<unknown>".to_string();
    };
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos < 0 {
        // Go: int(d.Seconds()) < -1 -> "<invalid>", else "0s".
        if nanos / 1_000_000_000 < -1 {
            return "<invalid>".to_string();
        }
        return "0s".to_string();
    }
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    human_age(std::time::Duration::new(secs, sub))
}
/// Age formatting exactly as kubectl's duration.HumanDuration
/// (`k8s.io/apimachinery/pkg/util/duration.HumanDuration`):
/// < 2m "Ns"; < 10m "NmSs" (or "Nm"); < 3h "Nm"; < 8h "NhMm" (or "Nh");
/// < 48h "Nh"; < 8d "NdHh" (or "Nd"); < 2y "Nd"; < 8y "NyDd" (or "Ny"); else "Ny"
/// (a year is 365 days).
pub fn human_age(d: std::time::Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = seconds / 3600;
    let days = hours / 24;
    let years = days / 365;
    if seconds < 60 * 2 {
        format!("{seconds}s")
    } else if minutes < 10 {
        two_units(minutes, "m", seconds % 60, "s")
    } else if minutes < 60 * 3 {
        format!("{minutes}m")
    } else if hours < 8 {
        two_units(hours, "h", minutes % 60, "m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        two_units(days, "d", hours % 24, "h")
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        two_units(years, "y", days % 365, "d")
    } else {
        format!("{years}y")
    }
}

/// "NaMb", or just "Na" when the smaller unit is zero.
fn two_units(major: u64, major_unit: &str, minor: u64, minor_unit: &str) -> String {
    if minor == 0 {
        format!("{major}{major_unit}")
    } else {
        format!("{major}{major_unit}{minor}{minor_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub(super) fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn human_age_boundaries() {
        let h = |s: u64| human_age(Duration::from_secs(s));
        assert_eq!(h(0), "0s");
        assert_eq!(h(59), "59s");
        assert_eq!(h(119), "119s");
        assert_eq!(h(120), "2m");
        assert_eq!(h(121), "2m1s");
        assert_eq!(h(599), "9m59s");
        assert_eq!(h(600), "10m");
        assert_eq!(h(3 * 3600 - 1), "179m");
        assert_eq!(h(3 * 3600), "3h");
        assert_eq!(h(3 * 3600 + 60), "3h1m");
        assert_eq!(h(8 * 3600 - 1), "7h59m");
        assert_eq!(h(8 * 3600), "8h");
        assert_eq!(h(48 * 3600 - 1), "47h");
        assert_eq!(h(48 * 3600), "2d");
        assert_eq!(h(49 * 3600), "2d1h");
        assert_eq!(h(8 * 86400 - 1), "7d23h");
        assert_eq!(h(8 * 86400), "8d");
        assert_eq!(h(2 * 365 * 86400 - 1), "729d");
        assert_eq!(h(2 * 365 * 86400), "2y");
        assert_eq!(h(2 * 365 * 86400 + 86400), "2y1d");
        assert_eq!(h(8 * 365 * 86400), "8y");
        assert_eq!(h(9 * 365 * 86400 + 86400), "9y");
        assert_eq!(human_age(Duration::from_millis(1999)), "1s");
    }

    #[test]
    fn crd_table() {
        let cols = columns_from_crd(&json!([
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "desired"},
            {"name": "Ratio", "type": "number", "jsonPath": ".status.ratio", "priority": 1},
            {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
            {"name": "Spec", "type": "string", "jsonPath": ".spec.tags"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]));
        assert_eq!(cols.len(), 7);
        assert_eq!(cols[0].name, "Name");
        assert_eq!(cols[0].format, "name");
        assert_eq!(
            cols[1].description,
            "Custom resource definition column (in JSONPath format): .status.conditions[?(@.type==\"Ready\")].status"
        );
        assert_eq!(cols[3].priority, 1);
        let now = ts("2024-05-01T12:00:00Z");
        let objs = vec![
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w1", "namespace": "default", "resourceVersion": "7",
                             "creationTimestamp": "2024-05-01T11:55:00Z"},
                "spec": {"replicas": 2.0, "paused": true, "tags": ["a", "b"]},
                "status": {"ratio": 0.5, "conditions": [{"type": "Ready", "status": "True"}]}
            }),
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w2", "creationTimestamp": "2024-05-01T12:00:05Z"},
                "spec": {"replicas": "x"}
            }),
        ];
        let t = table(&cols, &objs, "42", Some("tok"), now);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["metadata"],
            json!({"resourceVersion": "42", "continue": "tok"})
        );
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["columnDefinitions"][2]["description"], "desired");
        assert_eq!(t["columnDefinitions"][3]["priority"], 1);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["w1", "True", 2, 0.5, true, "[\"a\",\"b\"]", "5m"])
        );
        assert_eq!(
            t["rows"][0]["object"],
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": objs[0]["metadata"].clone()})
        );
        assert_eq!(
            t["rows"][1]["cells"],
            json!(["w2", null, null, null, null, null, "<invalid>"])
        );

        let t = table_with(&cols, &objs, "1", None, now, IncludeObject::Object);
        assert_eq!(t["metadata"], json!({"resourceVersion": "1"}));
        assert_eq!(t["rows"][1]["object"], objs[1]);
        let t = table_with(&cols, &objs, "1", Some(""), now, IncludeObject::None);
        assert!(t["rows"][0].get("object").is_none());
        assert!(t["metadata"].get("continue").is_none());
    }

    #[test]
    fn crd_default_columns_and_dates() {
        let cols = columns_from_crd(&Value::Null);
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[1].name, "Age");
        assert_eq!(cols[1].type_, "date");
        let now = ts("2024-05-01T12:00:00Z");
        let c = &cols[1];
        let cell_for =
            |created: Value| cell(c, &json!({"metadata": {"creationTimestamp": created}}), now);
        assert_eq!(cell_for(json!("2024-05-01T11:59:59.5Z")), json!("0s"));
        assert_eq!(cell_for(json!("2024-05-01T12:00:01Z")), json!("0s"));
        assert_eq!(cell_for(json!("2024-05-01T12:00:02Z")), json!("<invalid>"));
        assert_eq!(cell_for(json!("2024-04-29T12:00:00Z")), json!("2d"));
        assert_eq!(cell_for(json!("2024-05-01T13:00:00+02:00")), json!("60m"));
        assert_eq!(cell_for(json!("garbage")), json!("<invalid>"));
        assert_eq!(cell_for(json!("0001-01-01T00:00:00Z")), json!("<unknown>"));
        assert_eq!(cell_for(json!(5)), Value::Null);
        assert_eq!(cell(c, &json!({"metadata": {}}), now), Value::Null);
    }

    #[test]
    fn include_object_parse() {
        assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("None"), Ok(IncludeObject::None));
        assert!(IncludeObject::parse("x").is_err());
    }
}
