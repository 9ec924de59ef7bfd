//! Errors as the real API server answers them: `metav1.Status` objects.

use super::schema::Cause;
use serde_json::{Value, json};

/// An error answer: HTTP code, Status reason, message, and optional details.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u32>,
    /// The Status's `metadata.continue` (a 410 to a paged list offers where to go on).
    pub list_continue: Option<String>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            list_continue: None,
        }
    }

    pub fn not_found(qualified_resource: &str, name: &str) -> Self {
        let mut e = Self::new(
            404,
            "NotFound",
            format!("{qualified_resource} \"{name}\" not found"),
        );
        e.details = Some(details(qualified_resource, name));
        e
    }

    pub fn already_exists(qualified_resource: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "AlreadyExists",
            format!("{qualified_resource} \"{name}\" already exists"),
        );
        e.details = Some(details(qualified_resource, name));
        e
    }

    pub fn conflict(qualified_resource: &str, name: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified_resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
        e.details = Some(details(qualified_resource, name));
        e
    }

    /// 409 Conflict with the real server's `NewConflict` wording around `reason`.
    pub fn conflict_because(qualified_resource: &str, name: &str, reason: &str) -> Self {
        let mut e = Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified_resource} \"{name}\": {reason}"),
        );
        e.details = Some(details(qualified_resource, name));
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 422 Invalid, worded as the real server: `Kind.group "name" is invalid: field: message`.
    pub fn invalid(qualified_kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let parts: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let summary = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let (group, kind) = match qualified_kind.split_once('.') {
            Some((k, g)) => (g, k),
            None => ("", qualified_kind),
        };
        Self {
            code: 422,
            reason: "Invalid",
            message: format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
            details: Some(json!({
                "name": name,
                "group": group,
                "kind": kind,
                "causes": causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect::<Vec<_>>(),
            })),
            retry_after: None,
            list_continue: None,
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The Status object.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        // StatusReasonUnknown ("") is left out, as Go's omitempty does.
        if self.reason.is_empty()
            && let Some(m) = s.as_object_mut()
        {
            m.remove("reason");
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        if let Some(c) = &self.list_continue {
            s["metadata"]["continue"] = c.clone().into();
        }
        if let Some(r) = self.retry_after {
            s["details"]["retryAfterSeconds"] = r.into();
        }
        s
    }
}

fn details(qualified_resource: &str, name: &str) -> Value {
    let (kind, group) = qualified_resource
        .split_once('.')
        .unwrap_or((qualified_resource, ""));
    json!({"name": name, "group": group, "kind": kind})
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}
