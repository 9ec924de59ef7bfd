//! The objects a chaos run applies (names, GUIDs and manifests of customer `c` in namespace
//! `ns`) and the simulated Partner Center world that matches them.

use super::generator::{CUSTOMERS, NAMESPACES, Resources};
use crate::simulator::World;
use crate::simulator::world::{
    Application, AzureEntitlement, Customer, Partner, PartnerRole, PartnerUser, Secret,
    SeedRefreshToken, SeedRoleAssignment, Subscription,
};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

pub const GROUP: &str = "csp.operator.dev";
pub const API_VERSION: &str = "csp.operator.dev/v1alpha1";
pub const PARTNER_TENANT: &str = "9a8b7c6d-0000-4000-8000-00000000c4a0";
const CLIENT_ID: &str = "1f2e3d4c-0000-4000-8000-00000000c4a0";
const CLIENT_SECRET: &str = "chaos-client-secret";
const ADMIN_USER: &str = "0a1b2c3d-0000-4000-8000-00000000c4a0";
const REFRESH_TOKEN: &str = "chaos-refresh-token";
/// Owner, as Azure Resource Manager names it.
const OWNER_ROLE_DEFINITION: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

pub fn namespace(ns: usize) -> String {
    format!("chaos-{ns}")
}

fn guid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

/// Customer `c` of namespace `ns` has tenant, subscription and Owner GUIDs of its own (one
/// partner serves both namespaces, so their grants must not share a policy id).
fn index(ns: usize, c: usize) -> usize {
    ns * CUSTOMERS + c
}

pub fn tenant(ns: usize, c: usize) -> String {
    guid(1, index(ns, c))
}

pub fn kind_resource(kind: &str) -> ApiResource {
    let plural = match kind {
        "Customer" => "customers",
        "AzureSubscription" => "azuresubscriptions",
        "RoleAssignment" => "roleassignments",
        "PartnerCenterConnection" => "partnercenterconnections",
        _ => "purchasepermissions",
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, "v1alpha1", kind), plural)
}

pub fn customer_name(c: usize) -> String {
    format!("c{c}")
}

pub fn permission_name(c: usize) -> String {
    format!("p{c}")
}

pub fn rival_name(c: usize) -> String {
    format!("p{c}-rival")
}

pub fn customer(ns: usize, c: usize) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "Customer", "metadata": {"name": customer_name(c)},
           "spec": {"tenantId": tenant(ns, c), "companyName": format!("Customer {c}")}})
}

pub fn subscription(ns: usize, c: usize, eligible: bool) -> Value {
    let offer = if eligible { "AzurePlan" } else { "Other" };
    json!({"apiVersion": API_VERSION, "kind": "AzureSubscription",
           "metadata": {"name": format!("c{c}-plan")},
           "spec": {"customerRef": {"name": customer_name(c)},
                    "subscriptionId": guid(2, index(ns, c)), "offer": offer}})
}

pub fn role(ns: usize, c: usize, owner: bool) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "RoleAssignment",
           "metadata": {"name": format!("c{c}-owner")},
           "spec": {"subscriptionRef": {"name": format!("c{c}-plan")},
                    "principal": {"id": guid(3, index(ns, c))},
                    "role": if owner { "Owner" } else { "Reader" }}})
}

pub fn permission(name: &str, customer: &str, enabled: bool, resources: Resources) -> Value {
    json!({"apiVersion": API_VERSION, "kind": "PurchasePermission", "metadata": {"name": name},
           "spec": {"customerRef": {"name": customer}, "enabled": enabled,
                    "resources": resources.names()}})
}

/// Objects the API server must refuse: a bad GUID, an unknown resource, an unknown offer, an
/// empty company name.
pub fn invalid(which: usize) -> Value {
    match which % 4 {
        0 => {
            json!({"apiVersion": API_VERSION, "kind": "Customer", "metadata": {"name": "bad-tenant"},
                    "spec": {"tenantId": "not-a-guid", "companyName": "Bad"}})
        }
        1 => json!({"apiVersion": API_VERSION, "kind": "PurchasePermission",
                    "metadata": {"name": "bad-resource"},
                    "spec": {"customerRef": {"name": "c0"}, "enabled": true,
                             "resources": ["AzureEverything"]}}),
        2 => json!({"apiVersion": API_VERSION, "kind": "AzureSubscription",
                    "metadata": {"name": "bad-offer"},
                    "spec": {"customerRef": {"name": "c0"}, "subscriptionId": guid(2, 999),
                             "offer": "Cheap"}}),
        _ => {
            json!({"apiVersion": API_VERSION, "kind": "Customer", "metadata": {"name": "bad-name"},
                    "spec": {"tenantId": guid(1, 999), "companyName": ""}})
        }
    }
}

/// The Secret and PartnerCenterConnection of a namespace, pointed at the simulator's `url`.
pub fn connection_objects(url: &str) -> [(ApiResource, Value); 2] {
    let secret = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    [
        (
            secret,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pc-credentials"},
                   "stringData": {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET,
                                  "refreshToken": REFRESH_TOKEN}}),
        ),
        (
            kind_resource("PartnerCenterConnection"),
            json!({"apiVersion": API_VERSION, "kind": "PartnerCenterConnection",
                   "metadata": {"name": "partner-center"},
                   "spec": {"partnerTenantId": PARTNER_TENANT,
                            "credentialsSecretRef": {"name": "pc-credentials"},
                            "endpoints": {"partnerCenter": url, "login": url, "resourceManager": url},
                            "requestsPerMinute": 6000}}),
        ),
    ]
}

/// The simulated partner: every customer of every namespace, each with an Azure plan whose
/// Azure subscription has the customer's Owner, and an Admin Agent with MFA.
pub fn world() -> World {
    let customers = (0..NAMESPACES * CUSTOMERS)
        .map(|i| Customer {
            tenant_id: guid(1, i),
            company_name: format!("Customer {}", i % CUSTOMERS),
            domain: None,
            relationship: "reseller".into(),
            subscriptions: vec![azure_plan(i)],
        })
        .collect();
    World {
        partner: Partner {
            tenant_id: PARTNER_TENANT.into(),
            name: "Chaos Partner".into(),
        },
        applications: vec![Application {
            client_id: CLIENT_ID.into(),
            client_secret: Secret(CLIENT_SECRET.into()),
        }],
        users: vec![PartnerUser {
            id: ADMIN_USER.into(),
            upn: "admin@chaos-partner.example".into(),
            roles: vec![PartnerRole::AdminAgent],
            mfa: true,
            refresh_tokens: vec![SeedRefreshToken {
                token: Secret(REFRESH_TOKEN.into()),
                client_id: Some(CLIENT_ID.into()),
                expires_at: None,
                revoked: false,
            }],
        }],
        customers,
        self_serve_policies: Vec::new(),
    }
}

fn azure_plan(i: usize) -> Subscription {
    Subscription {
        id: guid(4, i),
        offer_id: "DZH318Z0BPS6:0001".into(),
        offer_name: "Azure plan".into(),
        friendly_name: None,
        quantity: 1,
        unit_type: None,
        billing_type: "usage".into(),
        status: "active".into(),
        creation_date: "2025-01-01T00:00:00Z".into(),
        billing_cycle: "monthly".into(),
        term_duration: None,
        auto_renew_enabled: false,
        azure_entitlements: vec![AzureEntitlement {
            id: guid(2, i),
            friendly_name: "Azure plan".into(),
            status: "active".into(),
            role_assignments: vec![SeedRoleAssignment {
                name: guid(5, i),
                principal_id: guid(3, i),
                principal_type: "User".into(),
                role_definition: OWNER_ROLE_DEFINITION.into(),
            }],
        }],
    }
}
