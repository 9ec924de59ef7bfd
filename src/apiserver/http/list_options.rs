//! A list's options read and checked as the real server does (`ValidateListOptions`, then the
//! etcd3 store's GetList): resourceVersion, resourceVersionMatch, limit, and continue tokens
//! that carry the version every page of the list is served at.

use super::Req;
use crate::apiserver::admission::schema::Cause;
use crate::apiserver::error::ApiError;
use crate::apiserver::storage::{Page, ReadAt, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::time::Duration;

/// How long a read waits for a resourceVersion the store has not reached (the watch cache's
/// `blockTimeout`) before answering 504.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// The version a continue token names when the list it continues was compacted away: go on
/// at the latest version (the real server's inconsistent continuation).
const LATEST_CONTINUATION: i64 = -1;

/// A list request's options.
pub struct ListOptions {
    pub limit: Option<usize>,
    /// The key (namespace, name) to continue after, from a continue token.
    pub after: Option<(String, String)>,
    pub at: ReadAt,
    /// The continue token's start, kept for the 410 that offers an inconsistent continuation.
    continued_from: Option<String>,
}

impl ListOptions {
    /// Reads and validates a list's options. `keys`: how the list's continue keys are read.
    pub fn parse(r: &Req, keys: KeyScope<'_>) -> Result<Self, ApiError> {
        validate(r)?;
        let limit = r
            .q("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let rv = resource_version(r)?;
        let token = r.q("continue").filter(|c| !c.is_empty());
        if let Some(token) = token {
            if rv.is_some_and(|v| v > 0) {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (token_rv, start) = decode_continue(token)?;
            let at = match token_rv {
                LATEST_CONTINUATION => ReadAt::Latest,
                v => ReadAt::Exact(v as u64),
            };
            return Ok(Self {
                limit,
                after: Some(keys.start_key(&start)?),
                at,
                continued_from: Some(start),
            });
        }
        let at = match (rv, r.q("resourceVersionMatch").unwrap_or("")) {
            (None | Some(0), _) => ReadAt::Latest,
            (Some(v), "Exact") => ReadAt::Exact(v),
            // A paged list at a version with no match is served at exactly that version.
            (Some(v), "") if limit.is_some() => ReadAt::Exact(v),
            (Some(v), _) => ReadAt::NotOlderThan(v),
        };
        Ok(Self {
            limit,
            after: None,
            at,
            continued_from: None,
        })
    }

    /// The error of a list, as the real server reports a continued list whose version was
    /// compacted away: 410 with a token that continues at the latest version.
    pub fn explain(&self, e: ApiError) -> ApiError {
        let Some(start) = self.continued_from.as_deref().filter(|_| e.code == 410) else {
            return e;
        };
        let mut expired = ApiError::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        );
        expired.list_continue = Some(encode_token(LATEST_CONTINUATION, start));
        expired
    }
}

/// Where a list's keys live: relative to its namespace, or (a namespaced resource listed at
/// the cluster scope) carrying the namespace, as the real server's keys below its prefix.
#[derive(Clone, Copy)]
pub enum KeyScope<'a> {
    /// A cluster-scoped resource (namespace ""), or a namespaced one listed in a namespace.
    In(&'a str),
    AcrossNamespaces,
}

impl KeyScope<'_> {
    /// The store key a token's start names: the list goes on just past it.
    fn start_key(self, start: &str) -> Result<(String, String), ApiError> {
        let key = start.trim_end_matches('\0');
        match self {
            KeyScope::In(ns) => Ok((ns.to_string(), key.to_string())),
            KeyScope::AcrossNamespaces => key
                .split_once('/')
                .map(|(ns, name)| (ns.to_string(), name.to_string()))
                .ok_or_else(|| {
                    ApiError::bad_request("continue key is not valid: no namespace in key")
                }),
        }
    }
}

/// The list's `metadata`: its resourceVersion, the continue token and how many objects follow.
pub fn list_meta(page: &Page, keys: KeyScope<'_>) -> Value {
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(token) = continue_token(page, keys) {
        meta["continue"] = token.into();
    }
    if let Some(n) = page.remaining {
        meta["remainingItemCount"] = n.into();
    }
    meta
}

/// The token that continues after this page, at the page's version.
pub fn continue_token(page: &Page, keys: KeyScope<'_>) -> Option<String> {
    let (ns, name) = page.next.as_ref()?;
    let key = match keys {
        KeyScope::AcrossNamespaces => format!("{ns}/{name}"),
        KeyScope::In(_) => name.clone(),
    };
    // The real server's start key: just past the last key returned.
    Some(encode_token(page.rv as i64, &format!("{key}\0")))
}

/// The version a list or watch must wait for: one it names that the store has not reached
/// yet (a list, or a watch that asks for the initial events).
pub fn version_to_wait_for(r: &Req, verb: &str) -> Option<u64> {
    let wants_state = verb == "list" || (verb == "watch" && r.flag("sendInitialEvents"));
    if !wants_state || r.q("continue").is_some_and(|c| !c.is_empty()) {
        return None;
    }
    r.q("resourceVersion")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
}

/// Waits, up to the watch cache's three seconds, until the store reaches `rv`.
pub async fn wait_until_fresh(store: &Store, rv: u64) {
    let mut changes = store.changes();
    let deadline = tokio::time::Instant::now() + FRESHNESS_WAIT;
    while store.resource_version() < rv {
        match tokio::time::timeout_at(deadline, changes.recv()).await {
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// `ValidateListOptions` for a list: 422 Invalid on `ListOptions.meta.k8s.io`.
fn validate(r: &Req) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let rv = r.q("resourceVersion").unwrap_or("");
    if let Some(matching) = r.q("resourceVersionMatch").filter(|m| !m.is_empty()) {
        let field = "resourceVersionMatch";
        if rv.is_empty() {
            causes.push(forbidden(
                field,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if r.q("continue").is_some_and(|c| !c.is_empty()) {
            causes.push(forbidden(
                field,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if matching != "Exact" && matching != "NotOlderThan" {
            causes.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {matching:?}: supported values: \"Exact\", \"NotOlderThan\", \"\""
                ),
                field: field.into(),
            });
        }
        if matching == "Exact" && rv == "0" {
            causes.push(forbidden(
                field,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if r.q("sendInitialEvents").is_some() {
        causes.push(forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("ListOptions.meta.k8s.io", "", causes))
    }
}

/// `ValidateListOptions` for a watch: `sendInitialEvents` only with
/// `resourceVersionMatch=NotOlderThan`, and that match only with `sendInitialEvents` (422).
pub fn validate_watch(r: &Req) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let matching = r.q("resourceVersionMatch").unwrap_or("");
    let field = "resourceVersionMatch";
    if r.q("sendInitialEvents").is_some() && matching != "NotOlderThan" {
        causes.push(forbidden(
            field,
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !matching.is_empty() {
        if r.q("sendInitialEvents").is_none() {
            causes.push(forbidden(
                field,
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if matching != "NotOlderThan" {
            causes.push(Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!(
                    "Unsupported value: {matching:?}: supported values: \"NotOlderThan\""
                ),
                field: field.into(),
            });
        }
        if r.q("continue").is_some_and(|c| !c.is_empty()) {
            causes.push(forbidden(
                field,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("ListOptions.meta.k8s.io", "", causes))
    }
}

fn forbidden(field: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {message}"),
        field: field.into(),
    }
}

fn resource_version(r: &Req) -> Result<Option<u64>, ApiError> {
    match r.q("resourceVersion").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}"))),
    }
}

/// The real server's token: unpadded URL-safe base64 of `{"v","rv","start"}`.
fn encode_token(rv: i64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

/// The version and start key of a continue token (400 for one this server did not issue).
fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(&e.to_string()))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| invalid(&e.to_string()))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(invalid(
            "server does not recognize this encoded key (version meta.k8s.io/v1)",
        ));
    }
    let rv = v["rv"].as_i64().unwrap_or(0);
    if rv == 0 || rv < LATEST_CONTINUATION {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let start = v["start"].as_str().unwrap_or("").to_string();
    if start.is_empty() {
        return Err(invalid("encoded start key empty (version meta.k8s.io/v1)"));
    }
    Ok((rv, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_its_version_and_start() {
        let token = encode_token(42, "default/b\0");
        assert_eq!(
            decode_continue(&token).ok(),
            Some((42, "default/b\0".into()))
        );
        let (ns, name) = KeyScope::AcrossNamespaces.start_key("default/b\0").unwrap();
        assert_eq!((ns.as_str(), name.as_str()), ("default", "b"));
    }

    #[test]
    fn a_token_without_a_version_is_refused() {
        let token = encode_token(0, "b\0");
        let e = decode_continue(&token).unwrap_err();
        assert_eq!(e.code, 400);
        assert!(decode_continue("not base64 !").is_err());
    }
}
