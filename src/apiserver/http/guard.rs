//! What a request must pass before it is read: a loopback `Host` (against DNS rebinding), a
//! body within the size limit, and a Content-Type the server decodes (which closes browsers'
//! cross-site "simple" requests).

use crate::apiserver::error::ApiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{HeaderMap, Method};

/// The largest request body, as the real server's `MaxRequestBodyBytes` (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The media types a write body may have: JSON, YAML, the patch types and protobuf.
const ACCEPTED_MEDIA_TYPES: [&str; 7] = [
    "application/json",
    "application/yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/vnd.kubernetes.protobuf",
];

/// The `Host` must name loopback as this server serves it: `127.0.0.1`, `localhost` or `[::1]`,
/// with any port. A web page that rebinds its own name to 127.0.0.1 sends its name, and is
/// refused.
pub fn check_host(headers: &HeaderMap, uri: &hyper::Uri) -> Result<(), ApiError> {
    let host = headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    if is_loopback_host(host) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "host {host:?} is not served here: this server answers only to 127.0.0.1, localhost and [::1]"
    )))
}

fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]` alone has colons inside its brackets; a port follows the closing bracket.
        Some((name, port)) if !port.contains(']') => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            name
        }
        _ => host,
    };
    name == "127.0.0.1" || name == "[::1]" || name.eq_ignore_ascii_case("localhost")
}

/// Bodies of POST, PUT and PATCH must be of a type the server decodes (415 otherwise); a
/// request without a body needs none.
pub fn check_content_type(
    method: &Method,
    headers: &HeaderMap,
    declared_length: Option<u64>,
) -> Result<(), ApiError> {
    if !matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        return Ok(());
    }
    let content_type = headers
        .get(hyper::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let Some(content_type) = content_type else {
        return match declared_length {
            Some(0) => Ok(()),
            _ => Err(unsupported_media_type("")),
        };
    };
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if ACCEPTED_MEDIA_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(media_type))
    {
        Ok(())
    } else {
        Err(unsupported_media_type(content_type))
    }
}

fn unsupported_media_type(content_type: &str) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: {} (got {content_type:?})",
            ACCEPTED_MEDIA_TYPES.join(", ")
        ),
    )
}

/// A body whose length is known (`Content-Length`) is refused (413) above the limit before
/// anything is read.
pub fn check_declared_length(declared_length: Option<u64>) -> Result<(), ApiError> {
    match declared_length {
        Some(length) if length > MAX_BODY_BYTES as u64 => Err(too_large()),
        _ => Ok(()),
    }
}

/// Reads the body, refusing (413) once it grows past the limit (a chunked body declares no
/// length), so memory never holds more than the limit.
pub async fn read_body(body: Incoming) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body could not be read: {e}"
        ))),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        413,
        "RequestEntityTooLarge",
        format!("Request entity too large: limit is {MAX_BODY_BYTES}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:6443",
            "localhost",
            "LocalHost:1",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:80",
            "127.0.0.1.nip.io",
            "localhost.evil",
            "127.0.0.1:",
            "127.0.0.1:x",
            "[::1]x",
            "::1",
            "127.0.0.2",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    fn with_type(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(hyper::header::CONTENT_TYPE, t.parse().unwrap());
        h
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "application/apply-patch+yaml",
            "application/vnd.kubernetes.protobuf",
            "Application/YAML",
        ] {
            assert!(
                check_content_type(&Method::POST, &with_type(ok), Some(2)).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/cbor",
        ] {
            let e = check_content_type(&Method::PATCH, &with_type(bad), Some(2)).unwrap_err();
            assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"), "{bad}");
        }
        assert!(check_content_type(&Method::GET, &with_type("text/plain"), None).is_ok());
        assert!(check_content_type(&Method::POST, &HeaderMap::new(), Some(0)).is_ok());
        assert!(check_content_type(&Method::POST, &HeaderMap::new(), Some(3)).is_err());
        assert!(check_content_type(&Method::POST, &HeaderMap::new(), None).is_err());
    }
}
