//! The Azure AD v1 token endpoint (refresh-token grant only: every token is App+User), the JWTs
//! it issues, and the bearer check every Partner Center and ARM call passes through.
//!
//! Refresh tokens rotate: each grant returns a new one valid 90 days; the old one stays valid
//! until its own expiry, as Azure AD does. Access tokens live 3599 s and are accepted only if this
//! simulator issued them (their signature is random; the simulator remembers what it issued).

use super::route::Route;
use super::state::{Answer, Req, State, parse_form};
use super::world::{Application, PartnerRole, PartnerUser};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub const PARTNER_CENTER_RESOURCE: &str = "https://api.partnercenter.microsoft.com";
pub const ARM_RESOURCE: &str = "https://management.azure.com";
const ACCESS_TOKEN_SECS: u64 = 3599;
const REFRESH_TOKEN_SECS: u64 = 90 * 24 * 3600;

/// Refresh tokens and issued access tokens (the keys are secrets: never logged or printed).
#[derive(Default)]
pub struct Tokens {
    refresh: HashMap<String, RefreshGrant>,
    access: HashMap<String, Claims>,
}

struct RefreshGrant {
    user: String,
    client_id: String,
    expires_at: u64,
    revoked: bool,
}

/// What an access token says about its bearer.
#[derive(Debug, Clone)]
pub struct Claims {
    pub aud: String,
    pub tid: String,
    pub oid: String,
    pub upn: String,
    /// The client id the token was issued to.
    pub appid: String,
    pub mfa: bool,
    pub exp: u64,
}

/// The caller of a Partner Center or ARM call: claims plus the user's roles now.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub roles: Vec<PartnerRole>,
}

impl Caller {
    pub fn is_admin_agent(&self) -> bool {
        self.roles.contains(&PartnerRole::AdminAgent)
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    Missing,
    Invalid,
    Expired,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tokens {
    /// The refresh tokens the world's users hold.
    pub fn seeded(users: &[PartnerUser], apps: &[Application]) -> Tokens {
        let mut tokens = Tokens::default();
        let first_app = apps
            .first()
            .map(|a| a.client_id.clone())
            .unwrap_or_default();
        for user in users {
            for seed in &user.refresh_tokens {
                let expires_at = seed
                    .expires_at
                    .as_deref()
                    .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                    .map(|t| u64::try_from(t.as_second()).unwrap_or(0))
                    .unwrap_or_else(|| unix_now() + REFRESH_TOKEN_SECS);
                let grant = RefreshGrant {
                    user: user.id.clone(),
                    client_id: seed.client_id.clone().unwrap_or_else(|| first_app.clone()),
                    expires_at,
                    revoked: seed.revoked,
                };
                tokens.refresh.insert(seed.token.0.clone(), grant);
            }
        }
        tokens
    }

    /// The claims of a live token this simulator issued.
    pub fn bearer(&mut self, authorization: Option<&str>, now: u64) -> Result<Claims, BearerError> {
        let header = authorization.ok_or(BearerError::Missing)?;
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(BearerError::Invalid),
        };
        let claims = self.access.get(token).ok_or(BearerError::Invalid)?;
        if claims.exp <= now {
            return Err(BearerError::Expired);
        }
        Ok(claims.clone())
    }
}

/// The caller behind a request's bearer token, with the user's roles.
pub fn caller(state: &mut State, req: &Req) -> Result<Caller, BearerError> {
    let claims = state
        .tokens
        .bearer(req.header("authorization"), unix_now())?;
    let roles = state
        .user(&claims.oid)
        .map(|u| u.roles.clone())
        .unwrap_or_default();
    Ok(Caller { claims, roles })
}

/// `POST /{tenant}/oauth2/token` with `grant_type=refresh_token`.
pub fn grant(state: &mut State, req: &Req, route: &Route) -> Answer {
    let Route::Token { tenant } = route else {
        return aad_error(404, "invalid_request", 90002, "Unknown endpoint.");
    };
    if req.method != "POST" {
        return aad_error(
            405,
            "invalid_request",
            90056,
            "The token endpoint accepts POST only.",
        );
    }
    let text = String::from_utf8_lossy(&req.body);
    let form: HashMap<String, String> = parse_form(&text).into_iter().collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    for required in ["grant_type", "client_id", "refresh_token"] {
        if field(required).is_none() {
            let text =
                format!("The request body must contain the following parameter: '{required}'.");
            return aad_error(400, "invalid_request", 900144, &text);
        }
    }
    if field("grant_type") != Some("refresh_token") {
        let text = "The provided value for the input parameter 'grant_type' is not valid.";
        return aad_error(400, "unsupported_grant_type", 70003, text);
    }
    let client_id = field("client_id").unwrap_or_default();
    if let Err(answer) = check_client(state, client_id, field("client_secret")) {
        return answer;
    }
    let resource = field("resource").unwrap_or_default().trim_end_matches('/');
    if resource != PARTNER_CENTER_RESOURCE && resource != ARM_RESOURCE {
        let text = format!("The resource principal named {resource} was not found in the tenant.");
        return aad_error(400, "invalid_resource", 500011, &text);
    }
    let Some(tid) = issuing_tenant(state, tenant) else {
        let text = format!(
            "User account from identity provider does not exist in tenant '{tenant}' and cannot access the application in that tenant."
        );
        return aad_error(400, "invalid_grant", 50020, &text);
    };
    let refresh_token = field("refresh_token").unwrap_or_default();
    match redeem(state, refresh_token, client_id) {
        Ok(user) => issue(state, &user, client_id, &tid, resource),
        Err(answer) => answer,
    }
}

fn check_client(state: &State, client_id: &str, secret: Option<&str>) -> Result<(), Answer> {
    let Some(app) = state
        .applications
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    else {
        let text =
            format!("Application with identifier '{client_id}' was not found in the directory.");
        return Err(aad_error(401, "invalid_client", 700016, &text));
    };
    if secret != Some(app.client_secret.0.as_str()) {
        let text = format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
        );
        return Err(aad_error(401, "invalid_client", 7000215, &text));
    }
    Ok(())
}

/// The partner tenant, or a customer tenant (by id or domain) the partner resells to.
fn issuing_tenant(state: &State, tenant: &str) -> Option<String> {
    if state.partner.tenant_id.eq_ignore_ascii_case(tenant) {
        return Some(state.partner.tenant_id.clone());
    }
    state
        .customers
        .iter()
        .find(|c| {
            c.tenant_id.eq_ignore_ascii_case(tenant) || c.domain().eq_ignore_ascii_case(tenant)
        })
        .map(|c| c.tenant_id.clone())
}

/// The user a live refresh token of this client belongs to.
fn redeem(state: &State, refresh_token: &str, client_id: &str) -> Result<PartnerUser, Answer> {
    let expired = || {
        let text = "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.";
        aad_error(400, "invalid_grant", 70008, text)
    };
    let grant = state
        .tokens
        .refresh
        .get(refresh_token)
        .ok_or_else(expired)?;
    if grant.revoked || grant.expires_at <= unix_now() {
        return Err(expired());
    }
    if !grant.client_id.eq_ignore_ascii_case(client_id) {
        let text = "Provided grant is invalid or malformed (it was issued to another client).";
        return Err(aad_error(400, "invalid_grant", 70000, text));
    }
    state.user(&grant.user).cloned().ok_or_else(expired)
}

/// A new access token, id token and (rotated) refresh token.
fn issue(
    state: &mut State,
    user: &PartnerUser,
    client_id: &str,
    tid: &str,
    resource: &str,
) -> Answer {
    let now = unix_now();
    let claims = Claims {
        aud: resource.to_string(),
        tid: tid.to_string(),
        oid: user.id.clone(),
        upn: user.upn.clone(),
        appid: client_id.to_string(),
        mfa: user.mfa,
        exp: now + ACCESS_TOKEN_SECS,
    };
    let partner = state.partner.tenant_id.clone();
    let access_token = jwt(&access_claims(&claims, client_id, &partner, now));
    let id_token = jwt(&json!({
        "aud": client_id, "iss": format!("https://sts.windows.net/{tid}/"), "iat": now, "nbf": now,
        "exp": claims.exp, "oid": user.id, "upn": user.upn, "unique_name": user.upn, "tid": tid, "ver": "1.0",
    }));
    let refresh_token = format!("sim-rt.{}", random_b64(48));
    state.tokens.refresh.insert(
        refresh_token.clone(),
        RefreshGrant {
            user: user.id.clone(),
            client_id: client_id.to_string(),
            expires_at: now + REFRESH_TOKEN_SECS,
            revoked: false,
        },
    );
    state.tokens.access.retain(|_, c| c.exp > now);
    state
        .tokens
        .access
        .insert(access_token.clone(), claims.clone());
    Answer::json(
        200,
        &json!({
            "token_type": "Bearer", "scope": "user_impersonation",
            "expires_in": ACCESS_TOKEN_SECS.to_string(), "ext_expires_in": ACCESS_TOKEN_SECS.to_string(),
            "expires_on": claims.exp.to_string(), "not_before": now.to_string(), "resource": resource,
            "access_token": access_token, "refresh_token": refresh_token, "id_token": id_token,
        }),
    )
    .with_header("Cache-Control", "no-store, no-cache")
}

fn access_claims(c: &Claims, client_id: &str, partner: &str, now: u64) -> Value {
    let amr = if c.mfa {
        json!(["pwd", "mfa"])
    } else {
        json!(["pwd"])
    };
    let mut claims = json!({
        "aud": c.aud, "iss": format!("https://sts.windows.net/{}/", c.tid), "iat": now, "nbf": now,
        "exp": c.exp, "amr": amr, "appid": client_id, "appidacr": "1", "oid": c.oid,
        "scp": "user_impersonation", "tid": c.tid, "unique_name": c.upn, "upn": c.upn, "ver": "1.0",
    });
    if !c.tid.eq_ignore_ascii_case(partner) {
        // A partner user in a customer tenant (delegated admin) is a guest from the partner's.
        claims["idp"] = json!(format!("https://sts.windows.net/{partner}/"));
    }
    claims
}

/// `base64url(header).base64url(payload).base64url(random signature)`.
fn jwt(payload: &Value) -> String {
    let header = json!({"typ": "JWT", "alg": "RS256"});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        random_b64(64)
    )
}

fn random_b64(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    URL_SAFE_NO_PAD.encode(raw)
}

/// An Azure AD error body: `{"error", "error_description": "AADSTSnnn: …", "error_codes": [nnn], …}`.
pub fn aad_error(status: u16, error: &str, code: u32, text: &str) -> Answer {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    Answer::json(
        status,
        &json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {}", super::state::now_rfc3339()),
            "error_codes": [code],
            "timestamp": super::state::now_rfc3339(),
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            aud: PARTNER_CENTER_RESOURCE.into(),
            tid: "t".into(),
            oid: "o".into(),
            upn: "u".into(),
            appid: "app".into(),
            mfa: true,
            exp,
        }
    }

    #[test]
    fn only_issued_live_bearer_tokens_pass() {
        let mut t = Tokens::default();
        t.access.insert("good".into(), claims(100));
        assert!(t.bearer(Some("Bearer good"), 50).is_ok());
        assert!(t.bearer(Some("bearer good"), 50).is_ok());
        assert_eq!(
            t.bearer(Some("Bearer good"), 100).err(),
            Some(BearerError::Expired)
        );
        assert_eq!(
            t.bearer(Some("Bearer forged"), 50).err(),
            Some(BearerError::Invalid)
        );
        assert_eq!(
            t.bearer(Some("Basic good"), 50).err(),
            Some(BearerError::Invalid)
        );
        assert_eq!(t.bearer(None, 50).err(), Some(BearerError::Missing));
    }

    #[test]
    fn a_jwt_has_three_parts_and_readable_claims() {
        let c = claims(100);
        let token = jwt(&access_claims(&c, "app", "t", 1));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload["amr"], json!(["pwd", "mfa"]));
        assert_eq!(payload["iss"], "https://sts.windows.net/t/");
        assert!(payload.get("idp").is_none());
        let guest = access_claims(&c, "app", "partner", 1);
        assert_eq!(guest["idp"], "https://sts.windows.net/partner/");
    }
}
