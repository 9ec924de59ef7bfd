//! The PartnerCenterConnection reconciler (Partner Center backend only): read the Secret, sign
//! in, write the rotated refresh token back, read the activity log for changes made elsewhere,
//! and publish the namespace's link for the backend. Grants waiting for it go on once it is Ready.

use super::context::Context;
use super::{Error, MANAGER, metrics, now};
use crate::api::conditions::reasons;
use crate::api::{
    AzureSubscription, CONNECTION_FINALIZER, FINALIZER, HELD_SECRET_ANNOTATION,
    PartnerCenterConnection, PurchasePermission,
};
use crate::backend::{
    Connections, KnownCredentials, Link, Readiness, connection_client, credentials_from_secret,
};
use crate::partnercenter::{AuditQuery, Credentials, PartnerCenter, PartnerCenterError};
use crate::policy::{self, ConnectionFacts};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A connection that is not Ready is checked again this often.
const RETRY_NOT_READY: Duration = Duration::from_secs(30);
/// How often a connection being deleted looks again for grants still to withdraw.
const WITHDRAWALS_RECHECK: Duration = Duration::from_secs(2);

/// What the connection reconciler shares.
pub struct ConnectionContext {
    pub ctx: Arc<Context>,
    pub connections: Connections,
    /// Sends a permission to its controller (grants waiting for the connection, drift checks).
    pub wake: Arc<dyn Fn(Arc<PurchasePermission>) + Send + Sync>,
    /// Sends a subscription to its controller (Partner Center changed it: observe it again).
    pub wake_subscription: Arc<dyn Fn(Arc<AzureSubscription>) + Send + Sync>,
    /// Sends every object of a namespace to its controller (its connection changed: grants wait
    /// for it, observations come through it).
    pub wake_namespace: Arc<dyn Fn(&str) + Send + Sync>,
}

/// Runs the connection controller until `stop`.
pub async fn run(cc: Arc<ConnectionContext>, stop: super::run::Shutdown) {
    let api: Api<PartnerCenterConnection> = Api::all(cc.ctx.client.clone());
    let connections = cc.connections.clone();
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect(move |ev| declare(&connections, ev))
        .touched_objects();
    let (recheck, rechecks) = futures::channel::mpsc::unbounded();
    cc.connections.on_recheck(recheck);
    Controller::for_stream(stream, reader)
        .reconcile_on(rechecks)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, cc)
        .for_each(|_| std::future::ready(()))
        .await;
}

/// Keeps the registry's view of which namespaces have a connection (checked or not).
fn declare(
    connections: &Connections,
    ev: &Result<watcher::Event<PartnerCenterConnection>, watcher::Error>,
) {
    match ev {
        Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => {
            connections.declared(&c.namespace().unwrap_or_default(), Some(&c.name_any()));
        }
        Ok(watcher::Event::Delete(c)) => {
            connections.declared(&c.namespace().unwrap_or_default(), None);
        }
        Ok(watcher::Event::InitDone) => connections.listed(),
        _ => {}
    }
}

/// A failed reconcile is retried as the other controllers' are (0.5 s doubling, a Warning Event
/// on the connection once per run of failures): grants and withdrawals wait for it.
fn error_policy(
    conn: Arc<PartnerCenterConnection>,
    e: &Error,
    cc: Arc<ConnectionContext>,
) -> Action {
    super::backoff::error_policy(conn, e, cc.ctx.clone())
}

async fn reconcile(
    conn: Arc<PartnerCenterConnection>,
    cc: Arc<ConnectionContext>,
) -> Result<Action, Error> {
    let action = check(conn.clone(), cc.clone()).await?;
    cc.ctx.backoff.succeeded(conn.as_ref());
    Ok(action)
}

/// Sign in -> write back the rotated token -> read the activity log -> status -> link.
async fn check(
    conn: Arc<PartnerCenterConnection>,
    cc: Arc<ConnectionContext>,
) -> Result<Action, Error> {
    let ns = conn.namespace().ok_or(Error::NoNamespace)?;
    if conn.metadata.deletion_timestamp.is_some() {
        return hold_until_grants_withdrawn(&cc, &ns, &conn).await;
    }
    if !conn.finalizers().iter().any(|f| f == CONNECTION_FINALIZER) {
        patch_finalizer(&connections_api(&cc.ctx, &ns), &conn.metadata, true).await?;
    }
    let secret = read_secret(&cc.ctx, &conn).await?;
    if let Some(secret) = &secret {
        hold_credentials(&cc.ctx, &conn, secret).await?;
    }
    let previous = cc.connections.link(&ns);
    let mut facts = ConnectionFacts {
        generation: conn.metadata.generation,
        current: conn.status.as_ref(),
        ..Default::default()
    };
    let signed_in = sign_in(&cc, &conn, secret, previous.as_ref(), &mut facts).await?;
    let (client, mut known) = signed_in;
    // A refusal of these very credentials by an earlier call stands until they change.
    let refusal = previous
        .as_ref()
        .filter(|l| client.is_some() && l.credentials == known)
        .and_then(|l| l.refusal.clone());
    if facts.problem.is_none() {
        facts.problem = refusal.clone();
    }
    if let Some(client) = &client {
        if let Some(written) = write_back_refresh_token(&cc.ctx, &conn, client, &mut facts).await {
            known.tokens.push(written);
        }
        if facts.problem.is_none() {
            facts.last_audit_sync = read_activity_log(&cc, &ns, &conn, client).await;
        }
        facts.throttled_until = client
            .throttled_until()
            .filter(|t| *t > SystemTime::now())
            .map(timestamp);
        if let (None, Some(until)) = (&facts.problem, facts.throttled_until) {
            facts.problem = Some((
                reasons::THROTTLED,
                format!(
                    "Partner Center answered 429: calls through this connection wait until {until}"
                ),
            ));
        }
    }
    let status = policy::connection_status(&facts, now());
    if conn.status.as_ref() != Some(&status) {
        cc.ctx
            .write_status(
                metrics::Kind::partnercenterconnection,
                conn.as_ref(),
                &status,
            )
            .await?;
    }
    publish(&cc, &ns, &conn, client, known, refusal, &facts);
    Ok(Action::requeue(
        match (&facts.problem, facts.throttled_until) {
            (None, _) => conn.spec.audit(),
            (Some(_), Some(until)) => until
                .duration_since(now())
                .try_into()
                .unwrap_or(RETRY_NOT_READY),
            (Some(_), None) => RETRY_NOT_READY,
        },
    ))
}

/// A connection being deleted (its namespace, most often, with the Secret beside it) keeps its
/// signed-in client, untouched, while a PurchasePermission of the namespace still holds its
/// finalizer (it may have a grant to withdraw through this connection); after a restart it
/// signs in again from the Secret it holds. Then it lets the Secret go, and itself.
async fn hold_until_grants_withdrawn(
    cc: &ConnectionContext,
    ns: &str,
    conn: &PartnerCenterConnection,
) -> Result<Action, Error> {
    let pending = cc
        .ctx
        .caches
        .permissions
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns))
        .filter(|p| p.finalizers().iter().any(|f| f == FINALIZER))
        .count();
    cc.connections.deleting(ns);
    if pending > 0 {
        tracing::info!(
            namespace = ns,
            pending,
            "connection deletion waits for the grants to be withdrawn"
        );
        if cc.connections.link(ns).is_none_or(|l| l.client.is_none()) {
            sign_in_again(cc, ns, conn).await?;
        }
        return Ok(Action::requeue(WITHDRAWALS_RECHECK));
    }
    let named = &conn.spec.credentials_secret_ref.name;
    let held = conn.annotations().get(HELD_SECRET_ANNOTATION);
    for secret in held.filter(|h| *h != named).into_iter().chain([named]) {
        release_secret(&cc.ctx, ns, secret).await?;
    }
    if conn.finalizers().iter().any(|f| f == CONNECTION_FINALIZER) {
        patch_finalizer(&connections_api(&cc.ctx, ns), &conn.metadata, false).await?;
    }
    Ok(Action::await_change())
}

/// A connection being deleted that this process never signed in with (it started since): signed
/// in from its Secret and published, so the grants of its namespace can be withdrawn.
async fn sign_in_again(
    cc: &ConnectionContext,
    ns: &str,
    conn: &PartnerCenterConnection,
) -> Result<(), Error> {
    let mut facts = ConnectionFacts {
        generation: conn.metadata.generation,
        current: conn.status.as_ref(),
        ..Default::default()
    };
    let secret = read_secret(&cc.ctx, conn).await?;
    let (client, known) = sign_in(cc, conn, secret, None, &mut facts).await?;
    publish(cc, ns, conn, client, known, None, &facts);
    Ok(())
}

/// The connection's credentials Secret carries the connection's finalizer while the connection
/// names it (as a PersistentVolumeClaim in use is protected): deleting the namespace, or the
/// Secret, leaves it readable until the grants made with it are withdrawn. A Secret the
/// connection named before (its annotation says which) is let go.
async fn hold_credentials(
    ctx: &Context,
    conn: &PartnerCenterConnection,
    secret: &Secret,
) -> Result<(), Error> {
    let ns = conn.namespace().unwrap_or_default();
    if !secret
        .finalizers()
        .iter()
        .any(|f| f == CONNECTION_FINALIZER)
    {
        patch_finalizer(&secrets_api(ctx, &ns), &secret.metadata, true).await?;
    }
    let named = &conn.spec.credentials_secret_ref.name;
    let held = conn.annotations().get(HELD_SECRET_ANNOTATION);
    if held == Some(named) {
        return Ok(());
    }
    if let Some(before) = held {
        release_secret(ctx, &ns, before).await?;
    }
    let note = serde_json::json!({"metadata": {"annotations": {HELD_SECRET_ANNOTATION: named}}});
    connections_api(ctx, &ns)
        .patch(
            &conn.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&note),
        )
        .await?;
    Ok(())
}

/// Takes the connection's finalizer off a Secret (gone already: nothing to do).
async fn release_secret(ctx: &Context, ns: &str, name: &str) -> Result<(), Error> {
    let api = secrets_api(ctx, ns);
    match api.get_opt(name).await? {
        Some(s) if s.finalizers().iter().any(|f| f == CONNECTION_FINALIZER) => {
            patch_finalizer(&api, &s.metadata, false).await
        }
        _ => Ok(()),
    }
}

fn connections_api(ctx: &Context, ns: &str) -> Api<PartnerCenterConnection> {
    Api::namespaced(ctx.client.clone(), ns)
}

fn secrets_api(ctx: &Context, ns: &str) -> Api<Secret> {
    Api::namespaced(ctx.client.clone(), ns)
}

/// Adds (or removes) the connection finalizer with a JSON patch that tests the list it read.
async fn patch_finalizer<K>(api: &Api<K>, meta: &ObjectMeta, add: bool) -> Result<(), Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let current = meta.finalizers.clone().unwrap_or_default();
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| *f != CONNECTION_FINALIZER)
        .cloned()
        .collect();
    if add {
        wanted.push(CONNECTION_FINALIZER.to_string());
    }
    let patch = if meta.finalizers.is_none() {
        serde_json::json!([{"op": "add", "path": "/metadata/finalizers", "value": wanted}])
    } else {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "replace", "path": "/metadata/finalizers", "value": wanted},
        ])
    };
    let patch: json_patch::Patch =
        serde_json::from_value(patch).map_err(|e| Error::Finalizer(e.to_string()))?;
    let name = meta.name.as_deref().unwrap_or_default();
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    Ok(())
}

/// Signs in with the Secret's credentials (reusing the client built from the same ones); who
/// signed in, or why not, goes into `facts`.
async fn sign_in(
    cc: &ConnectionContext,
    conn: &PartnerCenterConnection,
    secret: Option<Secret>,
    previous: Option<&Link>,
    facts: &mut ConnectionFacts<'_>,
) -> Result<(Option<PartnerCenter>, KnownCredentials), Error> {
    let ns = conn.namespace().unwrap_or_default();
    let name = &conn.spec.credentials_secret_ref.name;
    let credentials = match secret.as_ref().map(credentials_from_secret) {
        Some(Ok(c)) => c,
        Some(Err(why)) => {
            facts.problem = Some((reasons::CREDENTIALS_MISSING, why));
            return Ok((None, KnownCredentials::default()));
        }
        None => {
            let why = format!("Secret {name:?} does not exist in namespace {ns:?}");
            facts.problem = Some((reasons::CREDENTIALS_MISSING, why));
            return Ok((None, KnownCredentials::default()));
        }
    };
    let known = known_credentials(conn, &credentials, previous);
    let correlation_id = cc.connections.correlation_id(&ns);
    let client = client_for(conn, credentials, previous, &known, correlation_id)?;
    match client.sign_in().await {
        Ok(signed_in) => {
            facts.signed_in_as = signed_in.user;
            facts.refresh_token_expires_at = Some(timestamp(signed_in.refresh_token_expires_at));
        }
        Err(e) => facts.problem = Some(sign_in_problem(&e)),
    }
    Ok((Some(client), known))
}

/// The connection's credentials Secret (`None`: it does not exist).
async fn read_secret(
    ctx: &Context,
    conn: &PartnerCenterConnection,
) -> Result<Option<Secret>, Error> {
    let ns = conn.namespace().unwrap_or_default();
    let name = &conn.spec.credentials_secret_ref.name;
    Ok(secrets_api(ctx, &ns).get_opt(name).await?)
}

/// Which credentials a client is built from, carrying over the refresh tokens the previous link
/// knew as its own when the connection and app are the same.
fn known_credentials(
    conn: &PartnerCenterConnection,
    c: &Credentials,
    previous: Option<&Link>,
) -> KnownCredentials {
    let identity = hash(&(
        conn.uid(),
        conn.metadata.generation,
        &c.client_id,
        c.client_secret.expose(),
    ));
    let token = hash(&c.refresh_token.expose());
    let mut tokens = previous
        .filter(|l| l.credentials.identity == identity)
        .map(|l| l.credentials.tokens.clone())
        .unwrap_or_default();
    if !tokens.contains(&token) {
        tokens.push(token);
    }
    // The newest eight (a rotation adds one each time).
    let excess = tokens.len().saturating_sub(8);
    tokens.drain(..excess);
    KnownCredentials { identity, tokens }
}

/// The client for these credentials: the one already built when the connection, the app and the
/// refresh token are still its own (its tokens and budgets carry on), a new one otherwise (a
/// partner who signs in again and replaces the Secret's refresh token).
fn client_for(
    conn: &PartnerCenterConnection,
    credentials: Credentials,
    previous: Option<&Link>,
    known: &KnownCredentials,
    correlation_id: String,
) -> Result<PartnerCenter, Error> {
    let token = hash(&credentials.refresh_token.expose());
    if let Some(Link {
        client: Some(client),
        credentials: before,
        ..
    }) = previous
        && before.identity == known.identity
        && before.tokens.contains(&token)
    {
        return Ok(client.clone());
    }
    connection_client(conn, credentials, Some(correlation_id))
        .map_err(|e| Error::Connection(e.to_string()))
}

/// A hash that tells credentials apart in memory (never shown).
fn hash(value: &impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Why signing in failed, as the connection's Ready=False reason and message.
fn sign_in_problem(error: &PartnerCenterError) -> (&'static str, String) {
    let reason = match error {
        PartnerCenterError::CredentialsInvalid { .. } => reasons::CREDENTIALS_INVALID,
        PartnerCenterError::CredentialsMissing(_) => reasons::CREDENTIALS_MISSING,
        PartnerCenterError::MfaRequired { .. } => reasons::MFA_REQUIRED,
        PartnerCenterError::AdminAgentRequired { .. } => reasons::ADMIN_AGENT_REQUIRED,
        PartnerCenterError::Throttled { .. } => reasons::THROTTLED,
        _ => reasons::UNREACHABLE,
    };
    (reason, error.to_string())
}

/// Partner Center rotates refresh tokens: the newest is written back to the Secret (so a
/// restart signs in with it), and its expiry shown.
async fn write_back_refresh_token(
    ctx: &Context,
    conn: &PartnerCenterConnection,
    client: &PartnerCenter,
    facts: &mut ConnectionFacts<'_>,
) -> Option<u64> {
    let (token, expires_at) = client.take_rotated_refresh_token()?;
    facts.refresh_token_expires_at = Some(timestamp(expires_at));
    let ns = conn.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(token.expose());
    let patch = serde_json::json!({"data": {"refreshToken": encoded}});
    let name = &conn.spec.credentials_secret_ref.name;
    match api
        .patch(name, &PatchParams::apply(MANAGER), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Some(hash(&token.expose())),
        Err(e) => {
            tracing::warn!(secret = %name, error = %e, "could not write the rotated refresh token back");
            None
        }
    }
}

/// Reads the activity log since the last read (one paged call; the first read only marks the
/// time: every grant is checked when the operator starts anyway). A self-serve policy change
/// made elsewhere has the customer's permission checked where it lives; a subscription change
/// has the customer's subscriptions observed again.
async fn read_activity_log(
    cc: &ConnectionContext,
    ns: &str,
    conn: &PartnerCenterConnection,
    client: &PartnerCenter,
) -> Option<Timestamp> {
    let last = conn
        .status
        .as_ref()
        .and_then(|s| s.last_audit_sync.as_ref())
        .map(|t| t.0);
    let started = now();
    let Some(last) = last else {
        return Some(started);
    };
    if started.duration_since(last).as_secs_f64() < conn.spec.audit().as_secs_f64() * 0.9 {
        return None;
    }
    let query = AuditQuery {
        // Partner Center keeps 90 days and refuses an older start (400): after a long outage,
        // read what it still has.
        start_date: last
            .max(started - k8s_openapi::jiff::SignedDuration::from_hours(89 * 24))
            .strftime("%Y-%m-%d")
            .to_string(),
        ..AuditQuery::default()
    };
    let records = match client.audit_records(&query).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(namespace = ns, error = %e, "could not read the activity log");
            return None;
        }
    };
    for r in records {
        let when: Option<Timestamp> = r.operation_date.parse().ok();
        let (Some(when), Some(customer)) = (when, r.customer_id.as_deref()) else {
            continue;
        };
        // Our own changes carry this client's correlation id; the rest were made elsewhere.
        let ours = r.original_correlation_id.as_deref() == Some(client.correlation_id());
        if when <= last || ours {
            continue;
        }
        let kind = r.resource_type.to_ascii_lowercase().replace('_', "");
        tracing::info!(namespace = ns, customer, operation = %r.operation_type, "changed in Partner Center; checking");
        for c in cc.ctx.caches.customers_with_tenant(ns, customer) {
            if kind == "selfservepolicy" {
                for p in cc.ctx.caches.permissions_of(ns, &c.name_any()) {
                    cc.ctx.drift.request(ns, &p.name_any());
                    (cc.wake)(p);
                }
            } else if kind == "subscription" || kind == "azureentitlement" {
                if let Some(o) = &cc.ctx.observations {
                    o.forget_customer(ns, customer);
                }
                for s in cc.ctx.caches.subscriptions_of(ns, &c.name_any()) {
                    (cc.wake_subscription)(s);
                }
            }
        }
    }
    Some(started)
}

/// Publishes the namespace's link; when it just became Ready, the grants waiting for it go on.
fn publish(
    cc: &ConnectionContext,
    ns: &str,
    conn: &PartnerCenterConnection,
    client: Option<PartnerCenter>,
    credentials: KnownCredentials,
    refusal: Option<(&'static str, String)>,
    facts: &ConnectionFacts<'_>,
) {
    let readiness = match &facts.problem {
        // Throttled calls wait for their budget; grant changes are not held for it.
        None | Some((reasons::THROTTLED, _)) => Readiness::Ready,
        Some((reason, why)) => Readiness::NotReady(format!(
            "PartnerCenterConnection {:?} is not ready ({reason}): {why}",
            conn.name_any()
        )),
    };
    let link = Link {
        connection: conn.name_any(),
        client,
        readiness,
        observe: conn.spec.observe,
        resync: conn.spec.resync(),
        credentials,
        refusal,
    };
    if cc.connections.set(ns, link) {
        tracing::info!(namespace = ns, connection = %conn.name_any(), ready = facts.problem.is_none(), "Partner Center connection checked");
        (cc.wake_namespace)(ns);
    }
}

fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or_else(|_| Timestamp::now())
}
