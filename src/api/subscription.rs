//! The AzureSubscription kind: a subscription the partner bought for the customer.

use super::{Condition, GUID_PATTERN, LocalRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// An Azure subscription the partner bought for the customer in Partner Center.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "csp.operator.dev",
    version = "v1alpha1",
    kind = "AzureSubscription",
    namespaced,
    status = "AzureSubscriptionStatus",
    shortname = "azsub",
    category = "csp",
    doc = "An Azure subscription the partner bought for a customer",
    printcolumn(
        name = "CUSTOMER",
        type_ = "string",
        json_path = ".spec.customerRef.name"
    ),
    printcolumn(
        name = "SUBSCRIPTION-ID",
        type_ = "string",
        json_path = ".spec.subscriptionId"
    ),
    printcolumn(name = "OFFER", type_ = "string", json_path = ".spec.offer"),
    printcolumn(name = "BILLING", type_ = "string", json_path = ".spec.billingType"),
    printcolumn(name = "STATE", type_ = "string", json_path = ".spec.state"),
    printcolumn(name = "ELIGIBLE", type_ = "boolean", json_path = ".status.eligible"),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::duplicated_attributes)]
pub struct AzureSubscriptionSpec {
    /// The Customer (same namespace) this subscription was bought for. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("customerRef is immutable"))]
    pub customer_ref: LocalRef,
    /// Azure subscription id (a GUID; Partner Center's entitlementId). Immutable.
    #[schemars(regex(pattern = GUID_PATTERN), length(max = 36))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("subscriptionId is immutable"))]
    pub subscription_id: String,
    /// The offer: Azure plan, legacy Azure (Azure Global), or anything else.
    pub offer: Offer,
    /// Usage-based or license-based billing.
    #[serde(default)]
    pub billing_type: BillingType,
    /// Subscription state in Partner Center.
    #[serde(default)]
    pub state: SubscriptionState,
}

/// The offer a subscription was bought under.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Offer {
    /// Azure plan (product DZH318Z0BPS6).
    AzurePlan,
    /// Legacy Azure offer MS-AZR-0145P.
    AzureGlobal,
    /// Any other offer (not eligible for customer-purchased reservations).
    Other,
}

/// How a subscription is billed.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum BillingType {
    #[default]
    Usage,
    License,
}

/// Lifecycle state of a subscription in Partner Center.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum SubscriptionState {
    #[default]
    Active,
    Pending,
    Suspended,
    Expired,
    Disabled,
    Deleted,
}

/// An Azure subscription as Partner Center reports it (an Azure plan's come from its
/// `azureEntitlements`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedSubscription {
    pub offer: Offer,
    pub billing_type: BillingType,
    pub state: SubscriptionState,
    /// When Partner Center was asked.
    pub observed_at: Time,
}

/// Observed state of an AzureSubscription.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureSubscriptionStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the customer may buy reservations on this subscription (ignoring roles).
    #[serde(default)]
    pub eligible: bool,
    /// RoleAssignments with role Owner on this subscription.
    #[serde(default)]
    pub owners: i32,
    /// The subscription as Partner Center reports it (with observations on); eligibility uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedSubscription>,
    /// Standard conditions, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
}
