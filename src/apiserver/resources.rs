//! What the server serves: resource definitions for the built-in kinds and for registered CRDs.

use super::table::{self, Column};
use serde_json::{Value, json};

/// One served resource (a group/version/plural).
#[derive(Clone, Debug)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// Whether `/status` is a subresource (writes to the main resource then ignore status).
    pub status_subresource: bool,
    /// The structural schema of the whole object, for custom resources.
    pub schema: Option<Value>,
    pub columns: Vec<Column>,
    /// Where objects live: two resources may share a store (core/v1 and events.k8s.io/v1 Events).
    pub store: StoreKey,
    /// Whether `generation` tracks spec changes (custom resources and most built-ins).
    pub tracks_generation: bool,
    /// A custom resource's `selectableFields` as field labels (`spec.color`).
    pub selectable_fields: Vec<String>,
    /// Whether objects can be written; the workload kinds nothing here runs are served for
    /// reading only (always empty), so that `kubectl apply --prune` and other clients that
    /// list them find them.
    pub writable: bool,
}

/// Identity of an object store: (group, plural) of the storage resource.
pub type StoreKey = (String, String);

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `kind.group` as the real server names a resource in error messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// `plural.group`, as in "customers.csp.operator.dev".
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn is_crd(&self) -> bool {
        self.group == "apiextensions.k8s.io" && self.plural == "customresourcedefinitions"
    }

    pub fn is_namespace(&self) -> bool {
        self.group.is_empty() && self.plural == "namespaces"
    }

    pub fn is_event(&self) -> bool {
        self.store == ("".to_string(), "events".to_string())
    }

    pub fn is_events_k8s_io(&self) -> bool {
        self.is_event() && self.group == "events.k8s.io"
    }

    /// Whether a field selector may name `label`, and if not the real server's 400 message
    /// (its field label conversion functions: per kind for the core kinds, `selectableFields`
    /// for custom resources, metadata.name and metadata.namespace for the rest).
    pub fn field_label_error(&self, label: &str) -> Option<String> {
        let metadata =
            label == "metadata.name" || (self.namespaced && label == "metadata.namespace");
        let core_fields: Option<&[&str]> = match (self.group.as_str(), self.kind.as_str()) {
            ("", "Namespace") => Some(&["status.phase"]),
            ("", "Secret") => Some(&["type"]),
            ("", "Service") => Some(&["spec.clusterIP", "spec.type"]),
            ("", "Event") => Some(&[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ]),
            _ => None,
        };
        let allowed = metadata
            || core_fields.is_some_and(|f| f.contains(&label))
            || self.selectable_fields.iter().any(|f| f == label);
        if allowed {
            None
        } else if self.schema.is_some() || core_fields.is_some() {
            Some(format!("field label not supported: {label}"))
        } else if self.is_events_k8s_io() {
            // events.k8s.io/v1 Events are selected by the core Event's fields here.
            None
        } else {
            Some(format!(
                "{label:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            ))
        }
    }
}

fn builtin(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short_names: &[&str],
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: vec![],
        namespaced,
        status_subresource: false,
        schema: None,
        columns: table::builtin_columns(group, kind),
        store: (group.into(), plural.into()),
        tracks_generation: false,
        selectable_fields: vec![],
        writable: true,
    }
}

/// The kinds every server serves from the start.
pub fn builtins() -> Vec<ResourceDef> {
    let mut namespaces = builtin("", "v1", "Namespace", "namespaces", false, &["ns"]);
    namespaces.status_subresource = true;
    let events = builtin("", "v1", "Event", "events", true, &["ev"]);
    let mut new_events = builtin("events.k8s.io", "v1", "Event", "events", true, &["ev"]);
    new_events.store = events.store.clone();
    let mut crds = builtin(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
    );
    crds.status_subresource = true;
    crds.tracks_generation = true;
    let mut rbac = vec![
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
        ),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
        ),
    ];
    let mut deployments = builtin("apps", "v1", "Deployment", "deployments", true, &["deploy"]);
    deployments.status_subresource = true;
    deployments.tracks_generation = true;
    // `kubectl get all` lists the resources in the `all` category (of those served here).
    deployments.categories = vec!["all".into()];
    let mut services = builtin("", "v1", "Service", "services", true, &["svc"]);
    services.status_subresource = true;
    services.categories = vec!["all".into()];
    let mut all = vec![
        namespaces,
        events,
        new_events,
        builtin("", "v1", "Secret", "secrets", true, &[]),
        builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"]),
        builtin("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"]),
        services,
        builtin("coordination.k8s.io", "v1", "Lease", "leases", true, &[]),
        crds,
        deployments,
    ];
    all.append(&mut rbac);
    all.extend(read_only_builtins());
    all
}

/// The kinds of kubectl's default `--prune` allowlist (kubectl 1.32) that nothing here stores
/// or runs: served for reading (always empty), so that discovery maps them and lists succeed.
fn read_only_builtins() -> Vec<ResourceDef> {
    // (group, kind, plural, namespaced, short names, in the `all` category)
    type ReadOnlyKind = (
        &'static str,
        &'static str,
        &'static str,
        bool,
        &'static [&'static str],
        bool,
    );
    const KINDS: &[ReadOnlyKind] = &[
        ("", "Endpoints", "endpoints", true, &["ep"], false),
        (
            "",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            false,
        ),
        (
            "",
            "PersistentVolume",
            "persistentvolumes",
            false,
            &["pv"],
            false,
        ),
        ("", "Pod", "pods", true, &["po"], true),
        (
            "",
            "ReplicationController",
            "replicationcontrollers",
            true,
            &["rc"],
            true,
        ),
        ("batch", "Job", "jobs", true, &[], true),
        ("batch", "CronJob", "cronjobs", true, &["cj"], true),
        (
            "networking.k8s.io",
            "Ingress",
            "ingresses",
            true,
            &["ing"],
            false,
        ),
        ("apps", "DaemonSet", "daemonsets", true, &["ds"], true),
        ("apps", "ReplicaSet", "replicasets", true, &["rs"], true),
        ("apps", "StatefulSet", "statefulsets", true, &["sts"], true),
    ];
    KINDS
        .iter()
        .map(|(group, kind, plural, namespaced, short, in_all)| {
            let mut def = builtin(group, "v1", kind, plural, *namespaced, short);
            def.writable = false;
            if *in_all {
                def.categories = vec!["all".into()];
            }
            def
        })
        .collect()
}

/// Resource definitions for every served version of a CRD object.
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceDef>, String> {
    let spec = crd.get("spec").ok_or("spec is required")?;
    let group = str_at(spec, "group").ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let plural = str_at(names, "plural").ok_or("spec.names.plural is required")?;
    let kind = str_at(names, "kind").ok_or("spec.names.kind is required")?;
    let singular = str_at(names, "singular").unwrap_or_else(|| kind.to_lowercase());
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = str_at(spec, "scope").as_deref() != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is required")?;
    let mut defs = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let version = str_at(v, "name").ok_or("spec.versions[].name is required")?;
        defs.push(ResourceDef {
            group: group.clone(),
            version,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            namespaced,
            status_subresource: v.pointer("/subresources/status").is_some(),
            schema: v.pointer("/schema/openAPIV3Schema").cloned(),
            columns: table::columns_from_crd(
                v.get("additionalPrinterColumns").unwrap_or(&Value::Null),
            ),
            store: (group.clone(), plural.clone()),
            tracks_generation: true,
            selectable_fields: v
                .get("selectableFields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                .map(|p| p.trim_start_matches('.').to_string())
                .collect(),
            writable: true,
        });
    }
    Ok(defs)
}

fn str_at(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(String::from)
}

/// The status a CRD gets once its names are accepted.
pub fn crd_status(crd: &Value, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let cond = |t: &str, reason: &str, message: &str| json!({"type": t, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now});
    let mut conditions = vec![
        cond("NamesAccepted", "NoConflicts", "no conflicts found"),
        cond(
            "Established",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ),
    ];
    // A CRD written while it is being deleted stays Terminating.
    if crd.pointer("/metadata/deletionTimestamp").is_some() {
        conditions.push(cond(
            "Terminating",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        ));
    }
    json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": conditions,
    })
}

/// core/v1 Event <-> events.k8s.io/v1 Event: one store (core/v1 shape), two views.
pub mod event_view {
    use serde_json::{Map, Value};

    const PAIRS: &[(&str, &str)] = &[
        ("involvedObject", "regarding"),
        ("message", "note"),
        ("reportingComponent", "reportingController"),
        ("source", "deprecatedSource"),
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
    ];

    /// Stored core/v1 shape -> events.k8s.io/v1 view.
    pub fn to_new(stored: &Value) -> Value {
        let mut out = rename(stored, false);
        if let Some(o) = out.as_object_mut() {
            o.insert("apiVersion".into(), "events.k8s.io/v1".into());
            o.insert("kind".into(), "Event".into());
        }
        out
    }

    /// events.k8s.io/v1 view -> stored core/v1 shape (count and lastTimestamp follow the series).
    pub fn from_new(view: &Value) -> Value {
        let mut out = rename(view, true);
        if let Some(o) = out.as_object_mut() {
            o.insert("apiVersion".into(), "v1".into());
            o.insert("kind".into(), "Event".into());
            if let Some(series) = o.get("series").cloned() {
                if let Some(c) = series.get("count") {
                    o.insert("count".into(), c.clone());
                }
                if let Some(t) = series.get("lastObservedTime") {
                    o.insert("lastTimestamp".into(), truncate_micro(t));
                }
            }
            if !o.contains_key("count") {
                o.insert("count".into(), 1.into());
            }
            if !o.contains_key("lastTimestamp")
                && let Some(t) = o.get("eventTime")
            {
                let t = truncate_micro(t);
                o.insert("lastTimestamp".into(), t.clone());
                o.entry("firstTimestamp").or_insert(t);
            }
        }
        out
    }

    /// MicroTime ("...123456Z") -> Time ("...Z"), as lastTimestamp is second-precision.
    fn truncate_micro(t: &Value) -> Value {
        match t.as_str() {
            Some(s) => match s.find('.') {
                Some(i) => Value::String(format!("{}Z", &s[..i])),
                None => t.clone(),
            },
            None => t.clone(),
        }
    }

    fn rename(v: &Value, new_to_core: bool) -> Value {
        let Some(src) = v.as_object() else {
            return v.clone();
        };
        let mut out = Map::new();
        for (k, val) in src {
            let key = PAIRS
                .iter()
                .find_map(|(core, new)| {
                    if new_to_core && k == new {
                        Some(*core)
                    } else if !new_to_core && k == core {
                        Some(*new)
                    } else {
                        None
                    }
                })
                .unwrap_or(k.as_str());
            out.insert(key.to_string(), val.clone());
        }
        Value::Object(out)
    }
}
