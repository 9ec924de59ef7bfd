//! Azure Resource Manager role assignments on a customer's subscription, called as the customer's tenant.

use hyper::Method;

use super::PartnerCenter;
use super::budget::{ArmOperation, BudgetKey};
use super::error::{PartnerCenterError, Service, classify};
use super::model::{NewRoleAssignment, RoleAssignment};
use super::tokens::{Audience, encode};
use super::transport::Request;

/// The Owner built-in role definition GUID.
pub const OWNER_ROLE: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const API_VERSION: &str = "api-version=2022-04-01";
const ARM: Service = Service::ResourceManager;

/// The trailing GUID of a role definition id (`/subscriptions/{s}/providers/.../roleDefinitions/{guid}`,
/// `/providers/.../roleDefinitions/{guid}` or the bare GUID).
pub fn role_definition_guid(role_definition_id: &str) -> &str {
    let trimmed = role_definition_id.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Whether two role definition ids name the same role (trailing GUIDs, case-insensitive).
pub fn same_role(a: &str, b: &str) -> bool {
    role_definition_guid(a).eq_ignore_ascii_case(role_definition_guid(b))
}

/// The deterministic name of an assignment: a UUID v5 over scope, principal and role GUID
/// (lower-cased), so creating it twice lands on the same name instead of a 409 RoleAssignmentExists.
pub fn role_assignment_name(scope: &str, principal_id: &str, role_definition_guid: &str) -> String {
    let key = format!(
        "{}|{}|{}",
        scope.trim_end_matches('/').to_ascii_lowercase(),
        principal_id.to_ascii_lowercase(),
        role_definition_guid.to_ascii_lowercase()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
}

/// The PUT body: `{"properties": {...}}`.
#[derive(serde::Serialize)]
struct PutBody<'a> {
    properties: &'a NewRoleAssignment,
}

impl PartnerCenter {
    fn role_assignments_url(&self, azure_subscription_id: &str, name: Option<&str>) -> String {
        let base = &self.inner.endpoints.resource_manager;
        let subscription = encode(azure_subscription_id);
        let collection = format!(
            "{base}/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments"
        );
        match name {
            Some(name) => format!("{collection}/{}?{API_VERSION}", encode(name)),
            None => format!("{collection}?{API_VERSION}&$filter=atScope()"),
        }
    }

    fn arm_request(&self, method: Method, url: String, azure_subscription_id: &str) -> Request {
        let operation = match method {
            Method::GET | Method::HEAD => ArmOperation::Read,
            Method::DELETE => ArmOperation::Delete,
            _ => ArmOperation::Write,
        };
        let budget = BudgetKey::Subscription(azure_subscription_id.to_string(), operation);
        Request::new(ARM, budget, method, url)
    }

    /// The role assignments at (or above) the subscription's scope: `$filter=atScope()`, every page.
    pub async fn role_assignments_at(
        &self,
        customer_tenant_id: &str,
        azure_subscription_id: &str,
    ) -> Result<Vec<RoleAssignment>, PartnerCenterError> {
        let url = self.role_assignments_url(azure_subscription_id, None);
        let request = self.arm_request(Method::GET, url, azure_subscription_id);
        self.resource_manager_pages(request, customer_tenant_id)
            .await
    }

    /// Creates (or confirms) the assignment `name` at the subscription's scope.
    /// `Err(AlreadyExists)` when the same one exists under another name (409 RoleAssignmentExists).
    pub async fn put_role_assignment(
        &self,
        customer_tenant_id: &str,
        azure_subscription_id: &str,
        name: &str,
        assignment: &NewRoleAssignment,
    ) -> Result<RoleAssignment, PartnerCenterError> {
        let url = self.role_assignments_url(azure_subscription_id, Some(name));
        let request = self
            .arm_request(Method::PUT, url, azure_subscription_id)
            .json(&PutBody {
                properties: assignment,
            });
        let audience = Audience::CustomerResourceManager(customer_tenant_id.to_string());
        let response = self.call(&request, &audience).await?;
        if response.is_success() {
            return response.json(ARM);
        }
        Err(classify(ARM, response.status, &response.body))
    }

    /// Deletes the assignment `name`; one already gone (204, 404) is fine.
    pub async fn delete_role_assignment(
        &self,
        customer_tenant_id: &str,
        azure_subscription_id: &str,
        name: &str,
    ) -> Result<(), PartnerCenterError> {
        let url = self.role_assignments_url(azure_subscription_id, Some(name));
        let request = self.arm_request(Method::DELETE, url, azure_subscription_id);
        let audience = Audience::CustomerResourceManager(customer_tenant_id.to_string());
        let response = self.call(&request, &audience).await?;
        match response.status {
            404 => Ok(()),
            _ if response.is_success() => Ok(()),
            status => Err(classify(ARM, status, &response.body)),
        }
    }
}
