//! Condition types and reasons: constants so a typo is a compile error, not a silent new reason.

pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Condition types.
pub mod types {
    pub const READY: &str = "Ready";
    pub const RESERVATION_ELIGIBLE: &str = "ReservationEligible";
    pub const SUBSCRIPTION_ELIGIBLE: &str = "SubscriptionEligible";
    pub const OWNER_ROLE_ASSIGNED: &str = "OwnerRoleAssigned";
    /// kstatus (Flux, kubectl wait): True while nothing can progress without a human.
    pub const STALLED: &str = "Stalled";
    /// kstatus: True while a grant change is in flight (being retried).
    pub const RECONCILING: &str = "Reconciling";
}

/// Condition reasons (also used as Event reasons).
pub mod reasons {
    pub const REGISTERED: &str = "Registered";
    pub const DUPLICATE_TENANT: &str = "DuplicateTenant";
    pub const CUSTOMER_NOT_FOUND: &str = "CustomerNotFound";
    pub const DUPLICATE_SUBSCRIPTION: &str = "DuplicateSubscription";
    pub const ELIGIBLE: &str = "Eligible";
    pub const OFFER_NOT_ELIGIBLE: &str = "OfferNotEligible";
    pub const NOT_USAGE_BASED: &str = "NotUsageBased";
    pub const NOT_ACTIVE: &str = "NotActive";
    pub const ASSIGNED: &str = "Assigned";
    pub const SUBSCRIPTION_NOT_FOUND: &str = "SubscriptionNotFound";
    pub const NO_ELIGIBLE_SUBSCRIPTION: &str = "NoEligibleSubscription";
    pub const OWNER_ASSIGNED: &str = "OwnerAssigned";
    pub const OWNER_ROLE_MISSING: &str = "OwnerRoleMissing";
    pub const PERMISSION_ENABLED: &str = "PermissionEnabled";
    pub const PERMISSION_DISABLED: &str = "PermissionDisabled";
    pub const DUPLICATE_PERMISSION: &str = "DuplicatePermission";
    /// A grant change the backend has not confirmed yet: it failed and is being retried.
    pub const GRANT_PENDING: &str = "GrantPending";
}
