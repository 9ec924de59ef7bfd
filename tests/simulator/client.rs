//! A small HTTP client for the simulator tests: requests with headers, JSON answers, tokens.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const PARTNER: &str = "9a8b7c6d-0000-4000-8000-000000000001";
pub const APP: &str = "1f2e3d4c-0000-4000-8000-00000000c11e";
pub const SECRET: &str = "fake-client-secret-for-the-simulator-only";
pub const ADMIN_RT: &str = "fake-refresh-token-admin-0001";
pub const SALES_RT: &str = "fake-refresh-token-sales-0002";
pub const NOMFA_RT: &str = "fake-refresh-token-nomfa-0003";
pub const ADATUM: &str = "1a2b3c4d-0000-4000-8000-000000000001";
pub const NORTHWIND: &str = "1a2b3c4d-0000-4000-8000-000000000003";
pub const CONTOSO: &str = "1a2b3c4d-0000-4000-8000-000000000004";
pub const NORTHWIND_PLAN: &str = "5e6f7a8b-0000-4000-8000-000000000003";
pub const NORTHWIND_AZURE: &str = "2b3c4d5e-0000-4000-8000-000000000003";
pub const CONTOSO_AZURE: &str = "2b3c4d5e-0000-4000-8000-000000000004";
pub const PC: &str = "https://api.partnercenter.microsoft.com";
pub const ARM: &str = "https://management.azure.com";
pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";

pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    pub base: String,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Http {
    pub fn new(base: String) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base,
        }
    }

    /// `Err` when the connection ends without an answer (an injected timeout).
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Resp, String> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = Full::new(Bytes::from(body.unwrap_or_default().to_string()));
        let req = req.body(body).map_err(|e| e.to_string())?;
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        self.try_send(method, path, headers, body).await.unwrap()
    }

    /// A refresh-token grant at `tenant` for `resource`.
    pub async fn grant(&self, tenant: &str, refresh_token: &str, resource: &str) -> Resp {
        let form = format!(
            "grant_type=refresh_token&client_id={APP}&client_secret={SECRET}&refresh_token={refresh_token}&resource={}&scope=openid",
            resource.replace(':', "%3A").replace('/', "%2F")
        );
        self.send(
            "POST",
            &format!("/{tenant}/oauth2/token"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(&form),
        )
        .await
    }

    /// An access token (must be granted).
    pub async fn token(&self, tenant: &str, refresh_token: &str, resource: &str) -> String {
        let r = self.grant(tenant, refresh_token, resource).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    /// A Partner Center call with a bearer token.
    pub async fn pc(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {token}");
        let request_id = uuid::Uuid::new_v4().to_string();
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/json"),
            ("Content-Type", "application/json"),
            ("MS-RequestId", request_id.as_str()),
        ];
        let body = body.map(Value::to_string);
        self.send(method, path, &headers, body.as_deref()).await
    }
}

/// The claims of a JWT (no signature check).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A create body for a customer's policy.
pub fn policy_body(customer: &str) -> Value {
    serde_json::json!({
        "selfServeEntity": {"selfServeEntityType": "customer", "tenantID": customer},
        "grantor": {"grantorType": "billToPartner", "tenantID": PARTNER},
        "permissions": [{"resource": "AzureReservedInstances", "action": "Purchase"}],
    })
}
