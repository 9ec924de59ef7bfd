//! Authentication: the bearer token the kubeconfig carries (compared in constant time, never
//! shown), further token users, and who may impersonate whom (RBAC `impersonate`).

use super::error::ApiError;
use super::rbac::{self, RbacObjects, User};
use super::tls::ServerCertificate;
use std::path::Path;

/// A bearer token. Its `Debug` never shows it; only [`Token::expose`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// 32 random bytes (from the thread-local CSPRNG), hex-encoded.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        let mut hex = String::with_capacity(64);
        for b in bytes {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Self(hex)
    }

    /// A given token; it must be usable in an HTTP header (visible ASCII, no spaces) and not
    /// empty.
    pub fn new(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token must be non-empty visible ASCII without spaces".into());
        }
        Ok(Self(token))
    }

    /// The token itself, for a kubeconfig or a client; never for a log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Default for Token {
    fn default() -> Self {
        Self::generate()
    }
}

/// What `up --state` keeps beside the state file so that clients keep working across restarts:
/// the admin token and the server's certificate with its key, as JSON in a file of mode 0600.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub token: Token,
    pub certificate: ServerCertificate,
}

impl Credentials {
    /// The credentials kept in `path`, or new ones written there when the file is absent (as
    /// beside a state file of a version that had none). A file that is there but unusable is an
    /// error: replacing it would lock out every client holding the old token.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let created = Self {
                    token: Token::generate(),
                    certificate: ServerCertificate::generate().map_err(std::io::Error::other)?,
                };
                write_private(path, created.to_json().as_bytes())?;
                return Ok(created);
            }
            Err(e) => return Err(e),
        };
        restrict_to_owner(path)?;
        Self::from_json(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    fn to_json(&self) -> String {
        serde_json::json!({
            "token": self.token.expose(),
            "certificate": self.certificate.cert_pem(),
            "key": self.certificate.key_pem(),
        })
        .to_string()
    }

    fn from_json(text: &str) -> Result<Self, String> {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|_| "not a credentials document".to_string())?;
        let field = |k: &str| {
            doc.get(k)
                .and_then(serde_json::Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("{k} missing"))
        };
        let certificate = ServerCertificate::from_pem(field("certificate")?, field("key")?);
        certificate.acceptor()?;
        Ok(Self {
            token: Token::new(field("token")?)?,
            certificate,
        })
    }
}

/// A further bearer token and the user it authenticates (subject to RBAC), as a line of the
/// real server's `--token-auth-file`.
#[derive(Clone)]
pub struct TokenUser {
    pub token: Token,
    pub name: String,
    pub groups: Vec<String>,
}

impl std::fmt::Debug for TokenUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenUser")
            .field("token", &self.token)
            .field("name", &self.name)
            .field("groups", &self.groups)
            .finish()
    }
}

/// Who may call the server: the admin token and the further token users.
pub struct Authenticator {
    admin: Token,
    users: Vec<(Token, User)>,
}

/// Who a request comes from, once authenticated.
pub enum Authenticated {
    /// The kubeconfig's token: `admin` in `system:masters`, beyond RBAC.
    Admin,
    /// A further token user, subject to RBAC.
    User(User),
}

impl Authenticator {
    pub fn new(admin: Token, users: &[TokenUser]) -> Self {
        let users = users
            .iter()
            .map(|u| {
                let mut groups = u.groups.clone();
                if !groups.iter().any(|g| g == "system:authenticated") {
                    groups.push("system:authenticated".into());
                }
                let user = User {
                    name: u.name.clone(),
                    groups,
                };
                (u.token.clone(), user)
            })
            .collect();
        Self { admin, users }
    }

    pub fn admin_token(&self) -> &Token {
        &self.admin
    }

    /// The user of the `Authorization: Bearer <token>` header, or 401 Unauthorized.
    pub fn authenticate(&self, headers: &hyper::HeaderMap) -> Result<Authenticated, ApiError> {
        let presented = headers
            .get(hyper::header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(bearer_token)
            .ok_or_else(unauthorized)?;
        if self.admin.matches(presented) {
            return Ok(Authenticated::Admin);
        }
        self.users
            .iter()
            .find(|(token, _)| token.matches(presented))
            .map(|(_, user)| Authenticated::User(user.clone()))
            .ok_or_else(unauthorized)
    }
}

/// The token of an `Authorization` header value `Bearer <token>` (the scheme in any case).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    if expected.len() != presented.len() {
        return false;
    }
    let diff = expected
        .iter()
        .zip(presented)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// The 401 of the real server.
pub fn unauthorized() -> ApiError {
    ApiError::new(401, "Unauthorized", "Unauthorized")
}

/// Whether `requester` may act as `target` (the impersonated user and groups): the real
/// server's impersonation filter asks RBAC for `impersonate` on `users` (or `serviceaccounts`)
/// named as the user, and on `groups` for each group asked for.
pub fn authorize_impersonation(
    objects: &RbacObjects,
    requester: &User,
    target_name: &str,
    requested_groups: &[String],
) -> Result<(), ApiError> {
    let user_attrs = match service_account_parts(target_name) {
        Some((ns, name)) => (ns, "serviceaccounts", name),
        None => ("", "users", target_name),
    };
    let checks = std::iter::once(user_attrs)
        .chain(requested_groups.iter().map(|g| ("", "groups", g.as_str())));
    for (namespace, resource, name) in checks {
        let attrs = rbac::Attributes {
            user: requester,
            verb: "impersonate",
            api_group: "",
            resource,
            subresource: "",
            name,
            namespace,
        };
        rbac::authorize(objects, &attrs).map_err(|m| rbac::forbidden(&attrs, &m))?;
    }
    Ok(())
}

fn service_account_parts(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    rest.split_once(':')
}

/// Writes `bytes` to `path` readable by its owner only (also when the file already exists:
/// its mode is narrowed before anything is written).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // `mode` applies to new files only; an existing file keeps its mode unless narrowed here.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

/// Narrows an existing file to mode 0600.
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        h.insert(hyper::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn tokens_never_show_in_debug() {
        let token = Token::new("s3cr3t-value").unwrap();
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        let user = TokenUser {
            token: token.clone(),
            name: "alice".into(),
            groups: vec![],
        };
        assert!(!format!("{user:?}").contains("s3cr3t"));
        let config = crate::apiserver::Config {
            token,
            token_users: vec![user],
            ..Default::default()
        };
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }

    #[test]
    fn generated_tokens_are_random_hex() {
        let (a, b) = (Token::generate(), Token::generate());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn bearer_tokens_authenticate() {
        let auth = Authenticator::new(
            Token::new("admin-token").unwrap(),
            &[TokenUser {
                token: Token::new("alice-token").unwrap(),
                name: "alice".into(),
                groups: vec!["devs".into()],
            }],
        );
        assert!(matches!(
            auth.authenticate(&headers("Bearer admin-token")),
            Ok(Authenticated::Admin)
        ));
        assert!(matches!(
            auth.authenticate(&headers("bearer  admin-token ")),
            Ok(Authenticated::Admin)
        ));
        match auth.authenticate(&headers("Bearer alice-token")) {
            Ok(Authenticated::User(u)) => {
                assert_eq!(u.name, "alice");
                assert_eq!(u.groups, ["devs", "system:authenticated"]);
            }
            _ => panic!("alice authenticates"),
        }
        for wrong in [
            "Bearer admin-toke",
            "Bearer admin-tokenx",
            "Basic admin-token",
            "Bearer ",
        ] {
            let e = auth.authenticate(&headers(wrong)).err().unwrap();
            assert_eq!((e.code, e.reason), (401, "Unauthorized"));
        }
        assert!(auth.authenticate(&hyper::HeaderMap::new()).is_err());
    }

    #[test]
    fn credential_files_are_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.credentials");
        let first = Credentials::load_or_create(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let again = Credentials::load_or_create(&path).unwrap();
        assert_eq!(again.token, first.token);
        assert_eq!(again.certificate.cert_pem(), first.certificate.cert_pem());
        assert_eq!(mode(&path), 0o600);
        assert!(!format!("{again:?}").contains(first.token.expose()));
        std::fs::write(&path, "{}").unwrap();
        assert!(Credentials::load_or_create(&path).is_err());
    }
}
