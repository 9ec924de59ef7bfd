//! A small decoder for the Kubernetes protobuf request encoding, for the built-in kinds kubectl
//! sends that way (`kubectl create namespace|configmap|secret|serviceaccount|role|...`, and the
//! self-reviews of `kubectl auth can-i|whoami`).
//!
//! The body is the magic `k8s\0` followed by a `runtime.Unknown` message (typeMeta=1
//! {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4) whose `raw` is the object's
//! own protobuf. Each supported kind is described by a table of field numbers taken from
//! k8s.io/api and k8s.io/apimachinery `generated.proto` (and checked against kubectl v1.32's
//! actual bytes); the result is the object's JSON. Go encodes every non-pointer field even when
//! empty, so empty strings, zero integers and empty messages are dropped as JSON's `omitempty`
//! would. A field outside the tables that carries a value is refused rather than lost.

use super::error::ApiError;
use serde_json::{Map, Value};

/// The media type of the Kubernetes protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

/// Whether a Content-Type header names the protobuf encoding (parameters aside).
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// How one field's value becomes JSON.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    Int,
    Msg(&'static [F]),
    RepeatedStr,
    RepeatedMsg(&'static [F]),
    MapStr,
    /// map<string, bytes> → base64 values.
    MapBytes,
}

/// A field: number, JSON name, type.
type F = (u64, &'static str, Ty);

// k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto
const OBJECT_META: &[F] = &[
    (1, "name", Ty::Str),
    (2, "generateName", Ty::Str),
    (3, "namespace", Ty::Str),
    (4, "selfLink", Ty::Str),
    (5, "uid", Ty::Str),
    (6, "resourceVersion", Ty::Str),
    (7, "generation", Ty::Int),
    (11, "labels", Ty::MapStr),
    (12, "annotations", Ty::MapStr),
    (14, "finalizers", Ty::RepeatedStr),
];
const LABEL_SELECTOR_REQUIREMENT: &[F] = &[
    (1, "key", Ty::Str),
    (2, "operator", Ty::Str),
    (3, "values", Ty::RepeatedStr),
];
const LABEL_SELECTOR: &[F] = &[
    (1, "matchLabels", Ty::MapStr),
    (
        2,
        "matchExpressions",
        Ty::RepeatedMsg(LABEL_SELECTOR_REQUIREMENT),
    ),
];

// k8s.io/api/core/v1/generated.proto
const NAMESPACE: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(&[(1, "finalizers", Ty::RepeatedStr)])),
    (3, "status", Ty::Msg(&[(1, "phase", Ty::Str)])),
];
const CONFIG_MAP: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapStr),
    (3, "binaryData", Ty::MapBytes),
    (4, "immutable", Ty::Bool),
];
const SECRET: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "data", Ty::MapBytes),
    (3, "type", Ty::Str),
    (4, "stringData", Ty::MapStr),
    (5, "immutable", Ty::Bool),
];
const OBJECT_REFERENCE: &[F] = &[
    (1, "kind", Ty::Str),
    (2, "namespace", Ty::Str),
    (3, "name", Ty::Str),
    (4, "uid", Ty::Str),
    (5, "apiVersion", Ty::Str),
    (6, "resourceVersion", Ty::Str),
    (7, "fieldPath", Ty::Str),
];
const SERVICE_ACCOUNT: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "secrets", Ty::RepeatedMsg(OBJECT_REFERENCE)),
    (
        3,
        "imagePullSecrets",
        Ty::RepeatedMsg(&[(1, "name", Ty::Str)]),
    ),
    (4, "automountServiceAccountToken", Ty::Bool),
];

// k8s.io/api/rbac/v1/generated.proto
const POLICY_RULE: &[F] = &[
    (1, "verbs", Ty::RepeatedStr),
    (2, "apiGroups", Ty::RepeatedStr),
    (3, "resources", Ty::RepeatedStr),
    (4, "resourceNames", Ty::RepeatedStr),
    (5, "nonResourceURLs", Ty::RepeatedStr),
];
const ROLE: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "rules", Ty::RepeatedMsg(POLICY_RULE)),
];
const CLUSTER_ROLE: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "rules", Ty::RepeatedMsg(POLICY_RULE)),
    (
        3,
        "aggregationRule",
        Ty::Msg(&[(1, "clusterRoleSelectors", Ty::RepeatedMsg(LABEL_SELECTOR))]),
    ),
];
const SUBJECT: &[F] = &[
    (1, "kind", Ty::Str),
    (2, "apiGroup", Ty::Str),
    (3, "name", Ty::Str),
    (4, "namespace", Ty::Str),
];
const ROLE_REF: &[F] = &[
    (1, "apiGroup", Ty::Str),
    (2, "kind", Ty::Str),
    (3, "name", Ty::Str),
];
const ROLE_BINDING: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "subjects", Ty::RepeatedMsg(SUBJECT)),
    (3, "roleRef", Ty::Msg(ROLE_REF)),
];

// k8s.io/api/authorization/v1 and authentication/v1 generated.proto (`kubectl auth`)
const RESOURCE_ATTRIBUTES: &[F] = &[
    (1, "namespace", Ty::Str),
    (2, "verb", Ty::Str),
    (3, "group", Ty::Str),
    (4, "version", Ty::Str),
    (5, "resource", Ty::Str),
    (6, "subresource", Ty::Str),
    (7, "name", Ty::Str),
];
const SELF_SUBJECT_ACCESS_REVIEW: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (
        2,
        "spec",
        Ty::Msg(&[
            (1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
            (
                2,
                "nonResourceAttributes",
                Ty::Msg(&[(1, "path", Ty::Str), (2, "verb", Ty::Str)]),
            ),
        ]),
    ),
    // Go sends the (empty) status too.
    (
        3,
        "status",
        Ty::Msg(&[
            (1, "allowed", Ty::Bool),
            (2, "reason", Ty::Str),
            (3, "evaluationError", Ty::Str),
            (4, "denied", Ty::Bool),
        ]),
    ),
];
const SELF_SUBJECT_RULES_REVIEW: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(&[(1, "namespace", Ty::Str)])),
    (
        3,
        "status",
        Ty::Msg(&[(3, "incomplete", Ty::Bool), (4, "evaluationError", Ty::Str)]),
    ),
];
const SELF_SUBJECT_REVIEW: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (
        2,
        "status",
        Ty::Msg(&[(
            1,
            "userInfo",
            Ty::Msg(&[
                (1, "username", Ty::Str),
                (2, "uid", Ty::Str),
                (3, "groups", Ty::RepeatedStr),
            ]),
        )]),
    ),
];

/// The message table of a kind, by apiVersion and kind.
fn message(api_version: &str, kind: &str) -> Option<&'static [F]> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("rbac.authorization.k8s.io/v1", "Role") => ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => ROLE_BINDING,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => SELF_SUBJECT_RULES_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => SELF_SUBJECT_REVIEW,
        _ => return None,
    })
}

fn unsupported(what: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        415,
        "UnsupportedMediaType",
        format!(
            "this server decodes {MEDIA_TYPE} request bodies only for a few built-in kinds, and not {what}; send JSON or YAML instead (e.g. `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`)"
        ),
    )
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("malformed {MEDIA_TYPE} body: {what}"))
}

/// Decodes a `k8s\0`-prefixed protobuf body into the object's JSON (with apiVersion and kind).
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("missing the k8s\\0 prefix"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for field in Reader(unknown) {
        let (num, v) = field?;
        match (num, v) {
            (1, Wire::Len(tm)) => {
                for f in Reader(tm) {
                    match f? {
                        (1, Wire::Len(b)) => api_version = utf8(b)?,
                        (2, Wire::Len(b)) => kind = utf8(b)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(b)) => raw = b,
            (3, Wire::Len(b)) if !b.is_empty() => {
                return Err(unsupported(format!(
                    "contentEncoding {:?}",
                    String::from_utf8_lossy(b)
                )));
            }
            _ => {}
        }
    }
    let fields = message(&api_version, &kind).ok_or_else(|| {
        unsupported(format!(
            "{kind} ({})",
            if api_version.is_empty() {
                "no apiVersion"
            } else {
                &api_version
            }
        ))
    })?;
    let mut obj = decode_message(raw, fields, &kind)?;
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

fn decode_message(buf: &[u8], fields: &[F], path: &str) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for field in Reader(buf) {
        let (num, v) = field?;
        let Some(&(_, name, ty)) = fields.iter().find(|f| f.0 == num) else {
            if v.is_empty() {
                continue;
            }
            return Err(unsupported(format!("field number {num} of {path}")));
        };
        let here = || format!("{path}.{name}");
        match (ty, v) {
            (Ty::Str, Wire::Len(b)) => {
                if !b.is_empty() {
                    out.insert(name.into(), Value::String(utf8(b)?));
                }
            }
            (Ty::Bool, Wire::Varint(n)) => {
                out.insert(name.into(), Value::Bool(n != 0));
            }
            (Ty::Int, Wire::Varint(n)) => {
                if n != 0 {
                    // int64 travels as two's complement in a varint.
                    out.insert(name.into(), Value::from(n as i64));
                }
            }
            (Ty::Msg(sub), Wire::Len(b)) => {
                let m = decode_message(b, sub, &here())?;
                if !m.is_empty() {
                    out.insert(name.into(), Value::Object(m));
                }
            }
            (Ty::RepeatedStr, Wire::Len(b)) => {
                push(&mut out, name, Value::String(utf8(b)?));
            }
            (Ty::RepeatedMsg(sub), Wire::Len(b)) => {
                push(
                    &mut out,
                    name,
                    Value::Object(decode_message(b, sub, &here())?),
                );
            }
            (Ty::MapStr | Ty::MapBytes, Wire::Len(b)) => {
                let (mut key, mut value) = (String::new(), None);
                for f in Reader(b) {
                    match f? {
                        (1, Wire::Len(k)) => key = utf8(k)?,
                        (2, Wire::Len(v)) => value = Some(v),
                        _ => return Err(malformed(&format!("a bad map entry in {}", here()))),
                    }
                }
                let value = value.unwrap_or_default();
                let value = if matches!(ty, Ty::MapBytes) {
                    base64(value)
                } else {
                    Value::String(utf8(value)?)
                };
                let map = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = map {
                    m.insert(key, value);
                }
            }
            _ => {
                return Err(malformed(&format!(
                    "an unexpected wire type for {}",
                    here()
                )));
            }
        }
    }
    Ok(out)
}

fn push(out: &mut Map<String, Value>, name: &str, v: Value) {
    let list = out.entry(name).or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(a) = list {
        a.push(v);
    }
}

fn utf8(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
}

/// Bytes as JSON: a base64 string (k8s-openapi's ByteString already encodes it).
fn base64(b: &[u8]) -> Value {
    serde_json::to_value(k8s_openapi::ByteString(b.to_vec())).unwrap_or(Value::Null)
}

/// One field's value on the wire.
#[derive(Debug, PartialEq)]
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Len(&'a [u8]),
    Fixed32,
}

impl Wire<'_> {
    /// Whether it carries Go's zero value (which Go's encoder writes for non-pointer fields).
    fn is_empty(&self) -> bool {
        match self {
            Wire::Varint(n) => *n == 0,
            Wire::Len(b) => b.is_empty(),
            Wire::Fixed32 | Wire::Fixed64 => false,
        }
    }
}

/// Iterates over the fields of a message: (field number, value).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .0
                .split_first()
                .ok_or_else(|| malformed("a truncated varint"))?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("a varint longer than 10 bytes"))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], ApiError> {
        let n = usize::try_from(n).map_err(|_| malformed("a length out of range"))?;
        if n > self.0.len() {
            return Err(malformed("a length past the end"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<(u64, Wire<'a>), ApiError> {
        let tag = self.varint()?;
        let num = tag >> 3;
        if num == 0 {
            return Err(malformed("field number 0"));
        }
        let v = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed64
            }
            2 => {
                let n = self.varint()?;
                Wire::Len(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            t => return Err(malformed(&format!("wire type {t}"))),
        };
        Ok((num, v))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u64, Wire<'a>), ApiError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let r = self.field();
        if r.is_err() {
            // Stop after an error.
            self.0 = &[];
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// Length-delimited field (a field number below 16).
    fn ld(num: u8, b: &[u8]) -> Vec<u8> {
        let mut v = vec![(num << 3) | 2];
        let mut n = b.len();
        while n >= 0x80 {
            v.push(u8::try_from(n & 0x7f).expect("7 bits") | 0x80);
            n >>= 7;
        }
        v.push(u8::try_from(n).expect("7 bits"));
        v.extend_from_slice(b);
        v
    }

    fn entry(k: &[u8], v: &[u8]) -> Vec<u8> {
        [ld(1, k), ld(2, v)].concat()
    }

    fn wrap(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let tm = [ld(1, api_version.as_bytes()), ld(2, kind.as_bytes())].concat();
        [
            MAGIC.to_vec(),
            ld(1, &tm),
            ld(2, raw),
            ld(3, b""),
            ld(4, b""),
        ]
        .concat()
    }

    #[test]
    fn namespace_as_kubectl_sends_it() {
        // `kubectl create namespace foo`, captured from kubectl v1.32.
        let body = hex(
            "6b3873000a0f0a02763112094e616d657370616365121b0a130a03666f6f12001a0022002a0032003800420012001a020a001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}})
        );
    }

    #[test]
    fn secret_as_kubectl_sends_it() {
        // `kubectl create secret generic s2 --from-literal=k=v --type=foo/bar`.
        let body = hex(
            "6b3873000a0c0a027631120653656372657412250a120a02733212001a0022002a0032003800420012060a016b1201761a07666f6f2f6261721a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s2"},
                   "data": {"k": "dg=="}, "type": "foo/bar"})
        );
    }

    #[test]
    fn configmap_with_binary_data_labels_and_annotations() {
        let meta = [
            ld(1, b"cm"),
            ld(3, b"ns1"),
            ld(11, &entry(b"app", b"x")),
            ld(11, &entry(b"tier", b"")),
            ld(12, &entry(b"note", b"hi")),
            ld(14, b"f1"),
            ld(14, b"f2"),
            vec![0x38, 0x00], // generation 0
        ]
        .concat();
        let raw = [
            ld(1, &meta),
            ld(2, &entry(b"a", b"b")),
            ld(2, &entry(b"empty", b"")),
            ld(3, &entry(b"bin", &[0x00, 0xff, 0x01])),
            vec![0x20, 0x01], // immutable = true
        ]
        .concat();
        assert_eq!(
            decode(&wrap("v1", "ConfigMap", &raw)).expect("decodes"),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm", "namespace": "ns1",
                             "labels": {"app": "x", "tier": ""},
                             "annotations": {"note": "hi"},
                             "finalizers": ["f1", "f2"]},
                "data": {"a": "b", "empty": ""},
                "binaryData": {"bin": "AP8B"},
                "immutable": true
            })
        );
    }

    #[test]
    fn rolebinding_as_kubectl_sends_it() {
        // `kubectl create clusterrolebinding crb --clusterrole=cr --user=bob`.
        let body = hex(
            "6b3873000a320a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311212436c7573746572526f6c6542696e64696e67126d0a130a0363726212001a0022002a0032003800420012280a04557365721219726261632e617574686f72697a6174696f6e2e6b38732e696f1a03626f6222001a2c0a19726261632e617574686f72697a6174696f6e2e6b38732e696f120b436c7573746572526f6c651a0263721a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "crb"},
                "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cr"}
            })
        );
    }

    #[test]
    fn multi_byte_varints_and_skipped_fixed_fields() {
        let long = "x".repeat(200);
        let meta = [
            vec![0x0a, 0xc8, 0x01], // name, length 200 as a two-byte varint
            long.as_bytes().to_vec(),
            vec![0x38, 0x96, 0x01], // generation 150
        ]
        .concat();
        assert_eq!(&ld(1, &meta)[..3], &[0x0a, 0xce, 0x01]);
        let raw = [ld(1, &meta), ld(2, b"")].concat();
        let v = decode(&wrap("v1", "ServiceAccount", &raw)).expect("decodes");
        assert_eq!(v["metadata"]["name"], json!(long));
        assert_eq!(v["metadata"]["generation"], json!(150));
        // An empty unknown field is skipped; fixed32/64 are parsed past but carry a value.
        let raw = [ld(1, &ld(1, b"sa")), ld(9, b"")].concat();
        assert!(decode(&wrap("v1", "ServiceAccount", &raw)).is_ok());
        let raw = [ld(1, &ld(1, b"sa")), vec![0x49], vec![0; 8]].concat();
        let e = decode(&wrap("v1", "ServiceAccount", &raw)).expect_err("refused");
        assert_eq!(e.code, 415);
        assert!(
            e.message.contains("field number 9 of ServiceAccount"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_kinds_and_garbage() {
        let e = decode(&wrap("apps/v1", "Deployment", &ld(1, &ld(1, b"d")))).expect_err("415");
        assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
        assert!(e.message.contains("Deployment (apps/v1)") && e.message.contains("JSON"));
        // Unsupported fields of a known kind: ownerReferences (13) with content.
        let raw = ld(1, &ld(13, &ld(1, b"Pod")));
        let e = decode(&wrap("v1", "ConfigMap", &raw)).expect_err("415");
        assert!(e.message.contains("ConfigMap.metadata"), "{}", e.message);
        for bad in [
            &b"{}"[..],
            b"k8s\0\x0a",
            b"k8s\0\x0a\x05ab",
            b"k8s\0\x0f",
            b"k8s\0\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        ] {
            assert_eq!(decode(bad).expect_err("malformed").code, 400, "{bad:?}");
        }
        assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
        assert!(is_protobuf(
            "application/vnd.kubernetes.protobuf; charset=x"
        ));
        assert!(!is_protobuf("application/json"));
    }
}
