//! The self-review endpoints kubectl's `auth can-i` and `auth whoami` call: SelfSubjectAccessReview
//! and SelfSubjectRulesReview (authorization.k8s.io/v1, answered by the RBAC rules) and
//! SelfSubjectReview (authentication.k8s.io/v1, the requester's identity). Create-only, never
//! stored, as on the real server.

use super::error::ApiError;
use super::rbac::{self, Attributes, RbacObjects, User};
use serde_json::{Value, json};

/// One review resource: (group, version, plural, kind).
pub type Review = (&'static str, &'static str, &'static str, &'static str);

/// The review resources, for discovery (create is their only verb; none is namespaced).
pub const REVIEWS: &[Review] = &[
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
    ),
];

/// The user a request acts as: the impersonated user, or (without impersonation) the kubeconfig
/// user, who is the cluster admin.
pub fn requester(user: Option<&User>) -> User {
    user.cloned().unwrap_or_else(|| User {
        name: "admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    })
}

/// The review a path names, if any (`/apis/{group}/{version}/{plural}`).
pub fn review_at(segs: &[&str]) -> Option<&'static Review> {
    match segs {
        ["apis", g, v, plural] => REVIEWS
            .iter()
            .find(|(rg, rv, rp, _)| rg == g && rv == v && rp == plural),
        _ => None,
    }
}

/// Answers a POSTed review (`body` already parsed) for `user` (the requester).
pub fn answer(
    review: &Review,
    body: &Value,
    user: &User,
    objects: &RbacObjects,
) -> Result<Value, ApiError> {
    let (group, version, _, kind) = *review;
    let status = match kind {
        "SelfSubjectReview" => json!({"userInfo": {"username": user.name, "groups": user.groups}}),
        "SelfSubjectAccessReview" => access_review(body, user, objects)?,
        _ => rules_review(body, user, objects)?,
    };
    let mut out = json!({
        "kind": kind,
        "apiVersion": format!("{group}/{version}"),
        "metadata": {"creationTimestamp": null},
        "status": status,
    });
    if let Some(spec) = body.get("spec") {
        out["spec"] = spec.clone();
    }
    Ok(out)
}

/// `status` of a SelfSubjectAccessReview: whether the requester may do what its spec names
/// (a resource request or a non-resource URL).
fn access_review(body: &Value, user: &User, objects: &RbacObjects) -> Result<Value, ApiError> {
    let resource = body.pointer("/spec/resourceAttributes");
    let non_resource = body.pointer("/spec/nonResourceAttributes");
    let allowed = match (resource, non_resource) {
        (Some(a), None) => {
            let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
            let attrs = Attributes {
                user,
                verb: s("verb"),
                api_group: s("group"),
                resource: s("resource"),
                subresource: s("subresource"),
                name: s("name"),
                namespace: s("namespace"),
            };
            is_admin(user)
                || rbac::authorize(objects, &attrs).is_ok()
                || bootstrap_rules(user)
                    .iter()
                    .any(|r| rbac::rule_grants(r, &attrs))
        }
        (None, Some(a)) => {
            let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
            let (verb, path) = (s("verb"), s("path"));
            is_admin(user)
                || rbac::granted_rules(objects, user, "")
                    .into_iter()
                    .chain(bootstrap_rules(user).iter())
                    .any(|r| rbac::rule_grants_non_resource(r, verb, path))
        }
        _ => {
            return Err(ApiError::invalid(
                "SelfSubjectAccessReview.authorization.k8s.io",
                "",
                vec![super::admission::schema::Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
                    field: "spec.resourceAttributes".into(),
                }],
            ));
        }
    };
    // The RBAC authorizer gives no reason for a denial; an allowance is the decision alone here.
    Ok(json!({"allowed": allowed}))
}

/// `status` of a SelfSubjectRulesReview: every rule the requester has in `spec.namespace`.
fn rules_review(body: &Value, user: &User, objects: &RbacObjects) -> Result<Value, ApiError> {
    let namespace = body
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if namespace.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    let admin = if is_admin(user) {
        cluster_admin_rules()
    } else {
        vec![]
    };
    let bootstrap = bootstrap_rules(user);
    let granted = rbac::granted_rules(objects, user, namespace);
    for rule in admin.iter().chain(granted).chain(bootstrap.iter()) {
        let field = |k: &str| rule.get(k).cloned().unwrap_or_else(|| json!([]));
        if rule.get("nonResourceURLs").is_some() {
            non_resource_rules.push(
                json!({"verbs": field("verbs"), "nonResourceURLs": field("nonResourceURLs")}),
            );
        } else {
            let mut r = json!({"verbs": field("verbs"), "apiGroups": field("apiGroups"), "resources": field("resources")});
            if let Some(names) = rule.get("resourceNames") {
                r["resourceNames"] = names.clone();
            }
            resource_rules.push(r);
        }
    }
    Ok(json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    }))
}

/// `system:masters` may do anything (the real server's privileged group, ahead of RBAC).
fn is_admin(user: &User) -> bool {
    user.groups.iter().any(|g| g == "system:masters")
}

/// What a real cluster binds `system:masters` to: the `cluster-admin` ClusterRole.
fn cluster_admin_rules() -> Vec<Value> {
    vec![
        json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
        json!({"verbs": ["*"], "nonResourceURLs": ["*"]}),
    ]
}

/// The rules of the bootstrap policy every real cluster has and this server acts on (it answers
/// the reviews and discovery to everyone): `system:basic-user` and `system:discovery` for
/// authenticated users, `system:public-info-viewer` for everyone.
fn bootstrap_rules(user: &User) -> Vec<Value> {
    let public_info = json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]});
    if !user.groups.iter().any(|g| g == "system:authenticated") {
        return vec![public_info];
    }
    vec![
        json!({"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]}),
        json!({"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}),
        json!({"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]}),
        public_info,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User::impersonated(Some(name), vec![]).unwrap().unwrap()
    }

    fn objects() -> RbacObjects {
        RbacObjects {
            roles: vec![
                json!({"metadata": {"name": "reader", "namespace": "a"}, "rules": [
                    {"apiGroups": ["csp.operator.dev"], "resources": ["customers"], "verbs": ["get"]}
                ]}),
            ],
            role_bindings: vec![json!({"metadata": {"name": "b", "namespace": "a"},
                "roleRef": {"kind": "Role", "name": "reader"}, "subjects": [{"kind": "User", "name": "bob"}]})],
            cluster_roles: vec![json!({"metadata": {"name": "metrics"}, "rules": [
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
            ]})],
            cluster_role_bindings: vec![json!({"metadata": {"name": "m"},
                "roleRef": {"kind": "ClusterRole", "name": "metrics"}, "subjects": [{"kind": "User", "name": "bob"}]})],
        }
    }

    fn can(u: &User, spec: Value) -> bool {
        let review = review_at(&[
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ])
        .unwrap();
        answer(review, &json!({"spec": spec}), u, &objects()).unwrap()["status"]["allowed"]
            == json!(true)
    }

    #[test]
    fn access_reviews_follow_rbac() {
        let bob = user("bob");
        let get = |ns: &str| json!({"resourceAttributes": {"verb": "get", "group": "csp.operator.dev", "resource": "customers", "namespace": ns}});
        assert!(can(&bob, get("a")));
        assert!(!can(&bob, get("b")));
        assert!(can(&requester(None), get("b")));
        assert!(can(
            &bob,
            json!({"nonResourceAttributes": {"verb": "get", "path": "/metrics"}})
        ));
        assert!(can(
            &bob,
            json!({"nonResourceAttributes": {"verb": "get", "path": "/apis/x"}})
        ));
        assert!(!can(
            &bob,
            json!({"nonResourceAttributes": {"verb": "get", "path": "/logs"}})
        ));
        assert!(!can(
            &user("eve"),
            json!({"nonResourceAttributes": {"verb": "get", "path": "/metrics"}})
        ));
    }

    #[test]
    fn rules_reviews_list_the_namespace_rules() {
        let review = review_at(&[
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectrulesreviews",
        ])
        .unwrap();
        let out = answer(
            review,
            &json!({"spec": {"namespace": "a"}}),
            &user("bob"),
            &objects(),
        )
        .unwrap();
        let rules = out["status"]["resourceRules"].as_array().unwrap();
        assert!(
            rules.iter().any(|r| r["resources"] == json!(["customers"])),
            "{out}"
        );
        assert!(answer(review, &json!({"spec": {}}), &user("bob"), &objects()).is_err());
    }
}
