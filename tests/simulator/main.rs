//! The Partner Center + ARM simulator driven over real HTTP: tokens, roles and MFA, the
//! SelfServePolicy lifecycle with etags and audit records, paging, subscriptions, ARM role
//! assignments, rate limits, MS-RequestId replays and fault injection.

mod client;

use client::*;
use csp_operator::simulator::{
    Bucket, FaultAction, FaultRule, Limits, Simulator, SimulatorOptions, World,
};
use serde_json::{Value, json};
use std::time::Duration;

async fn start_with(world: World, limits: Limits) -> (Simulator, Http) {
    let options = SimulatorOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        limits,
    };
    let sim = Simulator::start(world, options).await.unwrap();
    let http = Http::new(sim.base_url());
    (sim, http)
}

async fn start() -> (Simulator, Http) {
    start_with(World::examples(), Limits::default()).await
}

#[tokio::test]
async fn a_refresh_token_grant_rotates_and_bad_credentials_are_refused() {
    let (sim, http) = start().await;
    let r = http.grant(PARTNER, ADMIN_RT, PC).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], "3599");
    assert_eq!(r.body["resource"], PC);
    let c = claims(r.body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], PC);
    assert_eq!(c["tid"], PARTNER);
    assert_eq!(c["upn"], "admin@partner-a.example");
    assert_eq!(c["amr"], json!(["pwd", "mfa"]));
    // The new refresh token works, and so does the old one.
    let rotated = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rotated, ADMIN_RT);
    assert_eq!(http.grant(PARTNER, &rotated, PC).await.status, 200);
    assert_eq!(http.grant(PARTNER, ADMIN_RT, PC).await.status, 200);
    let unknown = http.grant(PARTNER, "no-such-token", PC).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["error"], "invalid_grant");
    assert_eq!(unknown.body["error_codes"], json!([70008]));
    let elsewhere = http
        .grant("0f0f0f0f-0000-4000-8000-000000000000", ADMIN_RT, PC)
        .await;
    assert_eq!(
        (elsewhere.status, &elsewhere.body["error"]),
        (400, &json!("invalid_grant"))
    );
    let form = format!(
        "grant_type=refresh_token&client_id={APP}&client_secret=wrong&refresh_token={ADMIN_RT}&resource={PC}"
    );
    let path = format!("/{PARTNER}/oauth2/token");
    let wrong_secret = http.send("POST", &path, &[], Some(&form)).await;
    assert_eq!(wrong_secret.status, 401);
    assert_eq!(wrong_secret.body["error"], "invalid_client");
    let no_mfa = claims(&http.token(PARTNER, NOMFA_RT, PC).await);
    assert_eq!(no_mfa["amr"], json!(["pwd"]));
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_and_revoked_seed_tokens_are_refused() {
    let mut world = World::examples();
    world.users[0].refresh_tokens[0].expires_at = Some("2020-01-01T00:00:00Z".into());
    world.users[1].refresh_tokens[0].revoked = true;
    let (sim, http) = start_with(world, Limits::default()).await;
    for rt in [ADMIN_RT, SALES_RT] {
        let r = http.grant(PARTNER, rt, PC).await;
        assert_eq!((r.status, &r.body["error"]), (400, &json!("invalid_grant")));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn partner_center_checks_token_role_and_mfa() {
    let (sim, http) = start().await;
    let none = http.send("GET", "/v1/customers", &[], None).await;
    assert_eq!(none.status, 401);
    let forged = http.pc("GET", "/v1/customers", "a.b.c", None).await;
    assert_eq!(forged.status, 401);
    // An ARM token is not a Partner Center token.
    let arm = http.token(PARTNER, ADMIN_RT, ARM).await;
    assert_eq!(
        http.pc("GET", "/v1/customers", &arm, None).await.status,
        401
    );

    let sales = http.token(PARTNER, SALES_RT, PC).await;
    assert_eq!(
        http.pc("GET", "/v1/customers", &sales, None).await.status,
        200
    );
    let list = format!("/v1/SelfServePolicy?entity_id={CONTOSO}");
    assert_eq!(http.pc("GET", &list, &sales, None).await.status, 200);
    let refused = http
        .pc(
            "POST",
            "/v1/SelfServePolicy",
            &sales,
            Some(&policy_body(CONTOSO)),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["code"], 900);

    let no_mfa = http.token(PARTNER, NOMFA_RT, PC).await;
    assert_eq!(
        http.pc("GET", "/v1/customers", &no_mfa, None).await.status,
        200
    );
    let refused = http
        .pc(
            "POST",
            "/v1/SelfServePolicy",
            &no_mfa,
            Some(&policy_body(CONTOSO)),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body["description"]
            .as_str()
            .unwrap()
            .contains("MFA")
    );
    assert_eq!(http.pc("GET", &list, &no_mfa, None).await.status, 403);
    assert!(sim.self_serve_policies().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_self_serve_policy_lives_and_dies_with_etags_and_audit_records() {
    let (sim, http) = start().await;
    let t = http.token(PARTNER, ADMIN_RT, PC).await;
    let created = http
        .pc(
            "POST",
            "/v1/SelfServePolicy",
            &t,
            Some(&policy_body(CONTOSO)),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = format!("{PARTNER}_{CONTOSO}");
    assert_eq!(created.body["id"], id);
    assert_eq!(created.body["selfServeEntity"]["tenantID"], CONTOSO);
    assert_eq!(created.body["grantor"]["grantorType"], "billToPartner");
    assert_eq!(created.body["attributes"]["objectType"], "SelfServePolicy");
    let again = http
        .pc(
            "POST",
            "/v1/SelfServePolicy",
            &t,
            Some(&policy_body(CONTOSO)),
        )
        .await;
    assert_eq!((again.status, &again.body["code"]), (409, &json!(600041)));

    let by_id = http
        .pc("GET", &format!("/v1/SelfServePolicy/{id}"), &t, None)
        .await;
    assert_eq!(by_id.body, created.body);
    for param in ["entity_id", "entity_Id"] {
        let listed = http
            .pc(
                "GET",
                &format!("/v1/SelfServePolicy?{param}={CONTOSO}"),
                &t,
                None,
            )
            .await;
        assert_eq!(listed.body["items"], json!([created.body]));
    }
    let other = http
        .pc(
            "GET",
            &format!("/v1/SelfServePolicy?entity_id={ADATUM}"),
            &t,
            None,
        )
        .await;
    assert_eq!(other.body["totalCount"], 0);

    let path = format!("/v1/SelfServePolicy/{id}");
    let mut body = created.body.clone();
    body["permissions"]
        .as_array_mut()
        .unwrap()
        .push(json!({"resource": "AzureSavingsPlan", "action": "Purchase"}));
    let updated = http.pc("PUT", &path, &t, Some(&body)).await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_ne!(
        updated.body["attributes"]["etag"],
        created.body["attributes"]["etag"]
    );
    assert_eq!(updated.body["permissions"].as_array().unwrap().len(), 2);
    let stale = http.pc("PUT", &path, &t, Some(&body)).await;
    assert_eq!((stale.status, &stale.body["code"]), (400, &json!(2055)));
    let mut wrong_id = updated.body.clone();
    wrong_id["id"] = json!(format!("{PARTNER}_{ADATUM}"));
    let mismatch = http.pc("PUT", &path, &t, Some(&wrong_id)).await;
    assert_eq!(
        (mismatch.status, &mismatch.body["code"]),
        (404, &json!(600040))
    );
    assert_eq!(sim.self_serve_policies(), vec![updated.body.clone()]);

    assert_eq!(http.pc("DELETE", &path, &t, None).await.status, 204);
    let gone = http.pc("DELETE", &path, &t, None).await;
    assert_eq!((gone.status, &gone.body["code"]), (404, &json!(600039)));
    assert_eq!(http.pc("GET", &path, &t, None).await.status, 404);
    assert_eq!(sim.stats().self_serve_policy_creates.get(&id), Some(&1));
    audit_has_one_record_per_change(&http, &t).await;
    sim.shutdown().await;
}

/// Three changes, three records (newest last), in pages of two.
async fn audit_has_one_record_per_change(http: &Http, t: &str) {
    let today = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%d")
        .to_string();
    let filter = r#"{"Field":"ResourceType","Value":"SelfServePolicy","Operator":"equals"}"#;
    let encoded: String =
        percent_encoding::utf8_percent_encode(filter, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let first = http
        .pc(
            "GET",
            &format!("/v1/auditrecords?startDate={today}&size=2&filter={encoded}"),
            t,
            None,
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let next = &first.body["links"]["next"];
    let token = next["headers"][0]["value"].as_str().unwrap();
    assert_eq!(next["headers"][0]["key"], "MS-ContinuationToken");
    let auth = format!("Bearer {t}");
    let second = http
        .send(
            "GET",
            next["uri"].as_str().unwrap(),
            &[("Authorization", &auth), ("MS-ContinuationToken", token)],
            None,
        )
        .await;
    assert!(second.body["links"].get("next").is_none());
    let records: Vec<&Value> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["items"].as_array().unwrap())
        .collect();
    let operations: Vec<&str> = records
        .iter()
        .map(|r| r["operationType"].as_str().unwrap())
        .collect();
    assert_eq!(
        operations,
        [
            "create_self_serve_policy",
            "update_self_serve_policy",
            "delete_self_serve_policy"
        ]
    );
    let create = records[0];
    assert_eq!(create["resourceType"], "self_serve_policy");
    assert_eq!(create["userPrincipalName"], "admin@partner-a.example");
    assert_eq!(create["customerId"], CONTOSO);
    assert_eq!(create["customerName"], "Contoso Ltd");
    assert_eq!(create["operationStatus"], "succeeded");
    let new_value: Value =
        serde_json::from_str(create["resourceNewValue"].as_str().unwrap()).unwrap();
    assert_eq!(new_value["selfServeEntity"]["tenantID"], CONTOSO);
    let old = http
        .pc("GET", "/v1/auditrecords?startDate=2020-01-01", t, None)
        .await;
    assert_eq!(old.status, 400);
    let junk = http
        .pc("GET", "/v1/auditrecords?startDate=yesterday", t, None)
        .await;
    assert_eq!(junk.status, 400);
}

#[tokio::test]
async fn customers_page_with_a_continuation_token() {
    let (sim, http) = start().await;
    let t = http.token(PARTNER, SALES_RT, PC).await;
    let first = http.pc("GET", "/v1/customers?size=3", &t, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        first.body["items"][0]["companyProfile"]["companyName"],
        "Adatum Corporation"
    );
    assert_eq!(first.body["items"][0]["relationshipToPartner"], "reseller");
    let next = &first.body["links"]["next"];
    let uri = next["uri"].as_str().unwrap();
    assert!(uri.contains("seekOperation=Next"), "{uri}");
    let token = next["headers"][0]["value"].as_str().unwrap();
    let auth = format!("Bearer {t}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("MS-ContinuationToken", token),
    ];
    let second = http.send("GET", uri, &headers, None).await;
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["items"][0]["id"], CONTOSO);
    assert!(second.body["links"].get("next").is_none());
    let bad = [
        ("Authorization", auth.as_str()),
        ("MS-ContinuationToken", "junk"),
    ];
    assert_eq!(http.send("GET", uri, &bad, None).await.status, 400);
    let one = http
        .pc("GET", &format!("/v1/customers/{CONTOSO}"), &t, None)
        .await;
    assert_eq!(
        one.body["companyProfile"]["domain"],
        "contoso.onmicrosoft.com"
    );
    let stranger = http
        .pc(
            "GET",
            "/v1/customers/0f0f0f0f-0000-4000-8000-000000000000",
            &t,
            None,
        )
        .await;
    assert_eq!(stranger.status, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn suspending_an_azure_plan_suspends_its_azure_subscriptions() {
    let (sim, http) = start().await;
    let t = http.token(PARTNER, ADMIN_RT, PC).await;
    let path = format!("/v1/customers/{NORTHWIND}/subscriptions/{NORTHWIND_PLAN}");
    let mut plan = http.pc("GET", &path, &t, None).await.body;
    assert_eq!(plan["offerId"], "DZH318Z0BPS6:0001");
    assert_eq!(plan["billingType"], "usage");
    plan["status"] = json!("suspended");
    let patched = http.pc("PATCH", &path, &t, Some(&plan)).await;
    assert_eq!(
        (patched.status, &patched.body["status"]),
        (200, &json!("suspended"))
    );
    let entitlements = http
        .pc("GET", &format!("{path}/azureEntitlements"), &t, None)
        .await;
    let item = &entitlements.body["items"][0];
    assert_eq!(item["id"], NORTHWIND_AZURE);
    assert_eq!(item["subscriptionId"], NORTHWIND_PLAN);
    assert_eq!(item["status"], "suspended");
    // ARM: reads still work, writes are refused while suspended.
    let arm = http.token(NORTHWIND, ADMIN_RT, ARM).await;
    let list = format!(
        "/subscriptions/{NORTHWIND_AZURE}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"
    );
    assert_eq!(arm_call(&http, "GET", &list, &arm, None).await.status, 200);
    let put = assignment_path(NORTHWIND_AZURE, "9d9d9d9d-0000-4000-8000-000000000001");
    let refused = arm_call(&http, "PUT", &put, &arm, Some(&owner_body(NORTHWIND_AZURE))).await;
    assert_eq!(
        (refused.status, &refused.body["error"]["code"]),
        (409, &json!("ReadOnlyDisabledSubscription"))
    );

    let today = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%d")
        .to_string();
    let audit = http
        .pc(
            "GET",
            &format!("/v1/auditrecords?startDate={today}"),
            &t,
            None,
        )
        .await;
    let record = &audit.body["items"][0];
    assert_eq!(record["operationType"], "update_subscription");
    assert_eq!(record["resourceType"], "subscription");
    assert!(
        record["resourceOldValue"]
            .as_str()
            .unwrap()
            .contains("\"active\"")
    );
    plan["status"] = json!("active");
    assert_eq!(http.pc("PATCH", &path, &t, Some(&plan)).await.status, 200);
    sim.shutdown().await;
}

fn assignment_path(subscription: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
    )
}

fn owner_body(subscription: &str) -> Value {
    json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{OWNER}"),
        "principalId": "7e7e7e7e-0000-4000-8000-000000000001",
        "principalType": "User",
    }})
}

async fn arm_call(
    http: &Http,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Resp {
    let auth = format!("Bearer {token}");
    let body = body.map(Value::to_string);
    http.send(
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_deref(),
    )
    .await
}

#[tokio::test]
async fn arm_role_assignments_list_create_and_delete() {
    let (sim, http) = start().await;
    let t = http.token(CONTOSO, ADMIN_RT, ARM).await;
    assert_eq!(claims(&t)["tid"], CONTOSO);
    let list = format!(
        "/subscriptions/{CONTOSO_AZURE}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"
    );
    let listed = arm_call(&http, "GET", &list, &t, None).await;
    assert_eq!(listed.status, 200);
    assert!(
        listed
            .header("x-ms-ratelimit-remaining-subscription-reads")
            .is_some()
    );
    let owner = &listed.body["value"][0]["properties"];
    assert_eq!(owner["principalId"], "3c4d5e6f-0000-4000-8000-000000000004");
    assert!(owner["roleDefinitionId"].as_str().unwrap().ends_with(OWNER));

    let name = "9d9d9d9d-0000-4000-8000-000000000001";
    let path = assignment_path(CONTOSO_AZURE, name);
    let created = arm_call(&http, "PUT", &path, &t, Some(&owner_body(CONTOSO_AZURE))).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        created.body["properties"]["scope"],
        format!("/subscriptions/{CONTOSO_AZURE}")
    );
    assert!(
        created
            .header("x-ms-ratelimit-remaining-subscription-writes")
            .is_some()
    );
    assert_eq!(
        arm_call(&http, "PUT", &path, &t, Some(&owner_body(CONTOSO_AZURE)))
            .await
            .status,
        200
    );
    let other_name = assignment_path(CONTOSO_AZURE, "9d9d9d9d-0000-4000-8000-000000000002");
    let duplicate = arm_call(
        &http,
        "PUT",
        &other_name,
        &t,
        Some(&owner_body(CONTOSO_AZURE)),
    )
    .await;
    assert_eq!(
        (duplicate.status, &duplicate.body["error"]["code"]),
        (409, &json!("RoleAssignmentExists"))
    );
    assert_eq!(
        arm_call(&http, "GET", &list, &t, None).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(arm_call(&http, "DELETE", &path, &t, None).await.status, 200);
    assert_eq!(arm_call(&http, "DELETE", &path, &t, None).await.status, 204);

    sim.shutdown().await;
}

#[tokio::test]
async fn arm_refuses_another_tenant_audience_or_role() {
    let (sim, http) = start().await;
    let t = http.token(CONTOSO, ADMIN_RT, ARM).await;
    let list = format!(
        "/subscriptions/{CONTOSO_AZURE}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"
    );
    let no_version = list.replace("api-version=2022-04-01&", "");
    assert_eq!(
        arm_call(&http, "GET", &no_version, &t, None).await.body["error"]["code"],
        "MissingApiVersionParameter"
    );
    let northwind = http.token(NORTHWIND, ADMIN_RT, ARM).await;
    let wrong_tenant = arm_call(&http, "GET", &list, &northwind, None).await;
    assert_eq!(
        (wrong_tenant.status, &wrong_tenant.body["error"]["code"]),
        (401, &json!("InvalidAuthenticationTokenTenant"))
    );
    let pc_token = http.token(PARTNER, ADMIN_RT, PC).await;
    assert_eq!(
        arm_call(&http, "GET", &list, &pc_token, None).await.status,
        401
    );
    let sales = http.token(CONTOSO, SALES_RT, ARM).await;
    let refused = arm_call(&http, "GET", &list, &sales, None).await;
    assert_eq!(
        (refused.status, &refused.body["error"]["code"]),
        (403, &json!("AuthorizationFailed"))
    );
    let unknown = list.replace(CONTOSO_AZURE, "0f0f0f0f-0000-4000-8000-000000000000");
    assert_eq!(
        arm_call(&http, "GET", &unknown, &t, None).await.body["error"]["code"],
        "SubscriptionNotFound"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let limits = Limits {
        partner_center_per_minute: 3,
        arm_writes: Bucket {
            burst: 1,
            per_second: 1,
        },
        ..Limits::default()
    };
    let (sim, http) = start_with(World::examples(), limits).await;
    let t = http.token(PARTNER, ADMIN_RT, PC).await;
    for _ in 0..3 {
        assert_eq!(http.pc("GET", "/v1/customers", &t, None).await.status, 200);
    }
    let throttled = http.pc("GET", "/v1/customers", &t, None).await;
    assert_eq!(throttled.status, 429);
    let secs: u64 = throttled.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs));
    assert_eq!(throttled.body["statusCode"], 429);
    assert!(
        throttled.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit is exceeded.")
    );

    let arm = http.token(CONTOSO, ADMIN_RT, ARM).await;
    let path = assignment_path(CONTOSO_AZURE, "9d9d9d9d-0000-4000-8000-000000000001");
    assert_eq!(
        arm_call(&http, "PUT", &path, &arm, Some(&owner_body(CONTOSO_AZURE)))
            .await
            .status,
        201
    );
    let arm_throttled = arm_call(&http, "PUT", &path, &arm, Some(&owner_body(CONTOSO_AZURE))).await;
    assert_eq!(arm_throttled.status, 429);
    assert_eq!(
        arm_throttled.body["error"]["code"],
        "SubscriptionRequestsThrottled"
    );
    assert!(arm_throttled.header("Retry-After").is_some());
    assert_eq!(sim.stats().throttled, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_repeated_request_id_replays_the_first_answer() {
    let (sim, http) = start().await;
    let t = http.token(PARTNER, ADMIN_RT, PC).await;
    let auth = format!("Bearer {t}");
    let request_id = uuid::Uuid::new_v4().to_string();
    let headers = [
        ("Authorization", auth.as_str()),
        ("MS-RequestId", request_id.as_str()),
    ];
    let body = policy_body(CONTOSO).to_string();
    let first = http
        .send("POST", "/v1/SelfServePolicy", &headers, Some(&body))
        .await;
    let second = http
        .send("POST", "/v1/SelfServePolicy", &headers, Some(&body))
        .await;
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.body, second.body);
    assert_eq!(second.header("MS-RequestId"), Some(request_id.as_str()));
    let stats = sim.stats();
    assert_eq!(stats.self_serve_policy_creates.values().sum::<u64>(), 1);
    assert_eq!(stats.requests_to("POST", "/v1/SelfServePolicy"), 2);
    // A fresh request id is a new request: the policy exists.
    let third = http
        .pc(
            "POST",
            "/v1/SelfServePolicy",
            &t,
            Some(&policy_body(CONTOSO)),
        )
        .await;
    assert_eq!(third.status, 409);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_create_that_timed_out_after_the_fact_is_found_on_retry() {
    let (sim, http) = start().await;
    let t = http.token(PARTNER, ADMIN_RT, PC).await;
    sim.faults().add(
        FaultRule::new(FaultAction::Timeout {
            delay: Duration::from_millis(100),
            after_effect: true,
        })
        .method("POST")
        .path("/SelfServePolicy"),
    );
    let auth = format!("Bearer {t}");
    let request_id = uuid::Uuid::new_v4().to_string();
    let headers = [
        ("Authorization", auth.as_str()),
        ("MS-RequestId", request_id.as_str()),
    ];
    let body = policy_body(NORTHWIND).to_string();
    assert!(
        http.try_send("POST", "/v1/SelfServePolicy", &headers, Some(&body))
            .await
            .is_err()
    );
    assert_eq!(sim.self_serve_policies().len(), 1);
    let retry = http
        .send("POST", "/v1/SelfServePolicy", &headers, Some(&body))
        .await;
    assert_eq!(retry.status, 201);
    assert_eq!(
        sim.stats().self_serve_policy_creates.values().sum::<u64>(),
        1
    );

    // Without the effect: nothing is created.
    sim.faults().add(
        FaultRule::new(FaultAction::Timeout {
            delay: Duration::from_millis(50),
            after_effect: false,
        })
        .method("POST"),
    );
    let adatum = policy_body(ADATUM).to_string();
    let fresh = uuid::Uuid::new_v4().to_string();
    let headers = [
        ("Authorization", auth.as_str()),
        ("MS-RequestId", fresh.as_str()),
    ];
    assert!(
        http.try_send("POST", "/v1/SelfServePolicy", &headers, Some(&adatum))
            .await
            .is_err()
    );
    assert_eq!(sim.self_serve_policies().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_statuses_and_storms_then_normal_service() {
    let (sim, http) = start().await;
    let t = http.token(PARTNER, ADMIN_RT, PC).await;
    sim.faults()
        .add(FaultRule::new(FaultAction::Status(503)).path("/v1/customers"));
    sim.faults().add(
        FaultRule::new(FaultAction::Throttle {
            retry_after_secs: 7,
        })
        .method("GET")
        .times(2),
    );
    let failed = http.pc("GET", "/v1/customers", &t, None).await;
    assert_eq!((failed.status, &failed.body["code"]), (503, &json!(503)));
    for _ in 0..2 {
        let storm = http.pc("GET", "/v1/customers", &t, None).await;
        assert_eq!(
            (storm.status, storm.header("Retry-After")),
            (429, Some("7"))
        );
    }
    assert_eq!(http.pc("GET", "/v1/customers", &t, None).await.status, 200);
    let arm = http.token(CONTOSO, ADMIN_RT, ARM).await;
    sim.faults()
        .add(FaultRule::new(FaultAction::Status(500)).path("/subscriptions/"));
    let list = format!(
        "/subscriptions/{CONTOSO_AZURE}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"
    );
    let arm_failed = arm_call(&http, "GET", &list, &arm, None).await;
    assert_eq!(
        (arm_failed.status, &arm_failed.body["error"]["code"]),
        (500, &json!("InternalServerError"))
    );
    let stats = sim.stats();
    assert_eq!(stats.throttled, 2);
    assert_eq!(stats.requests_to("GET", "/v1/customers"), 4);
    assert!(stats.total >= 7);
    assert!(sim.faults().pending().is_empty());
    sim.shutdown().await;
}
