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
    /// Whether what Partner Center or Azure reports matches the object.
    pub const IN_SYNC: &str = "InSync";
    /// True within 14 days of the connection's refresh token expiring.
    pub const CREDENTIALS_EXPIRING: &str = "CredentialsExpiring";
    /// True while the object carries `csp.operator.dev/paused: "true"`.
    pub const PAUSED: &str = "Paused";
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
    /// No Ready PartnerCenterConnection in the namespace: grant changes wait for one.
    pub const CONNECTION_NOT_READY: &str = "ConnectionNotReady";
    /// The SelfServePolicy already existed in Partner Center and is now managed.
    pub const PERMISSION_ADOPTED: &str = "PermissionAdopted";
    /// The grant's resources changed (the SelfServePolicy was updated).
    pub const PERMISSION_UPDATED: &str = "PermissionUpdated";
    /// The object went with `deletionPolicy: Orphan`; the grant stays in Partner Center.
    pub const PERMISSION_ORPHANED: &str = "PermissionOrphaned";
    /// A permission that held the customer's grant let an older rival for the customer take it
    /// over (the grant stays in effect).
    pub const PERMISSION_HANDED_OVER: &str = "PermissionHandedOver";
    /// The oldest permission for a customer took over the grant a younger rival had made.
    pub const PERMISSION_TAKEN_OVER: &str = "PermissionTakenOver";
    /// The switch was changed outside the cluster and put back as declared.
    pub const DRIFT_CORRECTED: &str = "DriftCorrected";
    // PartnerCenterConnection.
    pub const CONNECTED: &str = "Connected";
    pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    pub const MFA_REQUIRED: &str = "MfaRequired";
    pub const ADMIN_AGENT_REQUIRED: &str = "AdminAgentRequired";
    pub const UNREACHABLE: &str = "Unreachable";
    pub const THROTTLED: &str = "Throttled";
    pub const CREDENTIALS_VALID: &str = "CredentialsValid";
    pub const CREDENTIALS_EXPIRING: &str = "CredentialsExpiring";
    /// A Partner Center or Azure call keeps failing (Warning Events).
    pub const PARTNER_CENTER_ERROR: &str = "PartnerCenterError";
    pub const AZURE_ERROR: &str = "AzureError";
    // InSync (observations).
    pub const OBSERVED: &str = "Observed";
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    pub const NOT_FOUND_IN_PARTNER_CENTER: &str = "NotFoundInPartnerCenter";
    pub const NOT_FOUND_IN_AZURE: &str = "NotFoundInAzure";
}
