//! RBAC for token users and impersonated requests, with the semantics of Kubernetes' RBAC authorizer: Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings as stored (rbac.authorization.k8s.io/v1).
//! The admin (the kubeconfig's token) never gets here; `system:masters` may do anything.

use super::error::ApiError;
use serde_json::{Value, json};

/// The stored RBAC objects, as JSON.
#[derive(Clone, Debug, Default)]
pub struct RbacObjects {
    pub roles: Vec<Value>,
    pub cluster_roles: Vec<Value>,
    pub role_bindings: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
}

/// The user a request acts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    /// The user the `Impersonate-User` / `Impersonate-Group` headers name, with the groups the
    /// real server adds: `system:serviceaccounts` and `system:serviceaccounts:<ns>` for a service
    /// account when no group is requested, and `system:authenticated` for everyone but
    /// `system:anonymous` (who gets `system:unauthenticated`). `Ok(None)` without impersonation.
    pub fn impersonated(user: Option<&str>, groups: Vec<String>) -> Result<Option<User>, ApiError> {
        let Some(name) = user.filter(|u| !u.is_empty()) else {
            if groups.is_empty() {
                return Ok(None);
            }
            let requested: Vec<String> = groups.iter().map(|g| format!("{{Group {g}}}")).collect();
            return Err(ApiError::internal(format!(
                "requested [{}] without impersonating a user",
                requested.join(" ")
            )));
        };
        let mut groups = groups;
        if groups.is_empty()
            && let Some((ns, _)) = split_service_account(name)
        {
            groups = vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
        let everyone = if name == "system:anonymous" {
            "system:unauthenticated"
        } else {
            "system:authenticated"
        };
        if !groups
            .iter()
            .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
        {
            groups.push(everyone.to_string());
        }
        Ok(Some(User {
            name: name.to_string(),
            groups,
        }))
    }
}

/// Members of `system:masters` may do anything, as the real server's privileged-group
/// authorizer allows them before RBAC is asked.
pub fn is_master(user: &User) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
}

/// `system:serviceaccount:<ns>:<name>` split into (ns, name).
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// What a resource request asks, as the real server's authorizer sees it.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    pub user: &'a User,
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'a str,
    pub api_group: &'a str,
    /// The plural.
    pub resource: &'a str,
    pub subresource: &'a str,
    /// Empty for lists and creates.
    pub name: &'a str,
    /// Empty at the cluster scope.
    pub namespace: &'a str,
}

/// Allowed, or the forbidden message (`User "alice" cannot patch resource ...`).
pub fn authorize(objects: &RbacObjects, attrs: &Attributes) -> Result<(), String> {
    let user = attrs.user;
    if is_master(user) {
        return Ok(());
    }
    let granted = |rules: &[&Value]| rules.iter().any(|r| rule_allows(r, attrs));
    for crb in &objects.cluster_role_bindings {
        if applies_to(user, crb, "")
            && str_at(crb, "/roleRef/kind") == "ClusterRole"
            && granted(&cluster_role_rules(objects, str_at(crb, "/roleRef/name")))
        {
            return Ok(());
        }
    }
    if !attrs.namespace.is_empty() {
        for rb in &objects.role_bindings {
            if str_at(rb, "/metadata/namespace") != attrs.namespace
                || !applies_to(user, rb, attrs.namespace)
            {
                continue;
            }
            let role = str_at(rb, "/roleRef/name");
            let rules = match str_at(rb, "/roleRef/kind") {
                "ClusterRole" => cluster_role_rules(objects, role),
                "Role" => objects
                    .roles
                    .iter()
                    .filter(|r| {
                        str_at(r, "/metadata/namespace") == attrs.namespace
                            && str_at(r, "/metadata/name") == role
                    })
                    .flat_map(rules_of)
                    .collect(),
                _ => vec![],
            };
            if granted(&rules) {
                return Ok(());
            }
        }
    }
    Err(forbidden_message(attrs))
}

/// The message of a denial, worded as the real server.
pub fn forbidden_message(attrs: &Attributes) -> String {
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", attrs.namespace)
    };
    format!(
        "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
        attrs.user.name, attrs.verb, resource, attrs.api_group
    )
}

/// The 403 the real server answers: `<resource>.<group> "<name>" is forbidden: <message>`.
pub fn forbidden(attrs: &Attributes, message: &str) -> ApiError {
    let qualified = if attrs.api_group.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}.{}", attrs.resource, attrs.api_group)
    };
    let mut e = ApiError::forbidden(if attrs.name.is_empty() {
        format!("{qualified} is forbidden: {message}")
    } else {
        format!("{qualified} {:?} is forbidden: {message}", attrs.name)
    });
    e.details = Some(json!({"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}));
    e
}

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn strings<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a str> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

pub(super) fn rules_of(role: &Value) -> Vec<&Value> {
    role.get("rules")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

/// A ClusterRole's rules; an aggregated ClusterRole (`aggregationRule`) also has the rules of
/// every ClusterRole its selectors match, as the aggregation controller would write them.
pub(super) fn cluster_role_rules<'a>(objects: &'a RbacObjects, name: &str) -> Vec<&'a Value> {
    let Some(role) = objects
        .cluster_roles
        .iter()
        .find(|r| str_at(r, "/metadata/name") == name)
    else {
        return vec![];
    };
    let mut rules = rules_of(role);
    let selectors: Vec<&Value> = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    if !selectors.is_empty() {
        for other in &objects.cluster_roles {
            if str_at(other, "/metadata/name") != name
                && selectors.iter().any(|s| selector_matches(s, other))
            {
                rules.extend(rules_of(other));
            }
        }
    }
    rules
}

/// A metav1.LabelSelector (matchLabels, matchExpressions) against an object's labels.
fn selector_matches(selector: &Value, obj: &Value) -> bool {
    let label = |k: &str| obj.pointer("/metadata/labels").and_then(|l| l.get(k));
    let labels_ok = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| label(k) == Some(v)));
    let exprs_ok = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|es| {
            es.iter().all(|e| {
                let have = label(str_at(e, "/key")).and_then(Value::as_str);
                let mut values = strings(e, "values");
                match str_at(e, "/operator") {
                    "In" => have.is_some_and(|h| values.any(|v| v == h)),
                    "NotIn" => have.is_none_or(|h| !values.any(|v| v == h)),
                    "Exists" => have.is_some(),
                    "DoesNotExist" => have.is_none(),
                    _ => false,
                }
            })
        });
    // An empty selector matches nothing in aggregation (as the controller treats it).
    let empty = selector.get("matchLabels").is_none() && selector.get("matchExpressions").is_none();
    !empty && labels_ok && exprs_ok
}

/// Whether a binding's subjects include the user (ServiceAccount subjects default their
/// namespace to the binding's).
pub(super) fn applies_to(user: &User, binding: &Value, namespace: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let name = str_at(s, "/name");
        match str_at(s, "/kind") {
            "User" => user.name == name,
            "Group" => user.groups.iter().any(|g| g == name),
            "ServiceAccount" => {
                let ns = match str_at(s, "/namespace") {
                    "" => namespace,
                    ns => ns,
                };
                !ns.is_empty()
                    && split_service_account(&user.name)
                        .is_some_and(|(uns, un)| uns == ns && un == name)
            }
            _ => false,
        }
    })
}

fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verb_ok = strings(rule, "verbs").any(|v| v == "*" || v == attrs.verb);
    let group_ok = strings(rule, "apiGroups").any(|g| g == "*" || g == attrs.api_group);
    let resource_ok = strings(rule, "resources").any(|r| {
        if r == "*" {
            return true;
        }
        if attrs.subresource.is_empty() {
            return r == attrs.resource;
        }
        r.strip_prefix(attrs.resource)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|s| s == attrs.subresource)
            || r.strip_prefix("*/") == Some(attrs.subresource)
    });
    let mut names = strings(rule, "resourceNames").peekable();
    // A rule with resourceNames never grants a create of the resource (the name is not known
    // when the real server authorises it, even when a client puts one in the path), nor
    // anything without a name.
    let creates_resource = attrs.verb == "create" && attrs.subresource.is_empty();
    let nameless = attrs.name.is_empty() || creates_resource;
    let name_ok = names.peek().is_none() || (!nameless && names.any(|n| n == attrs.name));
    verb_ok && group_ok && resource_ok && name_ok
}

/// For list and watch, a `metadata.name=<n>` field selector names the object (as on the real
/// server, so `resourceNames` rules apply to `kubectl get <kind> <name> -w`).
pub fn name_from_field_selector(selector: &str) -> Option<&str> {
    selector.split(',').find_map(|term| {
        let (k, v) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(k, _)| !k.ends_with('!'))?;
        (k.trim() == "metadata.name").then(|| v.trim())
    })
}

/// Every rule the user is granted in `namespace` ("" for the cluster scope only): the rules of
/// the ClusterRoleBindings that name them, then those of the RoleBindings in the namespace (what
/// a SelfSubjectRulesReview lists, and what non-resource URLs are checked against).
pub fn granted_rules<'a>(objects: &'a RbacObjects, user: &User, namespace: &str) -> Vec<&'a Value> {
    let mut rules = Vec::new();
    for crb in &objects.cluster_role_bindings {
        if applies_to(user, crb, "") && str_at(crb, "/roleRef/kind") == "ClusterRole" {
            rules.extend(cluster_role_rules(objects, str_at(crb, "/roleRef/name")));
        }
    }
    if namespace.is_empty() {
        return rules;
    }
    for rb in &objects.role_bindings {
        if str_at(rb, "/metadata/namespace") != namespace || !applies_to(user, rb, namespace) {
            continue;
        }
        let role = str_at(rb, "/roleRef/name");
        match str_at(rb, "/roleRef/kind") {
            "ClusterRole" => rules.extend(cluster_role_rules(objects, role)),
            "Role" => rules.extend(
                objects
                    .roles
                    .iter()
                    .filter(|r| {
                        str_at(r, "/metadata/namespace") == namespace
                            && str_at(r, "/metadata/name") == role
                    })
                    .flat_map(rules_of),
            ),
            _ => {}
        }
    }
    rules
}

/// Whether a rule grants a resource request (RBAC's rule matching).
pub fn rule_grants(rule: &Value, attrs: &Attributes) -> bool {
    rule_allows(rule, attrs)
}

/// Whether a rule grants `verb` on the non-resource URL `path`: a listed URL equal to it, `*`,
/// or a prefix ending in `*` (RBAC's `NonResourceURLMatches`).
pub fn rule_grants_non_resource(rule: &Value, verb: &str, path: &str) -> bool {
    let verb_ok = strings(rule, "verbs").any(|v| v == "*" || v == verb);
    let url_ok = strings(rule, "nonResourceURLs")
        .any(|u| u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p)));
    verb_ok && url_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> User {
        User::impersonated(Some(name), groups.iter().map(|g| g.to_string()).collect())
            .unwrap()
            .unwrap()
    }

    fn attrs<'a>(
        user: &'a User,
        verb: &'a str,
        resource: &'a str,
        name: &'a str,
        namespace: &'a str,
    ) -> Attributes<'a> {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            user,
            verb,
            api_group: "csp.operator.dev",
            resource,
            subresource,
            name,
            namespace,
        }
    }

    const RESOURCES: [&str; 4] = [
        "customers",
        "azuresubscriptions",
        "roleassignments",
        "purchasepermissions",
    ];

    fn cluster_role(name: &str, verbs: &[&str]) -> Value {
        json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": [
            {"apiGroups": ["csp.operator.dev"], "resources": RESOURCES, "verbs": verbs}
        ]})
    }

    fn binding(kind: &str, ns: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
        let mut meta = json!({"name": format!("{role}-binding")});
        if !ns.is_empty() {
            meta["namespace"] = ns.into();
        }
        json!({"kind": kind, "metadata": meta, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}})
    }

    fn objects() -> RbacObjects {
        RbacObjects {
            cluster_roles: vec![
                cluster_role(
                    "csp-admin-agent",
                    &[
                        "create",
                        "get",
                        "list",
                        "watch",
                        "update",
                        "patch",
                        "delete",
                        "deletecollection",
                    ],
                ),
                cluster_role("csp-sales-agent", &["get", "list", "watch"]),
                json!({"kind": "ClusterRole", "metadata": {"name": "status-writer"}, "rules": [
                    {"apiGroups": ["csp.operator.dev"], "resources": ["purchasepermissions/status"], "verbs": ["patch", "update"]}
                ]}),
                json!({"kind": "ClusterRole", "metadata": {"name": "any-status"}, "rules": [
                    {"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]}
                ]}),
                json!({"kind": "ClusterRole", "metadata": {"name": "namespace-reader"}, "rules": [
                    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list"]}
                ]}),
            ],
            roles: vec![
                json!({"kind": "Role", "metadata": {"name": "contoso-only", "namespace": "partner-a"}, "rules": [
                    {"apiGroups": ["csp.operator.dev"], "resources": ["purchasepermissions"], "resourceNames": ["contoso"], "verbs": ["get", "patch"]}
                ]}),
                json!({"kind": "Role", "metadata": {"name": "contoso-only", "namespace": "partner-b"}, "rules": [
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
                ]}),
            ],
            role_bindings: vec![
                binding(
                    "RoleBinding",
                    "partner-a",
                    "ClusterRole",
                    "csp-sales-agent",
                    json!([{"kind": "User", "name": "sales1"}, {"kind": "Group", "name": "sales"}]),
                ),
                binding(
                    "RoleBinding",
                    "partner-a",
                    "ClusterRole",
                    "csp-admin-agent",
                    json!([
                        {"kind": "ServiceAccount", "name": "robot", "namespace": "ops"},
                        {"kind": "ServiceAccount", "name": "local"}
                    ]),
                ),
                binding(
                    "RoleBinding",
                    "partner-a",
                    "Role",
                    "contoso-only",
                    json!([{"kind": "User", "name": "carol"}]),
                ),
                binding(
                    "RoleBinding",
                    "partner-a",
                    "ClusterRole",
                    "status-writer",
                    json!([{"kind": "User", "name": "statusbot"}]),
                ),
            ],
            cluster_role_bindings: vec![
                binding(
                    "ClusterRoleBinding",
                    "",
                    "ClusterRole",
                    "csp-sales-agent",
                    json!([{"kind": "User", "name": "auditor"}]),
                ),
                binding(
                    "ClusterRoleBinding",
                    "",
                    "ClusterRole",
                    "any-status",
                    json!([{"kind": "Group", "name": "system:serviceaccounts:ops"}]),
                ),
                binding(
                    "ClusterRoleBinding",
                    "",
                    "ClusterRole",
                    "namespace-reader",
                    json!([{"kind": "Group", "name": "system:authenticated"}]),
                ),
            ],
        }
    }

    fn allowed(u: &User, verb: &str, resource: &str, name: &str, ns: &str) -> bool {
        authorize(&objects(), &attrs(u, verb, resource, name, ns)).is_ok()
    }

    #[test]
    fn impersonation_groups() {
        assert_eq!(User::impersonated(None, vec![]).unwrap(), None);
        assert!(User::impersonated(None, vec!["sales".into()]).is_err());
        assert_eq!(
            user("alice", &["sales"]).groups,
            ["sales", "system:authenticated"]
        );
        assert_eq!(
            user("system:serviceaccount:ops:robot", &[]).groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ops",
                "system:authenticated"
            ]
        );
        assert_eq!(
            user("system:anonymous", &[]).groups,
            ["system:unauthenticated"]
        );
    }

    #[test]
    fn role_binding_to_cluster_role_grants_in_its_namespace_only() {
        let sales = user("sales1", &[]);
        for verb in ["get", "list", "watch"] {
            assert!(allowed(
                &sales,
                verb,
                "purchasepermissions",
                "",
                "partner-a"
            ));
        }
        assert!(allowed(&sales, "get", "customers", "contoso", "partner-a"));
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert!(!allowed(
                &sales,
                verb,
                "purchasepermissions",
                "x",
                "partner-a"
            ));
        }
        assert!(!allowed(
            &sales,
            "list",
            "purchasepermissions",
            "",
            "partner-b"
        ));
        // A RoleBinding never grants at the cluster scope (list across namespaces).
        assert!(!allowed(&sales, "list", "purchasepermissions", "", ""));
        // Other groups are not granted.
        let mut other = attrs(&sales, "get", "purchasepermissions", "", "partner-a");
        other.api_group = "apps";
        assert!(authorize(&objects(), &other).is_err());
    }

    #[test]
    fn groups_and_cluster_role_bindings() {
        let member = user("bob", &["sales"]);
        assert!(allowed(&member, "list", "customers", "", "partner-a"));
        assert!(!allowed(&member, "list", "customers", "", "partner-b"));
        let auditor = user("auditor", &[]);
        assert!(allowed(&auditor, "list", "customers", "", ""));
        assert!(allowed(&auditor, "get", "customers", "c", "partner-b"));
        assert!(!allowed(&auditor, "delete", "customers", "c", "partner-b"));
        // Bound to system:authenticated: every impersonated user.
        let mut ns = attrs(&member, "get", "namespaces", "partner-a", "partner-a");
        ns.api_group = "";
        assert!(authorize(&objects(), &ns).is_ok());
        let nobody = user("nobody", &[]);
        assert!(!allowed(&nobody, "list", "customers", "", "partner-a"));
    }

    #[test]
    fn service_account_subjects() {
        let robot = user("system:serviceaccount:ops:robot", &[]);
        assert!(allowed(&robot, "delete", "customers", "c", "partner-a"));
        assert!(!allowed(&robot, "delete", "customers", "c", "partner-b"));
        // Same name, other namespace: not the subject.
        let imposter = user("system:serviceaccount:partner-a:robot", &[]);
        assert!(!allowed(&imposter, "get", "customers", "c", "partner-a"));
        // A subject without namespace is the binding's namespace's account.
        let local = user("system:serviceaccount:partner-a:local", &[]);
        assert!(allowed(&local, "patch", "customers", "c", "partner-a"));
        let elsewhere = user("system:serviceaccount:partner-b:local", &[]);
        assert!(!allowed(&elsewhere, "patch", "customers", "c", "partner-a"));
        // A plain user named like the account is not it.
        let plain = user("robot", &[]);
        assert!(!allowed(&plain, "get", "customers", "c", "partner-a"));
        // The implicit group system:serviceaccounts:ops is bound to "*/status" get.
        assert!(allowed(
            &robot,
            "get",
            "purchasepermissions/status",
            "c",
            "partner-b"
        ));
        assert!(!allowed(
            &robot,
            "patch",
            "purchasepermissions/status",
            "c",
            "partner-b"
        ));
        // Explicit groups replace the implicit service account groups (as on the real server).
        let regrouped = user("system:serviceaccount:ops:robot", &["x"]);
        assert!(!allowed(
            &regrouped,
            "get",
            "purchasepermissions/status",
            "c",
            "partner-b"
        ));
    }

    #[test]
    fn resource_names() {
        let carol = user("carol", &[]);
        assert!(allowed(
            &carol,
            "get",
            "purchasepermissions",
            "contoso",
            "partner-a"
        ));
        assert!(allowed(
            &carol,
            "patch",
            "purchasepermissions",
            "contoso",
            "partner-a"
        ));
        assert!(!allowed(
            &carol,
            "get",
            "purchasepermissions",
            "adatum",
            "partner-a"
        ));
        // Lists and creates carry no name: resourceNames rules do not grant them.
        assert!(!allowed(
            &carol,
            "list",
            "purchasepermissions",
            "",
            "partner-a"
        ));
        assert!(!allowed(
            &carol,
            "create",
            "purchasepermissions",
            "",
            "partner-a"
        ));
        // The Role of the same name in partner-b is not the one referenced.
        assert!(!allowed(
            &carol,
            "get",
            "purchasepermissions",
            "contoso",
            "partner-b"
        ));
        assert_eq!(
            name_from_field_selector("metadata.name=contoso"),
            Some("contoso")
        );
        assert_eq!(name_from_field_selector("metadata.name!=contoso"), None);
        assert_eq!(name_from_field_selector("spec.x=1"), None);
    }

    #[test]
    fn resource_names_never_grant_creates() {
        let rule = json!({"apiGroups": ["csp.operator.dev"], "resources": ["customers"],
            "verbs": ["create", "get"], "resourceNames": ["contoso", ""]});
        let u = user("u", &[]);
        // Not even with the name in the path (POST .../customers/contoso), nor an empty name.
        assert!(!rule_allows(
            &rule,
            &attrs(&u, "create", "customers", "contoso", "ns")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs(&u, "create", "customers", "", "ns")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs(&u, "get", "customers", "", "ns")
        ));
        assert!(rule_allows(
            &rule,
            &attrs(&u, "get", "customers", "contoso", "ns")
        ));
    }

    #[test]
    fn subresources() {
        let bot = user("statusbot", &[]);
        assert!(allowed(
            &bot,
            "patch",
            "purchasepermissions/status",
            "c",
            "partner-a"
        ));
        assert!(!allowed(
            &bot,
            "patch",
            "purchasepermissions",
            "c",
            "partner-a"
        ));
        assert!(!allowed(
            &bot,
            "patch",
            "customers/status",
            "c",
            "partner-a"
        ));
        // A rule on the resource does not grant its subresources.
        let admin = user("system:serviceaccount:ops:robot", &["y"]);
        assert!(allowed(
            &admin,
            "patch",
            "purchasepermissions",
            "c",
            "partner-a"
        ));
        assert!(!allowed(
            &admin,
            "patch",
            "purchasepermissions/status",
            "c",
            "partner-a"
        ));
    }

    #[test]
    fn wildcards_and_aggregation() {
        let mut objs = objects();
        objs.role_bindings.push(binding(
            "RoleBinding",
            "partner-b",
            "Role",
            "contoso-only",
            json!([{"kind": "User", "name": "root"}]),
        ));
        let root = user("root", &[]);
        let mut a = attrs(&root, "deletecollection", "secrets", "", "partner-b");
        a.api_group = "";
        assert!(authorize(&objs, &a).is_ok());
        a.subresource = "status";
        assert!(authorize(&objs, &a).is_ok());

        objs.cluster_roles.push(json!({"kind": "ClusterRole", "metadata": {"name": "agg"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}, "rules": []}));
        objs.cluster_roles.push(json!({"kind": "ClusterRole", "metadata": {"name": "part", "labels": {"agg": "yes"}},
            "rules": [{"apiGroups": ["csp.operator.dev"], "resources": ["customers"], "verbs": ["delete"]}]}));
        objs.cluster_role_bindings.push(binding(
            "ClusterRoleBinding",
            "",
            "ClusterRole",
            "agg",
            json!([{"kind": "User", "name": "agg-user"}]),
        ));
        let u = user("agg-user", &[]);
        assert!(authorize(&objs, &attrs(&u, "delete", "customers", "c", "x")).is_ok());
        assert!(authorize(&objs, &attrs(&u, "get", "customers", "c", "x")).is_err());
    }

    #[test]
    fn messages() {
        let alice = user("alice", &[]);
        let a = attrs(
            &alice,
            "patch",
            "purchasepermissions",
            "contoso",
            "partner-a",
        );
        let msg = authorize(&objects(), &a).unwrap_err();
        assert_eq!(
            msg,
            r#"User "alice" cannot patch resource "purchasepermissions" in API group "csp.operator.dev" in the namespace "partner-a""#
        );
        let e = forbidden(&a, &msg);
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            format!(r#"purchasepermissions.csp.operator.dev "contoso" is forbidden: {msg}"#)
        );
        assert_eq!(
            e.details,
            Some(
                json!({"name": "contoso", "group": "csp.operator.dev", "kind": "purchasepermissions"})
            )
        );
        let l = attrs(&alice, "list", "purchasepermissions", "", "");
        assert_eq!(
            forbidden(&l, &authorize(&objects(), &l).unwrap_err()).message,
            r#"purchasepermissions.csp.operator.dev is forbidden: User "alice" cannot list resource "purchasepermissions" in API group "csp.operator.dev" at the cluster scope"#
        );
        let s = attrs(
            &alice,
            "patch",
            "purchasepermissions/status",
            "c",
            "partner-a",
        );
        assert!(
            authorize(&objects(), &s)
                .unwrap_err()
                .contains(r#"cannot patch resource "purchasepermissions/status" in API group"#)
        );
    }
}
