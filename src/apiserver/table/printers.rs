//! The columns of each kind's table and the cells computed in code: a CRD's
//! `additionalPrinterColumns` and the built-in printers (Events, Namespaces, the default).

use super::{Column, age_since, is_go_zero};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

/// Marker prefix of `Column::json_path` for cells computed in code rather than by JSONPath.
pub const COMPUTED_PREFIX: &str = "#computed:";
/// Event: LAST SEEN (age of lastTimestamp / series.lastObservedTime / firstTimestamp / eventTime).
pub const COMPUTED_EVENT_LAST_SEEN: &str = "#computed:event.lastSeen";
/// Event: OBJECT (`kind/name` of involvedObject / regarding, kind lower-cased).
pub const COMPUTED_EVENT_OBJECT: &str = "#computed:event.object";
/// Event: SOURCE (`component, host`).
pub const COMPUTED_EVENT_SOURCE: &str = "#computed:event.source";
/// Event: MESSAGE (message / note, trimmed).
pub const COMPUTED_EVENT_MESSAGE: &str = "#computed:event.message";
/// Event: FIRST SEEN.
pub const COMPUTED_EVENT_FIRST_SEEN: &str = "#computed:event.firstSeen";
/// Event: COUNT (series.count / count, at least 1).
pub const COMPUTED_EVENT_COUNT: &str = "#computed:event.count";
/// Event: SUBOBJECT (involvedObject.fieldPath / regarding.fieldPath).
pub const COMPUTED_EVENT_SUBOBJECT: &str = "#computed:event.subobject";
/// Age of `.metadata.creationTimestamp` as a string cell ("<unknown>" if unset).
pub const COMPUTED_AGE: &str = "#computed:age";
/// A string cell that is `""` rather than null when the path is missing:
/// `#computed:str:<jsonpath>`.
pub const COMPUTED_STRING_PREFIX: &str = "#computed:str:";

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

pub(super) fn col(
    name: &str,
    type_: &str,
    format: &str,
    description: &str,
    priority: i32,
    path: &str,
) -> Column {
    Column {
        name: name.to_string(),
        type_: type_.to_string(),
        format: format.to_string(),
        description: description.to_string(),
        priority,
        json_path: path.to_string(),
    }
}

/// The Name column (shown by default, or with `-o wide` only for Events).
pub(super) fn name_column(priority: i32) -> Column {
    col(
        "Name",
        "string",
        "name",
        NAME_DESCRIPTION,
        priority,
        ".metadata.name",
    )
}

fn age_date_column() -> Column {
    col(
        "Age",
        "date",
        "",
        CREATION_TIMESTAMP_DESCRIPTION,
        0,
        ".metadata.creationTimestamp",
    )
}

/// Columns from a CRD version's additionalPrinterColumns JSON array (camelCase keys as in the CRD).
///
/// Returns the *complete* column list, as the apiextensions-apiserver does:
/// the `Name` column first, then every printer column; when the array is
/// missing or empty the default single `Age` column (`.metadata.creationTimestamp`,
/// type date) is used, like the real server.
pub fn columns_from_crd(printer_columns: &Value) -> Vec<Column> {
    let mut cols = vec![name_column(0)];
    let defs = printer_columns.as_array().map(Vec::as_slice).unwrap_or(&[]);
    if defs.is_empty() {
        cols.push(age_date_column());
        return cols;
    }
    for d in defs {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let json_path = s("jsonPath");
        let mut description = s("description");
        if description.is_empty() {
            description =
                format!("Custom resource definition column (in JSONPath format): {json_path}");
        }
        cols.push(Column {
            name: s("name"),
            type_: s("type"),
            format: s("format"),
            description,
            priority: d
                .get("priority")
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0),
            json_path,
        });
    }
    cols
}

/// Built-in printers for kinds that have no printer columns: core/v1 Event (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE as kubectl shows them: OBJECT is "kind/name" of involvedObject, LAST SEEN an age from lastTimestamp/eventTime/series), events.k8s.io/v1 Event (same, from regarding/note/deprecatedLastTimestamp/eventTime), Namespace (STATUS, AGE), Service and Deployment (see `kinds`), and a default (AGE only) for anything else.
///
/// Like `columns_from_crd`, this is the complete column list. Events have no
/// leading Name column (their Name is a priority-1 column at the end, as in
/// the real printer); Namespace is Name, Status, Age; the default is Name, Age.
pub fn builtin_columns(group: &str, kind: &str) -> Vec<Column> {
    match (group, kind) {
        ("" | "events.k8s.io", "Event") => event_columns(),
        ("", "Namespace") => vec![
            name_column(0),
            col(
                "Status",
                "string",
                "",
                "The status of the namespace",
                0,
                &format!("{COMPUTED_STRING_PREFIX}.status.phase"),
            ),
            col(
                "Age",
                "string",
                "",
                CREATION_TIMESTAMP_DESCRIPTION,
                0,
                COMPUTED_AGE,
            ),
        ],
        ("", "Service") => super::kinds::service_columns(),
        ("apps", "Deployment") => super::kinds::deployment_columns(),
        _ => vec![name_column(0), age_date_column()],
    }
}

/// The columns of both Event APIs, as kubectl shows them.
fn event_columns() -> Vec<Column> {
    vec![
        col(
            "Last Seen",
            "string",
            "",
            "The time at which the most recent occurrence of this event was recorded.",
            0,
            COMPUTED_EVENT_LAST_SEEN,
        ),
        col(
            "Type",
            "string",
            "",
            "Type of this event (Normal, Warning), new types could be added in the future",
            0,
            &format!("{COMPUTED_STRING_PREFIX}.type"),
        ),
        col(
            "Reason",
            "string",
            "",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            0,
            &format!("{COMPUTED_STRING_PREFIX}.reason"),
        ),
        col(
            "Object",
            "string",
            "",
            "The object that this event is about.",
            0,
            COMPUTED_EVENT_OBJECT,
        ),
        col(
            "Subobject",
            "string",
            "",
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.",
            1,
            COMPUTED_EVENT_SUBOBJECT,
        ),
        col(
            "Source",
            "string",
            "",
            "The component reporting this event. Should be a short machine understandable string.",
            1,
            COMPUTED_EVENT_SOURCE,
        ),
        col(
            "Message",
            "string",
            "",
            "A human-readable description of the status of this operation.",
            0,
            COMPUTED_EVENT_MESSAGE,
        ),
        col(
            "First Seen",
            "string",
            "",
            "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
            1,
            COMPUTED_EVENT_FIRST_SEEN,
        ),
        col(
            "Count",
            "string",
            "",
            "The number of times this event has occurred.",
            1,
            COMPUTED_EVENT_COUNT,
        ),
        name_column(1),
    ]
}

/// Go's zero `time.Time` is "unset" to the printers.
fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    let t = v?.as_str()?.parse::<Timestamp>().ok()?;
    if is_go_zero(t) {
        return None;
    }
    Some(t)
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

/// The `involvedObject` (core/v1) or `regarding` (events.k8s.io/v1) reference.
fn event_ref(obj: &Value) -> &Value {
    obj.get("involvedObject")
        .filter(|v| v.is_object())
        .or_else(|| obj.get("regarding"))
        .unwrap_or(&Value::Null)
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

struct EventTimes {
    first: String,
    last: String,
    count: i64,
}

fn event_times(obj: &Value, now: Timestamp) -> EventTimes {
    let first_ts = parse_time(obj.get("firstTimestamp"))
        .or_else(|| parse_time(obj.get("deprecatedFirstTimestamp")));
    let first = match first_ts {
        Some(t) => age_since(Some(t), now),
        None => age_since(parse_time(obj.get("eventTime")), now),
    };
    let last_ts = parse_time(obj.get("lastTimestamp"))
        .or_else(|| parse_time(obj.get("deprecatedLastTimestamp")));
    let mut last = match last_ts {
        Some(t) => age_since(Some(t), now),
        None => first.clone(),
    };
    let mut count = obj
        .get("count")
        .or_else(|| obj.get("deprecatedCount"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    match obj.get("series").filter(|s| s.is_object()) {
        Some(series) => {
            last = age_since(parse_time(series.get("lastObservedTime")), now);
            count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
        }
        None => {
            if count == 0 {
                count = 1;
            }
        }
    }
    EventTimes { first, last, count }
}

pub(super) fn computed_cell(marker: &str, obj: &Value, now: Timestamp) -> Value {
    match marker {
        COMPUTED_EVENT_LAST_SEEN => json!(event_times(obj, now).last),
        COMPUTED_EVENT_FIRST_SEEN => json!(event_times(obj, now).first),
        COMPUTED_EVENT_COUNT => json!(event_times(obj, now).count),
        COMPUTED_EVENT_OBJECT => {
            let r = event_ref(obj);
            let kind = str_at(r, &["kind"]).to_lowercase();
            let name = str_at(r, &["name"]);
            if name.is_empty() {
                json!(kind)
            } else {
                json!(format!("{kind}/{name}"))
            }
        }
        COMPUTED_EVENT_SUBOBJECT => json!(str_at(event_ref(obj), &["fieldPath"])),
        COMPUTED_EVENT_MESSAGE => {
            let m = first_non_empty(str_at(obj, &["message"]), str_at(obj, &["note"]));
            json!(m.trim())
        }
        COMPUTED_EVENT_SOURCE => {
            let component = first_non_empty(
                first_non_empty(
                    str_at(obj, &["source", "component"]),
                    str_at(obj, &["deprecatedSource", "component"]),
                ),
                first_non_empty(
                    str_at(obj, &["reportingComponent"]),
                    str_at(obj, &["reportingController"]),
                ),
            );
            let host = first_non_empty(
                first_non_empty(
                    str_at(obj, &["source", "host"]),
                    str_at(obj, &["deprecatedSource", "host"]),
                ),
                str_at(obj, &["reportingInstance"]),
            );
            if component.is_empty() {
                json!("<unknown>")
            } else if host.is_empty() {
                json!(component)
            } else {
                json!(format!("{component}, {host}"))
            }
        }
        COMPUTED_AGE => json!(age_since(
            parse_time(obj.pointer("/metadata/creationTimestamp")),
            now
        )),
        other => super::kinds::cell(other, obj).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::super::table;
    use super::super::tests::ts;
    use super::*;

    #[test]
    fn builtin_event_tables() {
        let now = ts("2024-05-01T12:00:00Z");
        let cols = builtin_columns("", "Event");
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "w1.17a", "namespace": "default"},
            "involvedObject": {"kind": "Widget", "name": "w1", "fieldPath": "spec"},
            "reason": "Synced", "message": " all good \n", "type": "Normal",
            "firstTimestamp": "2024-05-01T11:00:00Z", "lastTimestamp": "2024-05-01T11:58:00Z",
            "count": 4, "source": {"component": "csp-operator"}
        });
        let t = table(&cols, &[core], "5", None, now);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "2m",
                "Normal",
                "Synced",
                "widget/w1",
                "spec",
                "csp-operator",
                "all good",
                "60m",
                4,
                "w1.17a"
            ])
        );
        let cols2 = builtin_columns("events.k8s.io", "Event");
        assert_eq!(cols2, cols);
        let new = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e2"},
            "regarding": {"kind": "Namespace", "name": "ns1"},
            "note": "hello", "reason": "R", "type": "Warning",
            "eventTime": "2024-05-01T11:59:30.123456Z",
            "reportingController": "ctl", "reportingInstance": "ctl-0"
        });
        let t = table(&cols2, &[new], "5", None, now);
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "29s",
                "Warning",
                "R",
                "namespace/ns1",
                "",
                "ctl, ctl-0",
                "hello",
                "29s",
                1,
                "e2"
            ])
        );
        let series = json!({
            "metadata": {"name": "e3"},
            "involvedObject": {"kind": "Node"},
            "eventTime": "2024-05-01T10:00:00Z",
            "series": {"count": 9, "lastObservedTime": "2024-05-01T11:00:00.000000Z"}
        });
        let t = table(&cols, &[series], "5", None, now);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["60m", "", "", "node", "", "<unknown>", "", "120m", 9, "e3"])
        );
        let bare = json!({"metadata": {"name": "e4"}});
        let t = table(&cols, &[bare], "5", None, now);
        assert_eq!(t["rows"][0]["cells"][0], "<unknown>");
        assert_eq!(t["rows"][0]["cells"][8], 1);
    }

    #[test]
    fn builtin_namespace_and_default() {
        let now = ts("2024-05-01T12:00:00Z");
        let cols = builtin_columns("", "Namespace");
        let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2024-04-30T12:00:00Z"},
                        "status": {"phase": "Active"}});
        let t = table(
            &cols,
            &[ns, json!({"metadata": {"name": "x"}})],
            "1",
            None,
            now,
        );
        assert_eq!(t["rows"][0]["cells"], json!(["default", "Active", "24h"]));
        assert_eq!(t["rows"][1]["cells"], json!(["x", "", "<unknown>"]));

        let cols = builtin_columns("", "ConfigMap");
        assert_eq!(cols.len(), 2);
        let d = json!({"metadata": {"name": "d", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        let t = table(&cols, &[d], "1", None, now);
        assert_eq!(t["rows"][0]["cells"], json!(["d", "60m"]));
    }
}
