//! The Customer kind: a customer tenant of the partner.

use super::{Condition, GUID_PATTERN};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A customer tenant of the partner in Partner Center.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "csp.operator.dev",
    version = "v1alpha1",
    kind = "Customer",
    namespaced,
    status = "CustomerStatus",
    shortname = "cspcust",
    category = "csp",
    doc = "A customer tenant of the CSP partner",
    printcolumn(name = "TENANT", type_ = "string", json_path = ".spec.tenantId"),
    printcolumn(name = "COMPANY", type_ = "string", json_path = ".spec.companyName"),
    printcolumn(
        name = "SUBSCRIPTIONS",
        type_ = "integer",
        json_path = ".status.subscriptions"
    ),
    printcolumn(
        name = "PERMISSION",
        type_ = "string",
        json_path = ".status.purchasePermission"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::duplicated_attributes)]
pub struct CustomerSpec {
    /// Microsoft Entra tenant id of the customer (a GUID). Immutable.
    #[schemars(regex(pattern = GUID_PATTERN), length(max = 36))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("tenantId is immutable"))]
    pub tenant_id: String,
    /// Company name as shown in Partner Center.
    #[schemars(length(min = 1, max = 256))]
    pub company_name: String,
    /// Primary domain, e.g. contoso.onmicrosoft.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub domain: Option<String>,
}

/// Observed state of a Customer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// AzureSubscriptions that reference this customer.
    #[serde(default)]
    pub subscriptions: i32,
    /// Of those, the ones eligible for reservations.
    #[serde(default)]
    pub eligible_subscriptions: i32,
    /// `Enabled` when a PurchasePermission grants it, `Disabled` otherwise .
    #[serde(default)]
    pub purchase_permission: CustomerPermission,
    /// The customer as Partner Center reports it (with observations on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedCustomer>,
    /// Standard conditions, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
}

/// A customer as Partner Center reports it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedCustomer {
    #[schemars(length(max = 256))]
    pub company_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub domain: Option<String>,
    /// When Partner Center was asked.
    pub observed_at: Time,
}

/// Whether the customer may buy its own reservations, as the Customer summary shows it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum CustomerPermission {
    Enabled,
    #[default]
    Disabled,
}
