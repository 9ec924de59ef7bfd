//! Customers, their subscriptions, Azure plan entitlements and the activity log (audit records).

use hyper::Method;

use super::PartnerCenter;
use super::error::{PartnerCenterError, Service, classify};
use super::model::{AuditQuery, AuditRecord, AzureEntitlement, Customer, Subscription};
use super::tokens::{Audience, encode};

/// Audit records per page.
const AUDIT_PAGE_SIZE: u32 = 500;

/// Customers per page.
const CUSTOMER_PAGE_SIZE: u32 = 100;

impl PartnerCenter {
    /// `GET /v1/customers`, every page.
    pub async fn customers(&self) -> Result<Vec<Customer>, PartnerCenterError> {
        let path = format!("/v1/customers?size={CUSTOMER_PAGE_SIZE}");
        self.partner_center_pages(self.partner_center_request(Method::GET, &path))
            .await
    }

    /// `GET /v1/customers/{id}`; None when the tenant is not the partner's customer (404).
    pub async fn customer(
        &self,
        customer_tenant_id: &str,
    ) -> Result<Option<Customer>, PartnerCenterError> {
        let path = format!("/v1/customers/{}", encode(customer_tenant_id));
        let request = self.partner_center_request(Method::GET, &path);
        let response = self.call(&request, &Audience::PartnerCenter).await?;
        match response.status {
            404 => Ok(None),
            _ if response.is_success() => response.json(Service::PartnerCenter).map(Some),
            status => Err(classify(Service::PartnerCenter, status, &response.body)),
        }
    }

    /// `GET /v1/customers/{id}/subscriptions`.
    pub async fn subscriptions(
        &self,
        customer_tenant_id: &str,
    ) -> Result<Vec<Subscription>, PartnerCenterError> {
        let path = format!("/v1/customers/{}/subscriptions", encode(customer_tenant_id));
        self.partner_center_pages(self.partner_center_request(Method::GET, &path))
            .await
    }

    /// Changes a subscription: `PATCH /v1/customers/{c}/subscriptions/{id}` with the full
    /// Subscription body (e.g. `status` set to `suspended` or back to `active`).
    pub async fn update_subscription(
        &self,
        customer_tenant_id: &str,
        subscription: &Subscription,
    ) -> Result<Subscription, PartnerCenterError> {
        let path = format!(
            "/v1/customers/{}/subscriptions/{}",
            encode(customer_tenant_id),
            encode(&subscription.id)
        );
        let request = self
            .partner_center_request(Method::PATCH, &path)
            .json(subscription);
        let response = self.call(&request, &Audience::PartnerCenter).await?;
        if response.is_success() {
            return response.json(Service::PartnerCenter);
        }
        Err(classify(
            Service::PartnerCenter,
            response.status,
            &response.body,
        ))
    }

    /// The Azure subscriptions of an Azure plan: `GET .../subscriptions/{id}/azureEntitlements`.
    pub async fn azure_entitlements(
        &self,
        customer_tenant_id: &str,
        subscription_id: &str,
    ) -> Result<Vec<AzureEntitlement>, PartnerCenterError> {
        let path = format!(
            "/v1/customers/{}/subscriptions/{}/azureEntitlements",
            encode(customer_tenant_id),
            encode(subscription_id)
        );
        self.partner_center_pages(self.partner_center_request(Method::GET, &path))
            .await
    }

    /// The activity log: `GET /v1/auditrecords`, every page. Partner Center takes one filter: the
    /// resource type when given, else the customer; a customer id is also checked here.
    pub async fn audit_records(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, PartnerCenterError> {
        let request = self.partner_center_request(Method::GET, &audit_path(query));
        let records: Vec<AuditRecord> = self.partner_center_pages(request).await?;
        Ok(match &query.customer_id {
            Some(customer) => records
                .into_iter()
                .filter(|r| {
                    r.customer_id
                        .as_deref()
                        .is_some_and(|c| c.eq_ignore_ascii_case(customer))
                })
                .collect(),
            None => records,
        })
    }
}

pub(super) fn audit_path(query: &AuditQuery) -> String {
    // `size` is documented as optional with no maximum named; 500 a page keeps a busy day's
    // thousands of records to a few calls every auditInterval.
    let mut path = format!(
        "/v1/auditrecords?startDate={}&size={AUDIT_PAGE_SIZE}",
        encode(&query.start_date)
    );
    if let Some(end) = &query.end_date {
        path.push_str(&format!("&endDate={}", encode(end)));
    }
    let filter = match (&query.resource_type, &query.customer_id) {
        (Some(resource_type), _) => Some(("ResourceType", resource_type)),
        (None, Some(customer)) => Some(("CustomerId", customer)),
        (None, None) => None,
    };
    if let Some((field, value)) = filter {
        let json = serde_json::json!({"Field": field, "Value": value, "Operator": "equals"});
        path.push_str(&format!("&filter={}", encode(&json.to_string())));
    }
    path
}
