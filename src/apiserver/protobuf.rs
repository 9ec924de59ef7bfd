//! A small decoder for the Kubernetes protobuf request encoding, for the built-in kinds kubectl
//! sends that way (`kubectl create namespace|configmap|secret|serviceaccount|role|deployment|
//! service|...`, and the self-reviews of `kubectl auth can-i|whoami`).
//!
//! The body is the magic `k8s\0` followed by a `runtime.Unknown` message (typeMeta=1
//! {apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4) whose `raw` is the object's
//! own protobuf. Each supported kind is described by a table of field numbers taken from
//! k8s.io/api and k8s.io/apimachinery `generated.proto` (and checked against kubectl v1.32's
//! actual bytes); the result is the object's JSON. Go encodes every non-pointer field even when
//! empty, so empty strings, zero integers, false flags and empty messages are dropped as JSON's
//! `omitempty` would; a pointer field (`*int32`, `*bool`, `*IntOrString`) is encoded only when
//! set, so it is kept whatever its value (`replicas: 0`). A field outside the tables that
//! carries a value is refused rather than lost.

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
    /// A pointer (`*bool`) or always-written bool: kept when sent, false included.
    Bool,
    /// A non-pointer bool with `omitempty`: false is dropped.
    Flag,
    /// A non-pointer integer with `omitempty`: 0 is dropped.
    Int,
    /// A pointer integer (`*int32`, `*int64`): kept when sent, 0 included.
    OptInt,
    Msg(&'static [F]),
    /// An embedded Go struct (`LocalObjectReference` in a key selector): its fields are the
    /// parent's in JSON.
    Inline(&'static [F]),
    RepeatedStr,
    RepeatedMsg(&'static [F]),
    MapStr,
    /// map<string, bytes> → base64 values.
    MapBytes,
    /// resource.Quantity `{string = 1}` (k8s.io/apimachinery/pkg/api/resource/generated.proto)
    /// → its string.
    Quantity,
    /// map<string, resource.Quantity> → string values.
    MapQuantity,
    /// intstr.IntOrString `{type = 1, intVal = 2, strVal = 3}` (type 0 Int, 1 String;
    /// k8s.io/apimachinery/pkg/util/intstr/generated.proto) → a JSON number or string.
    IntOrStr,
    /// metav1.Time `{seconds = 1, nanos = 2}` → RFC 3339 at second precision.
    Time,
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

// metav1.Condition (k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto), in a Service's status.
const CONDITION: &[F] = &[
    (1, "type", Ty::Str),
    (2, "status", Ty::Str),
    (3, "observedGeneration", Ty::Int),
    (4, "lastTransitionTime", Ty::Time),
    (5, "reason", Ty::Str),
    (6, "message", Ty::Str),
];

// k8s.io/api/core/v1/generated.proto: the pod template of a Deployment (what `kubectl create
// deployment` sends, and the plain fields beside it; volumes, probes, lifecycle hooks,
// security contexts, affinity and the rest are refused).
const CONTAINER_PORT: &[F] = &[
    (1, "name", Ty::Str),
    (2, "hostPort", Ty::Int),
    (3, "containerPort", Ty::Int),
    (4, "protocol", Ty::Str),
    (5, "hostIP", Ty::Str),
];
const LOCAL_OBJECT_REFERENCE: &[F] = &[(1, "name", Ty::Str)];
const KEY_SELECTOR: &[F] = &[
    (
        1,
        "localObjectReference",
        Ty::Inline(LOCAL_OBJECT_REFERENCE),
    ),
    (2, "key", Ty::Str),
    (3, "optional", Ty::Bool),
];
const ENV_VAR_SOURCE: &[F] = &[
    (
        1,
        "fieldRef",
        Ty::Msg(&[(1, "apiVersion", Ty::Str), (2, "fieldPath", Ty::Str)]),
    ),
    (
        2,
        "resourceFieldRef",
        Ty::Msg(&[
            (1, "containerName", Ty::Str),
            (2, "resource", Ty::Str),
            (3, "divisor", Ty::Quantity),
        ]),
    ),
    (3, "configMapKeyRef", Ty::Msg(KEY_SELECTOR)),
    (4, "secretKeyRef", Ty::Msg(KEY_SELECTOR)),
];
const ENV_VAR: &[F] = &[
    (1, "name", Ty::Str),
    (2, "value", Ty::Str),
    (3, "valueFrom", Ty::Msg(ENV_VAR_SOURCE)),
];
const ENV_SOURCE: &[F] = &[
    (
        1,
        "localObjectReference",
        Ty::Inline(LOCAL_OBJECT_REFERENCE),
    ),
    (2, "optional", Ty::Bool),
];
const ENV_FROM_SOURCE: &[F] = &[
    (1, "prefix", Ty::Str),
    (2, "configMapRef", Ty::Msg(ENV_SOURCE)),
    (3, "secretRef", Ty::Msg(ENV_SOURCE)),
];
const RESOURCE_REQUIREMENTS: &[F] = &[
    (1, "limits", Ty::MapQuantity),
    (2, "requests", Ty::MapQuantity),
    (
        3,
        "claims",
        Ty::RepeatedMsg(&[(1, "name", Ty::Str), (2, "request", Ty::Str)]),
    ),
];
const VOLUME_MOUNT: &[F] = &[
    (1, "name", Ty::Str),
    (2, "readOnly", Ty::Flag),
    (3, "mountPath", Ty::Str),
    (4, "subPath", Ty::Str),
    (5, "mountPropagation", Ty::Str),
    (6, "subPathExpr", Ty::Str),
    (7, "recursiveReadOnly", Ty::Str),
];
const CONTAINER: &[F] = &[
    (1, "name", Ty::Str),
    (2, "image", Ty::Str),
    (3, "command", Ty::RepeatedStr),
    (4, "args", Ty::RepeatedStr),
    (5, "workingDir", Ty::Str),
    (6, "ports", Ty::RepeatedMsg(CONTAINER_PORT)),
    (7, "env", Ty::RepeatedMsg(ENV_VAR)),
    (8, "resources", Ty::Msg(RESOURCE_REQUIREMENTS)),
    (9, "volumeMounts", Ty::RepeatedMsg(VOLUME_MOUNT)),
    (13, "terminationMessagePath", Ty::Str),
    (14, "imagePullPolicy", Ty::Str),
    (16, "stdin", Ty::Flag),
    (17, "stdinOnce", Ty::Flag),
    (18, "tty", Ty::Flag),
    (19, "envFrom", Ty::RepeatedMsg(ENV_FROM_SOURCE)),
    (20, "terminationMessagePolicy", Ty::Str),
    (
        23,
        "resizePolicy",
        Ty::RepeatedMsg(&[(1, "resourceName", Ty::Str), (2, "restartPolicy", Ty::Str)]),
    ),
    (24, "restartPolicy", Ty::Str),
];
const TOLERATION: &[F] = &[
    (1, "key", Ty::Str),
    (2, "operator", Ty::Str),
    (3, "value", Ty::Str),
    (4, "effect", Ty::Str),
    (5, "tolerationSeconds", Ty::OptInt),
];
const POD_SPEC: &[F] = &[
    (2, "containers", Ty::RepeatedMsg(CONTAINER)),
    (3, "restartPolicy", Ty::Str),
    (4, "terminationGracePeriodSeconds", Ty::OptInt),
    (5, "activeDeadlineSeconds", Ty::OptInt),
    (6, "dnsPolicy", Ty::Str),
    (7, "nodeSelector", Ty::MapStr),
    (8, "serviceAccountName", Ty::Str),
    (9, "serviceAccount", Ty::Str),
    (10, "nodeName", Ty::Str),
    (11, "hostNetwork", Ty::Flag),
    (12, "hostPID", Ty::Flag),
    (13, "hostIPC", Ty::Flag),
    (
        15,
        "imagePullSecrets",
        Ty::RepeatedMsg(LOCAL_OBJECT_REFERENCE),
    ),
    (16, "hostname", Ty::Str),
    (17, "subdomain", Ty::Str),
    (19, "schedulerName", Ty::Str),
    (20, "initContainers", Ty::RepeatedMsg(CONTAINER)),
    (21, "automountServiceAccountToken", Ty::Bool),
    (22, "tolerations", Ty::RepeatedMsg(TOLERATION)),
    (24, "priorityClassName", Ty::Str),
    (25, "priority", Ty::OptInt),
    (27, "shareProcessNamespace", Ty::Bool),
    (29, "runtimeClassName", Ty::Str),
    (30, "enableServiceLinks", Ty::Bool),
    (31, "preemptionPolicy", Ty::Str),
    (35, "setHostnameAsFQDN", Ty::Bool),
    (37, "hostUsers", Ty::Bool),
];
const POD_TEMPLATE_SPEC: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(POD_SPEC)),
];

// k8s.io/api/core/v1/generated.proto: Service (`kubectl create service clusterip|nodeport|
// loadbalancer|externalname`).
const SERVICE_PORT: &[F] = &[
    (1, "name", Ty::Str),
    (2, "protocol", Ty::Str),
    (3, "port", Ty::Int),
    (4, "targetPort", Ty::IntOrStr),
    (5, "nodePort", Ty::Int),
    (6, "appProtocol", Ty::Str),
];
const SERVICE_SPEC: &[F] = &[
    (1, "ports", Ty::RepeatedMsg(SERVICE_PORT)),
    (2, "selector", Ty::MapStr),
    (3, "clusterIP", Ty::Str),
    (4, "type", Ty::Str),
    (5, "externalIPs", Ty::RepeatedStr),
    (7, "sessionAffinity", Ty::Str),
    (8, "loadBalancerIP", Ty::Str),
    (9, "loadBalancerSourceRanges", Ty::RepeatedStr),
    (10, "externalName", Ty::Str),
    (11, "externalTrafficPolicy", Ty::Str),
    (12, "healthCheckNodePort", Ty::Int),
    (13, "publishNotReadyAddresses", Ty::Flag),
    (
        14,
        "sessionAffinityConfig",
        Ty::Msg(&[(1, "clientIP", Ty::Msg(&[(1, "timeoutSeconds", Ty::OptInt)]))]),
    ),
    (17, "ipFamilyPolicy", Ty::Str),
    (18, "clusterIPs", Ty::RepeatedStr),
    (19, "ipFamilies", Ty::RepeatedStr),
    (20, "allocateLoadBalancerNodePorts", Ty::Bool),
    (21, "loadBalancerClass", Ty::Str),
    (22, "internalTrafficPolicy", Ty::Str),
    (23, "trafficDistribution", Ty::Str),
];
const LOAD_BALANCER_INGRESS: &[F] = &[
    (1, "ip", Ty::Str),
    (2, "hostname", Ty::Str),
    (3, "ipMode", Ty::Str),
    (
        4,
        "ports",
        Ty::RepeatedMsg(&[
            (1, "port", Ty::Int),
            (2, "protocol", Ty::Str),
            (3, "error", Ty::Str),
        ]),
    ),
];
const SERVICE: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(SERVICE_SPEC)),
    (
        3,
        "status",
        Ty::Msg(&[
            (
                1,
                "loadBalancer",
                Ty::Msg(&[(1, "ingress", Ty::RepeatedMsg(LOAD_BALANCER_INGRESS))]),
            ),
            (2, "conditions", Ty::RepeatedMsg(CONDITION)),
        ]),
    ),
];

// k8s.io/api/apps/v1/generated.proto (`kubectl create deployment`).
const DEPLOYMENT_SPEC: &[F] = &[
    (1, "replicas", Ty::OptInt),
    (2, "selector", Ty::Msg(LABEL_SELECTOR)),
    (3, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    (
        4,
        "strategy",
        Ty::Msg(&[
            (1, "type", Ty::Str),
            (
                2,
                "rollingUpdate",
                Ty::Msg(&[
                    (1, "maxUnavailable", Ty::IntOrStr),
                    (2, "maxSurge", Ty::IntOrStr),
                ]),
            ),
        ]),
    ),
    (5, "minReadySeconds", Ty::Int),
    (6, "revisionHistoryLimit", Ty::OptInt),
    (7, "paused", Ty::Flag),
    (9, "progressDeadlineSeconds", Ty::OptInt),
];
const DEPLOYMENT_CONDITION: &[F] = &[
    (1, "type", Ty::Str),
    (2, "status", Ty::Str),
    (4, "reason", Ty::Str),
    (5, "message", Ty::Str),
    (6, "lastUpdateTime", Ty::Time),
    (7, "lastTransitionTime", Ty::Time),
];
const DEPLOYMENT: &[F] = &[
    (1, "metadata", Ty::Msg(OBJECT_META)),
    (2, "spec", Ty::Msg(DEPLOYMENT_SPEC)),
    (
        3,
        "status",
        Ty::Msg(&[
            (1, "observedGeneration", Ty::Int),
            (2, "replicas", Ty::Int),
            (3, "updatedReplicas", Ty::Int),
            (4, "availableReplicas", Ty::Int),
            (5, "unavailableReplicas", Ty::Int),
            (6, "conditions", Ty::RepeatedMsg(DEPLOYMENT_CONDITION)),
            (7, "readyReplicas", Ty::Int),
            (8, "collisionCount", Ty::OptInt),
        ]),
    ),
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
        ("v1", "Service") => SERVICE,
        ("apps/v1", "Deployment") => DEPLOYMENT,
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
            (Ty::Flag, Wire::Varint(n)) => {
                if n != 0 {
                    out.insert(name.into(), Value::Bool(true));
                }
            }
            (Ty::Int | Ty::OptInt, Wire::Varint(n)) => {
                if n != 0 || matches!(ty, Ty::OptInt) {
                    // int32 and int64 both travel as two's complement in a varint.
                    out.insert(name.into(), Value::from(n as i64));
                }
            }
            (Ty::Msg(sub), Wire::Len(b)) => {
                let m = decode_message(b, sub, &here())?;
                if !m.is_empty() {
                    out.insert(name.into(), Value::Object(m));
                }
            }
            (Ty::Inline(sub), Wire::Len(b)) => {
                out.extend(decode_message(b, sub, &here())?);
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
            (Ty::MapStr | Ty::MapBytes | Ty::MapQuantity, Wire::Len(b)) => {
                let (mut key, mut value) = (String::new(), None);
                for f in Reader(b) {
                    match f? {
                        (1, Wire::Len(k)) => key = utf8(k)?,
                        (2, Wire::Len(v)) => value = Some(v),
                        _ => return Err(malformed(&format!("a bad map entry in {}", here()))),
                    }
                }
                let value = value.unwrap_or_default();
                let value = match ty {
                    Ty::MapBytes => base64(value),
                    Ty::MapQuantity => Value::String(quantity(value, &here())?),
                    _ => Value::String(utf8(value)?),
                };
                let map = out.entry(name).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = map {
                    m.insert(key, value);
                }
            }
            (Ty::Quantity, Wire::Len(b)) => {
                let q = quantity(b, &here())?;
                if !q.is_empty() {
                    out.insert(name.into(), Value::String(q));
                }
            }
            (Ty::IntOrStr, Wire::Len(b)) => {
                out.insert(name.into(), int_or_string(b, &here())?);
            }
            (Ty::Time, Wire::Len(b)) => {
                if let Some(t) = time(b, &here())? {
                    out.insert(name.into(), Value::String(t));
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

/// A resource.Quantity message's string.
fn quantity(b: &[u8], path: &str) -> Result<String, ApiError> {
    let mut q = String::new();
    for f in Reader(b) {
        match f? {
            (1, Wire::Len(s)) => q = utf8(s)?,
            _ => return Err(malformed(&format!("a bad quantity in {path}"))),
        }
    }
    Ok(q)
}

/// An intstr.IntOrString message: a JSON number (type 0) or string (type 1).
fn int_or_string(b: &[u8], path: &str) -> Result<Value, ApiError> {
    let (mut kind, mut int, mut string) = (0, 0, String::new());
    for f in Reader(b) {
        match f? {
            (1, Wire::Varint(n)) => kind = n,
            (2, Wire::Varint(n)) => int = n as i64,
            (3, Wire::Len(s)) => string = utf8(s)?,
            _ => return Err(malformed(&format!("a bad IntOrString in {path}"))),
        }
    }
    match kind {
        0 => Ok(Value::from(int)),
        1 => Ok(Value::String(string)),
        k => Err(malformed(&format!("IntOrString type {k} in {path}"))),
    }
}

/// A metav1.Time message as the JSON encoding writes it (None for Go's zero time, which
/// metav1.Time encodes as no bytes).
fn time(b: &[u8], path: &str) -> Result<Option<String>, ApiError> {
    if b.is_empty() {
        return Ok(None);
    }
    let mut seconds: i64 = 0;
    for f in Reader(b) {
        match f? {
            (1, Wire::Varint(n)) => seconds = n as i64,
            // nanos: the JSON form has second precision.
            (2, Wire::Varint(_)) => {}
            _ => return Err(malformed(&format!("a bad time in {path}"))),
        }
    }
    let t = k8s_openapi::jiff::Timestamp::from_second(seconds)
        .map_err(|_| malformed(&format!("a time out of range in {path}")))?;
    Ok(Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
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
        let e = decode(&wrap("batch/v1", "Job", &ld(1, &ld(1, b"j")))).expect_err("415");
        assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
        assert!(e.message.contains("Job (batch/v1)") && e.message.contains("JSON"));
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

    /// Varint field (a field number below 16).
    fn vi(num: u8, mut n: u64) -> Vec<u8> {
        let mut v = vec![num << 3];
        while n >= 0x80 {
            v.push(u8::try_from(n & 0x7f).expect("7 bits") | 0x80);
            n >>= 7;
        }
        v.push(u8::try_from(n).expect("7 bits"));
        v
    }

    #[test]
    fn deployment_as_kubectl_sends_it() {
        // `kubectl create deployment web --image=nginx --replicas=2 --port=8080`, captured
        // from kubectl v1.32 (the empty status and every empty Go field included).
        let body = hex(
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b9010a1f0a0377656212001a0022002a003200380042005a0a0a0361707012037765621287010802120c0a0a0a0361707012037765621a6d0a1c0a0012001a0022002a003200380042005a0a0a036170701203776562124d122f0a056e67696e7812056e67696e782a00320b0a00100018903f22002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [
                            {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 8080}]}
                        ]}
                    }
                }
            })
        );
    }

    #[test]
    fn deployment_with_several_images_a_command_and_zero_replicas() {
        // `kubectl create deployment multi --image=nginx --image=busybox:1.36
        // --image=registry.example.com:5000/app@sha256:0123...`: one container per image.
        let body = hex(
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412e6020a230a056d756c746912001a0022002a003200380042005a0c0a0361707012056d756c746912b0020801120e0a0c0a0361707012056d756c74691a93020a1e0a0012001a0022002a003200380042005a0c0a0361707012056d756c746912f00112220a056e67696e7812056e67696e782a0042006a007200800100880100900100a20100122b0a0762757379626f78120c62757379626f783a312e33362a0042006a007200800100880100900100a201001280010a03617070126572656769737472792e6578616d706c652e636f6d3a353030302f617070407368613235363a303132333435363738396162636465663031323334353637383961626364656630313233343536373839616263646566303132333435363738396162636465662a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
        );
        let v = decode(&body).expect("decodes");
        assert_eq!(v["spec"]["replicas"], json!(1));
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "nginx", "image": "nginx"},
                {"name": "busybox", "image": "busybox:1.36"},
                {"name": "app", "image": "registry.example.com:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
            ])
        );
        // `kubectl create deployment cmd --image=busybox -- sleep 3600`.
        let body = hex(
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bd010a1f0a03636d6412001a0022002a003200380042005a0a0a036170701203636d64128b010801120c0a0a0a036170701203636d641a710a1c0a0012001a0022002a003200380042005a0a0a036170701203636d64125112330a0762757379626f78120762757379626f781a05736c6565701a04333630302a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes")["spec"]["template"]["spec"]["containers"],
            json!([{"name": "busybox", "image": "busybox", "command": ["sleep", "3600"]}])
        );
        // `--replicas=0`: a pointer field sent as 0 is kept (absent, it would default to 1).
        let body = hex(
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412af010a210a047a65726f12001a0022002a003200380042005a0b0a0361707012047a65726f127c0800120d0a0b0a0361707012047a65726f1a610a1d0a0012001a0022002a003200380042005a0b0a0361707012047a65726f124012220a056e67696e7812056e67696e782a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes")["spec"]["replicas"],
            json!(0)
        );
    }

    #[test]
    fn services_as_kubectl_sends_them() {
        // `kubectl create service clusterip web --tcp=80:8080`.
        let body = hex(
            "6b3873000a0d0a02763112075365727669636512690a1f0a0377656212001a0022002a003200380042005a0a0a03617070120377656212420a1b0a0738302d38303830120354435018502207080010903f1a002800120a0a0361707012037765621a002209436c757374657249503a00420052005a00600068001a020a001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                    "selector": {"app": "web"},
                    "type": "ClusterIP"
                }
            })
        );
        // `kubectl create service nodeport np --tcp=80:8080 --node-port=30080`.
        let body = hex(
            "6b3873000a0d0a02763112075365727669636512670a1d0a026e7012001a0022002a003200380042005a090a0361707012026e7012420a1d0a0738302d38303830120354435018502207080010903f1a002880eb0112090a0361707012026e701a0022084e6f6465506f72743a00420052005a00600068001a020a001a002200",
        );
        let v = decode(&body).expect("decodes");
        assert_eq!(v["spec"]["type"], json!("NodePort"));
        assert_eq!(
            v["spec"]["ports"],
            json!([{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}])
        );
        // `kubectl create service clusterip named --tcp=80:http`: a string targetPort.
        let body = hex(
            "6b3873000a0d0a02763112075365727669636512720a230a056e616d656412001a0022002a003200380042005a0c0a0361707012056e616d656412470a1e0a0738302d6874747012035443501850220a080110001a04687474702800120c0a0361707012056e616d65641a002209436c757374657249503a00420052005a00600068001a020a001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes")["spec"]["ports"][0]["targetPort"],
            json!("http")
        );
        // `kubectl create service externalname en --external-name=bar.com`.
        let body = hex(
            "6b3873000a0d0a02763112075365727669636512530a1d0a02656e12001a0022002a003200380042005a090a036170701202656e122e12090a036170701202656e1a00220c45787465726e616c4e616d653a00420052076261722e636f6d5a00600068001a020a001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes")["spec"],
            json!({"selector": {"app": "en"}, "type": "ExternalName", "externalName": "bar.com"})
        );
        // `kubectl create service clusterip headless --clusterip=None`.
        let body = hex(
            "6b3873000a0d0a027631120753657276696365125f0a290a08686561646c65737312001a0022002a003200380042005a0f0a036170701208686561646c657373122e120f0a036170701208686561646c6573731a044e6f6e652209436c757374657249503a00420052005a00600068001a020a001a002200",
        );
        assert_eq!(
            decode(&body).expect("decodes")["spec"]["clusterIP"],
            json!("None")
        );
    }

    #[test]
    fn pod_template_fields_beyond_what_kubectl_create_sends() {
        let quantity = |q: &[u8]| ld(1, q);
        let container = [
            ld(1, b"app"),
            ld(2, b"img:1"),
            // env: a value, and a key of a ConfigMap (LocalObjectReference is inlined).
            ld(7, &[ld(1, b"A"), ld(2, b"1")].concat()),
            ld(
                7,
                &[
                    ld(1, b"B"),
                    ld(
                        3,
                        &ld(3, &[ld(1, &ld(1, b"cm")), ld(2, b"k"), vi(3, 0)].concat()),
                    ),
                ]
                .concat(),
            ),
            // resources: limits and requests are maps of Quantity messages.
            ld(
                8,
                &[
                    ld(1, &entry(b"cpu", &quantity(b"500m"))),
                    ld(2, &entry(b"memory", &quantity(b"64Mi"))),
                ]
                .concat(),
            ),
            vec![0x80, 0x01, 0x00], // stdin (16) false: omitempty
            vec![0x90, 0x01, 0x01], // tty (18) true
        ]
        .concat();
        let spec = [
            ld(2, &container),
            vec![0x20, 0x00], // terminationGracePeriodSeconds (4) = 0: a pointer, kept
            vec![0xa8, 0x01, 0x00], // automountServiceAccountToken (21) = false: kept
            vec![
                0xc8, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ], // priority (25) = -1
        ]
        .concat();
        let rolling = [
            ld(1, &[vi(1, 0), vi(2, 1), ld(3, b"")].concat()),
            ld(2, &[vi(1, 1), vi(2, 0), ld(3, b"50%")].concat()),
        ]
        .concat();
        let deployment_spec = [
            ld(3, &ld(2, &spec)),
            ld(4, &[ld(1, b"RollingUpdate"), ld(2, &rolling)].concat()),
            vi(7, 0), // paused false: omitempty
        ]
        .concat();
        // A status condition's Time: seconds since the epoch.
        let status = ld(
            6,
            &[ld(1, b"Available"), ld(6, &vi(1, 1_700_000_000))].concat(),
        );
        let raw = [ld(1, &ld(1, b"d")), ld(2, &deployment_spec), ld(3, &status)].concat();
        let v = decode(&wrap("apps/v1", "Deployment", &raw)).expect("decodes");
        assert_eq!(
            v["spec"]["template"]["spec"],
            json!({
                "containers": [{
                    "name": "app", "image": "img:1",
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k", "optional": false}}}
                    ],
                    "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}},
                    "tty": true
                }],
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": false,
                "priority": -1
            })
        );
        assert_eq!(
            v["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "50%"}})
        );
        assert!(v["spec"].get("paused").is_none());
        assert_eq!(
            v["status"]["conditions"],
            json!([{"type": "Available", "lastUpdateTime": "2023-11-14T22:13:20Z"}])
        );

        // A livenessProbe (field 10 of Container) is not in the tables: refused, not lost.
        let raw = [
            ld(1, &ld(1, b"d")),
            ld(2, &ld(3, &ld(2, &ld(2, &ld(10, &ld(2, &vi(1, 1))))))),
        ]
        .concat();
        let e = decode(&wrap("apps/v1", "Deployment", &raw)).expect_err("refused");
        assert_eq!(e.code, 415);
        assert!(
            e.message
                .contains("field number 10 of Deployment.spec.template.spec.containers"),
            "{}",
            e.message
        );
        // A malformed IntOrString.
        let raw = ld(2, &ld(1, &ld(4, &vi(1, 7))));
        assert_eq!(
            decode(&wrap("v1", "Service", &raw)).expect_err("bad").code,
            400
        );
    }
}
