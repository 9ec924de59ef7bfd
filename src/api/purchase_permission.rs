//! The PurchasePermission kind: the per-customer "Allow customer to purchase" switch.

use super::{Condition, LocalRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The "Customer permissions > Azure reservations > Allow customer to purchase" switch for one
/// customer. Off by default.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "csp.operator.dev",
    version = "v1alpha1",
    kind = "PurchasePermission",
    namespaced,
    status = "PurchasePermissionStatus",
    shortname = "cspperm",
    category = "csp",
    doc = "Allows a customer to purchase its own Azure reservations, billed to the partner",
    printcolumn(
        name = "CUSTOMER",
        type_ = "string",
        json_path = ".spec.customerRef.name"
    ),
    printcolumn(name = "ENABLED", type_ = "boolean", json_path = ".spec.enabled"),
    printcolumn(name = "STATE", type_ = "string", json_path = ".status.state"),
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
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::duplicated_attributes)]
pub struct PurchasePermissionSpec {
    /// The Customer (same namespace) this switch is for. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("customerRef is immutable"))]
    pub customer_ref: LocalRef,
    /// Check the prerequisites on this AzureSubscription only (default: any of the customer's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_ref: Option<LocalRef>,
    /// What the customer may purchase.
    #[serde(default = "default_resources")]
    #[schemars(length(min = 1, max = 2))]
    #[x_kube(
        validation = Rule::new("self.size() > 0").message("resources must not be empty"),
        validation = Rule::new("self.all(r, self.exists_one(s, s == r))").message("resources must be unique")
    )]
    pub resources: Vec<PurchaseResource>,
    /// The switch: true turns it on once the prerequisites are met.
    #[serde(default)]
    pub enabled: bool,
    /// What deleting this object does to a grant in effect: `Withdraw` switches it off first;
    /// `Orphan` lets the object go and leaves the grant in Partner Center.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What deleting a PurchasePermission does to its grant.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Switch the permission off, then let the object go.
    #[default]
    Withdraw,
    /// Let the object go; the grant stays where it lives.
    Orphan,
}

/// Where a grant lives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum GrantBackend {
    /// Partner Center's SelfServePolicy.
    PartnerCenter,
    /// Only this status (no external calls).
    Cluster,
}

fn default_resources() -> Vec<PurchaseResource> {
    vec![PurchaseResource::AzureReservations]
}

/// What a customer may purchase itself.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum PurchaseResource {
    AzureReservations,
    AzureSavingsPlan,
}

/// Where the switch stands.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PermissionState {
    /// The grant is in effect.
    Enabled,
    /// Off (the default).
    #[default]
    Disabled,
    /// Enabling was asked for but the prerequisites are not met.
    Blocked,
}

/// Observed state of a PurchasePermission.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchasePermissionStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where the switch stands.
    #[serde(default)]
    pub state: PermissionState,
    /// Subscription ids that are eligible AND have an Owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 36)))]
    pub eligible_subscriptions: Vec<String>,
    /// When the grant became effective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_since: Option<Time>,
    /// The customer tenant the grant was made for: what is withdrawn when it is switched off or
    /// deleted, even if the Customer object is gone by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 36))]
    pub granted_tenant_id: Option<String>,
    /// What the grant in effect lets the customer purchase (a change of `spec.resources`
    /// updates it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub granted_resources: Vec<PurchaseResource>,
    /// Where the grant in effect lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<GrantBackend>,
    /// The SelfServePolicy id of the grant in Partner Center (`{partner}_{customer}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 80))]
    pub policy_id: Option<String>,
    /// Standard conditions, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
    /// The last grant transitions, oldest first (at most `HISTORY_LIMIT`): the durable record
    /// of who switched the grant and when, which outlives the Events (they expire).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub history: Vec<GrantTransition>,
}

/// How many grant transitions `status.history` keeps.
pub const HISTORY_LIMIT: usize = 10;

/// One grant transition: the grant made, changed, withdrawn, handed over or orphaned. Each has
/// exactly one Event, named after the permission's uid and `sequence`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantTransition {
    /// Counts this permission's grant transitions from 1 (never reused).
    pub sequence: i64,
    /// When the transition was made.
    pub time: Time,
    /// The state before.
    pub from: PermissionState,
    /// The state after.
    pub to: PermissionState,
    /// The reason of the transition's Event (`PermissionEnabled`, `PermissionDisabled`, ...).
    #[schemars(length(max = 64))]
    pub reason: String,
    /// Who last set `spec.enabled`: the field manager that owns it (absent when not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub by: Option<String>,
    /// The rival PurchasePermission for the same customer the grant was handed over to or taken
    /// over from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub peer: Option<String>,
}

impl PurchaseResource {
    /// The resource name Partner Center's SelfServePolicy API uses.
    pub fn partner_center_name(self) -> &'static str {
        match self {
            PurchaseResource::AzureReservations => "AzureReservedInstances",
            PurchaseResource::AzureSavingsPlan => "AzureSavingsPlan",
        }
    }
}
