//! Azure Resource Manager role assignments at a subscription's scope (Microsoft.Authorization
//! 2022-04-01): list, get, create (PUT) and delete, behind ARM's token, tenant, delegated-admin
//! and throttling checks.
//!
//! A partner user reaches a customer's subscription with a token from the customer's tenant
//! (delegated admin); Admin agents hold Owner there, other agents nothing (403
//! `AuthorizationFailed`). Every answer carries `x-ms-ratelimit-remaining-subscription-{kind}`.

use super::limits::{ArmOperation, Bucket, Limits, Verdict};
use super::route::{Route, Service};
use super::state::{Answer, Req, State, now_rfc3339};
use super::tokens::{self, ARM_RESOURCE, BearerError, Caller};
use super::world::{SeedRoleAssignment, is_guid, role_definition_guid};
use serde_json::{Value, json};
use std::time::Instant;

const API_VERSIONS: [&str; 6] = [
    "2015-07-01",
    "2018-01-01-preview",
    "2020-04-01-preview",
    "2020-10-01-preview",
    "2022-01-01-preview",
    "2022-04-01",
];
const MAX_ASSIGNMENTS: usize = 4000;

/// A role assignment at a subscription's scope.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub name: String,
    pub principal_id: String,
    pub principal_type: String,
    /// The role definition's GUID (lower case).
    pub role: String,
    pub created_on: String,
    pub updated_on: String,
    pub created_by: String,
}

impl Assignment {
    pub fn seeded(seed: SeedRoleAssignment) -> Option<Assignment> {
        let now = now_rfc3339();
        Some(Assignment {
            name: seed.name.to_ascii_lowercase(),
            principal_id: seed.principal_id.to_ascii_lowercase(),
            principal_type: seed.principal_type,
            role: role_definition_guid(&seed.role_definition)?,
            created_on: now.clone(),
            updated_on: now,
            created_by: String::new(),
        })
    }

    fn json(&self, subscription: &str) -> Value {
        let scope = format!("/subscriptions/{subscription}");
        json!({
            "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", self.name),
            "name": self.name,
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                "roleDefinitionId": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{}", self.role),
                "principalId": self.principal_id,
                "principalType": self.principal_type,
                "scope": scope,
                "condition": null,
                "conditionVersion": null,
                "createdOn": self.created_on,
                "updatedOn": self.updated_on,
                "createdBy": self.created_by,
                "updatedBy": self.created_by,
                "delegatedManagedIdentityResourceId": null,
                "description": null,
            },
        })
    }
}

/// `{"error": {"code", "message"}}`.
pub fn arm_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// Every ARM request.
pub fn handle(
    state: &mut State,
    limits: &Limits,
    req: &Req,
    route: &Route,
    now: Instant,
) -> Answer {
    let subscription = match route {
        Route::RoleAssignments { subscription } | Route::RoleAssignment { subscription, .. } => {
            subscription.clone()
        }
        _ => {
            let text = format!(
                "No HTTP resource was found that matches the request URI '{}'.",
                req.path
            );
            return arm_error(404, "InvalidResourceType", &text);
        }
    };
    let caller = match caller_for(state, req, &subscription) {
        Ok(c) => c,
        Err(refusal) => return refusal,
    };
    let op = ArmOperation::of(&req.method);
    let bucket = match op {
        ArmOperation::Read => limits.arm_reads,
        ArmOperation::Write => limits.arm_writes,
        ArmOperation::Delete => limits.arm_deletes,
    };
    let header = format!(
        "x-ms-ratelimit-remaining-subscription-{}",
        op.header_suffix()
    );
    let remaining = match throttle(state, &subscription, op, bucket, now) {
        Ok(remaining) => remaining,
        Err(refusal) => return refusal.with_header(&header, "0"),
    };
    let answer = match check_api_version(req) {
        Err(refusal) => refusal,
        Ok(()) => match authorize(state, &caller, req, &subscription, op) {
            Err(refusal) => refusal,
            Ok(()) => endpoint(state, &caller, req, route, &subscription),
        },
    };
    answer
        .with_header(&header, remaining.to_string())
        .with_header("x-ms-request-id", uuid::Uuid::new_v4().to_string())
}

/// The token must be ARM's, live, and from the tenant owning the subscription.
fn caller_for(state: &mut State, req: &Req, subscription: &str) -> Result<Caller, Answer> {
    let caller = tokens::caller(state, req).map_err(|e| match e {
        BearerError::Missing => arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ),
        BearerError::Expired => arm_error(
            401,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
        ),
        BearerError::Invalid => arm_error(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        ),
    })?;
    if caller.claims.aud.trim_end_matches('/') != ARM_RESOURCE {
        let text = "The access token has been obtained for wrong audience or resource. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.azure.com/'.";
        return Err(arm_error(401, "InvalidAuthenticationToken", text));
    }
    let Some((customer, _)) = state.azure_subscription(subscription) else {
        return Err(arm_error(
            404,
            "SubscriptionNotFound",
            &format!("The subscription '{subscription}' could not be found."),
        ));
    };
    if !customer.tenant_id.eq_ignore_ascii_case(&caller.claims.tid) {
        let text = format!(
            "The access token is from the wrong issuer 'https://sts.windows.net/{}/'. It must match the tenant 'https://sts.windows.net/{}/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/{}' to get the token.",
            caller.claims.tid, customer.tenant_id, customer.tenant_id
        );
        return Err(arm_error(401, "InvalidAuthenticationTokenTenant", &text));
    }
    Ok(caller)
}

fn throttle(
    state: &mut State,
    subscription: &str,
    op: ArmOperation,
    bucket: Bucket,
    now: Instant,
) -> Result<u32, Answer> {
    match state.limiters.arm(subscription, op, bucket, now) {
        Verdict::Allowed { remaining } => Ok(remaining),
        Verdict::Throttled { retry_after_secs } => {
            state.stats.throttled += 1;
            Err(super::faults::throttle_answer(
                Service::Arm,
                retry_after_secs,
            ))
        }
    }
}

fn check_api_version(req: &Req) -> Result<(), Answer> {
    match req.query("api-version") {
        None => Err(arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) if API_VERSIONS.contains(&v) => Ok(()),
        Some(v) => {
            let text = format!(
                "The api-version '{v}' is invalid. The supported versions are '{}'.",
                API_VERSIONS.join(",")
            );
            Err(arm_error(400, "InvalidApiVersionParameter", &text))
        }
    }
}

/// Delegated admin: an Admin agent is Owner on the customer's subscriptions; nobody else is.
/// Writes are refused while the subscription's Azure plan is suspended (read-only).
fn authorize(
    state: &State,
    caller: &Caller,
    req: &Req,
    subscription: &str,
    op: ArmOperation,
) -> Result<(), Answer> {
    if !caller.is_admin_agent() {
        let action = match op {
            ArmOperation::Read => "read",
            ArmOperation::Write => "write",
            ArmOperation::Delete => "delete",
        };
        let text = format!(
            "The client '{}' with object id '{}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/{action}' over scope '{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            caller.claims.upn, caller.claims.oid, req.path
        );
        return Err(arm_error(403, "AuthorizationFailed", &text));
    }
    let suspended = state
        .azure_subscription(subscription)
        .is_some_and(|(_, s)| s);
    if suspended && op != ArmOperation::Read {
        let text = format!(
            "The subscription '{subscription}' is disabled and therefore marked as read only. You cannot perform any write actions on this subscription until it is re-enabled."
        );
        return Err(arm_error(409, "ReadOnlyDisabledSubscription", &text));
    }
    Ok(())
}

fn endpoint(
    state: &mut State,
    caller: &Caller,
    req: &Req,
    route: &Route,
    subscription: &str,
) -> Answer {
    match (req.method.as_str(), route) {
        ("GET", Route::RoleAssignments { .. }) => list(state, req, subscription),
        ("GET", Route::RoleAssignment { name, .. }) => {
            match assignments(state, subscription)
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
            {
                Some(a) => Answer::json(200, &a.json(subscription)),
                None => arm_error(
                    404,
                    "RoleAssignmentNotFound",
                    &format!("The role assignment '{name}' is not found."),
                ),
            }
        }
        ("PUT", Route::RoleAssignment { name, .. }) => {
            create(state, caller, req, subscription, name)
        }
        ("DELETE", Route::RoleAssignment { name, .. }) => delete(state, subscription, name),
        _ => arm_error(
            405,
            "MethodNotAllowed",
            &format!(
                "The requested resource does not support http method '{}'.",
                req.method
            ),
        ),
    }
}

fn assignments<'a>(state: &'a State, subscription: &str) -> &'a [Assignment] {
    state
        .assignments
        .get(&subscription.to_ascii_lowercase())
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `$filter`: none, `atScope()`, `principalId eq '{id}'`, or `atScope() and assignedTo('{id}')`.
/// Every assignment here is at the subscription's scope, so `atScope()` keeps them all.
fn list(state: &State, req: &Req, subscription: &str) -> Answer {
    let filter = req.query("$filter").unwrap_or_default().trim().to_string();
    let principal = match principal_filter(&filter) {
        Ok(p) => p,
        Err(()) => {
            return arm_error(
                400,
                "InvalidFilterInQueryString",
                &format!("The filter '{filter}' is not supported."),
            );
        }
    };
    let value: Vec<Value> = assignments(state, subscription)
        .iter()
        .filter(|a| {
            principal
                .as_deref()
                .is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p))
        })
        .map(|a| a.json(subscription))
        .collect();
    Answer::json(200, &json!({"value": value}))
}

/// The principal a filter names, if any; `Err` for a filter ARM would not accept.
fn principal_filter(filter: &str) -> Result<Option<String>, ()> {
    let lower = filter.trim().to_ascii_lowercase();
    if lower.is_empty() || lower == "atscope()" {
        return Ok(None);
    }
    let inner = lower.strip_prefix("principalid eq ").or_else(|| {
        lower
            .strip_prefix("atscope() and assignedto(")
            .and_then(|r| r.strip_suffix(')'))
    });
    let id = inner
        .and_then(|r| r.trim().strip_prefix('\''))
        .and_then(|r| r.strip_suffix('\''))
        .filter(|id| is_guid(id))
        .ok_or(())?;
    Ok(Some(id.to_string()))
}

/// `PUT …/roleAssignments/{name}`: 201, 200 for the same assignment again, 409 otherwise.
fn create(state: &mut State, caller: &Caller, req: &Req, subscription: &str, name: &str) -> Answer {
    if !is_guid(name) {
        return arm_error(
            400,
            "InvalidRoleAssignmentId",
            &format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
            ),
        );
    }
    let (role, principal_id, principal_type) = match read_body(&req.body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal,
    };
    let list = state
        .assignments
        .entry(subscription.to_ascii_lowercase())
        .or_default();
    if let Some(existing) = list.iter().find(|a| a.name.eq_ignore_ascii_case(name)) {
        if existing.role == role && existing.principal_id.eq_ignore_ascii_case(&principal_id) {
            return Answer::json(200, &existing.json(subscription));
        }
        return arm_error(
            409,
            "RoleAssignmentUpdateNotPermitted",
            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
        );
    }
    if list
        .iter()
        .any(|a| a.role == role && a.principal_id.eq_ignore_ascii_case(&principal_id))
    {
        return arm_error(
            409,
            "RoleAssignmentExists",
            "The role assignment already exists.",
        );
    }
    if list.len() >= MAX_ASSIGNMENTS {
        return arm_error(
            400,
            "RoleAssignmentLimitExceeded",
            "No more role assignments can be created.",
        );
    }
    let now = now_rfc3339();
    let assignment = Assignment {
        name: name.to_ascii_lowercase(),
        principal_id,
        principal_type,
        role,
        created_on: now.clone(),
        updated_on: now,
        created_by: caller.claims.oid.clone(),
    };
    let body = assignment.json(subscription);
    list.push(assignment);
    Answer::json(201, &body)
}

/// The role definition GUID (compared by the trailing GUID, either id form), principal id and type.
fn read_body(body: &[u8]) -> Result<(String, String, String), Answer> {
    let invalid = |text: &str| arm_error(400, "InvalidRequestContent", text);
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| invalid("The request content was invalid and could not be deserialized."))?;
    let props = &v["properties"];
    let role_id = props["roleDefinitionId"].as_str().unwrap_or_default();
    let role = role_id
        .strip_prefix('/')
        .filter(|id| {
            id.to_ascii_lowercase()
                .contains("providers/microsoft.authorization/roledefinitions/")
        })
        .and_then(|id| id.rsplit('/').next())
        .filter(|guid| is_guid(guid))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            arm_error(
                400,
                "InvalidRoleDefinitionId",
                &format!("The role definition ID '{role_id}' is not valid."),
            )
        })?;
    let principal_id = props["principalId"]
        .as_str()
        .filter(|p| is_guid(p))
        .map(str::to_ascii_lowercase);
    let principal_id =
        principal_id.ok_or_else(|| invalid("properties.principalId must be a GUID."))?;
    let principal_type = props["principalType"].as_str().unwrap_or("User");
    let known = [
        "User",
        "Group",
        "ServicePrincipal",
        "ForeignGroup",
        "Device",
    ];
    let principal_type = known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(principal_type))
        .ok_or_else(|| invalid("properties.principalType is not valid."))?;
    Ok((role, principal_id, (*principal_type).to_string()))
}

fn delete(state: &mut State, subscription: &str, name: &str) -> Answer {
    let list = state
        .assignments
        .entry(subscription.to_ascii_lowercase())
        .or_default();
    match list.iter().position(|a| a.name.eq_ignore_ascii_case(name)) {
        Some(i) => {
            let removed = list.remove(i);
            Answer::json(200, &removed.json(subscription))
        }
        None => Answer::empty(204),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3c4d5e6f-0000-4000-8000-000000000004";

    #[test]
    fn filters_name_a_principal_or_none() {
        assert_eq!(principal_filter(""), Ok(None));
        assert_eq!(principal_filter("atScope()"), Ok(None));
        assert_eq!(
            principal_filter(&format!("principalId eq '{ID}'")),
            Ok(Some(ID.into()))
        );
        assert_eq!(
            principal_filter(&format!("atScope() and assignedTo('{ID}')")),
            Ok(Some(ID.into()))
        );
        assert_eq!(principal_filter("roleName eq 'Owner'"), Err(()));
        assert_eq!(principal_filter("principalId eq 'nope'"), Err(()));
    }

    #[test]
    fn bodies_take_either_role_definition_form() {
        let body = |role: &str| {
            json!({"properties": {"roleDefinitionId": role, "principalId": ID}}).to_string()
        };
        let owner = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
        let sub_form =
            format!("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{owner}");
        let (role, principal, kind) = read_body(body(&sub_form).as_bytes()).unwrap();
        assert_eq!(
            (role.as_str(), principal.as_str(), kind.as_str()),
            (owner, ID, "User")
        );
        let tenant_form = format!("/providers/Microsoft.Authorization/roleDefinitions/{owner}");
        assert_eq!(read_body(body(&tenant_form).as_bytes()).unwrap().0, owner);
        assert_eq!(read_body(body(owner).as_bytes()).unwrap_err().status, 400);
    }
}
