//! Name checks of `k8s.io/apimachinery/pkg/util/validation`, ONE copy for the whole server:
//! object names (RFC 1123 subdomain characters), label keys (qualified names) and label values,
//! with the real server's wording.

use super::schema;
use crate::apiserver::error::ApiError;
use crate::apiserver::resources::ResourceDef;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// Whether `s` is non-empty, its first and last bytes are `edge` and every byte is `inner`: the
/// shape of every name the server checks.
fn edged(s: &str, edge: impl Fn(u8) -> bool, inner: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) => edge(f) && edge(l) && b.iter().all(|&c| inner(c)),
        _ => false,
    }
}

/// An object's `metadata.name`: at most 253 of `[a-z0-9.-]`, starting and ending alphanumeric.
/// (Laxer than [`is_dns1123_subdomain`], which checks each dot-separated label: this is what
/// the server has always accepted, kept as is.)
pub(in crate::apiserver) fn validate_object_name(
    def: &ResourceDef,
    name: &str,
) -> Result<(), ApiError> {
    let ok = name.len() <= 253
        && edged(
            name,
            |c| c.is_ascii_alphanumeric(),
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.',
        );
    if ok {
        return Ok(());
    }
    Err(ApiError::invalid(
        &def.qualified_kind(),
        name,
        vec![schema::Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: \"{name}\": {DNS1123_SUBDOMAIN_ERR}"),
            field: "metadata.name".into(),
        }],
    ))
}

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    edged(
        s,
        |c| c.is_ascii_alphanumeric(),
        |c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'),
    )
}

fn is_dns1123_label(s: &str) -> bool {
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    edged(s, ok, |c| ok(c) || c == b'-')
}

fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(is_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

pub(in crate::apiserver) fn is_valid_label_value(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !v.is_empty() && !is_qualified_name_part(v) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

pub(in crate::apiserver) fn validate_label_key(k: &str, path: &str) -> Option<String> {
    let errs = is_qualified_name(k);
    if errs.is_empty() {
        None
    } else {
        Some(format!("{path}: Invalid value: {k:?}: {}", errs.join("; ")))
    }
}

/// All annotations together, keys and values, at most this many bytes
/// (`TotalAnnotationSizeLimitB`).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn invalid(field: &str, value: &str, message: &str) -> schema::Cause {
    schema::Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value:?}: {message}"),
        field: field.into(),
    }
}

/// The checks of `ValidateObjectMeta` on labels (qualified-name keys, label values),
/// annotations (qualified-name keys in any case, at most 256 KiB in all) and finalizers
/// (qualified names), with the real server's fields and wording.
pub(in crate::apiserver) fn metadata_causes(meta: &serde_json::Value) -> Vec<schema::Cause> {
    let mut causes = Vec::new();
    let map = |key: &str| meta.get(key).and_then(serde_json::Value::as_object);
    if let Some(labels) = map("labels") {
        for (k, v) in labels {
            for m in is_qualified_name(k) {
                causes.push(invalid("metadata.labels", k, &m));
            }
            let v = v.as_str().unwrap_or("");
            for m in is_valid_label_value(v) {
                causes.push(invalid("metadata.labels", v, &m));
            }
        }
    }
    if let Some(annotations) = map("annotations") {
        let mut total = 0;
        for (k, v) in annotations {
            // Annotation keys are qualified names in any case.
            for m in is_qualified_name(&k.to_ascii_lowercase()) {
                causes.push(invalid("metadata.annotations", k, &m));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > TOTAL_ANNOTATION_SIZE_LIMIT {
            causes.push(schema::Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
                field: "metadata.annotations".into(),
            });
        }
    }
    let finalizers = meta.get("finalizers").and_then(serde_json::Value::as_array);
    for (i, f) in finalizers.into_iter().flatten().enumerate() {
        let f = f.as_str().unwrap_or("");
        for m in is_qualified_name(f) {
            causes.push(invalid(&format!("metadata.finalizers[{i}]"), f, &m));
        }
    }
    causes.extend(gc_finalizer_causes(finalizers));
    causes.extend(owner_reference_causes(meta.get("ownerReferences")));
    causes
}

/// `orphan` and `foregroundDeletion` together are refused (`ValidateFinalizers`).
fn gc_finalizer_causes(finalizers: Option<&Vec<serde_json::Value>>) -> Option<schema::Cause> {
    let names: Vec<&str> = finalizers?.iter().filter_map(|f| f.as_str()).collect();
    if !(names.contains(&"orphan") && names.contains(&"foregroundDeletion")) {
        return None;
    }
    let listed: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    Some(schema::Cause {
        reason: "FieldValueInvalid".into(),
        message: format!(
            "Invalid value: []string{{{}}}: finalizer orphan and foregroundDeletion cannot be both set",
            listed.join(", ")
        ),
        field: "metadata.finalizers".into(),
    })
}

/// `ValidateOwnerReferences`: apiVersion (with a version), kind, name and uid are required,
/// an Event cannot own, and at most one reference is the controller.
fn owner_reference_causes(refs: Option<&serde_json::Value>) -> Vec<schema::Cause> {
    let mut causes = Vec::new();
    let field = "metadata.ownerReferences";
    let mut controller: Option<String> = None;
    for r in refs
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| r.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        let version = s("apiVersion").rsplit('/').next().unwrap_or("");
        let required = [
            ("apiVersion", version, "version must not be empty"),
            ("kind", s("kind"), "kind must not be empty"),
            ("name", s("name"), "name must not be empty"),
            ("uid", s("uid"), "uid must not be empty"),
        ];
        for (key, value, message) in required {
            if value.is_empty() {
                causes.push(invalid(&format!("{field}.{key}"), s(key), message));
            }
        }
        if s("apiVersion") == "v1" && s("kind") == "Event" {
            causes.push(schema::Cause {
                reason: "FieldValueInvalid".into(),
                message:
                    "Invalid value: \"Event\": /v1, Kind=Event is disallowed from being an owner"
                        .into(),
                field: field.into(),
            });
        }
        if r.get("controller").and_then(serde_json::Value::as_bool) == Some(true) {
            let this = format!("{}/{}", s("kind"), s("name"));
            match &controller {
                Some(first) => causes.push(schema::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!("Invalid value: \"ownerReferences\": Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                    field: field.into(),
                }),
                None => controller = Some(this),
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(meta: serde_json::Value) -> Vec<(String, String)> {
        metadata_causes(&meta)
            .into_iter()
            .map(|c| (c.field, c.message))
            .collect()
    }

    #[test]
    fn good_metadata_passes() {
        let meta = json!({
            "labels": {"app.kubernetes.io/name": "x", "empty": "", "a_b.c-d": "V.1_x"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "Example.COM/Key": "any value at all"},
            "finalizers": [crate::api::FINALIZER, "kubernetes", "foregroundDeletion"],
        });
        assert_eq!(fields(meta), vec![]);
    }

    #[test]
    fn bad_metadata_names_its_field() {
        let meta = json!({
            "labels": {"bad key": "ok", "k": "-bad-"},
            "annotations": {"a/b/c": "x"},
            "finalizers": ["ok.example/f", "not/a/name"],
        });
        let found = fields(meta);
        let at = |field: &str| found.iter().filter(|(f, _)| f == field).count();
        assert_eq!(at("metadata.labels"), 2, "{found:?}");
        assert_eq!(at("metadata.annotations"), 1, "{found:?}");
        assert_eq!(at("metadata.finalizers[1]"), 1, "{found:?}");
        assert!(found.iter().any(|(_, m)| m.starts_with(
            "Invalid value: \"bad key\": name part must consist of alphanumeric characters"
        )));
        assert!(found.iter().any(|(_, m)| m.starts_with(
            "Invalid value: \"-bad-\": a valid label must be an empty string or consist of"
        )));
        let long = json!({"labels": {"k": "x".repeat(64)}});
        assert!(
            fields(long)[0]
                .1
                .ends_with("must be no more than 63 characters")
        );
    }

    #[test]
    fn annotations_at_most_256_kib() {
        let fits = json!({"annotations": {"k": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 1)}});
        assert_eq!(fields(fits), vec![]);
        let over = json!({"annotations": {"k": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT)}});
        assert_eq!(
            fields(over),
            vec![(
                "metadata.annotations".to_string(),
                "Too long: must have at most 262144 bytes".to_string()
            )]
        );
    }
}
