//! The defaults of a pod template (a Deployment's `spec.template`), as the real server's
//! generated `SetObjectDefaults_*` apply them: `SetDefaults_PodSpec`, `SetDefaults_Container`,
//! `SetDefaults_Volume` and the volume sources, `SetDefaults_Probe`, `SetDefaults_HTTPGetAction`,
//! `SetDefaults_ObjectFieldSelector` and the declarative `+default` of the container ports
//! (k8s.io/kubernetes pkg/apis/core/v1/defaults.go and zz_generated.defaults.go).

use super::{obj_mut, set_if_absent};
use serde_json::{Map, Value, json};

/// Defaults of a PodTemplateSpec: those of its pod spec.
pub fn pod_template(template: &mut Value) {
    if let Some(spec) = template.get_mut("spec").and_then(Value::as_object_mut) {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and everything inside a pod spec.
fn pod_spec(spec: &mut Map<String, Value>) {
    set_if_absent(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_absent(spec, "restartPolicy", json!("Always"));
    // `SecurityContext = &PodSecurityContext{}`: the JSON shows `securityContext: {}`.
    set_if_absent(spec, "securityContext", json!({}));
    set_if_absent(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_absent(spec, "schedulerName", json!("default-scheduler"));
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in array_objects(spec, key) {
            container(c);
        }
    }
    for v in array_objects(spec, "volumes") {
        volume(v);
    }
}

/// The objects of an array field (none when it is absent or not an array).
fn array_objects<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// `SetDefaults_Container` and the defaults of what a container holds.
fn container(c: &mut Map<String, Value>) {
    if is_unset(c.get("imagePullPolicy")) {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        let policy = if image_tag(image).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    set_if_absent(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_absent(c, "terminationMessagePolicy", json!("File"));
    // `Resources` is a struct, not a pointer: Go's JSON writes `resources: {}`.
    set_if_absent(c, "resources", json!({}));
    for p in array_objects(c, "ports") {
        set_if_absent(p, "protocol", json!("TCP"));
    }
    for e in array_objects(c, "env") {
        if let Some(field_ref) = e
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            set_if_absent(field_ref, "apiVersion", json!("v1"));
        }
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(key).and_then(Value::as_object_mut) {
            probe(p);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get_mut(hook).and_then(Value::as_object_mut) {
                handler(h);
            }
        }
    }
}

/// `SetDefaults_Probe`: zero (or absent) thresholds and periods take their defaults.
fn probe(p: &mut Map<String, Value>) {
    for (key, default) in [
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        if p.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
            p.insert(key.into(), json!(default));
        }
    }
    handler(p);
}

/// The actions of a probe or a lifecycle hook: `SetDefaults_HTTPGetAction`, and gRPC's
/// `+default=""` service.
fn handler(h: &mut Map<String, Value>) {
    if let Some(get) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        set_if_absent(get, "path", json!("/"));
        set_if_absent(get, "scheme", json!("HTTP"));
    }
    if let Some(grpc) = h.get_mut("grpc").and_then(Value::as_object_mut)
        && !grpc.contains_key("service")
    {
        grpc.insert("service".into(), json!(""));
    }
}

/// `SetDefaults_Volume` (no source: an emptyDir) and the volume sources' defaults.
fn volume(v: &mut Map<String, Value>) {
    let has_source = v.keys().any(|k| k != "name");
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    // 0644, as `SecretVolumeSourceDefaultMode` and its siblings.
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = obj_mut(v, source) {
            set_if_absent(s, "defaultMode", json!(0o644));
        }
    }
    if let Some(host_path) = obj_mut(v, "hostPath") {
        set_if_absent(host_path, "type", json!(""));
    }
    if let Some(projected) = obj_mut(v, "projected") {
        for s in array_objects(projected, "sources") {
            if let Some(token) = obj_mut(s, "serviceAccountToken") {
                set_if_absent(token, "expirationSeconds", json!(3600));
            }
        }
    }
}

/// Whether a string field is unset as Go sees it (absent, null or empty).
fn is_unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// The tag of an image reference as `parsers.ParseImageName` finds it: the tag, `latest` when
/// there is neither tag nor digest, and None when there is only a digest or the reference does
/// not parse (both give `IfNotPresent`).
pub fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest
        && !valid_digest(d)
    {
        return None;
    }
    // The tag is after a ':' in the last path component (a ':' before a '/' is a port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !valid_repository(repo) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) if valid_tag(t) => Some(t.to_string()),
        (Some(_), _) => None,
        (None, Some(_)) => None,
        (None, None) => Some("latest".into()),
    }
}

/// `[domain/]path`: a domain is a first component with a '.' or ':', `localhost`, or upper
/// case letters; every path component is `[a-z0-9]+` joined by `.`, `_`, `__` or dashes.
fn valid_repository(repo: &str) -> bool {
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        let is_domain = first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase());
        if is_domain {
            let host = first.split(':').next().unwrap_or("");
            let port_ok = first
                .split_once(':')
                .is_none_or(|(_, p)| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if host.is_empty()
                || !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                || !port_ok
            {
                return false;
            }
            parts.remove(0);
        }
    }
    !parts.is_empty() && parts.iter().all(|p| valid_path_component(p))
}

fn valid_path_component(p: &str) -> bool {
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or any run of "-", between alphanumerics.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    t.len() <= 128
        && t.chars().next().is_some_and(word)
        && t.chars().all(|c| word(c) || c == '.' || c == '-')
}

fn valid_digest(d: &str) -> bool {
    d.split_once(':').is_some_and(|(algo, hex)| {
        !algo.is_empty() && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_as_parse_image_name_finds_them() {
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for (image, tag) in [
            ("nginx", Some("latest")),
            ("nginx:latest", Some("latest")),
            ("nginx:1.27", Some("1.27")),
            ("library/nginx", Some("latest")),
            ("registry.example.com:5000/team/app", Some("latest")),
            ("registry.example.com:5000/team/app:v2", Some("v2")),
            ("localhost/app:dev_1", Some("dev_1")),
            ("ghcr.io/csp-operator/csp-operator:0.1.0", Some("0.1.0")),
            ("a__b/c-d.e:x", Some("x")),
            ("", None),
            ("Nginx", None),
            ("nginx:", None),
            ("nginx:-x", None),
            ("bad--/x", None),
        ] {
            assert_eq!(image_tag(image).as_deref(), tag, "{image}");
        }
        // A digest without a tag has no tag; with a tag, the tag counts.
        assert_eq!(image_tag(&format!("nginx@{digest}")), None);
        assert_eq!(
            image_tag(&format!("nginx:latest@{digest}")).as_deref(),
            Some("latest")
        );
        assert_eq!(image_tag("nginx@sha256:short"), None);
    }

    #[test]
    fn template_defaults() {
        let mut t = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
                     "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                     "livenessProbe": {"httpGet": {"port": 80}, "periodSeconds": 0, "failureThreshold": 5},
                     "readinessProbe": {"grpc": {"port": 9}}},
                    {"name": "b", "image": "busybox:1.36", "imagePullPolicy": "Never", "resources": {"limits": {"cpu": "1"}}}
                ],
                "initContainers": [{"name": "i", "image": "x@sha256:0123456789abcdef0123456789abcdef"}],
                "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "s"}}, {"name": "h", "hostPath": {"path": "/x"}}],
                "terminationGracePeriodSeconds": 0,
                "dnsPolicy": "Default"
            }
        });
        pod_template(&mut t);
        let spec = &t["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "Default");
        assert_eq!(spec["terminationGracePeriodSeconds"], 0);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        let a = &spec["containers"][0];
        assert_eq!(a["imagePullPolicy"], "Always");
        assert_eq!(a["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(a["terminationMessagePolicy"], "File");
        assert_eq!(a["resources"], json!({}));
        assert_eq!(a["ports"][0]["protocol"], "TCP");
        assert_eq!(a["ports"][1]["protocol"], "UDP");
        assert_eq!(a["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            a["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "periodSeconds": 10,
                   "failureThreshold": 5, "timeoutSeconds": 1, "successThreshold": 1})
        );
        assert_eq!(
            a["readinessProbe"]["grpc"],
            json!({"port": 9, "service": ""})
        );
        let b = &spec["containers"][1];
        assert_eq!(b["imagePullPolicy"], "Never");
        assert_eq!(b["resources"], json!({"limits": {"cpu": "1"}}));
        assert_eq!(spec["initContainers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][2]["hostPath"]["type"], "");
        // Defaulting twice changes nothing.
        let once = t.clone();
        pod_template(&mut t);
        assert_eq!(t, once);
    }
}
