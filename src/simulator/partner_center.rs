//! Partner Center: the bearer, rate-limit, role and MFA checks, MS-RequestId replays, and the
//! customers, subscriptions, Azure entitlements and SelfServePolicy endpoints.
//!
//! Idempotency: a POST, PUT, PATCH or DELETE repeating the MS-RequestId, method and path of one
//! made in the last 15 minutes gets the first answer again (after the token and role checks),
//! without being done twice. Error codes are the documented ones (error-codes page): 20002 "no
//! commerce relationship with the customer", 20003 "subscription not found", 3000 "invalid
//! property", 800096 "can't update the status", 2032 "access denied" (used for MFA).

use super::audit::{self, Change};
use super::faults::throttle_answer;
use super::limits::{Limits, Verdict};
use super::paging;
use super::route::{Route, Service};
use super::state::{Answer, Req, State, new_etag};
use super::tokens::{self, BearerError, Caller, PARTNER_CENTER_RESOURCE};
use super::world::{Customer, Subscription};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const REPLAY_WINDOW: Duration = Duration::from_secs(15 * 60);
const PERMISSION_RESOURCES: [&str; 2] = ["AzureReservedInstances", "AzureSavingsPlan"];

/// A Partner Center error: `{"code", "description", "data": [], "source": "PartnerFD"}`.
pub fn pc_error(status: u16, code: u32, description: &str) -> Answer {
    Answer::json(
        status,
        &json!({"code": code, "description": description, "data": [], "source": "PartnerFD"}),
    )
}

/// Every Partner Center request; answers carry the request's MS-RequestId and MS-CorrelationId.
pub fn handle(
    state: &mut State,
    limits: &Limits,
    req: &Req,
    route: &Route,
    now: Instant,
) -> Answer {
    let mut answer = checked(state, limits, req, route, now);
    for name in ["MS-RequestId", "MS-CorrelationId"] {
        if let Some(v) = req.header(name) {
            answer = answer.with_header(name, v);
        }
    }
    answer
}

fn checked(state: &mut State, limits: &Limits, req: &Req, route: &Route, now: Instant) -> Answer {
    let caller = match tokens::caller(state, req) {
        Ok(c) => c,
        Err(e) => return unauthorized(e),
    };
    let partner = state.partner.tenant_id.clone();
    if caller.claims.aud != PARTNER_CENTER_RESOURCE
        || !caller.claims.tid.eq_ignore_ascii_case(&partner)
    {
        return unauthorized(BearerError::Invalid);
    }
    let verdict = state
        .limiters
        .partner_center(&partner, limits.partner_center_per_minute, now);
    if let Verdict::Throttled { retry_after_secs } = verdict {
        state.stats.throttled += 1;
        return throttle_answer(Service::PartnerCenter, retry_after_secs);
    }
    if let Err(refusal) = permit(&caller, req, route) {
        return refusal;
    }
    let replay_key = req
        .is_change()
        .then(|| req.header("MS-RequestId"))
        .flatten()
        .map(|id| {
            format!(
                "{} {} {}",
                id.to_ascii_lowercase(),
                req.method,
                req.path.to_ascii_lowercase()
            )
        });
    if let Some(key) = &replay_key {
        state
            .replays
            .retain(|_, (at, _)| now.duration_since(*at) < REPLAY_WINDOW);
        if let Some((_, first)) = state.replays.get(key) {
            return first.clone();
        }
    }
    let answer = endpoint(state, &caller, req, route);
    if let Some(key) = replay_key {
        state.replays.insert(key, (now, answer.clone()));
    }
    answer
}

fn unauthorized(e: BearerError) -> Answer {
    let (code, text) = match e {
        BearerError::Missing => (800001, "Partner Token missing in request context"),
        BearerError::Expired => (400, "Access denied: the access token has expired"),
        BearerError::Invalid => (
            400,
            "Access denied: the access token is invalid or not for Partner Center",
        ),
    };
    pc_error(401, code, text).with_header("WWW-Authenticate", "Bearer")
}

/// SelfServePolicy calls and every change need MFA; changes need an Admin agent; reads any agent.
fn permit(caller: &Caller, req: &Req, route: &Route) -> Result<(), Answer> {
    let policy_call = matches!(
        route,
        Route::SelfServePolicies | Route::SelfServePolicy { .. }
    );
    if (policy_call || req.is_change()) && !caller.claims.mfa {
        let text = "Access denied: MFA required. The access token has no 'mfa' in its amr claim; App+User calls must sign in with multi-factor authentication";
        return Err(pc_error(403, 2032, text));
    }
    if req.is_change() && !caller.is_admin_agent() {
        return Err(pc_error(
            403,
            900,
            "Insufficient role: Admin Agent required",
        ));
    }
    if caller.roles.is_empty() {
        return Err(pc_error(
            403,
            900,
            "Insufficient role: Admin Agent, Sales Agent or Helpdesk Agent required",
        ));
    }
    Ok(())
}

fn endpoint(state: &mut State, caller: &Caller, req: &Req, route: &Route) -> Answer {
    match (req.method.as_str(), route) {
        ("GET", Route::Customers) => list_customers(state, req),
        ("GET", Route::Customer { customer }) => {
            with_customer(state, customer, |c| Answer::json(200, &customer_json(c)))
        }
        ("GET", Route::Subscriptions { customer }) => with_customer(state, customer, |c| {
            let items: Vec<Value> = c
                .subscriptions
                .iter()
                .map(|s| subscription_json(c, s))
                .collect();
            Answer::json(
                200,
                &json!({"totalCount": items.len(), "items": items, "attributes": {"objectType": "Collection"}}),
            )
        }),
        (
            "GET",
            Route::Subscription {
                customer,
                subscription,
            },
        ) => with_subscription(state, customer, subscription, |c, s| {
            Answer::json(200, &subscription_json(c, s))
        }),
        (
            "PATCH",
            Route::Subscription {
                customer,
                subscription,
            },
        ) => patch_subscription(state, caller, req, customer, subscription),
        (
            "GET",
            Route::AzureEntitlements {
                customer,
                subscription,
            },
        ) => with_subscription(state, customer, subscription, |_, s| {
            Answer::json(200, &entitlements_json(s))
        }),
        ("POST", Route::SelfServePolicies) => create_policy(state, caller, req),
        ("GET", Route::SelfServePolicies) => list_policies(state, req),
        ("GET", Route::SelfServePolicy { id }) => {
            match state.policies.get(&id.to_ascii_lowercase()) {
                Some(p) => Answer::json(200, p),
                None => policy_not_found(id),
            }
        }
        ("PUT", Route::SelfServePolicy { id }) => update_policy(state, caller, req, id),
        ("DELETE", Route::SelfServePolicy { id }) => delete_policy(state, caller, req, id),
        ("GET", Route::AuditRecords) => audit::query(state, req),
        (_, Route::OtherPartnerCenter) => pc_error(404, 1000, "Not found"),
        _ => pc_error(405, 405, "Method not allowed"),
    }
}

fn no_relationship(state: &State, customer: &str) -> Answer {
    let text = format!(
        "The partner ID {} has no commerce relationship with the customer ID {customer}.",
        state.partner.tenant_id
    );
    pc_error(403, 20002, &text)
}

fn with_customer(state: &State, customer: &str, f: impl FnOnce(&Customer) -> Answer) -> Answer {
    match state.customer(customer) {
        Some(c) => f(c),
        None => no_relationship(state, customer),
    }
}

fn with_subscription(
    state: &State,
    customer: &str,
    subscription: &str,
    f: impl FnOnce(&Customer, &Subscription) -> Answer,
) -> Answer {
    with_customer(state, customer, |c| {
        match c
            .subscriptions
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(subscription))
        {
            Some(s) => f(c, s),
            None => pc_error(
                404,
                20003,
                &format!("Subscription with ID {subscription} not found."),
            ),
        }
    })
}

fn list_customers(state: &State, req: &Req) -> Answer {
    let all: Vec<Value> = state.customers.iter().map(customer_json).collect();
    match paging::respond(req, "customers", 0, all) {
        Ok(body) => Answer::json(200, &body),
        Err(text) => pc_error(400, 800002, &text),
    }
}

pub fn customer_json(c: &Customer) -> Value {
    json!({
        "id": c.tenant_id,
        "companyProfile": {
            "tenantId": c.tenant_id,
            "domain": c.domain(),
            "companyName": c.company_name,
            "attributes": {"objectType": "CustomerCompanyProfile"},
        },
        "relationshipToPartner": c.relationship.to_ascii_lowercase(),
        "allowDelegatedAccess": true,
        "links": {"self": {"uri": format!("/customers/{}", c.tenant_id), "method": "GET", "headers": []}},
        "attributes": {"objectType": "Customer"},
    })
}

fn subscription_json(c: &Customer, s: &Subscription) -> Value {
    let unit_type = s.unit_type.clone().unwrap_or_else(|| {
        if s.billing_type.eq_ignore_ascii_case("usage") {
            "Usage-based"
        } else {
            "Licenses"
        }
        .to_string()
    });
    let base = format!("/customers/{}/subscriptions/{}", c.tenant_id, s.id);
    let mut v = json!({
        "id": s.id,
        "entitlementId": s.azure_entitlements.first().map(|e| e.id.clone()).unwrap_or_else(|| s.id.clone()),
        "offerId": s.offer_id,
        "offerName": s.offer_name,
        "friendlyName": s.friendly_name.clone().unwrap_or_else(|| s.offer_name.clone()),
        "quantity": s.quantity,
        "unitType": unit_type,
        "creationDate": s.creation_date,
        "effectiveStartDate": s.creation_date,
        "status": s.status,
        "autoRenewEnabled": s.auto_renew_enabled,
        "billingType": s.billing_type,
        "billingCycle": s.billing_cycle,
        "isTrial": false,
        "links": {"self": {"uri": base, "method": "GET", "headers": []}},
        "attributes": {"objectType": "Subscription"},
    });
    if let Some(term) = &s.term_duration {
        v["termDuration"] = json!(term);
    }
    v
}

/// A suspended plan reports its Azure subscriptions as suspended too.
fn entitlements_json(s: &Subscription) -> Value {
    let plan_active = s.status.eq_ignore_ascii_case("active");
    let items: Vec<Value> = s
        .azure_entitlements
        .iter()
        .map(|e| {
            let status = if plan_active { e.status.clone() } else { s.status.clone() };
            json!({"id": e.id, "friendlyName": e.friendly_name, "status": status, "subscriptionId": s.id,
                   "attributes": {"objectType": "AzureEntitlement"}})
        })
        .collect();
    json!({"totalCount": items.len(), "items": items, "attributes": {"objectType": "Collection"}})
}

/// `PATCH …/subscriptions/{id}` with the full subscription: status (suspend / reactivate),
/// friendlyName, quantity and autoRenewEnabled are honoured.
fn patch_subscription(
    state: &mut State,
    caller: &Caller,
    req: &Req,
    customer: &str,
    id: &str,
) -> Answer {
    let Some(ci) = state
        .customers
        .iter()
        .position(|c| c.tenant_id.eq_ignore_ascii_case(customer))
    else {
        return no_relationship(state, customer);
    };
    let Some(si) = state.customers[ci]
        .subscriptions
        .iter()
        .position(|s| s.id.eq_ignore_ascii_case(id))
    else {
        return pc_error(404, 20003, &format!("Subscription with ID {id} not found."));
    };
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return pc_error(
            400,
            800002,
            "Invalid request input: the body is not a Subscription",
        );
    };
    let old = subscription_json(&state.customers[ci], &state.customers[ci].subscriptions[si]);
    let sub = &mut state.customers[ci].subscriptions[si];
    if let Err(refusal) = apply_subscription_patch(sub, &body) {
        return refusal;
    }
    let new = subscription_json(&state.customers[ci], &state.customers[ci].subscriptions[si]);
    let record = audit::record(
        &state.partner.tenant_id,
        caller,
        req.header("MS-CorrelationId"),
        Change {
            customer: &state.customers[ci],
            resource_type: "subscription",
            operation_type: "update_subscription",
            old: Some(&old),
            new: Some(&new),
            customized: vec![("SubscriptionId", id.to_string())],
        },
    );
    state.audit.push(record);
    Answer::json(200, &new)
}

fn apply_subscription_patch(sub: &mut Subscription, body: &Value) -> Result<(), Answer> {
    if body
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|b| !b.eq_ignore_ascii_case(&sub.id))
    {
        return Err(pc_error(
            400,
            3000,
            "Invalid property: id differs from the subscription in the path",
        ));
    }
    if sub.status.eq_ignore_ascii_case("deleted") {
        return Err(pc_error(
            400,
            2011,
            &format!(
                "Subscription with ID {} and deleted status can't be updated.",
                sub.id
            ),
        ));
    }
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or(&sub.status)
        .to_ascii_lowercase();
    if status != "active" && status != "suspended" {
        return Err(pc_error(
            400,
            800096,
            "Can't update the status for this subscription",
        ));
    }
    let quantity = body.get("quantity").and_then(Value::as_u64);
    if sub.status == "suspended"
        && status == "suspended"
        && quantity.is_some_and(|q| q != u64::from(sub.quantity))
    {
        return Err(pc_error(
            400,
            800091,
            "Can't update a subscription with suspended status",
        ));
    }
    sub.status = status;
    if let Some(q) = quantity.and_then(|q| u32::try_from(q).ok()) {
        sub.quantity = q;
    }
    if let Some(name) = body.get("friendlyName").and_then(Value::as_str) {
        sub.friendly_name = Some(name.to_string());
    }
    if let Some(renew) = body.get("autoRenewEnabled").and_then(Value::as_bool) {
        sub.auto_renew_enabled = renew;
    }
    Ok(())
}

/// A self-serve policy's wire JSON.
pub fn policy_json(partner: &str, customer: &str, permissions: &[String], etag: &str) -> Value {
    let permissions: Vec<Value> = permissions
        .iter()
        .map(|r| json!({"resource": r, "action": "Purchase"}))
        .collect();
    json!({
        "id": format!("{partner}_{customer}"),
        "selfServeEntity": {"selfServeEntityType": "customer", "tenantID": customer},
        "grantor": {"grantorType": "billToPartner", "tenantID": partner},
        "permissions": permissions,
        "attributes": {"etag": etag, "objectType": "SelfServePolicy"},
    })
}

fn policy_not_found(id: &str) -> Answer {
    pc_error(404, 600039, &format!("Self-serve policy {id} not found"))
}

/// The customer tenant and permission resources of a policy body, checked.
fn read_policy_body(state: &State, body: &[u8]) -> Result<(String, Vec<String>), Answer> {
    let invalid = |text: &str| pc_error(400, 3000, &format!("Invalid property: {text}"));
    let v: Value =
        serde_json::from_slice(body).map_err(|_| invalid("the body is not a SelfServePolicy"))?;
    let entity = &v["selfServeEntity"];
    if !entity["selfServeEntityType"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("customer"))
    {
        return Err(invalid(
            "selfServeEntity.selfServeEntityType must be customer",
        ));
    }
    let customer = entity["tenantID"]
        .as_str()
        .ok_or_else(|| invalid("selfServeEntity.tenantID is required"))?;
    let grantor = &v["grantor"];
    let grantor_ok = grantor["grantorType"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("billToPartner"))
        && grantor["tenantID"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case(&state.partner.tenant_id));
    if !grantor_ok {
        return Err(invalid(
            "grantor must be billToPartner with the partner's tenantID",
        ));
    }
    let mut resources = Vec::new();
    for p in v["permissions"]
        .as_array()
        .ok_or_else(|| invalid("permissions is required"))?
    {
        let resource = p["resource"].as_str().unwrap_or_default();
        let known = PERMISSION_RESOURCES
            .iter()
            .find(|r| r.eq_ignore_ascii_case(resource));
        match (known, p["action"].as_str()) {
            (Some(r), Some(a)) if a.eq_ignore_ascii_case("Purchase") => {
                resources.push((*r).to_string())
            }
            _ => {
                return Err(invalid(
                    "permissions are {resource: AzureReservedInstances|AzureSavingsPlan, action: Purchase}",
                ));
            }
        }
    }
    let customer = state
        .customer(customer)
        .map(|c| c.tenant_id.clone())
        .ok_or_else(|| no_relationship(state, customer))?;
    Ok((customer, resources))
}

fn create_policy(state: &mut State, caller: &Caller, req: &Req) -> Answer {
    let (customer, resources) = match read_policy_body(state, &req.body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal,
    };
    let partner = state.partner.tenant_id.clone();
    let id = format!("{partner}_{customer}");
    if state.policies.contains_key(&id.to_ascii_lowercase()) {
        return pc_error(409, 600041, "Self-serve policy already exists");
    }
    let policy = policy_json(&partner, &customer, &resources, &new_etag());
    state
        .policies
        .insert(id.to_ascii_lowercase(), policy.clone());
    *state.stats.self_serve_policy_creates.entry(id).or_insert(0) += 1;
    audit_policy(
        state,
        caller,
        req,
        &customer,
        "create_self_serve_policy",
        None,
        Some(&policy),
    );
    Answer::json(201, &policy)
}

fn list_policies(state: &State, req: &Req) -> Answer {
    let entity = req.query("entity_id");
    let all: Vec<Value> = state
        .policies
        .values()
        .filter(|p| {
            entity.is_none_or(|e| {
                p["selfServeEntity"]["tenantID"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(e))
            })
        })
        .cloned()
        .collect();
    match paging::respond(req, "selfservepolicies", state.policy_generation, all) {
        Ok(body) => Answer::json(200, &body),
        Err(text) => pc_error(400, 800002, &text),
    }
}

/// `PUT /v1/SelfServePolicy/{id}`: the body's etag must be the current one (400 2055 otherwise: the documented code of "Etag is no longer valid").
fn update_policy(state: &mut State, caller: &Caller, req: &Req, id: &str) -> Answer {
    let key = id.to_ascii_lowercase();
    let Some(current) = state.policies.get(&key).cloned() else {
        return policy_not_found(id);
    };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    if !body["id"]
        .as_str()
        .is_some_and(|b| b.eq_ignore_ascii_case(id))
    {
        return pc_error(404, 600040, "Self-serve policy identifier is incorrect");
    }
    let (customer, resources) = match read_policy_body(state, &req.body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal,
    };
    if body["attributes"]["etag"] != current["attributes"]["etag"] {
        return pc_error(400, 2055, "Etag is no longer valid");
    }
    let partner = state.partner.tenant_id.clone();
    if !format!("{partner}_{customer}").eq_ignore_ascii_case(id) {
        return pc_error(404, 600040, "Self-serve policy identifier is incorrect");
    }
    let updated = policy_json(&partner, &customer, &resources, &new_etag());
    state.policies.insert(key, updated.clone());
    audit_policy(
        state,
        caller,
        req,
        &customer,
        "update_self_serve_policy",
        Some(&current),
        Some(&updated),
    );
    Answer::json(200, &updated)
}

fn delete_policy(state: &mut State, caller: &Caller, req: &Req, id: &str) -> Answer {
    let Some(removed) = state.policies.remove(&id.to_ascii_lowercase()) else {
        return policy_not_found(id);
    };
    state.policy_generation += 1;
    let customer = removed["selfServeEntity"]["tenantID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    audit_policy(
        state,
        caller,
        req,
        &customer,
        "delete_self_serve_policy",
        Some(&removed),
        None,
    );
    Answer::empty(204)
}

fn audit_policy(
    state: &mut State,
    caller: &Caller,
    req: &Req,
    customer: &str,
    operation: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) {
    let Some(c) = state.customer(customer) else {
        return;
    };
    let record = audit::record(
        &state.partner.tenant_id,
        caller,
        req.header("MS-CorrelationId"),
        Change {
            customer: c,
            resource_type: "self_serve_policy",
            operation_type: operation,
            old,
            new,
            customized: Vec::new(),
        },
    );
    state.audit.push(record);
}
