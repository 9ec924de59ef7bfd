//! Wire types of Partner Center and Azure Resource Manager, in their exact JSON casing, tolerant of the unknown.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Partner Center's "Allow customer to purchase" switch for one customer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SelfServePolicy {
    pub id: String,
    pub self_serve_entity: SelfServeEntity,
    pub grantor: Grantor,
    pub permissions: Vec<Permission>,
    pub attributes: Attributes,
    /// Fields this client does not know, kept so a PUT sends the full body back.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SelfServeEntity {
    pub self_serve_entity_type: String,
    #[serde(rename = "tenantID")]
    pub tenant_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Grantor {
    pub grantor_type: String,
    #[serde(rename = "tenantID")]
    pub tenant_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Permission {
    pub resource: String,
    pub action: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub object_type: String,
}

/// The permission resources Partner Center documents.
pub const AZURE_RESERVED_INSTANCES: &str = "AzureReservedInstances";
pub const AZURE_SAVINGS_PLAN: &str = "AzureSavingsPlan";
/// The only documented permission action.
pub const PURCHASE: &str = "Purchase";

impl SelfServePolicy {
    /// The policy a partner grants a customer: id `{partner}_{customer}`, bill-to-partner, Purchase on each resource.
    pub fn for_customer(
        partner_tenant_id: &str,
        customer_tenant_id: &str,
        resources: &[&str],
    ) -> Self {
        SelfServePolicy {
            id: format!("{partner_tenant_id}_{customer_tenant_id}"),
            self_serve_entity: SelfServeEntity {
                self_serve_entity_type: "customer".into(),
                tenant_id: customer_tenant_id.into(),
            },
            grantor: Grantor {
                grantor_type: "billToPartner".into(),
                tenant_id: partner_tenant_id.into(),
            },
            permissions: resources
                .iter()
                .map(|resource| Permission {
                    resource: (*resource).into(),
                    action: PURCHASE.into(),
                })
                .collect(),
            attributes: Attributes {
                etag: None,
                object_type: "SelfServePolicy".into(),
            },
            extra: serde_json::Map::new(),
        }
    }

    /// The resources the customer may purchase (permissions whose action is Purchase, any casing).
    pub fn resources(&self) -> BTreeSet<String> {
        self.permissions
            .iter()
            .filter(|p| p.action.eq_ignore_ascii_case(PURCHASE))
            .map(|p| p.resource.clone())
            .collect()
    }
}

/// A customer of the partner.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Customer {
    pub id: String,
    pub company_profile: CompanyProfile,
    pub relationship_to_partner: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompanyProfile {
    pub tenant_id: String,
    pub domain: String,
    pub company_name: String,
}

/// A Partner Center subscription (e.g. an Azure plan). Enum-like values stay strings: compare
/// them case-insensitively (the SDK maps unknown values to Undefined).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subscription {
    pub id: String,
    pub entitlement_id: Option<String>,
    pub offer_id: String,
    pub offer_name: String,
    pub friendly_name: String,
    pub quantity: i64,
    pub unit_type: String,
    pub parent_subscription_id: Option<String>,
    pub creation_date: Option<String>,
    pub effective_start_date: Option<String>,
    pub commitment_end_date: Option<String>,
    pub status: String,
    pub auto_renew_enabled: Option<bool>,
    pub billing_type: String,
    pub billing_cycle: Option<String>,
    pub term_duration: Option<String>,
    pub order_id: Option<String>,
    /// Fields this client does not know (links, attributes, ...), kept for a full-body PATCH.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Subscription {
    /// Whether this is an Azure plan (offer id starts with the Azure plan product).
    pub fn is_azure_plan(&self) -> bool {
        let product = super::AZURE_PLAN_PRODUCT;
        self.offer_id.len() >= product.len()
            && self.offer_id[..product.len()].eq_ignore_ascii_case(product)
    }
}

/// One Azure subscription under an Azure plan: `id` is the Azure subscription id,
/// `subscription_id` the Partner Center plan subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureEntitlement {
    pub id: String,
    pub friendly_name: String,
    pub status: String,
    pub subscription_id: String,
}

/// One activity log entry. Enum values are snake_case strings (`self_serve_policy`, `create_self_serve_policy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuditRecord {
    pub id: String,
    pub partner_id: String,
    pub customer_id: Option<String>,
    pub customer_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub application_id: Option<String>,
    pub resource_type: String,
    pub operation_type: String,
    pub operation_date: String,
    pub operation_status: String,
    pub original_correlation_id: Option<String>,
    pub resource_old_value: Option<String>,
    pub resource_new_value: Option<String>,
    pub customized_data: Vec<KeyValue>,
}

/// What to read from the activity log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    /// `YYYY-MM-DD`, at most 90 days back.
    pub start_date: String,
    pub end_date: Option<String>,
    /// The PascalCase resource type filter, e.g. `SelfServePolicy`.
    pub resource_type: Option<String>,
    pub customer_id: Option<String>,
}

/// An ARM role assignment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleAssignment {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: RoleAssignmentProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleAssignmentProperties {
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub scope: String,
    pub created_on: Option<String>,
    pub updated_on: Option<String>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

/// The body of a role assignment PUT: `{"properties": {...}}` on the wire.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NewRoleAssignment {
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
}

/// A Partner Center page: `{totalCount, items, links: {next: {uri, headers}}}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Collection<T> {
    pub items: Vec<T>,
    pub links: Links,
}

impl<T> Default for Collection<T> {
    fn default() -> Self {
        Collection {
            items: Vec::new(),
            links: Links::default(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Links {
    pub next: Option<Link>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Link {
    pub uri: String,
    pub headers: Vec<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// An ARM page: `{value, nextLink}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ArmPage<T> {
    pub value: Vec<T>,
    pub next_link: Option<String>,
}

impl<T> Default for ArmPage<T> {
    fn default() -> Self {
        ArmPage {
            value: Vec::new(),
            next_link: None,
        }
    }
}
