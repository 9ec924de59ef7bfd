//! SelfServePolicy calls: the "Allow customer to purchase" switch (create, list, get, update, delete).

use hyper::Method;

use super::PartnerCenter;
use super::error::{PartnerCenterError, Service, classify, parse_service_error};
use super::model::SelfServePolicy;
use super::tokens::{Audience, encode};
use super::transport::Response;

const PC: Service = Service::PartnerCenter;

impl PartnerCenter {
    /// `POST /v1/SelfServePolicy`; `Err(AlreadyExists)` when the customer already has one (409 600041).
    pub async fn create_self_serve_policy(
        &self,
        policy: &SelfServePolicy,
    ) -> Result<SelfServePolicy, PartnerCenterError> {
        let request = self
            .partner_center_request(Method::POST, "/v1/SelfServePolicy")
            .json(policy);
        let response = self.call(&request, &Audience::PartnerCenter).await?;
        if response.is_success() {
            return response.json(PC);
        }
        let error = parse_service_error(&response.body);
        if response.status == 409 {
            return Err(PartnerCenterError::AlreadyExists {
                service: PC,
                code: error.code,
                description: error.description,
            });
        }
        Err(classify(PC, response.status, &response.body))
    }

    /// `GET /v1/SelfServePolicy?entity_id={customerTenantId}`, every page.
    pub async fn self_serve_policies(
        &self,
        customer_tenant_id: &str,
    ) -> Result<Vec<SelfServePolicy>, PartnerCenterError> {
        let path = format!(
            "/v1/SelfServePolicy?entity_id={}",
            encode(customer_tenant_id)
        );
        self.partner_center_pages(self.partner_center_request(Method::GET, &path))
            .await
    }

    /// `GET /v1/SelfServePolicy/{id}`; None when there is none (404).
    pub async fn self_serve_policy(
        &self,
        id: &str,
    ) -> Result<Option<SelfServePolicy>, PartnerCenterError> {
        let path = format!("/v1/SelfServePolicy/{}", encode(id));
        let request = self.partner_center_request(Method::GET, &path);
        let response = self.call(&request, &Audience::PartnerCenter).await?;
        match response.status {
            404 => Ok(None),
            _ if response.is_success() => response.json(PC).map(Some),
            status => Err(classify(PC, status, &response.body)),
        }
    }

    /// `PUT /v1/SelfServePolicy/{id}` with the full body and its current etag; returns the new etag.
    /// `Err(Conflict)` when the etag is stale (400, 409 or 412: the docs leave the code open).
    pub async fn update_self_serve_policy(
        &self,
        policy: &SelfServePolicy,
    ) -> Result<SelfServePolicy, PartnerCenterError> {
        let path = format!("/v1/SelfServePolicy/{}", encode(&policy.id));
        let request = self.partner_center_request(Method::PUT, &path).json(policy);
        let response = self.call(&request, &Audience::PartnerCenter).await?;
        if response.is_success() {
            return response.json(PC);
        }
        Err(update_error(&response))
    }

    /// `DELETE /v1/SelfServePolicy/{id}`; a policy already gone (404) is fine.
    pub async fn delete_self_serve_policy(&self, id: &str) -> Result<(), PartnerCenterError> {
        let path = format!("/v1/SelfServePolicy/{}", encode(id));
        let request = self.partner_center_request(Method::DELETE, &path);
        let response = self.call(&request, &Audience::PartnerCenter).await?;
        match response.status {
            404 => Ok(()),
            _ if response.is_success() => Ok(()),
            status => Err(classify(PC, status, &response.body)),
        }
    }
}

fn update_error(response: &Response) -> PartnerCenterError {
    match response.status {
        status @ (400 | 409 | 412) => {
            let error = parse_service_error(&response.body);
            PartnerCenterError::Conflict {
                service: PC,
                status,
                code: error.code,
                description: error.description,
            }
        }
        status => classify(PC, status, &response.body),
    }
}
