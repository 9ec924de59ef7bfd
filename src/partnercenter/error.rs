//! The one error type of the Partner Center / ARM clients, with reasons the operator maps to conditions.

use std::time::SystemTime;

/// Which outside service answered (or failed to).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Login,
    PartnerCenter,
    ResourceManager,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Service::Login => "login",
            Service::PartnerCenter => "Partner Center",
            Service::ResourceManager => "Azure Resource Manager",
        })
    }
}

/// Everything that can go wrong talking to login, Partner Center or ARM.
/// Messages carry the service's status, error code and description, never a token or secret.
#[derive(Debug, thiserror::Error)]
pub enum PartnerCenterError {
    #[error("credentials missing: {0}")]
    CredentialsMissing(String),
    #[error("credentials rejected by {service} ({status} {code}): {description}")]
    CredentialsInvalid {
        service: Service,
        status: u16,
        code: String,
        description: String,
    },
    #[error("the partner user signed in without multi-factor authentication{}", user_suffix(.user))]
    MfaRequired { user: Option<String> },
    #[error("the partner user lacks the Admin agent role ({code}): {description}")]
    AdminAgentRequired { code: String, description: String },
    #[error("{service} refused the call ({code}): {description}")]
    Forbidden {
        service: Service,
        code: String,
        description: String,
    },
    #[error("{service}: not found ({code}): {description}")]
    NotFound {
        service: Service,
        code: String,
        description: String,
    },
    #[error("{service}: already exists ({code}): {description}")]
    AlreadyExists {
        service: Service,
        code: String,
        description: String,
    },
    #[error("{service}: conflict, the object changed meanwhile ({status} {code}): {description}")]
    Conflict {
        service: Service,
        status: u16,
        code: String,
        description: String,
    },
    #[error("{service} is throttling the calls until {}", rfc3339(.until))]
    Throttled { service: Service, until: SystemTime },
    #[error("{service} unavailable ({status}) after {attempts} attempts")]
    Unavailable {
        service: Service,
        status: u16,
        attempts: u32,
    },
    #[error("{service} did not answer in time ({attempts} attempts)")]
    Timeout { service: Service, attempts: u32 },
    #[error("{service} unreachable: {message}")]
    Unreachable { service: Service, message: String },
    #[error("{service} answered {status} ({code}): {description}")]
    Invalid {
        service: Service,
        status: u16,
        code: String,
        description: String,
    },
    #[error("endpoint {endpoint:?} refused: {why}")]
    InvalidEndpoint { endpoint: String, why: String },
}

fn user_suffix(user: &Option<String>) -> String {
    user.as_deref()
        .map(|u| format!(" ({u})"))
        .unwrap_or_default()
}

fn rfc3339(at: &SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{secs}s after the epoch"))
}

impl PartnerCenterError {
    /// A short PascalCase category: the condition reason the operator shows.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::CredentialsMissing(_) => "CredentialsMissing",
            Self::CredentialsInvalid { .. } => "CredentialsInvalid",
            Self::MfaRequired { .. } => "MfaRequired",
            Self::AdminAgentRequired { .. } => "AdminAgentRequired",
            Self::Forbidden { .. } => "Forbidden",
            Self::NotFound { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Throttled { .. } => "Throttled",
            Self::Unavailable { .. } => "Unavailable",
            Self::Timeout { .. } => "Timeout",
            Self::Unreachable { .. } => "Unreachable",
            Self::Invalid { .. } => "Invalid",
            Self::InvalidEndpoint { .. } => "InvalidEndpoint",
        }
    }

    /// True when trying the same thing later may succeed without anyone changing the setup
    /// (a conflict: read again, then retry).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Unreachable { .. }
                | Self::Conflict { .. }
        )
    }

    /// When a throttled call may be made again.
    pub fn throttled_until(&self) -> Option<SystemTime> {
        match self {
            Self::Throttled { until, .. } => Some(*until),
            _ => None,
        }
    }
}

/// The code and description of an error body from any of the three services.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ServiceError {
    pub code: String,
    pub description: String,
}

const DESCRIPTION_LIMIT: usize = 400;

/// Reads `{code, description}` (Partner Center), `{error: {code, message}}` (ARM),
/// `{error, error_description}` (login) or `{statusCode, message}` (throttling).
pub(crate) fn parse_service_error(body: &[u8]) -> ServiceError {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ServiceError {
            code: String::new(),
            description: truncate(&String::from_utf8_lossy(body)),
        };
    };
    let text = |v: Option<&serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let (code, description) = match value.get("error") {
        Some(serde_json::Value::Object(arm)) => (text(arm.get("code")), text(arm.get("message"))),
        Some(login) => (text(Some(login)), text(value.get("error_description"))),
        None => {
            let code = value.get("code").or_else(|| value.get("statusCode"));
            let description = value.get("description").or_else(|| value.get("message"));
            (text(code), text(description))
        }
    };
    ServiceError {
        code,
        description: truncate(&description),
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(DESCRIPTION_LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The generic mapping of an unsuccessful answer; operations override what they know better.
pub(crate) fn classify(service: Service, status: u16, body: &[u8]) -> PartnerCenterError {
    let ServiceError { code, description } = parse_service_error(body);
    match status {
        401 => PartnerCenterError::CredentialsInvalid {
            service,
            status,
            code,
            description,
        },
        403 if service == Service::PartnerCenter && mentions_mfa(&description) => {
            PartnerCenterError::MfaRequired { user: None }
        }
        403 if service == Service::PartnerCenter
            && (code == "900" || description.to_ascii_lowercase().contains("role")) =>
        {
            PartnerCenterError::AdminAgentRequired { code, description }
        }
        403 => PartnerCenterError::Forbidden {
            service,
            code,
            description,
        },
        404 => PartnerCenterError::NotFound {
            service,
            code,
            description,
        },
        409 if code == "600041" || code == "RoleAssignmentExists" => {
            PartnerCenterError::AlreadyExists {
                service,
                code,
                description,
            }
        }
        500..=599 => PartnerCenterError::Unavailable {
            service,
            status,
            attempts: 1,
        },
        _ => PartnerCenterError::Invalid {
            service,
            status,
            code,
            description,
        },
    }
}

fn mentions_mfa(description: &str) -> bool {
    let lower = description.to_ascii_lowercase();
    lower.contains("mfa") || lower.contains("multi-factor") || lower.contains("multifactor")
}
