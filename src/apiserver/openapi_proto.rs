//! `/openapi/v2` in protobuf: the Swagger JSON encoded as gnostic's `openapi.v2.Document`.
//!
//! The bytes are those kube-openapi's handler serves: `openapi_v2.ParseDocument` of the JSON,
//! then `proto.Marshal`.
//!
//! The message is google/gnostic-models `openapiv2/OpenAPIv2.proto`; what goes where follows
//! gnostic's compiler (`openapiv2/OpenAPIv2.go`, `NewDocument` and the rest) as it reads the
//! JSON parsed as YAML:
//! - each JSON key maps to one field; a key a message does not know makes the document invalid
//!   (gnostic's "has invalid property"), as do a missing required key, a value of the wrong type
//!   or one outside a field's enum (`swagger: "2.0"`, a parameter's `in`, ...);
//! - maps (`definitions`, `properties`, `paths`, `responses`, ...) become repeated `Named*`
//!   messages in the document's key order; keys starting `x-` become `NamedAny` vendor
//!   extensions whose `Any.yaml` is the value's YAML ([`super::openapi_yaml`]);
//! - a oneof (`SchemaItem`, `ParametersItem`, `AdditionalPropertiesItem`, ...) tries each
//!   alternative in field order and keeps the last that parses, as the generated code does
//!   (`additionalProperties: true` is the `boolean` member, `{"type": "file"}` a `FileSchema`);
//! - a scalar string field takes a string, an integer or null (as ""), an int64 field only an
//!   integer, a double field any number;
//! - fields go out in field-number order, proto3 zero values omitted, a message that was given
//!   (even empty) written, as Go's `proto.Marshal` does.
//!
//! Not reproduced: a JSON object in a position where gnostic expects something else beyond
//! what is described above (an `items` array, a non-object map) is read as empty here, where
//! gnostic would read its elements pairwise; this document never has them.

use super::openapi_yaml;
use serde_json::{Map, Value};

/// The Content-Type kube-openapi answers with (for either spelling of the Accept).
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Encodes a Swagger 2.0 document; an error says, as gnostic would, what makes it invalid.
pub fn encode(doc: &Value) -> Result<Vec<u8>, String> {
    document(doc)
}

type Parse = fn(&Value) -> Result<Vec<u8>, String>;

/// How a field's JSON value becomes its protobuf value.
#[derive(Clone, Copy)]
enum T {
    Str,
    StrEnum(&'static [&'static str]),
    Bool,
    Int,
    Double,
    Strs,
    StrsEnum(&'static [&'static str]),
    Any,
    Anys,
    Msg(Parse),
    Msgs(Parse),
}

/// A message read from a JSON object: its fields (number, key, type) in number order, the keys
/// it requires, whether other keys are refused, and its `vendor_extension` field (`x-` keys).
struct Msg<'a> {
    fields: &'a [(u32, &'static str, T)],
    required: &'static [&'static str],
    check_keys: bool,
    ext: Option<u32>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

fn obj(v: &Value) -> &Map<String, Value> {
    v.as_object().unwrap_or(&EMPTY)
}

fn message(m: &Msg<'_>, v: &Value) -> Result<Vec<u8>, String> {
    let map = obj(v);
    let missing: Vec<&str> = m
        .required
        .iter()
        .copied()
        .filter(|k| !map.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "is missing required properties: {}",
            missing.join(", ")
        ));
    }
    if m.check_keys {
        let invalid: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| {
                let extension = m.ext.is_some() && k.starts_with("x-");
                !extension && !m.fields.iter().any(|(_, key, _)| key == k)
            })
            .collect();
        if !invalid.is_empty() {
            return Err(format!("has invalid properties: {}", invalid.join(", ")));
        }
    }
    let mut out = Vec::new();
    for &(num, key, ty) in m.fields {
        if let Some(val) = map.get(key) {
            field(&mut out, num, ty, val).map_err(|e| format!("{key} {e}"))?;
        }
    }
    if let Some(num) = m.ext {
        vendor_extensions(&mut out, num, map);
    }
    Ok(out)
}

fn vendor_extensions(out: &mut Vec<u8>, num: u32, map: &Map<String, Value>) {
    for (k, val) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut pair = Vec::new();
        put_str(&mut pair, 1, k);
        put_bytes(&mut pair, 2, &any(val));
        put_bytes(out, num, &pair);
    }
}

/// `Any{yaml}`: what gnostic stores for a value it keeps as it is.
fn any(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, 2, &openapi_yaml::marshal(v));
    out
}

fn field(out: &mut Vec<u8>, num: u32, ty: T, v: &Value) -> Result<(), String> {
    match ty {
        T::Str => put_str(out, num, &string(v)?),
        T::StrEnum(allowed) => {
            let s = string(v)?;
            if !allowed.contains(&s.as_str()) {
                return Err(format!("has unexpected value: {s}"));
            }
            put_str(out, num, &s);
        }
        T::Bool => match v {
            Value::Bool(true) => put_varint_field(out, num, 1),
            Value::Bool(false) => {}
            _ => return Err(format!("has unexpected value: {v}")),
        },
        T::Int => match int(v) {
            Some(0) => {}
            Some(i) => put_varint_field(out, num, i as u64),
            None => return Err(format!("has unexpected value: {v}")),
        },
        T::Double => match v.as_f64() {
            Some(f) if f.to_bits() == 0 => {}
            Some(f) => {
                put_tag(out, num, 1);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            None => return Err(format!("has unexpected value: {v}")),
        },
        T::Strs | T::StrsEnum(_) => {
            let Value::Array(items) = v else {
                return Err(format!("has unexpected value: {v}"));
            };
            let strings: Vec<String> = items.iter().filter_map(|i| string(i).ok()).collect();
            if let T::StrsEnum(allowed) = ty
                && strings.iter().any(|s| !allowed.contains(&s.as_str()))
            {
                return Err(format!("has unexpected value: {v}"));
            }
            for s in &strings {
                put_bytes(out, num, s.as_bytes());
            }
        }
        T::Any => put_bytes(out, num, &any(v)),
        T::Anys => {
            for item in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                put_bytes(out, num, &any(item));
            }
        }
        T::Msg(parse) => put_bytes(out, num, &parse(v)?),
        T::Msgs(parse) => {
            for item in v.as_array().map(Vec::as_slice).unwrap_or_default() {
                put_bytes(out, num, &parse(item)?);
            }
        }
    }
    Ok(())
}

/// compiler.StringForScalarNode: a string, an integer's digits, or null as "".
fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => Err(format!("has unexpected value: {v}")),
    }
}

/// compiler.IntForScalarNode: an integer that fits int64.
fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

// ---- oneofs, maps and the messages gnostic parses by hand ----

/// A oneof: every alternative is tried in field order, the last that parses is kept.
fn oneof(v: &Value, alternatives: &[(u32, Parse)], what: &str) -> Result<Vec<u8>, String> {
    let mut chosen = None;
    for &(num, parse) in alternatives {
        if let Ok(bytes) = parse(v) {
            chosen = Some((num, bytes));
        }
    }
    let (num, bytes) = chosen.ok_or_else(|| format!("contains an invalid {what}"))?;
    let mut out = Vec::new();
    put_bytes(&mut out, num, &bytes);
    Ok(out)
}

/// A map message: `repeated Named* additional_properties = 1`, one entry a key.
fn named_map(v: &Value, parse: Parse) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (k, val) in obj(v) {
        let mut pair = Vec::new();
        put_str(&mut pair, 1, k);
        put_bytes(&mut pair, 2, &parse(val).map_err(|e| format!("{k} {e}"))?);
        put_bytes(&mut out, 1, &pair);
    }
    Ok(out)
}

fn any_msg(v: &Value) -> Result<Vec<u8>, String> {
    Ok(any(v))
}

fn document(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "swagger", T::StrEnum(&["2.0"])),
                (2, "info", T::Msg(info)),
                (3, "host", T::Str),
                (4, "basePath", T::Str),
                (5, "schemes", T::StrsEnum(SCHEMES)),
                (6, "consumes", T::Strs),
                (7, "produces", T::Strs),
                (8, "paths", T::Msg(paths)),
                (9, "definitions", T::Msg(definitions)),
                (10, "parameters", T::Msg(parameter_definitions)),
                (11, "responses", T::Msg(response_definitions)),
                (12, "security", T::Msgs(security_requirement)),
                (13, "securityDefinitions", T::Msg(security_definitions)),
                (14, "tags", T::Msgs(tag)),
                (15, "externalDocs", T::Msg(external_docs)),
            ],
            required: &["info", "paths", "swagger"],
            check_keys: true,
            ext: Some(16),
        },
        v,
    )
}

const SCHEMES: &[&str] = &["http", "https", "ws", "wss"];
const TYPES: &[&str] = &["string", "number", "boolean", "integer", "array"];
const FORM_TYPES: &[&str] = &["string", "number", "boolean", "integer", "array", "file"];
const COLLECTION: &[&str] = &["csv", "ssv", "tsv", "pipes"];
const COLLECTION_MULTI: &[&str] = &["csv", "ssv", "tsv", "pipes", "multi"];

fn info(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "title", T::Str),
                (2, "version", T::Str),
                (3, "description", T::Str),
                (4, "termsOfService", T::Str),
                (5, "contact", T::Msg(contact)),
                (6, "license", T::Msg(license)),
            ],
            required: &["title", "version"],
            check_keys: true,
            ext: Some(7),
        },
        v,
    )
}

fn contact(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "name", T::Str),
                (2, "url", T::Str),
                (3, "email", T::Str),
            ],
            required: &[],
            check_keys: true,
            ext: Some(4),
        },
        v,
    )
}

fn license(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[(1, "name", T::Str), (2, "url", T::Str)],
            required: &["name"],
            check_keys: true,
            ext: Some(3),
        },
        v,
    )
}

fn external_docs(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[(1, "description", T::Str), (2, "url", T::Str)],
            required: &["url"],
            check_keys: true,
            ext: Some(3),
        },
        v,
    )
}

fn tag(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "name", T::Str),
                (2, "description", T::Str),
                (3, "externalDocs", T::Msg(external_docs)),
            ],
            required: &["name"],
            check_keys: true,
            ext: Some(4),
        },
        v,
    )
}

fn xml(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "name", T::Str),
                (2, "namespace", T::Str),
                (3, "prefix", T::Str),
                (4, "attribute", T::Bool),
                (5, "wrapped", T::Bool),
            ],
            required: &[],
            check_keys: true,
            ext: Some(6),
        },
        v,
    )
}

/// `Paths`: `x-` keys are vendor extensions (field 1), `/` keys path items (field 2).
fn paths(v: &Value) -> Result<Vec<u8>, String> {
    let map = obj(v);
    if let Some(bad) = map
        .keys()
        .find(|k| !k.starts_with("x-") && !k.starts_with('/'))
    {
        return Err(format!("has invalid property: {bad}"));
    }
    let mut out = Vec::new();
    vendor_extensions(&mut out, 1, map);
    for (k, val) in map.iter().filter(|(k, _)| k.starts_with('/')) {
        let mut pair = Vec::new();
        put_str(&mut pair, 1, k);
        put_bytes(
            &mut pair,
            2,
            &path_item(val).map_err(|e| format!("{k} {e}"))?,
        );
        put_bytes(&mut out, 2, &pair);
    }
    Ok(out)
}

fn path_item(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "$ref", T::Str),
                (2, "get", T::Msg(operation)),
                (3, "put", T::Msg(operation)),
                (4, "post", T::Msg(operation)),
                (5, "delete", T::Msg(operation)),
                (6, "options", T::Msg(operation)),
                (7, "head", T::Msg(operation)),
                (8, "patch", T::Msg(operation)),
                (9, "parameters", T::Msgs(parameters_item)),
            ],
            required: &[],
            check_keys: true,
            ext: Some(10),
        },
        v,
    )
}

fn operation(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "tags", T::Strs),
                (2, "summary", T::Str),
                (3, "description", T::Str),
                (4, "externalDocs", T::Msg(external_docs)),
                (5, "operationId", T::Str),
                (6, "produces", T::Strs),
                (7, "consumes", T::Strs),
                (8, "parameters", T::Msgs(parameters_item)),
                (9, "responses", T::Msg(responses)),
                (10, "schemes", T::StrsEnum(SCHEMES)),
                (11, "deprecated", T::Bool),
                (12, "security", T::Msgs(security_requirement)),
            ],
            required: &["responses"],
            check_keys: true,
            ext: Some(13),
        },
        v,
    )
}

fn parameters_item(v: &Value) -> Result<Vec<u8>, String> {
    oneof(v, &[(1, parameter), (2, json_reference)], "ParametersItem")
}

fn parameter(v: &Value) -> Result<Vec<u8>, String> {
    oneof(
        v,
        &[(1, body_parameter), (2, non_body_parameter)],
        "Parameter",
    )
}

fn json_reference(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[(1, "$ref", T::Str), (2, "description", T::Str)],
            required: &["$ref"],
            check_keys: false,
            ext: None,
        },
        v,
    )
}

fn body_parameter(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "description", T::Str),
                (2, "name", T::Str),
                (3, "in", T::StrEnum(&["body"])),
                (4, "required", T::Bool),
                (5, "schema", T::Msg(schema)),
            ],
            required: &["in", "name", "schema"],
            check_keys: true,
            ext: Some(6),
        },
        v,
    )
}

fn non_body_parameter(v: &Value) -> Result<Vec<u8>, String> {
    oneof(
        v,
        &[
            (1, header_parameter),
            (2, form_data_parameter),
            (3, query_parameter),
            (4, path_parameter),
        ],
        "NonBodyParameter",
    )
}

/// The fields every non-body parameter shares after `type`, numbered from `first`
/// (`format`, `items`, `collectionFormat`, `default`, the bounds, `enum`, `multipleOf`).
macro_rules! simple_fields {
    ($first:expr, $collection:expr) => {
        [
            ($first, "format", T::Str),
            ($first + 1, "items", T::Msg(primitives_items)),
            ($first + 2, "collectionFormat", T::StrEnum($collection)),
            ($first + 3, "default", T::Any),
            ($first + 4, "maximum", T::Double),
            ($first + 5, "exclusiveMaximum", T::Bool),
            ($first + 6, "minimum", T::Double),
            ($first + 7, "exclusiveMinimum", T::Bool),
            ($first + 8, "maxLength", T::Int),
            ($first + 9, "minLength", T::Int),
            ($first + 10, "pattern", T::Str),
            ($first + 11, "maxItems", T::Int),
            ($first + 12, "minItems", T::Int),
            ($first + 13, "uniqueItems", T::Bool),
            ($first + 14, "enum", T::Anys),
            ($first + 15, "multipleOf", T::Double),
        ]
    };
}

fn parameter_fields(
    location: &'static [&'static str],
    with_empty: bool,
    types: &'static [&'static str],
    collection: &'static [&'static str],
) -> Vec<(u32, &'static str, T)> {
    let mut f = vec![
        (1, "required", T::Bool),
        (2, "in", T::StrEnum(location)),
        (3, "description", T::Str),
        (4, "name", T::Str),
    ];
    let mut next = 5;
    if with_empty {
        f.push((5, "allowEmptyValue", T::Bool));
        next = 6;
    }
    f.push((next, "type", T::StrEnum(types)));
    f.extend(simple_fields!(next + 1, collection));
    f
}

fn non_body(
    v: &Value,
    location: &'static [&'static str],
    with_empty: bool,
    types: &'static [&'static str],
    collection: &'static [&'static str],
    required: &'static [&'static str],
) -> Result<Vec<u8>, String> {
    let fields = parameter_fields(location, with_empty, types, collection);
    let ext = fields.last().map_or(1, |(n, _, _)| n + 1);
    message(
        &Msg {
            fields: &fields,
            required,
            check_keys: true,
            ext: Some(ext),
        },
        v,
    )
}

fn header_parameter(v: &Value) -> Result<Vec<u8>, String> {
    non_body(v, &["header"], false, TYPES, COLLECTION, &[])
}

fn form_data_parameter(v: &Value) -> Result<Vec<u8>, String> {
    non_body(v, &["formData"], true, FORM_TYPES, COLLECTION_MULTI, &[])
}

fn query_parameter(v: &Value) -> Result<Vec<u8>, String> {
    non_body(v, &["query"], true, TYPES, COLLECTION_MULTI, &[])
}

fn path_parameter(v: &Value) -> Result<Vec<u8>, String> {
    non_body(v, &["path"], false, TYPES, COLLECTION, &["required"])
}

/// `PrimitivesItems` and `Header`: `type` first, then the shared fields (a Header's
/// `description` after them).
fn primitives_items(v: &Value) -> Result<Vec<u8>, String> {
    let mut fields = vec![(
        1,
        "type",
        T::StrEnum(&["string", "number", "integer", "boolean", "array"]),
    )];
    fields.extend(simple_fields!(2, COLLECTION));
    message(
        &Msg {
            fields: &fields,
            required: &[],
            check_keys: true,
            ext: Some(18),
        },
        v,
    )
}

fn header(v: &Value) -> Result<Vec<u8>, String> {
    let mut fields = vec![(
        1,
        "type",
        T::StrEnum(&["string", "number", "integer", "boolean", "array"]),
    )];
    fields.extend(simple_fields!(2, COLLECTION));
    fields.push((18, "description", T::Str));
    message(
        &Msg {
            fields: &fields,
            required: &["type"],
            check_keys: true,
            ext: Some(19),
        },
        v,
    )
}

/// `Responses`: status codes (`200`, `default`) are field 1, `x-` keys field 2.
fn responses(v: &Value) -> Result<Vec<u8>, String> {
    let map = obj(v);
    let is_code =
        |k: &str| k == "default" || (k.len() == 3 && k.bytes().all(|b| b.is_ascii_digit()));
    if let Some(bad) = map.keys().find(|k| !k.starts_with("x-") && !is_code(k)) {
        return Err(format!("has invalid property: {bad}"));
    }
    let mut out = Vec::new();
    for (k, val) in map.iter().filter(|(k, _)| is_code(k)) {
        let mut pair = Vec::new();
        put_str(&mut pair, 1, k);
        put_bytes(
            &mut pair,
            2,
            &response_value(val).map_err(|e| format!("{k} {e}"))?,
        );
        put_bytes(&mut out, 1, &pair);
    }
    vendor_extensions(&mut out, 2, map);
    Ok(out)
}

fn response_value(v: &Value) -> Result<Vec<u8>, String> {
    oneof(v, &[(1, response), (2, json_reference)], "ResponseValue")
}

fn response(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "description", T::Str),
                (2, "schema", T::Msg(schema_item)),
                (3, "headers", T::Msg(headers)),
                (4, "examples", T::Msg(examples)),
            ],
            required: &["description"],
            check_keys: true,
            ext: Some(5),
        },
        v,
    )
}

fn schema_item(v: &Value) -> Result<Vec<u8>, String> {
    oneof(v, &[(1, schema), (2, file_schema)], "SchemaItem")
}

fn file_schema(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "format", T::Str),
                (2, "title", T::Str),
                (3, "description", T::Str),
                (4, "default", T::Any),
                (5, "required", T::Strs),
                (6, "type", T::StrEnum(&["file"])),
                (7, "readOnly", T::Bool),
                (8, "externalDocs", T::Msg(external_docs)),
                (9, "example", T::Any),
            ],
            required: &["type"],
            check_keys: true,
            ext: Some(10),
        },
        v,
    )
}

fn schema(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "$ref", T::Str),
                (2, "format", T::Str),
                (3, "title", T::Str),
                (4, "description", T::Str),
                (5, "default", T::Any),
                (6, "multipleOf", T::Double),
                (7, "maximum", T::Double),
                (8, "exclusiveMaximum", T::Bool),
                (9, "minimum", T::Double),
                (10, "exclusiveMinimum", T::Bool),
                (11, "maxLength", T::Int),
                (12, "minLength", T::Int),
                (13, "pattern", T::Str),
                (14, "maxItems", T::Int),
                (15, "minItems", T::Int),
                (16, "uniqueItems", T::Bool),
                (17, "maxProperties", T::Int),
                (18, "minProperties", T::Int),
                (19, "required", T::Strs),
                (20, "enum", T::Anys),
                (21, "additionalProperties", T::Msg(additional_properties)),
                (22, "type", T::Msg(type_item)),
                (23, "items", T::Msg(items_item)),
                (24, "allOf", T::Msgs(schema)),
                (25, "properties", T::Msg(properties)),
                (26, "discriminator", T::Str),
                (27, "readOnly", T::Bool),
                (28, "xml", T::Msg(xml)),
                (29, "externalDocs", T::Msg(external_docs)),
                (30, "example", T::Any),
            ],
            required: &[],
            check_keys: true,
            ext: Some(31),
        },
        v,
    )
}

/// `additionalProperties`: a schema, or (tried last, so it wins for a boolean) `boolean`.
fn additional_properties(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match v {
        Value::Bool(b) => {
            put_tag(&mut out, 2, 0);
            put_varint(&mut out, u64::from(*b));
        }
        _ => put_bytes(&mut out, 1, &schema(v)?),
    }
    Ok(out)
}

/// `type`: one name, or a list of them.
fn type_item(v: &Value) -> Result<Vec<u8>, String> {
    let scalar_text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
        other => Some(other.to_string()),
    };
    let names: Vec<String> = match v {
        Value::Array(items) => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(|| format!("has unexpected value: {i}")))
            .collect::<Result<_, _>>()?,
        Value::Object(_) => return Err(format!("has unexpected value: {v}")),
        other => scalar_text(other).into_iter().collect(),
    };
    let mut out = Vec::new();
    for n in &names {
        put_bytes(&mut out, 1, n.as_bytes());
    }
    Ok(out)
}

/// `items`: gnostic reads one schema.
fn items_item(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    put_bytes(&mut out, 1, &schema(v)?);
    Ok(out)
}

fn properties(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, schema)
}

fn definitions(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, schema)
}

fn parameter_definitions(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, parameter)
}

fn response_definitions(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, response)
}

fn headers(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, header)
}

fn examples(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, any_msg)
}

fn security_requirement(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, |v| {
        let mut out = Vec::new();
        for s in v.as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Ok(s) = string(s) {
                put_bytes(&mut out, 1, s.as_bytes());
            }
        }
        Ok(out)
    })
}

fn security_definitions(v: &Value) -> Result<Vec<u8>, String> {
    named_map(v, |v| {
        oneof(
            v,
            &[
                (1, basic_security),
                (2, api_key_security),
                (3, |v| {
                    oauth2(v, "implicit", &["authorizationUrl", "flow", "type"])
                }),
                (4, |v| oauth2(v, "password", &["flow", "tokenUrl", "type"])),
                (5, |v| {
                    oauth2(v, "application", &["flow", "tokenUrl", "type"])
                }),
                (6, |v| {
                    oauth2(
                        v,
                        "accessCode",
                        &["authorizationUrl", "flow", "tokenUrl", "type"],
                    )
                }),
            ],
            "SecurityDefinitionsItem",
        )
    })
}

fn basic_security(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "type", T::StrEnum(&["basic"])),
                (2, "description", T::Str),
            ],
            required: &["type"],
            check_keys: true,
            ext: Some(3),
        },
        v,
    )
}

fn api_key_security(v: &Value) -> Result<Vec<u8>, String> {
    message(
        &Msg {
            fields: &[
                (1, "type", T::StrEnum(&["apiKey"])),
                (2, "name", T::Str),
                (3, "in", T::StrEnum(&["header", "query"])),
                (4, "description", T::Str),
            ],
            required: &["in", "name", "type"],
            check_keys: true,
            ext: Some(5),
        },
        v,
    )
}

/// `Oauth2Scopes`: `NamedString` entries (a string value, not a message).
fn oauth2_scopes(v: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (k, val) in obj(v) {
        let mut pair = Vec::new();
        put_str(&mut pair, 1, k);
        put_str(&mut pair, 2, &string(val).unwrap_or_default());
        put_bytes(&mut out, 1, &pair);
    }
    Ok(out)
}

fn oauth2(
    v: &Value,
    flow: &'static str,
    required: &'static [&'static str],
) -> Result<Vec<u8>, String> {
    let flows: &'static [&'static str] = match flow {
        "implicit" => &["implicit"],
        "password" => &["password"],
        "application" => &["application"],
        _ => &["accessCode"],
    };
    let mut fields = vec![
        (1, "type", T::StrEnum(&["oauth2"])),
        (2, "flow", T::StrEnum(flows)),
        (3, "scopes", T::Msg(oauth2_scopes)),
    ];
    let rest: &[&'static str] = match flow {
        "implicit" => &["authorizationUrl", "description"],
        "password" | "application" => &["tokenUrl", "description"],
        _ => &["authorizationUrl", "tokenUrl", "description"],
    };
    for (i, key) in rest.iter().enumerate() {
        fields.push((4 + i as u32, key, T::Str));
    }
    let ext = fields.len() as u32 + 1;
    message(
        &Msg {
            fields: &fields,
            required,
            check_keys: true,
            ext: Some(ext),
        },
        v,
    )
}

// ---- wire format ----

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_tag(out: &mut Vec<u8>, num: u32, wire: u8) {
    put_varint(out, (u64::from(num) << 3) | u64::from(wire));
}

fn put_varint_field(out: &mut Vec<u8>, num: u32, v: u64) {
    put_tag(out, num, 0);
    put_varint(out, v);
}

fn put_bytes(out: &mut Vec<u8>, num: u32, b: &[u8]) {
    put_tag(out, num, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A proto3 string: left out when empty.
fn put_str(out: &mut Vec<u8>, num: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(out, num, s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::encode;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// The expected bytes are what gnostic-models' `ParseDocument` and protobuf-go's
    /// `proto.Marshal` make of the same JSON: a vendor extension (its YAML), a boolean
    /// `additionalProperties`, a negative double and an int64, `type` as a list, a query
    /// parameter and a `$ref` one, a `file` response schema and a `$ref` response, a path
    /// parameter at the path level.
    #[test]
    fn a_document_as_gnostic_encodes_it() {
        let doc = json!({
            "definitions": {"A": {
                "additionalProperties": true,
                "maximum": -0.5,
                "maxLength": 3,
                "properties": {"b": {"type": ["string", "null"]}},
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "A", "version": "v1"}],
            }},
            "info": {"title": "T", "version": "v1"},
            "paths": {"/a/{name}": {
                "get": {
                    "parameters": [
                        {"in": "query", "name": "q", "type": "boolean", "uniqueItems": true},
                        {"$ref": "#/parameters/p"},
                    ],
                    "responses": {
                        "200": {"description": "OK", "schema": {"type": "file"}},
                        "default": {"$ref": "#/responses/r"},
                    },
                    "x-kubernetes-action": "get",
                },
                "parameters": [{"in": "path", "name": "name", "required": true, "type": "string"}],
            }},
            "swagger": "2.0",
        });
        let expected = hex(concat!(
            "0a03322e3012070a01541202763142bc0112b9010a092f612f7b6e616d657d12ab01128a01421c0a1a",
            "12181a16120571756572792201713207626f6f6c65616ea00101421212100a0e232f706172616d6574",
            "6572732f704a370a170a0332303012100a0e0a024f4b12081206320466696c650a1c0a076465666175",
            "6c741211120f0a0d232f726573706f6e7365732f726a1d0a13782d6b756265726e657465732d616374",
            "696f6e120612046765740a4a1c0a1a12182216080112047061746822046e616d652a06737472696e67",
            "4a8b010a88010a014112820139000000000000e0bf5803aa01021001b201080a066f626a656374ca01",
            "180a160a01621211b2010e0a06737472696e670a046e756c6cfa01490a1f782d6b756265726e657465",
            "732d67726f75702d76657273696f6e2d6b696e64122612242d2067726f75703a2022220a20206b696e",
            "643a20410a202076657273696f6e3a2076310a",
        ));
        assert_eq!(encode(&doc).expect("valid"), expected);
    }

    /// What gnostic refuses is refused: a key a message does not know, a parameter no member
    /// of the oneof accepts, a missing required key, a value outside a field's enum.
    #[test]
    fn what_gnostic_refuses_is_an_error() {
        let doc = |definitions, paths| {
            json!({"swagger": "2.0", "info": {"title": "T", "version": "v"},
                   "paths": paths, "definitions": definitions})
        };
        let nullable = doc(json!({"A": {"nullable": true}}), json!({}));
        assert!(encode(&nullable).is_err_and(|e| e.contains("nullable")));
        let object_query = doc(
            json!({}),
            json!({"/a": {"get": {"responses": {},
                "parameters": [{"in": "query", "name": "q", "type": "object"}]}}}),
        );
        assert!(encode(&object_query).is_err_and(|e| e.contains("ParametersItem")));
        let no_info = json!({"swagger": "2.0", "paths": {}});
        assert!(encode(&no_info).is_err_and(|e| e.contains("info")));
        let swagger3 =
            json!({"swagger": "3.0", "info": {"title": "T", "version": "v"}, "paths": {}});
        assert!(encode(&swagger3).is_err());
    }
}
