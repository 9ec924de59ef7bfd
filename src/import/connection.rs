//! `import --connection NAMESPACE/NAME`: the connection and its Secret from the cluster, the
//! import through them, and the rotated refresh token back into the Secret.

use super::{Import, import};
use crate::api::PartnerCenterConnection;
use crate::partnercenter::{ClientOptions, Credentials, Endpoints, PartnerCenter, SecretString};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// Imports the partner of `NAMESPACE/NAME`. The rotated refresh token is written back to the
/// Secret also when the import failed midway (the old one may no longer be the newest).
pub async fn from_connection(client: kube::Client, connection: &str) -> Result<Import, AnyError> {
    let Some((namespace, name)) = connection
        .split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
    else {
        return Err(format!("--connection must be NAMESPACE/NAME, not {connection:?}").into());
    };
    let connections: Api<PartnerCenterConnection> = Api::namespaced(client.clone(), namespace);
    let conn = connections
        .get_opt(name)
        .await?
        .ok_or_else(|| format!("PartnerCenterConnection {namespace}/{name} not found"))?;
    let secrets: Api<Secret> = Api::namespaced(client, namespace);
    let pc = client_of(&conn, &secrets).await?;
    let imported = import(&pc, namespace).await;
    let written_back = write_back(&pc, &secrets, &conn.spec.credentials_secret_ref.name).await;
    if let (Err(_), Err(e)) = (&imported, &written_back) {
        tracing::error!("{e}");
    }
    let imported = imported?;
    written_back?;
    Ok(imported)
}

/// The client of a connection, with the credentials its Secret holds (never printing them: an
/// error names only the missing or unreadable key).
async fn client_of(
    conn: &PartnerCenterConnection,
    secrets: &Api<Secret>,
) -> Result<PartnerCenter, AnyError> {
    let namespace = secrets.namespace().unwrap_or_default();
    let (name, secret_name) = (
        conn.metadata.name.as_deref().unwrap_or_default(),
        &conn.spec.credentials_secret_ref.name,
    );
    let secret = secrets.get_opt(secret_name).await?.ok_or_else(|| {
        format!("Secret {namespace}/{secret_name} (credentialsSecretRef of {name}) not found")
    })?;
    let key = |key: &str| -> Result<String, AnyError> {
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .filter(|b| !b.0.is_empty())
            .ok_or_else(|| format!("Secret {namespace}/{secret_name} has no key {key}"))?;
        let text = String::from_utf8(bytes.0.clone())
            .map_err(|_| format!("Secret {namespace}/{secret_name} key {key} is not UTF-8"))?;
        Ok(text.trim().to_string())
    };
    let credentials = Credentials {
        client_id: key("clientId")?,
        client_secret: SecretString::new(key("clientSecret")?),
        refresh_token: SecretString::new(key("refreshToken")?),
    };
    let e = &conn.spec.endpoints;
    let endpoints = Endpoints {
        partner_center: e.partner_center.clone(),
        login: e.login.clone(),
        resource_manager: e.resource_manager.clone(),
    };
    let options = ClientOptions {
        requests_per_minute: u32::try_from(conn.spec.requests_per_minute.clamp(1, 6000))
            .unwrap_or(300),
        ..ClientOptions::default()
    };
    Ok(PartnerCenter::new(
        &conn.spec.partner_tenant_id,
        endpoints,
        credentials,
        options,
    )?)
}

/// Partner Center rotates refresh tokens: the newest goes back into the Secret.
async fn write_back(
    pc: &PartnerCenter,
    secrets: &Api<Secret>,
    secret_name: &str,
) -> Result<(), String> {
    let Some((token, _)) = pc.take_rotated_refresh_token() else {
        return Ok(());
    };
    let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, token.expose());
    let patch = serde_json::json!({"data": {"refreshToken": data}});
    secrets
        .patch(secret_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| tracing::info!(secret = %secret_name, "wrote the rotated refresh token back"))
        .map_err(|e| {
            format!("cannot write the rotated refresh token back to Secret {secret_name}: {e}")
        })
}
