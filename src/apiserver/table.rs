//! Server-side `meta.k8s.io/v1` `Table` rendering, as kubectl requests with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Mirrors the real apiserver: the apiextensions `tableconvertor` for custom
//! resources (Name column + `additionalPrinterColumns`, first JSONPath match
//! per cell, typed cells, `date` rendered as an age) and the built-in printers
//! for Events and Namespaces. Every column is always sent, whatever its
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

fn col(
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

fn name_column() -> Column {
    col(
        "Name",
        "string",
        "name",
        NAME_DESCRIPTION,
        0,
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
    let mut cols = vec![name_column()];
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

/// Built-in printers for kinds that have no printer columns: core/v1 Event (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE as kubectl shows them: OBJECT is "kind/name" of involvedObject, LAST SEEN an age from lastTimestamp/eventTime/series), events.k8s.io/v1 Event (same, from regarding/note/deprecatedLastTimestamp/eventTime), Namespace (STATUS, AGE), and a default (AGE only) for anything else.
///
/// Like `columns_from_crd`, this is the complete column list. Events have no
/// leading Name column (their Name is a priority-1 column at the end, as in
/// the real printer); Namespace is Name, Status, Age; the default is Name, Age.
pub fn builtin_columns(group: &str, kind: &str) -> Vec<Column> {
    match (group, kind) {
        ("" | "events.k8s.io", "Event") => vec![
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
            col(
                "Name",
                "string",
                "name",
                NAME_DESCRIPTION,
                1,
                ".metadata.name",
            ),
        ],
        ("", "Namespace") => vec![
            name_column(),
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
        _ => vec![name_column(), age_date_column()],
    }
}

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

fn parse_time(v: Option<&Value>) -> Option<Timestamp> {
    let t = v?.as_str()?.parse::<Timestamp>().ok()?;
    if t.as_second() == GO_ZERO_TIME_SECONDS && t.subsec_nanosecond() == 0 {
        return None;
    }
    Some(t)
}

/// `translateTimestampSince` / `ConvertToHumanReadableDateType`: "<unknown>"
/// for an unset time, "<invalid>" for one more than a second in the future,
/// otherwise the age.
fn age_since(t: Option<Timestamp>, now: Timestamp) -> String {
    let Some(t) = t else {
        return "<unknown>".to_string();
    };
    if t.as_second() == GO_ZERO_TIME_SECONDS && t.subsec_nanosecond() == 0 {
        return "<unknown>".to_string();
    }
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

fn computed_cell(marker: &str, obj: &Value, now: Timestamp) -> Value {
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
        _ => Value::Null,
    }
}

// ---------------------------------------------------------------- JSONPath

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Fields(Vec<String>),
    Indices(Vec<i64>),
    Slice(Option<i64>, Option<i64>, i64),
    Wildcard,
    Recursive,
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<Seg>),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    op: Option<(String, Operand)>,
}

/// JSONPath subset used by printer columns: `.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.type=="Ready")].status`, `['key.with.dots']`. Returns every match.
///
/// Also accepted: an enclosing `{...}`, a leading `$`, `.*`, `..name`
/// (recursive descent), negative indices, `[a:b]` slices, unions
/// (`[0,1]`, `['a','b']`), filter operators `== != < <= > >=` against
/// string/number/bool literals or `@` paths, and `[?(@.x)]` (existence).
/// Missing keys yield no match; an unparsable path yields no match.
pub fn jsonpath(obj: &Value, path: &str) -> Vec<Value> {
    let Ok(segs) = parse_path(path) else {
        return Vec::new();
    };
    eval(&segs, vec![obj]).into_iter().cloned().collect()
}

fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let mut p = path.trim();
    if let Some(inner) = p.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        p = inner.trim();
    }
    let p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let mut pos = 0;
    let segs = parse_segments(&chars, &mut pos, true)?;
    if pos != chars.len() {
        return Err(format!("unexpected {:?} at {pos}", chars[pos]));
    }
    Ok(segs)
}

fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        '.' | '[' | ']' | '(' | ')' | ' ' | '=' | '!' | '<' | '>' | ',' | '\'' | '"' | '&' | '|'
    )
}

/// Parses segments until something that can't continue a path (used for both
/// the top-level path and `@...` operands inside filters).
fn parse_segments(chars: &[char], pos: &mut usize, top: bool) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    // A relaxed path may start with a bare name ("metadata.name").
    if top && *pos < chars.len() && is_name_char(chars[*pos]) && chars[*pos] != '*' {
        segs.push(Seg::Field(read_name(chars, pos)));
    }
    while *pos < chars.len() {
        match chars[*pos] {
            '.' => {
                *pos += 1;
                if chars.get(*pos) == Some(&'.') {
                    *pos += 1;
                    segs.push(Seg::Recursive);
                    if chars.get(*pos) == Some(&'[') {
                        continue;
                    }
                }
                if chars.get(*pos) == Some(&'*') {
                    *pos += 1;
                    segs.push(Seg::Wildcard);
                } else {
                    let name = read_name(chars, pos);
                    if name.is_empty() {
                        if *pos == chars.len() && segs.is_empty() {
                            // "." alone: the object itself.
                            continue;
                        }
                        return Err("empty field name".into());
                    }
                    segs.push(Seg::Field(name));
                }
            }
            '[' => {
                *pos += 1;
                segs.push(parse_bracket(chars, pos)?);
            }
            _ => break,
        }
    }
    Ok(segs)
}

fn read_name(chars: &[char], pos: &mut usize) -> String {
    let start = *pos;
    while *pos < chars.len() && is_name_char(chars[*pos]) {
        *pos += 1;
    }
    chars[start..*pos].iter().collect()
}

fn skip_ws(chars: &[char], pos: &mut usize) {
    while *pos < chars.len() && chars[*pos].is_whitespace() {
        *pos += 1;
    }
}

fn read_quoted(chars: &[char], pos: &mut usize) -> Result<String, String> {
    let q = chars[*pos];
    *pos += 1;
    let mut s = String::new();
    while *pos < chars.len() {
        let c = chars[*pos];
        *pos += 1;
        if c == '\\' && *pos < chars.len() {
            s.push(chars[*pos]);
            *pos += 1;
        } else if c == q {
            return Ok(s);
        } else {
            s.push(c);
        }
    }
    Err("unterminated quote".into())
}

fn expect(chars: &[char], pos: &mut usize, c: char) -> Result<(), String> {
    skip_ws(chars, pos);
    if chars.get(*pos) == Some(&c) {
        *pos += 1;
        Ok(())
    } else {
        Err(format!("expected {c:?} at {pos}"))
    }
}

fn parse_bracket(chars: &[char], pos: &mut usize) -> Result<Seg, String> {
    skip_ws(chars, pos);
    match chars.get(*pos) {
        Some('*') => {
            *pos += 1;
            expect(chars, pos, ']')?;
            Ok(Seg::Wildcard)
        }
        Some('?') => {
            *pos += 1;
            expect(chars, pos, '(')?;
            let f = parse_filter(chars, pos)?;
            expect(chars, pos, ')')?;
            expect(chars, pos, ']')?;
            Ok(Seg::Filter(f))
        }
        Some('\'' | '"') => {
            let mut names = Vec::new();
            loop {
                skip_ws(chars, pos);
                if !matches!(chars.get(*pos), Some('\'' | '"')) {
                    return Err("expected quoted name".into());
                }
                names.push(read_quoted(chars, pos)?);
                skip_ws(chars, pos);
                match chars.get(*pos) {
                    Some(',') => *pos += 1,
                    Some(']') => {
                        *pos += 1;
                        break;
                    }
                    _ => return Err("expected ',' or ']'".into()),
                }
            }
            if names.len() == 1 {
                Ok(Seg::Field(names.remove(0)))
            } else {
                Ok(Seg::Fields(names))
            }
        }
        _ => {
            let start = *pos;
            while *pos < chars.len() && chars[*pos] != ']' {
                *pos += 1;
            }
            if *pos >= chars.len() {
                return Err("unterminated '['".into());
            }
            let inner: String = chars[start..*pos].iter().collect();
            *pos += 1;
            let inner = inner.trim();
            let int = |s: &str| -> Result<Option<i64>, String> {
                let s = s.trim();
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse::<i64>().map(Some).map_err(|e| e.to_string())
                }
            };
            if inner.contains(':') {
                let parts: Vec<&str> = inner.split(':').collect();
                if parts.len() > 3 {
                    return Err("bad slice".into());
                }
                let a = int(parts[0])?;
                let b = int(parts.get(1).copied().unwrap_or(""))?;
                let step = int(parts.get(2).copied().unwrap_or(""))?.unwrap_or(1);
                if step <= 0 {
                    return Err("bad slice step".into());
                }
                return Ok(Seg::Slice(a, b, step));
            }
            let mut idx = Vec::new();
            for part in inner.split(',') {
                idx.push(int(part)?.ok_or("empty index")?);
            }
            Ok(Seg::Indices(idx))
        }
    }
}

fn parse_operand(chars: &[char], pos: &mut usize) -> Result<Operand, String> {
    skip_ws(chars, pos);
    match chars.get(*pos) {
        Some('@') => {
            *pos += 1;
            Ok(Operand::Path(parse_segments(chars, pos, false)?))
        }
        Some('\'' | '"') => Ok(Operand::Literal(Value::String(read_quoted(chars, pos)?))),
        Some(_) => {
            let start = *pos;
            while *pos < chars.len()
                && !chars[*pos].is_whitespace()
                && !matches!(chars[*pos], ')' | '=' | '!' | '<' | '>')
            {
                *pos += 1;
            }
            let lit: String = chars[start..*pos].iter().collect();
            match lit.as_str() {
                "true" => Ok(Operand::Literal(Value::Bool(true))),
                "false" => Ok(Operand::Literal(Value::Bool(false))),
                "nil" | "null" => Ok(Operand::Literal(Value::Null)),
                _ => serde_json::from_str::<serde_json::Number>(&lit)
                    .map(|n| Operand::Literal(Value::Number(n)))
                    .map_err(|_| format!("unrecognized literal {lit:?}")),
            }
        }
        None => Err("missing operand".into()),
    }
}

fn parse_filter(chars: &[char], pos: &mut usize) -> Result<Filter, String> {
    let left = parse_operand(chars, pos)?;
    skip_ws(chars, pos);
    let rest: String = chars[*pos..].iter().take(2).collect();
    let op = ["==", "!=", "<=", ">=", "<", ">"]
        .into_iter()
        .find(|op| rest.starts_with(op));
    let Some(op) = op else {
        return Ok(Filter { left, op: None });
    };
    *pos += op.len();
    let right = parse_operand(chars, pos)?;
    Ok(Filter {
        left,
        op: Some((op.to_string(), right)),
    })
}

fn eval<'a>(segs: &[Seg], mut cur: Vec<&'a Value>) -> Vec<&'a Value> {
    for seg in segs {
        let mut next: Vec<&'a Value> = Vec::new();
        for v in cur {
            match seg {
                Seg::Field(name) => {
                    if let Some(x) = v.as_object().and_then(|m| m.get(name)) {
                        next.push(x);
                    }
                }
                Seg::Fields(names) => {
                    if let Some(m) = v.as_object() {
                        next.extend(names.iter().filter_map(|n| m.get(n)));
                    }
                }
                Seg::Indices(idx) => {
                    if let Some(a) = v.as_array() {
                        for &i in idx {
                            let i = if i < 0 { a.len() as i64 + i } else { i };
                            if let Some(x) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                next.push(x);
                            }
                        }
                    }
                }
                Seg::Slice(start, end, step) => {
                    if let Some(a) = v.as_array() {
                        let len = a.len() as i64;
                        let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                        let s = norm(start.unwrap_or(0));
                        let e = norm(end.unwrap_or(len));
                        let mut i = s;
                        while i < e {
                            if let Some(x) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                next.push(x);
                            }
                            i += step;
                        }
                    }
                }
                Seg::Wildcard => match v {
                    Value::Object(m) => next.extend(m.values()),
                    Value::Array(a) => next.extend(a.iter()),
                    _ => {}
                },
                Seg::Recursive => collect_all(v, &mut next),
                Seg::Filter(f) => {
                    if let Some(a) = v.as_array() {
                        next.extend(a.iter().filter(|item| filter_matches(f, item)));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn collect_all<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Object(m) => m.values().for_each(|x| collect_all(x, out)),
        Value::Array(a) => a.iter().for_each(|x| collect_all(x, out)),
        _ => {}
    }
}

fn operand_value<'a>(o: &'a Operand, item: &'a Value) -> Option<&'a Value> {
    match o {
        Operand::Literal(v) => Some(v),
        Operand::Path(segs) => eval(segs, vec![item]).into_iter().next(),
    }
}

fn filter_matches(f: &Filter, item: &Value) -> bool {
    let Some(left) = operand_value(&f.left, item) else {
        return false;
    };
    let Some((op, right)) = &f.op else {
        return true;
    };
    let Some(right) = operand_value(right, item) else {
        return false;
    };
    let ord = match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(std::cmp::Ordering::Equal),
        _ => None,
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op.as_str() {
        "==" => ord == Some(Equal),
        "!=" => ord != Some(Equal),
        "<" => ord == Some(Less),
        "<=" => matches!(ord, Some(Less | Equal)),
        ">" => ord == Some(Greater),
        ">=" => matches!(ord, Some(Greater | Equal)),
        _ => false,
    }
}

/// Age formatting exactly as kubectl's duration.HumanDuration: "0s".."119s"? (check the real rules: <2m -> seconds, <10m -> "XmYs"/"Xm", <3h -> minutes, <8h "XhYm", <48h hours, <8d "XdYh", <2y days, else years).
///
/// Implemented as `k8s.io/apimachinery/pkg/util/duration.HumanDuration`:
/// < 2m "Ns"; < 10m "NmSs" (or "Nm"); < 3h "Nm"; < 8h "NhMm" (or "Nh");
/// < 48h "Nh"; < 8d "NdHh" (or "Nd"); < 2y "Nd"; < 8y "NyDd" (or "Ny"); else "Ny"
/// (a year is 365 days).
pub fn human_age(d: std::time::Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p1", "labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"containers": [{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]},
            "status": {
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "False", "n": 2}
                ],
                "replicas": 3,
                "ratio": 0.5
            }
        })
    }

    #[test]
    fn jsonpath_basic() {
        let p = pod();
        assert_eq!(jsonpath(&p, ".metadata.name"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, "{.metadata.name}"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, "$.metadata.name"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, "metadata.name"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, ".spec.containers[0].name"), vec![json!("a")]);
        assert_eq!(jsonpath(&p, ".spec.containers[-1].name"), vec![json!("b")]);
        assert_eq!(
            jsonpath(&p, ".spec.containers[*].image"),
            vec![json!("ia"), json!("ib")]
        );
        assert_eq!(jsonpath(&p, ".spec.containers[0:1].name"), vec![json!("a")]);
        assert_eq!(
            jsonpath(&p, ".spec.containers[0,1].name"),
            vec![json!("a"), json!("b")]
        );
        assert_eq!(
            jsonpath(&p, ".metadata.labels['app.kubernetes.io/name']"),
            vec![json!("x")]
        );
        assert_eq!(
            jsonpath(&p, r#".metadata["labels"]["app.kubernetes.io/name"]"#),
            vec![json!("x")]
        );
        assert_eq!(jsonpath(&p, "..image"), vec![json!("ia"), json!("ib")]);
        assert!(jsonpath(&p, ".spec.missing.x").is_empty());
        assert!(jsonpath(&p, ".spec.containers[5]").is_empty());
        assert!(jsonpath(&p, ".spec[").is_empty());
        assert_eq!(jsonpath(&p, ".metadata.*").len(), 2);
    }

    #[test]
    fn jsonpath_filter() {
        let p = pod();
        assert_eq!(
            jsonpath(&p, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec![json!("False")]
        );
        assert_eq!(
            jsonpath(&p, ".status.conditions[?(@.type == 'Ready')].status"),
            vec![json!("False")]
        );
        assert_eq!(
            jsonpath(&p, r#".status.conditions[?(@.type!="Ready")].type"#),
            vec![json!("Initialized")]
        );
        assert_eq!(
            jsonpath(&p, ".status.conditions[?(@.n)].type"),
            vec![json!("Ready")]
        );
        assert_eq!(
            jsonpath(&p, ".status.conditions[?(@.n >= 2)].type"),
            vec![json!("Ready")]
        );
        assert!(jsonpath(&p, ".status.conditions[?(@.n < 2)].type").is_empty());
        assert!(jsonpath(&p, r#".status.conditions[?(@.type=="Nope")].status"#).is_empty());
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

        let cols = builtin_columns("apps", "Deployment");
        assert_eq!(cols.len(), 2);
        let d = json!({"metadata": {"name": "d", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        let t = table(&cols, &[d], "1", None, now);
        assert_eq!(t["rows"][0]["cells"], json!(["d", "60m"]));
    }

    #[test]
    fn include_object_parse() {
        assert_eq!(IncludeObject::parse(""), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse("Object"), Ok(IncludeObject::Object));
        assert_eq!(IncludeObject::parse("None"), Ok(IncludeObject::None));
        assert!(IncludeObject::parse("x").is_err());
    }
}
