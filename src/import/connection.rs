//! `import --connection NAMESPACE/NAME`: the connection and its Secret from the cluster, the
//! import through them, and the rotated refresh token back into the Secret.

use super::{Import, import};
use crate::api::PartnerCenterConnection;
use crate::backend::{connection_client, credentials_from_secret};
use crate::partnercenter::PartnerCenter;
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
    let credentials = credentials_from_secret(&secret)?;
    Ok(connection_client(conn, credentials, None)?)
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
