//! A DELETE's `DeleteOptions`: from its body, or from the query when the body is empty (as the
//! real server reads them), checked as `ValidateDeleteOptions` does.

use super::Req;
use crate::apiserver::error::ApiError;
use crate::apiserver::storage::gc::{DeleteOptions, validate_delete_options};
use serde_json::Value;

/// The options of a DELETE or DELETE-collection request.
pub fn delete_options(r: &Req) -> Result<DeleteOptions, ApiError> {
    let body: Value = if r.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&r.body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request was not a DeleteOptions: {e}"
            ))
        })?
    };
    let from_body = !body.is_null();
    let text = |field: &str| -> Option<String> {
        if from_body {
            body.get(field).and_then(Value::as_str).map(String::from)
        } else {
            r.q(field).map(String::from)
        }
    };
    let orphan_dependents = if from_body {
        body.get("orphanDependents").and_then(Value::as_bool)
    } else {
        r.q("orphanDependents").map(|v| v == "true" || v == "1")
    };
    let propagation =
        validate_delete_options(text("propagationPolicy").as_deref(), orphan_dependents)?;
    let dry_run = r.q("dryRun") == Some("All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let precondition = |field: &str| {
        body.pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
            .map(String::from)
    };
    Ok(DeleteOptions {
        propagation,
        orphan_dependents,
        precondition_uid: precondition("uid"),
        precondition_rv: precondition("resourceVersion"),
        dry_run,
    })
}
