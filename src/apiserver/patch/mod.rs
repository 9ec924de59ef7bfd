//! Patches: JSON merge (RFC 7386), JSON patch (RFC 6902) and strategic merge (the built-in
//! kinds' patch strategies, in [`strategic`]); server-side apply, with per-manager field
//! ownership, is [`apply`].

pub mod apply;
pub mod strategic;

use super::error::ApiError;
use super::resources::ResourceDef;
use serde_json::Value;

/// The patch types the server accepts, by Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Parses a body that is JSON or YAML (apply patches may be either).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(json_err) => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("the body is neither JSON nor UTF-8 YAML"))?;
            serde_saphyr::from_str::<Value>(text).map_err(|yaml_err| {
                ApiError::bad_request(format!(
                    "the body is neither valid JSON ({json_err}) nor valid YAML ({yaml_err})"
                ))
            })
        }
    }
}

/// Applies a merge, strategic or JSON patch to `current`, an object of `def`.
pub fn apply_patch(
    kind: PatchKind,
    def: &ResourceDef,
    current: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchKind::Strategic => {
            // Custom resources have no patch strategies (the route answers 415 before this).
            if def.schema.is_some() {
                return Err(ApiError::bad_request(
                    "strategic merge patch format is not supported",
                ));
            }
            let schema = strategic::strategies::for_kind(&def.group, &def.kind);
            return strategic::apply(current, patch, schema);
        }
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchKind::Json => {
            // As the real server: a `test` for null passes when the path is absent.
            let ops: Vec<Value> = patch
                .as_array()
                .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array"))?
                .iter()
                .filter(|op| {
                    !(op.get("op").and_then(Value::as_str) == Some("test")
                        && op.get("value").is_some_and(Value::is_null)
                        && op
                            .get("path")
                            .and_then(Value::as_str)
                            .is_some_and(|p| doc.pointer(p).is_none()))
                })
                .cloned()
                .collect();
            let ops: json_patch::Patch = serde_json::from_value(Value::Array(ops))
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            // Any failing operation (a `test` included) is 422, as the real server answers.
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchKind::Apply => return Err(ApiError::internal("apply is not a plain patch")),
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_patch_test_failure_is_invalid() {
        let def = &crate::apiserver::resources::builtins()[0];
        let err = apply_patch(
            PatchKind::Json,
            def,
            &json!({"a": 1}),
            &json!([{"op": "test", "path": "/a", "value": 2}]),
        )
        .expect_err("test op fails");
        assert_eq!(err.code, 422);
    }

    #[test]
    fn yaml_bodies_parse() {
        assert_eq!(
            parse_body(b"a: 1\nb: [x]\n").expect("yaml"),
            json!({"a": 1, "b": ["x"]})
        );
    }
}
