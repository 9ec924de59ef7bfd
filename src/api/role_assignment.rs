//! The RoleAssignment kind: an Azure role (Owner, Contributor, Reader) a customer user holds on a subscription.

use super::{Condition, GUID_PATTERN, LocalRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// An Azure RBAC role assignment at subscription scope for one of the customer's principals.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "csp.operator.dev",
    version = "v1alpha1",
    kind = "RoleAssignment",
    namespaced,
    status = "RoleAssignmentStatus",
    shortname = "azrole",
    category = "csp",
    doc = "An Azure role assignment at subscription scope for a customer principal",
    printcolumn(
        name = "SUBSCRIPTION",
        type_ = "string",
        json_path = ".spec.subscriptionRef.name"
    ),
    printcolumn(name = "PRINCIPAL", type_ = "string", json_path = ".spec.principal.id"),
    printcolumn(name = "ROLE", type_ = "string", json_path = ".spec.role"),
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
#[x_kube(validation = Rule::new("!has(oldSelf.management) || oldSelf.management != 'Manage' || (self.subscriptionRef == oldSelf.subscriptionRef && self.principal.id == oldSelf.principal.id && self.role == oldSelf.role)").message("a managed assignment's subscriptionRef, principal.id and role are immutable (Azure cannot change an assignment): delete it and create another"))]
pub struct RoleAssignmentSpec {
    /// The AzureSubscription (same namespace) the role is assigned on.
    pub subscription_ref: LocalRef,
    /// Who holds the role.
    pub principal: Principal,
    /// The built-in Azure role. Only Owner satisfies the purchase prerequisite.
    pub role: Role,
    /// `Observe`: the assignment counts once Azure lists it. `Manage`: the operator creates it
    /// in Azure and removes it when this object is deleted.
    #[serde(default, skip_serializing_if = "Management::is_observe")]
    pub management: Management,
}

impl Management {
    fn is_observe(&self) -> bool {
        *self == Management::Observe
    }
}

/// Who makes a role assignment in Azure.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum Management {
    /// Someone else assigns it (the customer, in the Azure portal); the operator checks it.
    #[default]
    Observe,
    /// The operator assigns it (the article's step 2, done for the partner).
    Manage,
}

/// A Microsoft Entra principal of the customer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// Entra object id (a GUID).
    #[schemars(regex(pattern = GUID_PATTERN), length(max = 36))]
    pub id: String,
    /// Kind of principal.
    #[serde(default, rename = "type")]
    pub type_: PrincipalType,
    /// Human-readable name, e.g. alice@contoso.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub display_name: Option<String>,
}

/// Kind of Entra principal.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum PrincipalType {
    #[default]
    User,
    Group,
    ServicePrincipal,
}

/// Built-in Azure roles at subscription scope.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Role {
    Owner,
    Contributor,
    Reader,
    ReservationPurchaser,
    SavingsPlanPurchaser,
    UserAccessAdministrator,
}

impl Role {
    /// The built-in role definition GUID in Azure.
    pub fn definition_guid(self) -> &'static str {
        match self {
            Role::Owner => "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
            Role::Contributor => "b24988ac-6180-42a0-ab88-20f7382dd24c",
            Role::Reader => "acdd72a7-3385-48ef-bd42-f606fba81ae7",
            Role::ReservationPurchaser => "f7b75c60-3036-4b75-91c3-6b41c27c1689",
            Role::SavingsPlanPurchaser => "3d24a3a0-c154-4f6f-a5ed-adc8e01ddb74",
            Role::UserAccessAdministrator => "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        }
    }

    /// The role definition id as Azure Resource Manager writes it.
    pub fn definition_id(self) -> String {
        format!(
            "/providers/Microsoft.Authorization/roleDefinitions/{}",
            self.definition_guid()
        )
    }
}

/// An Azure role assignment as Azure Resource Manager lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedAssignment {
    /// Its Azure resource id.
    #[schemars(length(max = 512))]
    pub assignment_id: String,
    /// When Azure was asked.
    pub observed_at: Time,
}

/// Observed state of a RoleAssignment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Azure role definition id of the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub role_definition_id: Option<String>,
    /// The assignment as Azure Resource Manager lists it at the subscription's scope (with
    /// observations on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedAssignment>,
    /// Standard conditions, keyed by type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    #[schemars(length(max = 8))]
    pub conditions: Vec<Condition>,
}
