//! The PartnerCenterConnection kind: the partner tenant whose customers live in a namespace, and
//! how the operator reaches Partner Center and Azure Resource Manager for it.

use super::{Condition, GUID_PATTERN, LocalRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A duration such as `90s`, `5m`, `1h` or `1h30m`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(s|m|h))+$";

/// The partner tenant of a namespace and its Partner Center credentials (one per namespace).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "csp.operator.dev",
    version = "v1alpha1",
    kind = "PartnerCenterConnection",
    namespaced,
    status = "PartnerCenterConnectionStatus",
    shortname = "pcconn",
    category = "csp",
    doc = "How the operator reaches Partner Center and Azure for the partner tenant of this namespace",
    printcolumn(
        name = "PARTNER-TENANT",
        type_ = "string",
        json_path = ".spec.partnerTenantId"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "REASON",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "LAST-SYNC",
        type_ = "date",
        json_path = ".status.lastAuditSync"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::duplicated_attributes)]
pub struct PartnerCenterConnectionSpec {
    /// Microsoft Entra tenant id of the partner (a GUID). Immutable.
    #[schemars(regex(pattern = GUID_PATTERN), length(max = 36))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("partnerTenantId is immutable"))]
    pub partner_tenant_id: String,
    /// Secret (same namespace) with the keys clientId, clientSecret and refreshToken of an
    /// App+User sign-in by an Admin Agent. The operator writes the newest refresh token back.
    pub credentials_secret_ref: LocalRef,
    /// Where the services are; the defaults are Microsoft's public endpoints.
    #[serde(default)]
    pub endpoints: ConnectionEndpoints,
    /// Verify subscriptions and Owner roles against Partner Center and Azure.
    #[serde(default = "default_true")]
    pub observe: bool,
    /// How often observed facts are refreshed per customer (jittered).
    #[serde(default = "default_resync")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    pub resync_interval: String,
    /// How often the activity log is read to catch changes made elsewhere.
    #[serde(default = "default_audit")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    pub audit_interval: String,
    /// Our budget of Partner Center requests per minute, under its 500 per minute per tenant.
    #[serde(default = "default_requests_per_minute")]
    #[x_kube(
        validation = Rule::new("self >= 1 && self <= 6000").message("requestsPerMinute must be between 1 and 6000; Partner Center documents 500 requests per minute per partner tenant for its customer and subscription resources, so more is only for a raised quota or a simulator")
    )]
    pub requests_per_minute: i32,
}

/// Base URLs of the three services.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEndpoints {
    #[serde(default = "default_partner_center")]
    #[schemars(length(min = 1, max = 2048))]
    pub partner_center: String,
    #[serde(default = "default_login")]
    #[schemars(length(min = 1, max = 2048))]
    pub login: String,
    #[serde(default = "default_resource_manager")]
    #[schemars(length(min = 1, max = 2048))]
    pub resource_manager: String,
}

impl Default for ConnectionEndpoints {
    fn default() -> Self {
        ConnectionEndpoints {
            partner_center: default_partner_center(),
            login: default_login(),
            resource_manager: default_resource_manager(),
        }
    }
}

/// Observed state of a PartnerCenterConnection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartnerCenterConnectionStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the activity log (audit records) was last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_audit_sync: Option<Time>,
    /// When the newest refresh token expires (90 days after it was issued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_at: Option<Time>,
    /// Who the credentials sign in as (the partner user's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub signed_in_as: Option<String>,
    /// While Partner Center throttles us: when calls resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_until: Option<Time>,
    /// Standard conditions, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
}

impl PartnerCenterConnectionSpec {
    /// `resyncInterval` as a duration (admission guarantees the format; 1h if not).
    pub fn resync(&self) -> Duration {
        parse_duration(&self.resync_interval).unwrap_or(Duration::from_secs(3600))
    }

    /// `auditInterval` as a duration (5m if unreadable).
    pub fn audit(&self) -> Duration {
        parse_duration(&self.audit_interval).unwrap_or(Duration::from_secs(300))
    }
}

/// Parses `1h30m`, `5m`, `90s`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    (digits.is_empty() && !text.is_empty()).then_some(Duration::from_secs(total))
}

fn default_true() -> bool {
    true
}
fn default_resync() -> String {
    "1h".into()
}
fn default_audit() -> String {
    "5m".into()
}
fn default_requests_per_minute() -> i32 {
    300
}
fn default_partner_center() -> String {
    "https://api.partnercenter.microsoft.com".into()
}
fn default_login() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_resource_manager() -> String {
    "https://management.azure.com".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_written() {
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5d"), None);
    }
}
