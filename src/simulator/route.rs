//! Which endpoint a path names (matched case-insensitively, as the real services do), and its
//! route template for the request counters.

/// The simulated endpoints; ids are kept as the client spelled them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/{tenant}/oauth2/token`
    Token {
        tenant: String,
    },
    /// `/v1/customers`
    Customers,
    /// `/v1/customers/{customerId}`
    Customer {
        customer: String,
    },
    /// `/v1/customers/{customerId}/subscriptions`
    Subscriptions {
        customer: String,
    },
    /// `/v1/customers/{customerId}/subscriptions/{subscriptionId}`
    Subscription {
        customer: String,
        subscription: String,
    },
    /// `/v1/customers/{customerId}/subscriptions/{subscriptionId}/azureEntitlements`
    AzureEntitlements {
        customer: String,
        subscription: String,
    },
    /// `/v1/SelfServePolicy`
    SelfServePolicies,
    /// `/v1/SelfServePolicy/{id}`
    SelfServePolicy {
        id: String,
    },
    /// `/v1/auditrecords`
    AuditRecords,
    /// `/subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments`
    RoleAssignments {
        subscription: String,
    },
    /// `/subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments/{name}`
    RoleAssignment {
        subscription: String,
        name: String,
    },
    /// Any other path under `/subscriptions/` (ARM answers those with ARM errors).
    OtherArm,
    /// Any other path under `/v1/` (Partner Center answers those).
    OtherPartnerCenter,
    NotFound,
}

/// The service a route belongs to (it decides the error body's shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Login,
    PartnerCenter,
    Arm,
    Unknown,
}

impl Route {
    pub fn parse(path: &str) -> Route {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let words: Vec<&str> = lower.iter().map(String::as_str).collect();
        let seg = |i: usize| segments[i].to_string();
        match words.as_slice() {
            [_, "oauth2", "token"] => Route::Token { tenant: seg(0) },
            ["v1", "customers"] => Route::Customers,
            ["v1", "customers", _] => Route::Customer { customer: seg(2) },
            ["v1", "customers", _, "subscriptions"] => Route::Subscriptions { customer: seg(2) },
            ["v1", "customers", _, "subscriptions", _] => Route::Subscription {
                customer: seg(2),
                subscription: seg(4),
            },
            [
                "v1",
                "customers",
                _,
                "subscriptions",
                _,
                "azureentitlements",
            ] => Route::AzureEntitlements {
                customer: seg(2),
                subscription: seg(4),
            },
            ["v1", "selfservepolicy"] => Route::SelfServePolicies,
            ["v1", "selfservepolicy", _] => Route::SelfServePolicy { id: seg(2) },
            ["v1", "auditrecords"] => Route::AuditRecords,
            ["v1", ..] => Route::OtherPartnerCenter,
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.authorization",
                "roleassignments",
            ] => Route::RoleAssignments {
                subscription: seg(1),
            },
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.authorization",
                "roleassignments",
                _,
            ] => Route::RoleAssignment {
                subscription: seg(1),
                name: seg(5),
            },
            ["subscriptions", ..] => Route::OtherArm,
            _ => Route::NotFound,
        }
    }

    /// The route with its ids as placeholders, for counters.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Token { .. } => "/{tenantId}/oauth2/token",
            Route::Customers => "/v1/customers",
            Route::Customer { .. } => "/v1/customers/{customerId}",
            Route::Subscriptions { .. } => "/v1/customers/{customerId}/subscriptions",
            Route::Subscription { .. } => {
                "/v1/customers/{customerId}/subscriptions/{subscriptionId}"
            }
            Route::AzureEntitlements { .. } => {
                "/v1/customers/{customerId}/subscriptions/{subscriptionId}/azureEntitlements"
            }
            Route::SelfServePolicies => "/v1/SelfServePolicy",
            Route::SelfServePolicy { .. } => "/v1/SelfServePolicy/{id}",
            Route::AuditRecords => "/v1/auditrecords",
            Route::RoleAssignments { .. } => {
                "/subscriptions/{subscriptionId}/providers/Microsoft.Authorization/roleAssignments"
            }
            Route::RoleAssignment { .. } => {
                "/subscriptions/{subscriptionId}/providers/Microsoft.Authorization/roleAssignments/{roleAssignmentName}"
            }
            Route::OtherArm => "/subscriptions/(other)",
            Route::OtherPartnerCenter => "/v1/(other)",
            Route::NotFound => "(unknown)",
        }
    }

    pub fn service(&self) -> Service {
        match self {
            Route::Token { .. } => Service::Login,
            Route::RoleAssignments { .. } | Route::RoleAssignment { .. } | Route::OtherArm => {
                Service::Arm
            }
            Route::NotFound => Service::Unknown,
            _ => Service::PartnerCenter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_endpoint_case_insensitively() {
        assert_eq!(
            Route::parse("/9a8b/oauth2/token"),
            Route::Token {
                tenant: "9a8b".into()
            }
        );
        assert_eq!(
            Route::parse("/v1/selfservepolicy/A_B"),
            Route::SelfServePolicy { id: "A_B".into() }
        );
        assert_eq!(
            Route::parse("/v1/customers/c/subscriptions/s/AzureEntitlements"),
            Route::AzureEntitlements {
                customer: "c".into(),
                subscription: "s".into()
            }
        );
        assert_eq!(
            Route::parse("/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/n"),
            Route::RoleAssignment {
                subscription: "s".into(),
                name: "n".into()
            }
        );
        assert_eq!(
            Route::parse("/subscriptions/s/resourceGroups"),
            Route::OtherArm
        );
        assert_eq!(Route::parse("/v1/orders"), Route::OtherPartnerCenter);
        assert_eq!(Route::parse("/"), Route::NotFound);
    }

    #[test]
    fn templates_hide_the_ids() {
        assert_eq!(
            Route::parse("/v1/SelfServePolicy/x_y").template(),
            "/v1/SelfServePolicy/{id}"
        );
        assert_eq!(
            Route::parse("/v1/customers").service(),
            Service::PartnerCenter
        );
        assert_eq!(Route::parse("/t/oauth2/token").service(), Service::Login);
    }
}
