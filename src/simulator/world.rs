//! The simulated world, read from YAML: the partner, its app and users, customers, subscriptions,
//! Azure plan entitlements, role assignments and existing self-serve policies.
//!
//! # Schema (every key camelCase; defaults in brackets)
//! ```yaml
//! partner: {tenantId: GUID, name: "Partner A"}
//! applications:                       # apps that may redeem refresh tokens
//!   - {clientId: GUID, clientSecret: "…"}
//! users:                              # partner users (the identities behind App+User tokens)
//!   - id: GUID                        # the object id (`oid` claim)
//!     upn: admin@partner.example
//!     roles: [AdminAgent]             # AdminAgent | SalesAgent | HelpdeskAgent  [[]]
//!     mfa: true                       # signs in with MFA: `mfa` in `amr`  [true]
//!     refreshTokens:                  # seed refresh tokens this user holds
//!       - token: "…"                  # opaque; what the client is configured with
//!         clientId: GUID              # [the first application]
//!         expiresAt: 2030-01-01T00:00:00Z   # [90 days after start]
//!         revoked: false              # [false]
//! customers:
//!   - tenantId: GUID
//!     companyName: Contoso Ltd
//!     domain: contoso.onmicrosoft.com # [lower-case company name without spaces + .onmicrosoft.com]
//!     relationship: reseller          # [reseller]
//!     subscriptions:                  # Partner Center subscriptions  [[]]
//!       - id: GUID                    # the Partner Center subscription id
//!         offerId: DZH318Z0BPS6:0001  # [Azure plan]
//!         offerName: Azure plan       # [Azure plan]
//!         friendlyName: …             # [offerName]
//!         quantity: 1                 # [1]
//!         unitType: Usage-based       # [Usage-based for usage billing, else Licenses]
//!         billingType: usage          # usage | license  [usage]
//!         status: active              # active | suspended | deleted | expired | pending | disabled  [active]
//!         creationDate: 2025-01-01T00:00:00Z   # [2025-01-01T00:00:00Z]
//!         billingCycle: monthly       # [monthly]
//!         termDuration: P1M           # [absent]
//!         autoRenewEnabled: false     # [false]
//!         azureEntitlements:          # the Azure subscriptions of an Azure plan  [[]]
//!           - id: GUID                # the Azure subscription id (ARM's /subscriptions/{id})
//!             friendlyName: …         # ["Azure plan"]
//!             status: active          # [active]
//!             roleAssignments:        # at the subscription's scope  [[]]
//!               - name: GUID          # the assignment's name
//!                 principalId: GUID
//!                 principalType: User # [User]
//!                 roleDefinition: Owner   # a built-in role name or a role definition GUID
//! selfServePolicies:                  # policies that already exist (adoption tests)  [[]]
//!   - customer: GUID                  # the customer tenant id
//!     permissions: [AzureReservedInstances]   # [AzureReservedInstances]
//! ```

use super::SimulatorError;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// The seeded world for `up`: the same text as `examples/partner-center/world.yaml`.
const EXAMPLES_YAML: &str = include_str!("../../examples/partner-center/world.yaml");

/// Everything the simulator knows at start; changes afterwards live in its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct World {
    pub partner: Partner,
    #[serde(default)]
    pub applications: Vec<Application>,
    #[serde(default)]
    pub users: Vec<PartnerUser>,
    #[serde(default)]
    pub customers: Vec<Customer>,
    #[serde(default)]
    pub self_serve_policies: Vec<SeedPolicy>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Partner {
    pub tenant_id: String,
    #[serde(default = "default_partner_name")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Application {
    pub client_id: String,
    pub client_secret: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerUser {
    pub id: String,
    pub upn: String,
    #[serde(default)]
    pub roles: Vec<PartnerRole>,
    #[serde(default = "yes")]
    pub mfa: bool,
    #[serde(default)]
    pub refresh_tokens: Vec<SeedRefreshToken>,
}

/// The Partner Center agent roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PartnerRole {
    AdminAgent,
    SalesAgent,
    HelpdeskAgent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRefreshToken {
    pub token: Secret,
    #[serde(default)]
    pub client_id: Option<String>,
    /// RFC 3339; absent: 90 days after the simulator starts.
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Customer {
    pub tenant_id: String,
    pub company_name: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default = "default_relationship")]
    pub relationship: String,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

impl Customer {
    /// The domain as given, else `<companyname>.onmicrosoft.com`.
    pub fn domain(&self) -> String {
        self.domain.clone().unwrap_or_else(|| {
            let name: String = self
                .company_name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            format!("{}.onmicrosoft.com", name.to_ascii_lowercase())
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    pub id: String,
    #[serde(default = "default_offer_id")]
    pub offer_id: String,
    #[serde(default = "default_offer_name")]
    pub offer_name: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default = "one")]
    pub quantity: u32,
    #[serde(default)]
    pub unit_type: Option<String>,
    #[serde(default = "default_billing_type")]
    pub billing_type: String,
    #[serde(default = "default_status")]
    pub status: String,
    #[serde(default = "default_creation_date")]
    pub creation_date: String,
    #[serde(default = "default_billing_cycle")]
    pub billing_cycle: String,
    #[serde(default)]
    pub term_duration: Option<String>,
    #[serde(default)]
    pub auto_renew_enabled: bool,
    #[serde(default)]
    pub azure_entitlements: Vec<AzureEntitlement>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureEntitlement {
    pub id: String,
    #[serde(default = "default_offer_name")]
    pub friendly_name: String,
    #[serde(default = "default_status")]
    pub status: String,
    #[serde(default)]
    pub role_assignments: Vec<SeedRoleAssignment>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRoleAssignment {
    pub name: String,
    pub principal_id: String,
    #[serde(default = "default_principal_type")]
    pub principal_type: String,
    pub role_definition: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedPolicy {
    pub customer: String,
    #[serde(default = "default_permissions")]
    pub permissions: Vec<String>,
}

/// A secret from the world file: never printed by `Debug`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Built-in Azure role names the world file may use instead of a role definition GUID.
const BUILT_IN_ROLES: &[(&str, &str)] = &[
    ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    (
        "User Access Administrator",
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    ),
    (
        "Reservation Purchaser",
        "f7b75c60-3036-4b75-91c3-6b41c27c1689",
    ),
    (
        "Savings plan Purchaser",
        "3d24a3a0-c154-4f6f-a5ed-adc8e01ddb74",
    ),
];

/// A role definition GUID from a built-in role name or a GUID.
pub fn role_definition_guid(name_or_guid: &str) -> Option<String> {
    if is_guid(name_or_guid) {
        return Some(name_or_guid.to_ascii_lowercase());
    }
    BUILT_IN_ROLES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(name_or_guid))
        .map(|(_, guid)| (*guid).to_string())
}

/// `8-4-4-4-12` hexadecimal digits.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

impl World {
    pub fn from_yaml(text: &str) -> Result<World, SimulatorError> {
        let world: World =
            serde_saphyr::from_str(text).map_err(|e| SimulatorError::World(e.to_string()))?;
        world.validate()?;
        Ok(world)
    }

    pub fn load(path: &Path) -> Result<World, SimulatorError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimulatorError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        World::from_yaml(&text)
    }

    /// The seeded world of `examples/partner-center/world.yaml` (the customers of `examples/`).
    pub fn examples() -> World {
        match World::from_yaml(EXAMPLES_YAML) {
            Ok(world) => world,
            // The file is compiled in and covered by a test: this arm is unreachable in practice.
            Err(_) => World {
                partner: Partner {
                    tenant_id: "9a8b7c6d-0000-4000-8000-000000000001".into(),
                    name: default_partner_name(),
                },
                applications: Vec::new(),
                users: Vec::new(),
                customers: Vec::new(),
                self_serve_policies: Vec::new(),
            },
        }
    }

    /// Ids are GUIDs, unique where they must be, and references point at something.
    fn validate(&self) -> Result<(), SimulatorError> {
        let bad = |what: String| Err(SimulatorError::World(what));
        let mut guids = vec![("partner.tenantId", &self.partner.tenant_id)];
        guids.extend(self.applications.iter().map(|a| ("clientId", &a.client_id)));
        guids.extend(self.users.iter().map(|u| ("user id", &u.id)));
        guids.extend(
            self.customers
                .iter()
                .map(|c| ("customer tenantId", &c.tenant_id)),
        );
        for (what, id) in guids {
            if !is_guid(id) {
                return bad(format!("{what} {id:?} is not a GUID"));
            }
        }
        let mut seen = HashSet::new();
        for c in &self.customers {
            if !seen.insert(c.tenant_id.to_ascii_lowercase()) {
                return bad(format!("customer {} appears twice", c.tenant_id));
            }
            if !c.relationship.eq_ignore_ascii_case("reseller") {
                return bad(format!(
                    "customer {}: relationship {:?} (only reseller is simulated)",
                    c.tenant_id, c.relationship
                ));
            }
        }
        self.validate_subscriptions()?;
        self.validate_refresh_tokens()?;
        for p in &self.self_serve_policies {
            if !self.customers.iter().any(|c| c.tenant_id == p.customer) {
                return bad(format!(
                    "self-serve policy for unknown customer {}",
                    p.customer
                ));
            }
        }
        Ok(())
    }

    fn validate_subscriptions(&self) -> Result<(), SimulatorError> {
        let bad = |what: String| Err(SimulatorError::World(what));
        let mut ids = HashSet::new();
        for s in self.customers.iter().flat_map(|c| &c.subscriptions) {
            let entitlements = s.azure_entitlements.iter().map(|e| &e.id);
            for id in std::iter::once(&s.id).chain(entitlements) {
                if !is_guid(id) {
                    return bad(format!("subscription id {id:?} is not a GUID"));
                }
                if !ids.insert(id.to_ascii_lowercase()) {
                    return bad(format!(
                        "subscription id {id} appears twice (an Azure plan and its Azure subscriptions have different ids)"
                    ));
                }
            }
            for a in s
                .azure_entitlements
                .iter()
                .flat_map(|e| &e.role_assignments)
            {
                if !is_guid(&a.name) || !is_guid(&a.principal_id) {
                    return bad(format!(
                        "role assignment {:?}: name and principalId are GUIDs",
                        a.name
                    ));
                }
                if role_definition_guid(&a.role_definition).is_none() {
                    return bad(format!("unknown role definition {:?}", a.role_definition));
                }
            }
        }
        Ok(())
    }

    fn validate_refresh_tokens(&self) -> Result<(), SimulatorError> {
        let mut seen = HashSet::new();
        for t in self.users.iter().flat_map(|u| &u.refresh_tokens) {
            if !seen.insert(t.token.0.clone()) {
                return Err(SimulatorError::World(
                    "a refresh token appears twice".into(),
                ));
            }
            if let Some(client) = &t.client_id
                && !self.applications.iter().any(|a| &a.client_id == client)
            {
                return Err(SimulatorError::World(format!(
                    "refresh token for unknown clientId {client}"
                )));
            }
            if let Some(at) = &t.expires_at
                && at.parse::<k8s_openapi::jiff::Timestamp>().is_err()
            {
                return Err(SimulatorError::World(format!(
                    "refresh token expiresAt {at:?} is not RFC 3339"
                )));
            }
        }
        Ok(())
    }
}

fn default_partner_name() -> String {
    "Partner".into()
}
fn default_relationship() -> String {
    "reseller".into()
}
fn default_offer_id() -> String {
    "DZH318Z0BPS6:0001".into()
}
fn default_offer_name() -> String {
    "Azure plan".into()
}
fn default_billing_type() -> String {
    "usage".into()
}
fn default_status() -> String {
    "active".into()
}
fn default_creation_date() -> String {
    "2025-01-01T00:00:00Z".into()
}
fn default_billing_cycle() -> String {
    "monthly".into()
}
fn default_principal_type() -> String {
    "User".into()
}
fn default_permissions() -> Vec<String> {
    vec!["AzureReservedInstances".into()]
}
fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
partner: {tenantId: 9a8b7c6d-0000-4000-8000-000000000001}
applications: [{clientId: 1f2e3d4c-0000-4000-8000-00000000c11e, clientSecret: s3cret}]
users:
  - {id: 0a0a0a0a-0000-4000-8000-000000000001, upn: a@p.example, roles: [AdminAgent],
     refreshTokens: [{token: rt-1}]}
customers:
  - tenantId: 1a2b3c4d-0000-4000-8000-000000000004
    companyName: Contoso Ltd
    subscriptions:
      - id: 5e6f7a8b-0000-4000-8000-000000000004
        azureEntitlements:
          - id: 2b3c4d5e-0000-4000-8000-000000000004
            roleAssignments:
              - {name: 4d5e6f7a-0000-4000-8000-000000000004, principalId: 3c4d5e6f-0000-4000-8000-000000000004, roleDefinition: Owner}
"#;

    #[test]
    fn a_short_world_takes_its_defaults() {
        let w = World::from_yaml(SMALL).unwrap();
        let s = &w.customers[0].subscriptions[0];
        assert_eq!(s.offer_id, "DZH318Z0BPS6:0001");
        assert_eq!(s.billing_type, "usage");
        assert_eq!(s.status, "active");
        assert!(w.users[0].mfa);
        assert_eq!(w.customers[0].domain(), "contosoltd.onmicrosoft.com");
        let a = &s.azure_entitlements[0].role_assignments[0];
        assert_eq!(a.principal_type, "User");
    }

    #[test]
    fn the_examples_world_loads() {
        let w = World::from_yaml(EXAMPLES_YAML).unwrap();
        assert_eq!(w.partner.tenant_id, "9a8b7c6d-0000-4000-8000-000000000001");
        assert_eq!(w.customers.len(), 4);
    }

    #[test]
    fn a_plan_and_its_azure_subscription_cannot_share_an_id() {
        let text = SMALL.replace(
            "5e6f7a8b-0000-4000-8000-000000000004",
            "2b3c4d5e-0000-4000-8000-000000000004",
        );
        assert!(World::from_yaml(&text).is_err());
    }

    #[test]
    fn unknown_roles_and_keys_are_refused() {
        assert!(
            World::from_yaml(&SMALL.replace("roleDefinition: Owner", "roleDefinition: Boss"))
                .is_err()
        );
        assert!(World::from_yaml(&SMALL.replace("companyName:", "company:")).is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let w = World::from_yaml(SMALL).unwrap();
        let printed = format!("{w:?}");
        assert!(!printed.contains("s3cret") && !printed.contains("rt-1"));
    }

    #[test]
    fn roles_by_name_or_guid() {
        assert_eq!(
            role_definition_guid("owner").as_deref(),
            Some("8e3af657-a8ff-443c-a75c-2fe8c4bcb635")
        );
        assert_eq!(
            role_definition_guid("B24988AC-6180-42A0-AB88-20F7382DD24C").as_deref(),
            Some("b24988ac-6180-42a0-ab88-20f7382dd24c")
        );
        assert!(!is_guid("not-a-guid"));
    }
}
