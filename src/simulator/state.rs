//! The simulator's mutable state (seeded from the world), a parsed request and a stored answer.

use super::Stats;
use super::arm::Assignment;
use super::limits::Limiters;
use super::partner_center::policy_json;
use super::tokens::Tokens;
use super::world::{Application, Customer, Partner, PartnerUser, World};
use bytes::Bytes;
use hyper::http::request::Parts;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Everything that changes while the simulator runs.
pub struct State {
    pub partner: Partner,
    pub applications: Vec<Application>,
    pub users: Vec<PartnerUser>,
    /// Customers with their subscriptions and entitlements (role assignments live in
    /// `assignments`).
    pub customers: Vec<Customer>,
    /// Role assignments per Azure subscription id (lower case).
    pub assignments: HashMap<String, Vec<Assignment>>,
    /// Self-serve policies as the wire JSON, per policy id (lower case).
    pub policies: BTreeMap<String, Value>,
    /// Counts policy deletions (the list's continuation tokens carry it).
    pub policy_generation: u64,
    /// Audit records as the wire JSON, oldest first.
    pub audit: Vec<Value>,
    pub tokens: Tokens,
    pub limiters: Limiters,
    pub stats: Stats,
    /// Answers of changes per MS-RequestId, replayed for 15 minutes.
    pub replays: HashMap<String, (Instant, Answer)>,
}

impl State {
    pub fn new(world: World) -> State {
        let World {
            partner,
            applications,
            users,
            mut customers,
            self_serve_policies,
        } = world;
        let tokens = Tokens::seeded(&users, &applications);
        let mut assignments = HashMap::new();
        for entitlement in customers
            .iter_mut()
            .flat_map(|c| c.subscriptions.iter_mut())
            .flat_map(|s| s.azure_entitlements.iter_mut())
        {
            let seeded = std::mem::take(&mut entitlement.role_assignments)
                .into_iter()
                .filter_map(Assignment::seeded)
                .collect();
            assignments.insert(entitlement.id.to_ascii_lowercase(), seeded);
        }
        let mut policies = BTreeMap::new();
        for p in &self_serve_policies {
            let json = policy_json(&partner.tenant_id, &p.customer, &p.permissions, &new_etag());
            let id = format!("{}_{}", partner.tenant_id, p.customer).to_ascii_lowercase();
            policies.insert(id, json);
        }
        State {
            partner,
            applications,
            users,
            customers,
            assignments,
            policies,
            policy_generation: 0,
            audit: Vec::new(),
            tokens,
            limiters: Limiters::default(),
            stats: Stats::default(),
            replays: HashMap::new(),
        }
    }

    pub fn customer(&self, tenant_id: &str) -> Option<&Customer> {
        self.customers
            .iter()
            .find(|c| c.tenant_id.eq_ignore_ascii_case(tenant_id))
    }

    pub fn user(&self, oid: &str) -> Option<&PartnerUser> {
        self.users.iter().find(|u| u.id.eq_ignore_ascii_case(oid))
    }

    /// The customer owning Azure subscription `id`, and whether its Azure plan is suspended.
    pub fn azure_subscription(&self, id: &str) -> Option<(&Customer, bool)> {
        self.customers.iter().find_map(|c| {
            c.subscriptions.iter().find_map(|s| {
                s.azure_entitlements
                    .iter()
                    .any(|e| e.id.eq_ignore_ascii_case(id))
                    .then(|| (c, !s.status.eq_ignore_ascii_case("active")))
            })
        })
    }
}

/// A new etag: a quoted random GUID, as Partner Center writes them.
pub fn new_etag() -> String {
    format!("\"{}\"", uuid::Uuid::new_v4())
}

/// Now, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A request, read whole.
pub struct Req {
    pub method: String,
    pub path: String,
    /// Path and query as sent (for `links.self`).
    pub path_and_query: String,
    query: Vec<(String, String)>,
    headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn new(parts: Parts, body: Bytes) -> Req {
        let path = parts.uri.path().to_string();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| path.clone());
        let query = parts.uri.query().map(parse_form).unwrap_or_default();
        Req {
            method: parts.method.as_str().to_string(),
            path,
            path_and_query,
            query,
            headers: parts.headers,
            body,
        }
    }

    /// A query parameter by name, case-insensitively (`entity_id` and `entity_Id` alike).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query without the given parameters, as `a=b&c=d` (values re-encoded).
    pub fn query_without(&self, drop: &[&str]) -> Vec<(String, String)> {
        self.query
            .iter()
            .filter(|(k, _)| !drop.iter().any(|d| d.eq_ignore_ascii_case(k)))
            .cloned()
            .collect()
    }

    pub fn is_change(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// `a=b&c=d` (form or query) decoded: `+` is a space, `%XX` a byte.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// `a=b&c=d` with values percent-encoded.
pub fn encode_query(pairs: &[(String, String)]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An answer, kept whole so a replay can send it again.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(status: u16, body: &Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: serde_json::to_vec(body).unwrap_or_default(),
        }
    }

    pub fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let pairs = parse_form("a=b+c&filter=%7B%22x%22%7D&flag");
        assert_eq!(pairs[0], ("a".into(), "b c".into()));
        assert_eq!(pairs[1], ("filter".into(), "{\"x\"}".into()));
        assert_eq!(pairs[2], ("flag".into(), String::new()));
        assert_eq!(
            parse_form(&encode_query(&pairs[1..2])),
            pairs[1..2].to_vec()
        );
    }

    #[test]
    fn etags_are_quoted_and_fresh() {
        let (a, b) = (new_etag(), new_etag());
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 38);
        assert_ne!(a, b);
    }
}
