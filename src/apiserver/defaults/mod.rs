//! Per-kind defaults of the built-in kinds, as the real server's defaulting functions set them
//! on every decoded object (k8s.io/kubernetes pkg/apis/apps/v1 and core/v1 defaults.go): a
//! Deployment's strategy, limits and pod template here, a Service's in [`service`] (with the
//! cluster IP and node port allocation, which needs the other Services).
//!
//! Defaults apply to every write of the main resource, whatever the body's encoding, before
//! admission: so a re-applied manifest that leaves them out is a no-op, and managedFields of an
//! update name them as the real server's do.

mod pods;
pub mod service;

use super::resources::ResourceDef;
use serde_json::{Map, Value, json};

/// The defaults of `def`'s kind on `obj` (those that need no other object).
pub fn apply(def: &ResourceDef, obj: &mut Value) {
    match (def.group.as_str(), def.kind.as_str()) {
        ("apps", "Deployment") => deployment(obj),
        ("", "Service") => service::defaults(obj),
        _ => {}
    }
}

/// The status a new object of `def`'s kind has on a real server, where the kind has a status
/// struct Go's JSON always writes (a Deployment's `status: {}`, a Service's
/// `status: {loadBalancer: {}}`).
pub fn initial_status(def: &ResourceDef, obj: &mut Value) {
    let status = match (def.group.as_str(), def.kind.as_str()) {
        ("apps", "Deployment") => json!({}),
        ("", "Service") => json!({"loadBalancer": {}}),
        _ => return,
    };
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match o.get_mut("status").and_then(Value::as_object_mut) {
        Some(current) => {
            if let Some(defaults) = status.as_object() {
                for (k, v) in defaults {
                    current.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        None => {
            o.insert("status".into(), status);
        }
    }
}

/// `SetDefaults_Deployment` (apps/v1) and the defaults of its pod template.
fn deployment(obj: &mut Value) {
    let Some(spec) = obj_mut_value(obj, "spec") else {
        return;
    };
    set_if_absent(spec, "replicas", json!(1));
    if let Some(strategy) = obj_entry(spec, "strategy") {
        let unset = strategy
            .get("type")
            .is_none_or(|t| t.is_null() || t.as_str() == Some(""));
        if unset {
            strategy.insert("type".into(), json!("RollingUpdate"));
        }
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            && let Some(rolling) = obj_entry(strategy, "rollingUpdate")
        {
            set_if_absent(rolling, "maxUnavailable", json!("25%"));
            set_if_absent(rolling, "maxSurge", json!("25%"));
        }
    }
    set_if_absent(spec, "revisionHistoryLimit", json!(10));
    set_if_absent(spec, "progressDeadlineSeconds", json!(600));
    if let Some(template) = spec.get_mut("template") {
        pods::pod_template(template);
    }
}

/// Sets `key` when it is absent or null (a nil pointer or an empty string in Go).
fn set_if_absent(m: &mut Map<String, Value>, key: &str, v: Value) {
    let unset = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if unset {
        m.insert(key.into(), v);
    }
}

/// The object at `key`, when there is one.
fn obj_mut<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key` of a JSON object, when both are objects.
fn obj_mut_value<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.as_object_mut().and_then(|m| obj_mut(m, key))
}

/// The object at `key`, made (`{}`) when absent or null; None when it is something else.
fn obj_entry<'a>(m: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), json!({}));
    }
    obj_mut(m, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::builtins;

    fn def(kind: &str) -> ResourceDef {
        builtins()
            .into_iter()
            .find(|d| d.kind == kind)
            .expect("served")
    }

    #[test]
    fn deployment_as_a_real_server_defaults_it() {
        let mut d = json!({
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
            }
        });
        apply(&def("Deployment"), &mut d);
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );

        // What is set stays: 0 replicas, Recreate (no rollingUpdate), a maxSurge of 1.
        let mut d = json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 0}});
        apply(&def("Deployment"), &mut d);
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(d["spec"]["revisionHistoryLimit"], 0);
        let mut d = json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}});
        apply(&def("Deployment"), &mut d);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}})
        );

        // Other kinds are left alone; a spec that is not an object is not touched.
        let mut cm = json!({"data": {}});
        apply(&def("ConfigMap"), &mut cm);
        assert_eq!(cm, json!({"data": {}}));
        let mut odd = json!({"spec": "x"});
        apply(&def("Deployment"), &mut odd);
        assert_eq!(odd, json!({"spec": "x"}));
    }

    #[test]
    fn initial_status_fills_what_go_writes() {
        let mut d = json!({"spec": {}});
        initial_status(&def("Deployment"), &mut d);
        assert_eq!(d["status"], json!({}));
        let mut s = json!({"spec": {}, "status": {"conditions": []}});
        initial_status(&def("Service"), &mut s);
        assert_eq!(s["status"], json!({"conditions": [], "loadBalancer": {}}));
        let mut cm = json!({});
        initial_status(&def("ConfigMap"), &mut cm);
        assert_eq!(cm, json!({}));
    }
}
