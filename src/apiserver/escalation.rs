//! RBAC escalation prevention, as the real server's `pkg/registry/rbac`: writing a Role or
//! ClusterRole needs `escalate` on it or every permission it grants; writing a binding needs
//! `bind` on the role it references or every permission that role grants.

use super::error::ApiError;
use super::rbac::{
    self, Attributes, RbacObjects, User, cluster_role_rules, rules_of, str_at, strings,
};
use serde_json::Value;
use std::collections::BTreeMap;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Who writes an RBAC object, and the RBAC objects as they stand (taken before the store's
/// lock, as the real server's authorizer reads its cache).
#[derive(Clone, Debug)]
pub struct Escalation {
    pub user: User,
    pub objects: RbacObjects,
}

/// One write of a Role, ClusterRole, RoleBinding or ClusterRoleBinding.
pub struct RbacWrite<'a> {
    /// The plural: roles, clusterroles, rolebindings or clusterrolebindings.
    pub resource: &'a str,
    /// Empty for the cluster-scoped kinds.
    pub namespace: &'a str,
    pub name: &'a str,
    pub object: &'a Value,
    /// The stored object (None on create).
    pub old: Option<&'a Value>,
}

impl Escalation {
    /// Allowed, or the 403 of the real server.
    pub fn check(&self, w: &RbacWrite) -> Result<(), ApiError> {
        if rbac::is_master(&self.user) || w.old.is_some_and(|o| only_gc_fields_differ(o, w.object))
        {
            return Ok(());
        }
        let denied = |message: String| {
            let attrs = self.attrs(
                if w.old.is_some() { "update" } else { "create" },
                RBAC_GROUP,
                w.resource,
                w.name,
                w.namespace,
            );
            rbac::forbidden(&attrs, &message)
        };
        match w.resource {
            "roles" | "clusterroles" => {
                // The real server authorises with the request's name, which a create has not.
                let name = if w.old.is_some() { w.name } else { "" };
                let escalate = self.attrs("escalate", RBAC_GROUP, w.resource, name, w.namespace);
                if rbac::authorize(&self.objects, &escalate).is_ok() {
                    return Ok(());
                }
                if w.resource == "clusterroles" && w.object.get("aggregationRule").is_some() {
                    return Err(denied(
                        "must have cluster-admin privileges to use the aggregationRule".into(),
                    ));
                }
                let rules = rules_of(w.object);
                self.confirm_no_escalation(w.namespace, &rules)
                    .map_err(denied)
            }
            "rolebindings" | "clusterrolebindings" => {
                let role_ref = w.object.get("roleRef").unwrap_or(&Value::Null);
                let (kind, role) = (str_at(role_ref, "/kind"), str_at(role_ref, "/name"));
                let role_resource = match kind {
                    "ClusterRole" => "clusterroles",
                    "Role" => "roles",
                    // Validation refuses other kinds; nothing to bind.
                    _ => return Err(denied(format!("unknown roleRef kind {kind:?}"))),
                };
                let api_group = str_at(role_ref, "/apiGroup");
                let bind = self.attrs("bind", api_group, role_resource, role, w.namespace);
                if rbac::authorize(&self.objects, &bind).is_ok() {
                    return Ok(());
                }
                let rules = self
                    .role_reference_rules(kind, role, w.namespace)
                    .map_err(&denied)?;
                self.confirm_no_escalation(w.namespace, &rules)
                    .map_err(denied)
            }
            _ => Ok(()),
        }
    }

    fn attrs<'a>(
        &'a self,
        verb: &'a str,
        api_group: &'a str,
        resource: &'a str,
        name: &'a str,
        namespace: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user: &self.user,
            verb,
            api_group,
            resource,
            subresource: "",
            name,
            namespace,
        }
    }

    /// The rules of the role a binding references (`GetRoleReferenceRules`).
    fn role_reference_rules(
        &self,
        kind: &str,
        role: &str,
        namespace: &str,
    ) -> Result<Vec<&Value>, String> {
        let named = |r: &&Value| str_at(r, "/metadata/name") == role;
        if kind == "ClusterRole" {
            if !self.objects.cluster_roles.iter().any(|r| named(&r)) {
                return Err(format!("clusterroles.{RBAC_GROUP} {role:?} not found"));
            }
            return Ok(cluster_role_rules(&self.objects, role));
        }
        self.objects
            .roles
            .iter()
            .find(|r| named(r) && str_at(r, "/metadata/namespace") == namespace)
            .map(rules_of)
            .ok_or_else(|| format!("roles.{RBAC_GROUP} {role:?} not found"))
    }

    /// Every rule the user holds in `namespace` (cluster-wide ones included): `RulesFor`.
    fn rules_held(&self, namespace: &str) -> Vec<&Value> {
        rbac::granted_rules(&self.objects, &self.user, namespace)
    }

    /// `ConfirmNoEscalation`: the user must hold every permission of `rules` in `namespace`;
    /// the message lists what is missing, worded as the real server.
    fn confirm_no_escalation(&self, namespace: &str, rules: &[&Value]) -> Result<(), String> {
        let held = self.rules_held(namespace);
        let missing: Vec<Permission> = rules
            .iter()
            .flat_map(|r| permissions(r))
            .filter(|p| !held.iter().any(|h| covers(h, p)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let groups: Vec<String> = self.user.groups.iter().map(|g| format!("{g:?}")).collect();
        Err(format!(
            "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            self.user.name,
            groups.join(" "),
            describe(&missing).join("\n")
        ))
    }
}

/// One permission: a verb on one resource (of one group, optionally one name) or on one
/// non-resource URL (`BreakdownRule`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Permission {
    Resource {
        group: String,
        resource: String,
        name: Option<String>,
        verb: String,
    },
    NonResource {
        url: String,
        verb: String,
    },
}

fn permissions(rule: &Value) -> Vec<Permission> {
    let verbs: Vec<&str> = strings(rule, "verbs").collect();
    let names: Vec<Option<String>> = match strings(rule, "resourceNames").collect::<Vec<_>>() {
        n if n.is_empty() => vec![None],
        n => n.into_iter().map(|s| Some(s.to_string())).collect(),
    };
    let mut out = Vec::new();
    for group in strings(rule, "apiGroups") {
        for resource in strings(rule, "resources") {
            for name in &names {
                for verb in &verbs {
                    out.push(Permission::Resource {
                        group: group.into(),
                        resource: resource.into(),
                        name: name.clone(),
                        verb: verb.to_string(),
                    });
                }
            }
        }
    }
    for url in strings(rule, "nonResourceURLs") {
        for verb in &verbs {
            out.push(Permission::NonResource {
                url: url.into(),
                verb: verb.to_string(),
            });
        }
    }
    out
}

/// Whether a held rule covers one permission (`ruleCovers`): wildcards only cover what they
/// name, so a `*` permission needs a `*` rule.
fn covers(held: &Value, p: &Permission) -> bool {
    let has = |key: &str, v: &str| strings(held, key).any(|s| s == "*" || s == v);
    match p {
        Permission::Resource {
            group,
            resource,
            name,
            verb,
        } => {
            let mut held_names = strings(held, "resourceNames").peekable();
            let name_ok = held_names.peek().is_none()
                || name.as_deref().is_some_and(|n| held_names.any(|h| h == n));
            has("verbs", verb)
                && has("apiGroups", group)
                && resource_covered(held, resource)
                && name_ok
        }
        Permission::NonResource { url, verb } => {
            has("verbs", verb)
                && strings(held, "nonResourceURLs").any(|h| {
                    h == "*"
                        || h == url
                        || h.strip_suffix('*')
                            .is_some_and(|prefix| url.starts_with(prefix))
                })
        }
    }
}

/// `resourceCoversAll`: `*`, the resource itself, `<resource>/*` or `*/<subresource>`.
fn resource_covered(held: &Value, resource: &str) -> bool {
    let set: Vec<&str> = strings(held, "resources").collect();
    if set.iter().any(|r| *r == "*" || *r == resource) {
        return true;
    }
    match resource.split_once('/') {
        Some((res, sub)) => set
            .iter()
            .any(|r| *r == format!("{res}/*") || *r == format!("*/{sub}")),
        None => false,
    }
}

/// The missing permissions as the real server lists them: rules that differ only in their
/// verbs merged (`CompactRules`), each as `CompactString`, sorted.
fn describe(missing: &[Permission]) -> Vec<String> {
    let mut merged: BTreeMap<(String, String, Option<String>, bool), Vec<String>> = BTreeMap::new();
    for p in missing {
        let (key, verb) = match p {
            Permission::Resource {
                group,
                resource,
                name,
                verb,
            } => ((group.clone(), resource.clone(), name.clone(), false), verb),
            Permission::NonResource { url, verb } => {
                ((String::new(), url.clone(), None, true), verb)
            }
        };
        let verbs = merged.entry(key).or_default();
        if !verbs.contains(verb) {
            verbs.push(verb.clone());
        }
    }
    let quoted = |items: &[&str]| {
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut lines: Vec<String> = merged
        .into_iter()
        .map(|((group, target, name, non_resource), verbs)| {
            let verbs: Vec<&str> = verbs.iter().map(String::as_str).collect();
            if non_resource {
                return format!(
                    "{{NonResourceURLs:[{}], Verbs:[{}]}}",
                    quoted(&[&target]),
                    quoted(&verbs)
                );
            }
            let names = name
                .map(|n| format!(", ResourceNames:[{}]", quoted(&[&n])))
                .unwrap_or_default();
            format!(
                "{{APIGroups:[{}], Resources:[{}]{names}, Verbs:[{}]}}",
                quoted(&[&group]),
                quoted(&[&target]),
                quoted(&verbs)
            )
        })
        .collect();
    lines.sort();
    lines
}

/// Whether an update changes only what garbage collection writes (ownerReferences and
/// finalizers), which needs no escalation check (`IsOnlyMutatingGCFields`).
fn only_gc_fields_differ(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "ownerReferences",
                "finalizers",
                "managedFields",
                "resourceVersion",
            ] {
                meta.remove(key);
            }
        }
        v
    };
    strip(old) == strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice() -> User {
        User {
            name: "alice".into(),
            groups: vec!["system:authenticated".into()],
        }
    }

    /// alice may create roles and rolebindings in partner-a, and read customers there.
    fn objects() -> RbacObjects {
        RbacObjects {
            roles: vec![
                json!({"metadata": {"name": "role-writer", "namespace": "partner-a"}, "rules": [
                    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "update"]},
                    {"apiGroups": ["csp.operator.dev"], "resources": ["customers"], "verbs": ["get", "list"]}
                ]}),
            ],
            cluster_roles: vec![
                json!({"metadata": {"name": "csp-admin-agent"}, "rules": [
                    {"apiGroups": ["csp.operator.dev"], "resources": ["customers"], "verbs": ["create", "get", "list", "delete"]}
                ]}),
                json!({"metadata": {"name": "reader"}, "rules": [
                    {"apiGroups": ["csp.operator.dev"], "resources": ["customers"], "verbs": ["get"]}
                ]}),
            ],
            role_bindings: vec![json!({"metadata": {"name": "w", "namespace": "partner-a"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-writer"},
                "subjects": [{"kind": "User", "name": "alice"}]})],
            cluster_role_bindings: vec![],
        }
    }

    fn check(objects: RbacObjects, resource: &str, object: Value) -> Result<(), ApiError> {
        let e = Escalation {
            user: alice(),
            objects,
        };
        e.check(&RbacWrite {
            resource,
            namespace: "partner-a",
            name: "x",
            object: &object,
            old: None,
        })
    }

    fn binding_to(role: &str) -> Value {
        json!({"metadata": {"name": "x", "namespace": "partner-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": "alice"}]})
    }

    #[test]
    fn bindings_need_bind_or_every_permission() {
        // alice holds get on customers: reader grants nothing more.
        assert!(check(objects(), "rolebindings", binding_to("reader")).is_ok());
        let e = check(objects(), "rolebindings", binding_to("csp-admin-agent")).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "rolebindings.rbac.authorization.k8s.io \"x\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"csp.operator.dev\"], Resources:[\"customers\"], Verbs:[\"create\" \"delete\"]}"
        );
        // With bind on that ClusterRole (by name), she may.
        let mut objs = objects();
        objs.roles[0]["rules"].as_array_mut().unwrap().push(json!(
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["csp-admin-agent"]}
        ));
        assert!(check(objs, "rolebindings", binding_to("csp-admin-agent")).is_ok());
        let e = check(objects(), "rolebindings", binding_to("missing")).unwrap_err();
        assert!(
            e.message
                .ends_with("clusterroles.rbac.authorization.k8s.io \"missing\" not found")
        );
    }

    #[test]
    fn roles_need_escalate_or_every_permission() {
        let wildcard = json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        let e = check(objects(), "roles", wildcard.clone()).unwrap_err();
        assert!(
            e.message
                .contains("{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}"),
            "{}",
            e.message
        );
        let held = json!({"rules": [{"apiGroups": ["csp.operator.dev"], "resources": ["customers"], "verbs": ["list"], "resourceNames": ["c"]}]});
        assert!(check(objects(), "roles", held).is_ok());
        let mut objs = objects();
        objs.roles[0]["rules"].as_array_mut().unwrap().push(json!(
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}
        ));
        assert!(check(objs, "roles", wildcard).is_ok());
        let masters = Escalation {
            user: User {
                name: "root".into(),
                groups: vec!["system:masters".into()],
            },
            objects: objects(),
        };
        let anything = json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        assert!(
            masters
                .check(&RbacWrite {
                    resource: "clusterroles",
                    namespace: "",
                    name: "x",
                    object: &anything,
                    old: None
                })
                .is_ok()
        );
    }

    #[test]
    fn coverage_of_subresources_and_urls() {
        let held = json!({"apiGroups": ["*"], "resources": ["customers/*", "*/status"], "verbs": ["get"], "nonResourceURLs": ["/healthz*"]});
        let perm = |resource: &str| Permission::Resource {
            group: "g".into(),
            resource: resource.into(),
            name: None,
            verb: "get".into(),
        };
        assert!(covers(&held, &perm("customers/scale")));
        assert!(covers(&held, &perm("pods/status")));
        assert!(!covers(&held, &perm("pods")));
        assert!(covers(
            &held,
            &Permission::NonResource {
                url: "/healthz/ping".into(),
                verb: "get".into()
            }
        ));
        assert!(!covers(
            &held,
            &Permission::NonResource {
                url: "/metrics".into(),
                verb: "get".into()
            }
        ));
    }
}
