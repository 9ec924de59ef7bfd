//! From a PartnerCenterConnection and its Secret to a client: shared by the connection
//! reconciler and `import`.

use crate::api::PartnerCenterConnection;
use crate::partnercenter::{
    ClientOptions, Credentials, Endpoints, PartnerCenter, PartnerCenterError, SecretString,
};
use k8s_openapi::api::core::v1::Secret;

/// The credentials a connection's Secret holds (keys `clientId`, `clientSecret`,
/// `refreshToken`), or which key is missing or unreadable (never a value).
pub fn credentials_from_secret(secret: &Secret) -> Result<Credentials, String> {
    let name = secret.metadata.name.as_deref().unwrap_or_default();
    let key = |k: &str| {
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .ok_or_else(|| format!("Secret {name:?} has no key {k}"))?;
        let text = String::from_utf8(bytes.0.clone())
            .map_err(|_| format!("Secret {name:?} key {k} is not UTF-8"))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("Secret {name:?} key {k} is empty"));
        }
        Ok(text.to_string())
    };
    Ok(Credentials {
        client_id: key("clientId")?,
        client_secret: SecretString::new(key("clientSecret")?),
        refresh_token: SecretString::new(key("refreshToken")?),
    })
}

/// The client a connection describes (its endpoints and budget), with these credentials.
pub fn connection_client(
    conn: &PartnerCenterConnection,
    credentials: Credentials,
    correlation_id: Option<String>,
) -> Result<PartnerCenter, PartnerCenterError> {
    let e = &conn.spec.endpoints;
    let endpoints = Endpoints {
        partner_center: e.partner_center.clone(),
        login: e.login.clone(),
        resource_manager: e.resource_manager.clone(),
    };
    let options = ClientOptions {
        requests_per_minute: u32::try_from(conn.spec.requests_per_minute.clamp(1, 6000))
            .unwrap_or(300),
        correlation_id,
        ..ClientOptions::default()
    };
    PartnerCenter::new(
        &conn.spec.partner_tenant_id,
        endpoints,
        credentials,
        options,
    )
}
