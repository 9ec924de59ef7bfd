//! Tests of the Partner Center / ARM clients against a scripted local HTTP server.

mod server;

use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;
use server::{Canned, ScriptedServer, grant, jwt};

const PARTNER: &str = "9a8b7c6d-0000-4000-8000-000000000001";
const CUSTOMER: &str = "c0ffee00-0000-4000-8000-0000000000c1";
const AZURE_SUBSCRIPTION: &str = "5ub5c41b-0000-4000-8000-0000000000a1";
const CLIENT_SECRET: &str = "client-secret-Xy9!";
const REFRESH_TOKEN: &str = "refresh-token-original";
const PC_AUDIENCE: &str = "https://api.partnercenter.microsoft.com";
const ARM_AUDIENCE: &str = "https://management.azure.com";

fn fast_options() -> ClientOptions {
    ClientOptions {
        requests_per_minute: 6000,
        timeout: Duration::from_secs(5),
        retry: RetryOptions {
            max_attempts: 4,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        },
        max_throttle_wait: Duration::from_secs(10),
        correlation_id: None,
    }
}

fn credentials() -> Credentials {
    Credentials {
        client_id: "client-app".into(),
        client_secret: SecretString::new(CLIENT_SECRET.into()),
        refresh_token: SecretString::new(REFRESH_TOKEN.into()),
    }
}

fn client_with(server: &ScriptedServer, options: ClientOptions) -> PartnerCenter {
    let endpoints = Endpoints {
        partner_center: server.base(),
        login: server.base(),
        resource_manager: server.base(),
    };
    PartnerCenter::new(PARTNER, endpoints, credentials(), options).expect("client")
}

fn client(server: &ScriptedServer) -> PartnerCenter {
    client_with(server, fast_options())
}

fn pc_token() -> String {
    jwt(PARTNER, PC_AUDIENCE, &["pwd", "mfa"])
}

fn customer_json(id: &str) -> serde_json::Value {
    json!({"id": id, "companyProfile": {"tenantId": id, "domain": format!("{id}.example"), "companyName": "Contoso", "unknownField": 1},
           "relationshipToPartner": "reseller", "attributes": {"objectType": "Customer"}})
}

fn page(items: Vec<serde_json::Value>, next: Option<(&str, &str)>) -> Canned {
    let mut links =
        json!({"self": {"uri": "/v1/customers?size=100", "method": "GET", "headers": []}});
    if let Some((uri, token)) = next {
        links["next"] = json!({"uri": uri, "method": "GET", "headers": [{"key": "MS-ContinuationToken", "value": token}]});
    }
    Canned::json(
        200,
        json!({"totalCount": items.len(), "items": items, "links": links, "attributes": {"objectType": "Collection"}}),
    )
}

fn policy_json(etag: &str) -> serde_json::Value {
    let mut policy = serde_json::to_value(SelfServePolicy::for_customer(
        PARTNER,
        CUSTOMER,
        &[AZURE_RESERVED_INSTANCES],
    ))
    .expect("policy");
    policy["attributes"]["etag"] = json!(etag);
    policy
}

#[tokio::test]
async fn a_token_is_granted_once_and_reused() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    server.push(Canned::json(200, customer_json(CUSTOMER)));
    server.push(Canned::json(200, customer_json(CUSTOMER)));
    let pc = client(&server);

    assert!(pc.customer(CUSTOMER).await.expect("first").is_some());
    assert!(pc.customer(CUSTOMER).await.expect("second").is_some());

    let logins = server.logins();
    assert_eq!(logins.len(), 1);
    let login = &logins[0];
    assert_eq!(login.method, "POST");
    assert_eq!(login.path, format!("/{PARTNER}/oauth2/token"));
    assert_eq!(
        login.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(login.form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(login.form("resource").as_deref(), Some(PC_AUDIENCE));
    assert_eq!(login.form("refresh_token").as_deref(), Some(REFRESH_TOKEN));
    assert_eq!(login.form("client_secret").as_deref(), Some(CLIENT_SECRET));
    assert_eq!(login.form("scope").as_deref(), Some("openid"));
    let calls = server.service_requests();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.path, format!("/v1/customers/{CUSTOMER}"));
        assert!(
            call.header("authorization")
                .is_some_and(|a| a.starts_with("Bearer "))
        );
        assert!(call.header("ms-correlationid").is_some());
        assert_eq!(call.header("accept"), Some("application/json"));
    }
    assert_ne!(
        calls[0].header("ms-requestid"),
        calls[1].header("ms-requestid")
    );
    assert_eq!(pc.calls().login, 1);
    assert_eq!(pc.calls().partner_center, 2);
}

#[tokio::test]
async fn sign_in_reports_the_user_and_offers_the_rotated_refresh_token_once() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    let pc = client(&server);

    let signed_in = pc.sign_in().await.expect("sign in");
    assert_eq!(signed_in.user.as_deref(), Some("admin@partner.example"));
    assert!(signed_in.mfa);
    let in_89_days = SystemTime::now() + Duration::from_secs(89 * 24 * 3600);
    assert!(signed_in.refresh_token_expires_at > in_89_days);
    assert!(signed_in.access_token_expires_at > SystemTime::now() + Duration::from_secs(3000));

    let (rotated, expires_at) = pc.take_rotated_refresh_token().expect("rotated");
    assert_eq!(rotated.expose(), "refresh-2");
    assert_eq!(expires_at, signed_in.refresh_token_expires_at);
    assert!(pc.take_rotated_refresh_token().is_none(), "offered once");
    pc.sign_in().await.expect("cached");
    assert_eq!(server.logins().len(), 1);
}

#[tokio::test]
async fn a_401_gets_a_new_token_once_and_retries_once() {
    let server = ScriptedServer::start().await;
    let (first, second) = (pc_token(), pc_token());
    server.push(grant(&first, "refresh-2"));
    server.push(Canned::json(
        401,
        json!({"code": 401, "description": "token expired"}),
    ));
    server.push(grant(&second, "refresh-3"));
    server.push(Canned::json(200, customer_json(CUSTOMER)));
    let pc = client(&server);

    assert!(pc.customer(CUSTOMER).await.expect("retried").is_some());

    let logins = server.logins();
    assert_eq!(logins.len(), 2);
    assert_eq!(
        logins[1].form("refresh_token").as_deref(),
        Some("refresh-2"),
        "the rotated token is used"
    );
    let calls = server.service_requests();
    assert_eq!(
        calls[0].header("authorization"),
        Some(format!("Bearer {first}").as_str())
    );
    assert_eq!(
        calls[1].header("authorization"),
        Some(format!("Bearer {second}").as_str())
    );
    assert_eq!(
        pc.take_rotated_refresh_token().expect("rotated").0.expose(),
        "refresh-3"
    );

    // Refused again after a fresh token: the credentials are bad, and no third attempt is made.
    server.push(Canned::json(
        401,
        json!({"code": 401, "description": "nope"}),
    ));
    server.push(grant(&pc_token(), "refresh-4"));
    server.push(Canned::json(
        401,
        json!({"code": 401, "description": "nope"}),
    ));
    let error = pc.customer(CUSTOMER).await.expect_err("refused");
    assert_eq!(error.reason(), "CredentialsInvalid");
    assert_eq!(server.service_requests().len(), 4);
}

#[tokio::test]
async fn a_token_without_mfa_is_refused_before_any_partner_center_call() {
    let server = ScriptedServer::start().await;
    server.push(grant(&jwt(PARTNER, PC_AUDIENCE, &["pwd"]), "refresh-2"));
    let pc = client(&server);

    let error = pc.sign_in().await.expect_err("no mfa");
    assert!(
        matches!(&error, PartnerCenterError::MfaRequired { user: Some(u) } if u == "admin@partner.example")
    );
    assert_eq!(error.reason(), "MfaRequired");
    let error = pc.customers().await.expect_err("no mfa");
    assert_eq!(error.reason(), "MfaRequired");
    assert!(server.service_requests().is_empty());
    assert_eq!(pc.calls().partner_center, 0);
}

#[tokio::test]
async fn arm_calls_use_a_token_from_the_customer_tenant_and_follow_next_link() {
    let server = ScriptedServer::start().await;
    let assignment = |name: &str| {
        json!({"id": format!("/subscriptions/{AZURE_SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments/{name}"),
               "name": name, "type": "Microsoft.Authorization/roleAssignments",
               "properties": {"roleDefinitionId": format!("/subscriptions/{AZURE_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{OWNER_ROLE}"),
                              "principalId": "p1", "principalType": "User", "scope": format!("/subscriptions/{AZURE_SUBSCRIPTION}"),
                              "createdOn": "2026-01-01T00:00:00Z"}})
    };
    let next = format!(
        "{}/subscriptions/{AZURE_SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$skiptoken=abc",
        server.base()
    );
    server.push(grant(&jwt(CUSTOMER, ARM_AUDIENCE, &["pwd"]), "refresh-2"));
    server.push(Canned::json(
        200,
        json!({"value": [assignment("a1")], "nextLink": next}),
    ));
    server.push(Canned::json(200, json!({"value": [assignment("a2")]})));
    let pc = client(&server);

    let assignments = pc
        .role_assignments_at(CUSTOMER, AZURE_SUBSCRIPTION)
        .await
        .expect("list");

    assert_eq!(
        assignments
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["a1", "a2"]
    );
    assert!(same_role(
        &assignments[0].properties.role_definition_id,
        OWNER_ROLE
    ));
    let logins = server.logins();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].path, format!("/{CUSTOMER}/oauth2/token"));
    assert_eq!(logins[0].form("resource").as_deref(), Some(ARM_AUDIENCE));
    let calls = server.service_requests();
    assert_eq!(
        calls[0].path,
        format!(
            "/subscriptions/{AZURE_SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"
        )
    );
    assert!(calls[1].path.ends_with("&$skiptoken=abc"));
    assert_eq!(pc.calls().resource_manager, 2);
}

#[tokio::test]
async fn put_and_delete_role_assignment() {
    let server = ScriptedServer::start().await;
    server.push(grant(&jwt(CUSTOMER, ARM_AUDIENCE, &["pwd"]), "refresh-2"));
    let name = role_assignment_name(
        &format!("/subscriptions/{AZURE_SUBSCRIPTION}"),
        "p1",
        OWNER_ROLE,
    );
    server.push(Canned::json(201, json!({"id": "x", "name": name, "properties": {"principalId": "p1", "roleDefinitionId": OWNER_ROLE}})));
    server.push(Canned::json(
        409,
        json!({"error": {"code": "RoleAssignmentExists", "message": "The role assignment already exists."}}),
    ));
    server.push(Canned::empty(204));
    server.push(Canned::json(
        404,
        json!({"error": {"code": "RoleAssignmentNotFound", "message": "gone"}}),
    ));
    let pc = client(&server);
    let new = NewRoleAssignment {
        role_definition_id: format!(
            "/subscriptions/{AZURE_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{OWNER_ROLE}"
        ),
        principal_id: "p1".into(),
        principal_type: "User".into(),
    };

    let created = pc
        .put_role_assignment(CUSTOMER, AZURE_SUBSCRIPTION, &name, &new)
        .await
        .expect("put");
    assert_eq!(created.name, name);
    let error = pc
        .put_role_assignment(CUSTOMER, AZURE_SUBSCRIPTION, &name, &new)
        .await
        .expect_err("exists");
    assert_eq!(error.reason(), "AlreadyExists");
    pc.delete_role_assignment(CUSTOMER, AZURE_SUBSCRIPTION, &name)
        .await
        .expect("204");
    pc.delete_role_assignment(CUSTOMER, AZURE_SUBSCRIPTION, &name)
        .await
        .expect("404");

    let calls = server.service_requests();
    assert_eq!(calls[0].method, "PUT");
    assert!(
        calls[0]
            .path
            .ends_with(&format!("/roleAssignments/{name}?api-version=2022-04-01"))
    );
    let body: serde_json::Value = serde_json::from_str(&calls[0].body).expect("json");
    assert_eq!(body["properties"]["principalId"], "p1");
    assert_eq!(
        body["properties"]["roleDefinitionId"],
        json!(new.role_definition_id)
    );
    assert_eq!(calls[2].method, "DELETE");
}

#[tokio::test]
async fn a_timeout_resends_the_same_request_id_and_a_500_a_fresh_one() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    server.push(Canned::json(201, policy_json("\"e1\"")).delayed(Duration::from_secs(2)));
    server.push(Canned::json(
        500,
        json!({"code": 500, "description": "boom"}),
    ));
    server.push(Canned::json(201, policy_json("\"e1\"")));
    let options = ClientOptions {
        timeout: Duration::from_millis(300),
        ..fast_options()
    };
    let pc = client_with(&server, options);

    let policy = SelfServePolicy::for_customer(PARTNER, CUSTOMER, &[AZURE_RESERVED_INSTANCES]);
    let created = pc.create_self_serve_policy(&policy).await.expect("created");
    assert_eq!(created.attributes.etag.as_deref(), Some("\"e1\""));

    let calls = server.service_requests();
    assert_eq!(calls.len(), 3);
    let ids: Vec<_> = calls
        .iter()
        .map(|c| c.header("ms-requestid").expect("request id"))
        .collect();
    assert_eq!(ids[0], ids[1], "reused after the timeout");
    assert_ne!(ids[1], ids[2], "fresh after the 500");
    let correlation = calls[0].header("ms-correlationid").expect("correlation id");
    assert!(
        calls
            .iter()
            .all(|c| c.header("ms-correlationid") == Some(correlation))
    );
    assert_eq!(calls[0].path, "/v1/SelfServePolicy");
    assert_eq!(pc.calls().retried, 2);
}

#[tokio::test]
async fn customers_follow_links_next_with_its_headers() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    server.push(page(
        vec![customer_json("c1"), customer_json("c2")],
        Some(("/v1/customers?size=100&seekOperation=Next", "token-1")),
    ));
    server.push(page(
        vec![customer_json("c3")],
        Some(("customers?seekOperation=Next", "token-2")),
    ));
    // The documentation's own form: a leading slash, no version.
    server.push(page(
        vec![customer_json("c4")],
        Some(("/customers?seekOperation=Next", "token-3")),
    ));
    server.push(page(vec![customer_json("c5")], None));
    let pc = client(&server);

    let customers = pc.customers().await.expect("customers");

    let ids: Vec<_> = customers.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3", "c4", "c5"]);
    assert_eq!(customers[0].company_profile.company_name, "Contoso");
    let calls = server.service_requests();
    assert_eq!(calls[0].path, "/v1/customers?size=100");
    assert_eq!(calls[0].header("ms-continuationtoken"), None);
    assert_eq!(calls[1].path, "/v1/customers?size=100&seekOperation=Next");
    assert_eq!(calls[1].header("ms-continuationtoken"), Some("token-1"));
    assert_eq!(calls[2].path, "/v1/customers?seekOperation=Next");
    assert_eq!(calls[2].header("ms-continuationtoken"), Some("token-2"));
    assert_eq!(calls[3].path, "/v1/customers?seekOperation=Next");
    assert_eq!(calls[3].header("ms-continuationtoken"), Some("token-3"));
}

#[tokio::test]
async fn self_serve_policy_calls_map_their_errors() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    server.push(Canned::json(
        409,
        json!({"code": 600041, "description": "Self-serve policy already exists", "data": [], "source": "PartnerFD"}),
    ));
    server.push(Canned::json(
        409,
        json!({"code": 2055, "description": "Etag is no longer valid"}),
    ));
    server.push(Canned::json(
        412,
        json!({"code": 2055, "description": "Etag is no longer valid"}),
    ));
    server.push(Canned::json(
        404,
        json!({"code": 600039, "description": "not found"}),
    ));
    server.push(Canned::json(
        404,
        json!({"code": 600039, "description": "not found"}),
    ));
    server.push(Canned::json(200, page_of_policies()));
    let pc = client(&server);
    let mut policy = SelfServePolicy::for_customer(PARTNER, CUSTOMER, &[AZURE_RESERVED_INSTANCES]);
    policy.attributes.etag = Some("\"stale\"".into());

    let error = pc
        .create_self_serve_policy(&policy)
        .await
        .expect_err("exists");
    assert_eq!(error.reason(), "AlreadyExists");
    assert!(!error.is_retryable());
    for _ in 0..2 {
        let error = pc
            .update_self_serve_policy(&policy)
            .await
            .expect_err("stale");
        assert_eq!(error.reason(), "Conflict");
        assert!(error.is_retryable());
    }
    assert_eq!(pc.self_serve_policy(&policy.id).await.expect("get"), None);
    pc.delete_self_serve_policy(&policy.id)
        .await
        .expect("already gone");
    let listed = pc.self_serve_policies(CUSTOMER).await.expect("list");
    assert_eq!(
        listed[0].resources().into_iter().collect::<Vec<_>>(),
        [AZURE_RESERVED_INSTANCES, AZURE_SAVINGS_PLAN]
    );

    let calls = server.service_requests();
    let id = format!("{PARTNER}_{CUSTOMER}");
    assert_eq!(
        (calls[1].method.as_str(), calls[1].path.clone()),
        ("PUT", format!("/v1/SelfServePolicy/{id}"))
    );
    let body: serde_json::Value = serde_json::from_str(&calls[1].body).expect("json");
    assert_eq!(body["selfServeEntity"]["tenantID"], CUSTOMER);
    assert_eq!(body["grantor"]["tenantID"], PARTNER);
    assert_eq!(body["attributes"]["etag"], "\"stale\"");
    assert_eq!(calls[4].method, "DELETE");
    assert_eq!(
        calls[5].path,
        format!("/v1/SelfServePolicy?entity_id={CUSTOMER}")
    );
}

fn page_of_policies() -> serde_json::Value {
    let mut policy = policy_json("\"e2\"");
    policy["permissions"] = json!([
        {"resource": "AzureSavingsPlan", "action": "purchase"},
        {"resource": "AzureReservedInstances", "action": "Purchase"},
        {"resource": "SomethingNew", "action": "Manage"}
    ]);
    json!({"totalCount": 1, "items": [policy], "attributes": {"objectType": "Collection"}})
}

#[tokio::test]
async fn a_429_pauses_the_budget_and_the_next_call_waits() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    server.push(
        Canned::json(429, json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 seconds."}))
            .header("Retry-After", "1"),
    );
    server.push(Canned::json(200, customer_json(CUSTOMER)));
    server.push(Canned::json(200, customer_json(CUSTOMER)));
    let pc = client(&server);

    let first = tokio::spawn({
        let pc = pc.clone();
        async move { pc.customer(CUSTOMER).await }
    });
    let until = loop {
        if let Some(until) = pc.throttled_until() {
            break until;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(until > SystemTime::now());
    assert!(
        pc.customer(CUSTOMER)
            .await
            .expect("second waits, then succeeds")
            .is_some()
    );
    assert!(first.await.expect("join").expect("first retried").is_some());

    let calls = server.service_requests();
    assert_eq!(calls.len(), 3);
    let slack = Duration::from_millis(50);
    assert!(
        calls[1..].iter().all(|c| c.at + slack >= until),
        "no call during the pause"
    );
    assert_eq!(pc.calls().throttled, 1);
    assert_eq!(pc.throttled_until(), None, "the pause is over");
}

#[tokio::test]
async fn try_style_calls_fail_fast_while_throttled() {
    let server = ScriptedServer::start().await;
    server.push(grant(&jwt(CUSTOMER, ARM_AUDIENCE, &["pwd"]), "refresh-2"));
    server.push(
        Canned::json(
            429,
            json!({"error": {"code": "SubscriptionRequestsThrottled", "message": "slow down"}}),
        )
        .header("Retry-After", "30"),
    );
    let options = ClientOptions {
        max_throttle_wait: Duration::ZERO,
        ..fast_options()
    };
    let pc = client_with(&server, options);

    let error = pc
        .role_assignments_at(CUSTOMER, AZURE_SUBSCRIPTION)
        .await
        .expect_err("throttled");
    let until = error.throttled_until().expect("until");
    assert_eq!(error.reason(), "Throttled");
    assert!(until > SystemTime::now() + Duration::from_secs(20));
    assert_eq!(
        pc.subscription_throttled_until(AZURE_SUBSCRIPTION),
        Some(until)
    );
    assert_eq!(
        pc.throttled_until(),
        None,
        "the Partner Center budget is another one"
    );
    let again = pc
        .delete_role_assignment(CUSTOMER, AZURE_SUBSCRIPTION, "x")
        .await
        .expect_err("still paused");
    assert_eq!(again.reason(), "Throttled");
    assert_eq!(
        server.service_requests().len(),
        1,
        "nothing sent while paused"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_unavailable() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    for _ in 0..4 {
        server.push(Canned::json(
            503,
            json!({"code": 503, "description": "busy"}),
        ));
    }
    let pc = client(&server);

    let error = pc.subscriptions(CUSTOMER).await.expect_err("unavailable");

    assert!(matches!(
        error,
        PartnerCenterError::Unavailable {
            status: 503,
            attempts: 4,
            ..
        }
    ));
    assert!(error.is_retryable());
    assert_eq!(pc.calls().retried, 3);
    let ids: std::collections::BTreeSet<_> = server
        .service_requests()
        .iter()
        .map(|c| c.header("ms-requestid").expect("id").to_string())
        .collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn partner_center_403s_become_admin_agent_or_forbidden() {
    let server = ScriptedServer::start().await;
    server.push(grant(&pc_token(), "refresh-2"));
    server.push(Canned::json(
        403,
        json!({"code": 900, "description": "Insufficient role: Admin Agent required"}),
    ));
    server.push(Canned::json(
        403,
        json!({"code": 3000, "description": "MFA is required for this call"}),
    ));
    server.push(Canned::json(
        400,
        json!({"code": 2001, "description": "bad filter"}),
    ));
    let pc = client(&server);
    let policy = SelfServePolicy::for_customer(PARTNER, CUSTOMER, &[AZURE_RESERVED_INSTANCES]);

    assert_eq!(
        pc.create_self_serve_policy(&policy)
            .await
            .expect_err("403")
            .reason(),
        "AdminAgentRequired"
    );
    assert_eq!(
        pc.create_self_serve_policy(&policy)
            .await
            .expect_err("403")
            .reason(),
        "MfaRequired"
    );
    let invalid = pc.customers().await.expect_err("400");
    assert!(
        matches!(&invalid, PartnerCenterError::Invalid { status: 400, code, .. } if code == "2001")
    );
}

#[tokio::test]
async fn arm_refusals_about_the_tenant_are_forbidden_not_bad_credentials() {
    let server = ScriptedServer::start().await;
    server.push(Canned::json(
        400,
        json!({"error": "invalid_grant", "error_description": "AADSTS50020: User account from identity provider does not exist in tenant"}),
    ));
    server.push(grant(&jwt(CUSTOMER, ARM_AUDIENCE, &["pwd"]), "refresh-2"));
    let wrong_tenant =
        json!({"error": {"code": "InvalidAuthenticationTokenTenant", "message": "wrong issuer"}});
    server.push(Canned::json(401, wrong_tenant.clone()));
    server.push(grant(&jwt(CUSTOMER, ARM_AUDIENCE, &["pwd"]), "refresh-3"));
    server.push(Canned::json(401, wrong_tenant));
    let pc = client(&server);

    let no_relationship = pc
        .role_assignments_at(CUSTOMER, AZURE_SUBSCRIPTION)
        .await
        .expect_err("AADSTS50020");
    assert_eq!(no_relationship.reason(), "Forbidden");
    let other_tenant = pc
        .role_assignments_at(CUSTOMER, AZURE_SUBSCRIPTION)
        .await
        .expect_err("tenant");
    assert!(
        matches!(&other_tenant, PartnerCenterError::Forbidden { code, .. } if code == "InvalidAuthenticationTokenTenant")
    );
    assert_eq!(server.logins().len(), 3, "one refresh after the 401");
}

#[tokio::test]
async fn login_refusals_are_invalid_credentials() {
    let server = ScriptedServer::start().await;
    server.push(Canned::json(
        400,
        json!({"error": "invalid_grant", "error_description": "AADSTS70008: The provided authorization code or refresh token has expired", "error_codes": [70008]}),
    ));
    server.push(Canned::json(
        401,
        json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
    ));
    let pc = client(&server);

    for _ in 0..2 {
        let error = pc.sign_in().await.expect_err("refused");
        assert_eq!(error.reason(), "CredentialsInvalid");
        assert!(!error.is_retryable());
    }
    assert!(pc.take_rotated_refresh_token().is_none());
}

#[tokio::test]
async fn secrets_never_show_in_debug_or_errors() {
    let server = ScriptedServer::start().await;
    let access_token = pc_token();
    server.push(grant(&access_token, "refresh-rotated-secret"));
    server.push(Canned::json(
        401,
        json!({"code": 401, "description": "expired"}),
    ));
    server.push(grant(&access_token, "refresh-rotated-secret"));
    server.push(Canned::json(
        401,
        json!({"code": 401, "description": "expired"}),
    ));
    server.push(Canned::json(
        400,
        json!({"error": "invalid_grant", "error_description": "AADSTS70008: expired"}),
    ));
    let creds = credentials();
    let pc = client(&server);
    let refused = pc.customers().await.expect_err("refused");
    let login_error = client(&server)
        .sign_in()
        .await
        .map(|_| ())
        .expect_err("login refused");
    assert_eq!(login_error.reason(), "CredentialsInvalid");
    let missing = PartnerCenter::new(
        PARTNER,
        Endpoints::default(),
        Credentials {
            refresh_token: SecretString::new(String::new()),
            ..creds.clone()
        },
        ClientOptions::default(),
    )
    .expect_err("missing");

    let shown = [
        format!("{creds:?}"),
        format!("{pc:?}"),
        format!("{refused:?} {refused}"),
        format!("{login_error:?} {login_error}"),
        format!("{missing:?} {missing}"),
        format!("{:?}", pc.take_rotated_refresh_token()),
    ];
    let secrets = [
        CLIENT_SECRET,
        REFRESH_TOKEN,
        "refresh-rotated-secret",
        access_token.as_str(),
    ];
    for text in &shown {
        for secret in &secrets {
            assert!(!text.contains(secret), "{text} shows a secret");
        }
    }
    assert_eq!(missing.reason(), "CredentialsMissing");
}

#[test]
fn plain_http_is_refused_except_on_loopback() {
    let endpoints = |base: &str| Endpoints {
        partner_center: base.into(),
        ..Endpoints::default()
    };
    let make = |base: &str| {
        PartnerCenter::new(
            PARTNER,
            endpoints(base),
            credentials(),
            ClientOptions::default(),
        )
    };
    let refused = make("http://api.partnercenter.example.com").expect_err("clear text");
    assert_eq!(refused.reason(), "InvalidEndpoint");
    assert_eq!(
        make("http://10.0.0.1:8080")
            .expect_err("not loopback")
            .reason(),
        "InvalidEndpoint"
    );
    assert_eq!(
        make("ftp://127.0.0.1").expect_err("scheme").reason(),
        "InvalidEndpoint"
    );
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:1/",
        "http://[::1]:9000",
        "https://pc.example.com/base",
    ] {
        make(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let pc = PartnerCenter::new(
        PARTNER,
        Endpoints::default(),
        credentials(),
        ClientOptions::default(),
    )
    .expect("default");
    assert_eq!(pc.partner_tenant_id(), PARTNER);
}

#[test]
fn role_helpers() {
    let full = format!(
        "/subscriptions/{AZURE_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{OWNER_ROLE}"
    );
    assert_eq!(role_definition_guid(&full), OWNER_ROLE);
    assert_eq!(role_definition_guid(OWNER_ROLE), OWNER_ROLE);
    assert!(same_role(&full, &OWNER_ROLE.to_ascii_uppercase()));
    assert!(!same_role(&full, "f7b75c60-3036-4b75-91c3-6b41c27c1689"));

    let scope = format!("/subscriptions/{AZURE_SUBSCRIPTION}");
    let name = role_assignment_name(&scope, "P1", OWNER_ROLE);
    assert_eq!(
        name,
        role_assignment_name(&scope.to_ascii_uppercase(), "p1", OWNER_ROLE)
    );
    assert_ne!(name, role_assignment_name(&scope, "p2", OWNER_ROLE));
    let parsed = uuid::Uuid::parse_str(&name).expect("a GUID");
    assert_eq!(parsed.get_version_num(), 5);
    assert_eq!(name, name.to_ascii_lowercase());
}

#[test]
fn wire_types_keep_the_exact_casing_and_tolerate_the_unknown() {
    let policy = SelfServePolicy::for_customer(
        PARTNER,
        CUSTOMER,
        &[AZURE_RESERVED_INSTANCES, AZURE_SAVINGS_PLAN],
    );
    let value = serde_json::to_value(&policy).expect("json");
    assert_eq!(value["id"], format!("{PARTNER}_{CUSTOMER}"));
    assert_eq!(
        value["selfServeEntity"],
        json!({"selfServeEntityType": "customer", "tenantID": CUSTOMER})
    );
    assert_eq!(
        value["grantor"],
        json!({"grantorType": "billToPartner", "tenantID": PARTNER})
    );
    assert_eq!(
        value["attributes"],
        json!({"objectType": "SelfServePolicy"})
    );

    let subscription: Subscription = serde_json::from_value(json!({
        "id": "s1", "offerId": "dzh318z0bps6:0001", "offerName": "Azure plan", "status": "active",
        "billingType": "usage", "unitType": "Usage-based", "quantity": 1, "newField": {"x": 1}
    }))
    .expect("subscription");
    assert!(subscription.is_azure_plan());
    assert_eq!(
        serde_json::to_value(&subscription).expect("json")["newField"],
        json!({"x": 1})
    );
}

#[test]
fn audit_filters_are_url_encoded_json() {
    let path = customers_audit_path(&AuditQuery {
        start_date: "2026-11-01".into(),
        end_date: Some("2026-11-29".into()),
        resource_type: Some("SelfServePolicy".into()),
        customer_id: None,
    });
    let (head, filter) = path.split_once("&filter=").expect("filter");
    assert_eq!(
        head,
        "/v1/auditrecords?startDate=2026-11-01&size=500&endDate=2026-11-29"
    );
    let decoded = percent_encoding::percent_decode_str(filter)
        .decode_utf8()
        .expect("utf8");
    let filter: serde_json::Value = serde_json::from_str(&decoded).expect("json");
    assert_eq!(
        filter,
        json!({"Field": "ResourceType", "Value": "SelfServePolicy", "Operator": "equals"})
    );
    assert!(!filter.to_string().is_empty() && !path.contains('{'));
}

fn customers_audit_path(query: &AuditQuery) -> String {
    super::customers::audit_path(query)
}
