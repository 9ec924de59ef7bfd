//! The activity log: which Event a transition produces.

/// Event types, as `events.k8s.io/v1` spells them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventType {
    #[default]
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
    /// The grant passes between two PurchasePermissions for one customer (no Partner Center
    /// call of its own: the grant stays in effect).
    pub const HAND_OVER: &str = "HandOverCustomerPurchasePermissions";
    pub const CHECK_PREREQUISITES: &str = "CheckPrerequisites";
}

/// One activity-log entry, regarding the PurchasePermission it is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityEvent {
    pub type_: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
    /// The `status.history` sequence of the grant transition this entry logs: its Event is
    /// named after it, so it is recorded exactly once. `None` for the other entries.
    pub transition: Option<i64>,
}
