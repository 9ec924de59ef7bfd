//! The activity log: which Event a transition produces.

/// Event types, as `events.k8s.io/v1` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// Event actions: the Partner Center activity-log operation names.
pub mod actions {
    pub const CREATE: &str = "CreateCustomerPurchasePermissions";
    pub const DELETE: &str = "DeleteCustomerPurchasePermissions";
    pub const UPDATE: &str = "UpdateCustomerPurchasePermissions";
    pub const ADOPT: &str = "AdoptCustomerPurchasePermissions";
    pub const ORPHAN: &str = "OrphanCustomerPurchasePermissions";
    pub const CHECK_PREREQUISITES: &str = "CheckPrerequisites";
}

/// One activity-log entry, regarding the PurchasePermission it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityEvent {
    pub type_: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}
