//! `import`: the example partner read from the simulator as our objects, applied to the embedded
//! API server (admission passes), with nothing but reads sent to Partner Center and Azure; and
//! the `csp-operator import` command with a connection and Secret in the cluster.

use crate::support::Env;
use crate::support::paths::BINARY;
use csp_operator::import::Import;
use csp_operator::partnercenter::{
    AZURE_RESERVED_INSTANCES, ClientOptions, Credentials, Endpoints, PartnerCenter, SecretString,
    SelfServePolicy,
};
use csp_operator::simulator::{Simulator, SimulatorOptions, Stats, World};
use serde_json::{Value, json};
use std::process::Command;

const NS: &str = "partner-a";
const CONTOSO: &str = "1a2b3c4d-0000-4000-8000-000000000004";

/// The example world's app and its admin agent's seed refresh token (MFA, Admin agent).
fn admin_credentials(world: &World) -> Credentials {
    let app = &world.applications[0];
    let admin = world
        .users
        .iter()
        .find(|u| u.upn.starts_with("admin@"))
        .expect("the example world has an admin");
    Credentials {
        client_id: app.client_id.clone(),
        client_secret: SecretString::new(app.client_secret.0.clone()),
        refresh_token: SecretString::new(admin.refresh_tokens[0].token.0.clone()),
    }
}

async fn simulator() -> (Simulator, World) {
    let world = World::examples();
    let options = SimulatorOptions {
        addr: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    let sim = Simulator::start(world.clone(), options)
        .await
        .expect("simulator starts");
    (sim, world)
}

fn client_for(sim: &Simulator, world: &World) -> PartnerCenter {
    let url = sim.base_url();
    let endpoints = Endpoints {
        partner_center: url.clone(),
        login: url.clone(),
        resource_manager: url,
    };
    PartnerCenter::new(
        &world.partner.tenant_id,
        endpoints,
        admin_credentials(world),
        ClientOptions::default(),
    )
    .expect("client")
}

/// Requests that could change something: every method but GET, sign-ins (token grants) aside.
fn changes(stats: &Stats) -> Vec<(String, u64)> {
    stats
        .requests
        .iter()
        .filter(|(route, _)| !route.starts_with("GET ") && !route.ends_with("/oauth2/token"))
        .map(|(route, n)| (route.clone(), *n))
        .collect()
}

/// `kind/name` of every object, in output order.
fn kinds_and_names(import: &Import) -> Vec<String> {
    import
        .objects()
        .map(|o| format!("{}/{}", o.kind(), o.name()))
        .collect()
}

fn spec_of(import: &Import, kind: &str, name: &str) -> Value {
    import
        .objects()
        .find(|o| o.kind() == kind && o.name() == name)
        .map(|o| o.to_json()["spec"].clone())
        .unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", kinds_and_names(import)))
}

#[tokio::test]
async fn the_example_partner_imports_applies_and_changes_nothing_in_partner_center() {
    let (sim, world) = simulator().await;
    let pc = client_for(&sim, &world);
    // Contoso's switch is on in Partner Center before the import; the others are off.
    let policy = SelfServePolicy::for_customer(
        &world.partner.tenant_id,
        CONTOSO,
        &[AZURE_RESERVED_INSTANCES],
    );
    pc.create_self_serve_policy(&policy)
        .await
        .expect("policy created");
    let before = sim.stats();

    let import = csp_operator::import::import(&pc, NS).await.expect("import");

    assert_eq!(
        changes(&sim.stats()),
        changes(&before),
        "the import sends only reads"
    );
    assert_eq!(
        kinds_and_names(&import),
        [
            "Customer/adatum",
            "PurchasePermission/adatum",
            "Customer/contoso",
            "AzureSubscription/contoso-azure-2b3c4d5e",
            "RoleAssignment/contoso-azure-2b3c4d5e-owner-3c4d5e6f",
            "PurchasePermission/contoso",
            "Customer/fabrikam",
            "AzureSubscription/fabrikam-license-2b3c4d5e",
            "PurchasePermission/fabrikam",
            "Customer/northwind-traders",
            "AzureSubscription/northwind-traders-azure-2b3c4d5e",
            "PurchasePermission/northwind-traders",
        ]
    );
    assert!(import.notes.is_empty(), "{:?}", import.notes);
    assert_eq!(import.partner_tenant_id, world.partner.tenant_id);
    assert_eq!(
        import.signed_in_as.as_deref(),
        Some("admin@partner-a.example")
    );

    assert_eq!(
        spec_of(&import, "Customer", "contoso"),
        json!({"tenantId": CONTOSO, "companyName": "Contoso Ltd", "domain": "contoso.onmicrosoft.com"})
    );
    assert_eq!(
        spec_of(&import, "AzureSubscription", "contoso-azure-2b3c4d5e"),
        json!({"customerRef": {"name": "contoso"}, "subscriptionId": "2b3c4d5e-0000-4000-8000-000000000004",
               "offer": "AzurePlan", "billingType": "Usage", "state": "Active"})
    );
    assert_eq!(
        spec_of(
            &import,
            "AzureSubscription",
            "northwind-traders-azure-2b3c4d5e"
        ),
        json!({"customerRef": {"name": "northwind-traders"}, "subscriptionId": "2b3c4d5e-0000-4000-8000-000000000003",
               "offer": "AzurePlan", "billingType": "Usage", "state": "Active"})
    );
    assert_eq!(
        spec_of(&import, "AzureSubscription", "fabrikam-license-2b3c4d5e"),
        json!({"customerRef": {"name": "fabrikam"}, "subscriptionId": "2b3c4d5e-0000-4000-8000-000000000002",
               "offer": "Other", "billingType": "License", "state": "Active"})
    );
    // Only contoso's Owner: northwind's Contributor does not count and is not listed.
    assert_eq!(
        spec_of(
            &import,
            "RoleAssignment",
            "contoso-azure-2b3c4d5e-owner-3c4d5e6f"
        ),
        json!({"subscriptionRef": {"name": "contoso-azure-2b3c4d5e"},
               "principal": {"id": "3c4d5e6f-0000-4000-8000-000000000004", "type": "User"}, "role": "Owner"})
    );
    assert_eq!(
        spec_of(&import, "PurchasePermission", "contoso"),
        json!({"customerRef": {"name": "contoso"}, "resources": ["AzureReservations"], "enabled": true,
               "deletionPolicy": "Withdraw"})
    );
    for off in ["adatum", "fabrikam", "northwind-traders"] {
        assert_eq!(
            spec_of(&import, "PurchasePermission", off)["enabled"],
            json!(false),
            "{off}"
        );
    }
    for object in import.objects() {
        let json = object.to_json();
        assert_eq!(
            json["metadata"],
            json!({"name": object.name(), "namespace": NS})
        );
        assert!(json.get("status").is_none(), "{json}");
    }

    // The YAML: a header, then the objects; kubectl apply accepts every one (admission passes).
    let yaml = import.to_yaml().expect("yaml");
    assert!(
        yaml.starts_with("# Written by `csp-operator import`"),
        "{yaml}"
    );
    assert!(yaml.contains(&format!("for partner tenant {}", world.partner.tenant_id)));
    assert!(yaml.contains("changes nothing in Partner Center"));
    assert!(yaml.contains("Only Owner role assignments"));
    assert_eq!(yaml.matches("\n---\n").count(), 12, "{yaml}");
    assert_eq!(
        import.to_yaml().expect("yaml"),
        yaml,
        "the same import writes the same YAML"
    );
    let env = Env::new().await;
    env.ok(&["create", "namespace", NS]).await;
    let file = env.manifest("import.yaml", &yaml);
    let before_apply = sim.stats();
    let applied = env.ok(&["apply", "-f", &file]).await;
    assert_eq!(applied.lines().count(), 12, "{applied}");
    assert!(
        applied.lines().all(|l| l.ends_with(" created")),
        "{applied}"
    );
    let permissions = env
        .ok(&[
            "get",
            "cspperm",
            "-n",
            NS,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.spec.enabled} {end}",
        ])
        .await;
    assert_eq!(
        permissions,
        "adatum=false contoso=true fabrikam=false northwind-traders=false "
    );
    // Applying again is a no-op, and nothing reached Partner Center.
    let again = env.ok(&["apply", "-f", &file]).await;
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");
    assert_eq!(sim.stats(), before_apply);
    assert_eq!(sim.self_serve_policies().len(), 1);
    sim.shutdown().await;
}

/// The command: the connection and its Secret from the cluster, the YAML on stdout, the rotated
/// refresh token written back; clear errors that never show a secret.
#[tokio::test]
async fn the_import_command_reads_the_connection_and_writes_the_refresh_token_back() {
    let (sim, world) = simulator().await;
    let env = Env::new().await;
    env.ok(&["create", "namespace", NS]).await;
    let url = sim.base_url();
    let credentials = admin_credentials(&world);
    let connection = format!(
        r#"apiVersion: csp.operator.dev/v1alpha1
kind: PartnerCenterConnection
metadata: {{name: partner-center, namespace: {NS}}}
spec:
  partnerTenantId: {tenant}
  credentialsSecretRef: {{name: pc-credentials}}
  endpoints: {{partnerCenter: "{url}", login: "{url}", resourceManager: "{url}"}}
  requestsPerMinute: 400
"#,
        tenant = world.partner.tenant_id
    );
    env.ok(&["apply", "-f", &env.manifest("connection.yaml", &connection)])
        .await;
    // In a worker thread: the embedded server runs on this test's runtime.
    let kubeconfig = env.kubeconfig.clone();
    let run = |args: &[&str]| {
        let mut command = Command::new(BINARY);
        command
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .arg("import")
            .args(args);
        async move {
            tokio::task::spawn_blocking(move || command.output().expect("csp-operator runs"))
                .await
                .expect("join")
        }
    };

    // No Secret yet: a clear error.
    let missing = run(&["--connection", "partner-a/partner-center"]).await;
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("Secret partner-a/pc-credentials") && stderr.contains("not found"),
        "{stderr}"
    );
    let unknown = run(&["--connection", "partner-a/nope"]).await;
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("PartnerCenterConnection partner-a/nope not found")
    );
    let malformed = run(&["--connection", "partner-center"]).await;
    assert!(String::from_utf8_lossy(&malformed.stderr).contains("NAMESPACE/NAME"));

    // A Secret without the refresh token: the key is named, no value is shown.
    env.ok(&[
        "create",
        "secret",
        "generic",
        "pc-credentials",
        "-n",
        NS,
        &format!("--from-literal=clientId={}", credentials.client_id),
        &format!(
            "--from-literal=clientSecret={}",
            credentials.client_secret.expose()
        ),
    ])
    .await;
    let no_token = run(&["--connection", "partner-a/partner-center"]).await;
    let stderr = String::from_utf8_lossy(&no_token.stderr);
    assert!(!no_token.status.success());
    assert!(stderr.contains("has no key refreshToken"), "{stderr}");
    assert!(
        !stderr.contains(credentials.client_secret.expose()),
        "{stderr}"
    );

    let seed = credentials.refresh_token.expose();
    env.ok(&[
        "patch",
        "secret",
        "pc-credentials",
        "-n",
        NS,
        "--type=merge",
        "-p",
        &json!({"data": {"refreshToken": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            seed
        )}})
        .to_string(),
    ])
    .await;
    let out_file = env.dir.path().join("partner-a.yaml");
    let ok = run(&[
        "--connection",
        "partner-a/partner-center",
        "--output",
        out_file.to_str().expect("utf-8 path"),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "{stderr}");
    assert!(!stderr.contains(seed) && !stderr.contains(credentials.client_secret.expose()));
    let yaml = std::fs::read_to_string(&out_file).expect("output written");
    assert!(yaml.contains("kind: PurchasePermission"), "{yaml}");
    assert!(yaml.contains("namespace: partner-a"), "{yaml}");
    env.ok(&["apply", "-f", out_file.to_str().expect("utf-8 path")])
        .await;

    // The Secret now holds the rotated refresh token, and it signs in.
    let stored = env
        .ok(&[
            "get",
            "secret",
            "pc-credentials",
            "-n",
            NS,
            "-o",
            "jsonpath={.data.refreshToken}",
        ])
        .await;
    let stored =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, stored).expect("base64");
    let stored = String::from_utf8(stored).expect("utf-8");
    assert_ne!(stored, seed, "the rotated token was written back");
    let again = run(&["--connection", "partner-a/partner-center"]).await;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let printed = String::from_utf8_lossy(&again.stdout);
    let body = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with("# Written by") && !l.starts_with("# for partner"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&printed), body(&yaml), "stdout is the same YAML");
    assert_eq!(changes(&sim.stats()), Vec::<(String, u64)>::new());
    sim.shutdown().await;
}

/// The cases the example world lacks: two customers with one name, legacy Azure, a suspended
/// Azure plan, a foreign group and a group as Owner, both purchase resources.
const EDGE_WORLD: &str = r#"
partner: {tenantId: 9a8b7c6d-0000-4000-8000-000000000001}
applications:
  - {clientId: 1f2e3d4c-0000-4000-8000-00000000c11e, clientSecret: fake-secret}
users:
  - id: 0a1b2c3d-0000-4000-8000-00000000a001
    upn: admin@partner-a.example
    roles: [AdminAgent]
    refreshTokens: [{token: fake-refresh-token-admin-0001}]
customers:
  - tenantId: 1a2b3c4d-0000-4000-8000-0000000000b2
    companyName: Contoso Ltd.
    domain: contosouk.onmicrosoft.com
    subscriptions:
      - id: 5e6f7a8b-0000-4000-8000-0000000000b2
        status: suspended
        azureEntitlements:
          - id: 2b3c4d5e-0000-4000-8000-0000000000b2
            roleAssignments:
              - {name: 4d5e6f7a-0000-4000-8000-0000000000b2, principalId: 3c4d5e6f-0000-4000-8000-0000000000b2, roleDefinition: Owner}
  - tenantId: 1a2b3c4d-0000-4000-8000-0000000000a1
    companyName: Contoso Ltd
    subscriptions:
      - id: 2b3c4d5e-0000-4000-8000-0000000000a1
        offerId: MS-AZR-0145P
        offerName: Microsoft Azure
        azureEntitlements: []
      - id: 5e6f7a8b-0000-4000-8000-0000000000a1
        azureEntitlements:
          - id: 2b3c4d5e-0000-4000-8000-0000000000a2
            roleAssignments:
              - {name: 4d5e6f7a-0000-4000-8000-0000000000a1, principalId: 3c4d5e6f-0000-4000-8000-0000000000a1, principalType: ForeignGroup, roleDefinition: Owner}
              - {name: 4d5e6f7a-0000-4000-8000-0000000000a2, principalId: 3c4d5e6f-0000-4000-8000-0000000000a2, principalType: Group, roleDefinition: Owner}
              - {name: 4d5e6f7a-0000-4000-8000-0000000000a3, principalId: 3c4d5e6f-0000-4000-8000-0000000000a3, roleDefinition: Reader}
selfServePolicies:
  - customer: 1a2b3c4d-0000-4000-8000-0000000000a1
    permissions: [AzureSavingsPlan, AzureReservedInstances]
"#;

#[tokio::test]
async fn collisions_legacy_azure_suspended_plans_and_foreign_owners_import_faithfully() {
    let world = World::from_yaml(EDGE_WORLD).expect("world");
    let options = SimulatorOptions {
        addr: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    let sim = Simulator::start(world.clone(), options)
        .await
        .expect("simulator");
    let pc = client_for(&sim, &world);
    let import = csp_operator::import::import(&pc, NS).await.expect("import");
    assert_eq!(
        kinds_and_names(&import),
        [
            // The lower tenant id keeps the plain name; the other gets its tenant id's first block.
            "Customer/contoso",
            "AzureSubscription/contoso-azure-2b3c4d5e",
            "AzureSubscription/contoso-azure-2b3c4d5e-000000a2",
            "RoleAssignment/contoso-azure-2b3c4d5e-000000a2-owner-3c4d5e6f",
            "PurchasePermission/contoso",
            "Customer/contoso-1a2b3c4d",
            "AzureSubscription/contoso-1a2b3c4d-azure-2b3c4d5e",
            "PurchasePermission/contoso-1a2b3c4d",
        ]
    );
    // The simulator's ARM knows only Azure plan subscriptions: an ARM error leaves the legacy
    // subscription's roles out with a note, and the import goes on.
    assert_eq!(import.notes.len(), 1, "{:?}", import.notes);
    assert!(
        import.notes[0].contains("2b3c4d5e-0000-4000-8000-0000000000a1 could not be read")
            && import.notes[0].contains("SubscriptionNotFound"),
        "{:?}",
        import.notes
    );
    let legacy = spec_of(&import, "AzureSubscription", "contoso-azure-2b3c4d5e");
    assert_eq!(legacy["offer"], "AzureGlobal");
    assert_eq!(
        legacy["subscriptionId"],
        "2b3c4d5e-0000-4000-8000-0000000000a1"
    );
    assert_eq!(legacy["billingType"], "Usage");
    // Only the group: the foreign group (the partner's own agents) is left out, with a comment.
    let owner = spec_of(
        &import,
        "RoleAssignment",
        "contoso-azure-2b3c4d5e-000000a2-owner-3c4d5e6f",
    );
    assert_eq!(
        owner["principal"]["id"],
        "3c4d5e6f-0000-4000-8000-0000000000a2"
    );
    assert_eq!(owner["principal"]["type"], "Group");
    let yaml = import.to_yaml().expect("yaml");
    assert!(yaml.contains("Left out (1):"), "{yaml}");
    assert!(
        yaml.contains("Owner 3c4d5e6f-0000-4000-8000-0000000000a1 (ForeignGroup) left out"),
        "{yaml}"
    );
    assert_eq!(
        spec_of(&import, "PurchasePermission", "contoso")["resources"],
        json!(["AzureReservations", "AzureSavingsPlan"])
    );
    // The suspended plan's Azure subscription is Suspended, so its Owner is not read.
    let suspended = spec_of(
        &import,
        "AzureSubscription",
        "contoso-1a2b3c4d-azure-2b3c4d5e",
    );
    assert_eq!(suspended["state"], "Suspended");
    assert_eq!(
        spec_of(&import, "Customer", "contoso-1a2b3c4d")["companyName"],
        "Contoso Ltd."
    );
    assert_eq!(
        sim.stats().requests_to(
            "GET",
            "/subscriptions/{subscriptionId}/providers/Microsoft.Authorization/roleAssignments"
        ),
        2,
        "roles are read on the eligible subscriptions only"
    );
    let env = Env::new().await;
    env.ok(&["create", "namespace", NS]).await;
    env.ok(&["apply", "-f", &env.manifest("edge.yaml", &yaml)])
        .await;
    sim.shutdown().await;
}
