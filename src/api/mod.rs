//! The custom resources of `csp.operator.dev/v1alpha1`: the public contract (API.md).

pub mod conditions;
mod connection;
mod customer;
mod purchase_permission;
mod role_assignment;
mod subscription;

pub use conditions::Condition;
pub use connection::{
    ConnectionEndpoints, PartnerCenterConnection, PartnerCenterConnectionSpec,
    PartnerCenterConnectionStatus, parse_duration,
};
pub use customer::{Customer, CustomerPermission, CustomerSpec, CustomerStatus, ObservedCustomer};
pub use purchase_permission::{
    DeletionPolicy, GrantBackend, GrantTransition, HISTORY_LIMIT, PermissionState,
    PurchasePermission, PurchasePermissionSpec, PurchasePermissionStatus, PurchaseResource,
};
pub use role_assignment::{
    Management, ObservedAssignment, Principal, PrincipalType, Role, RoleAssignment,
    RoleAssignmentSpec, RoleAssignmentStatus,
};
pub use subscription::{
    AzureSubscription, AzureSubscriptionSpec, AzureSubscriptionStatus, BillingType,
    ObservedSubscription, Offer, SubscriptionState,
};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every kind.
pub const GROUP: &str = "csp.operator.dev";
/// API version of every kind.
pub const VERSION: &str = "v1alpha1";
/// Finalizer that turns an enabled permission off before the object goes.
pub const FINALIZER: &str = "csp.operator.dev/purchase-permission";
/// Finalizer that removes a managed role assignment from Azure before the object goes.
pub const ROLE_FINALIZER: &str = "csp.operator.dev/role-assignment";
/// Finalizer that keeps a PartnerCenterConnection (and its signed-in client) while permissions
/// in its namespace may still have grants to withdraw (a namespace being deleted deletes both).
/// Its credentials Secret carries it too, while the connection names it, so the operator can
/// sign in again after a restart to withdraw them.
pub const CONNECTION_FINALIZER: &str = "csp.operator.dev/partner-center-connection";
/// Annotation on a PartnerCenterConnection naming the Secret that carries its finalizer (so a
/// Secret it no longer names is let go, even after a restart).
pub const HELD_SECRET_ANNOTATION: &str = "csp.operator.dev/credentials-secret";

/// Regular expression a GUID (tenant, subscription, principal id) must match.
pub const GUID_PATTERN: &str =
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// A reference to another object of ours in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct LocalRef {
    /// Name of the object in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl LocalRef {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

/// The CRDs of every kind, in the order they are documented.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        Customer::crd(),
        AzureSubscription::crd(),
        RoleAssignment::crd(),
        PurchasePermission::crd(),
        PartnerCenterConnection::crd(),
    ]
}

/// Every CRD as one multi-document YAML stream (what `csp-operator crd` prints).
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    Ok(crd_files()?
        .into_iter()
        .map(|(_, yaml)| yaml)
        .collect::<Vec<_>>()
        .join(""))
}

/// One `(file name, YAML document)` per CRD, as checked in under `crds/`.
pub fn crd_files() -> Result<Vec<(String, String)>, serde_saphyr::ser::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let yaml = serde_saphyr::to_string(&crd)?;
            Ok((
                format!("{}.yaml", crd.spec.names.plural),
                format!("---\n{yaml}"),
            ))
        })
        .collect()
}
