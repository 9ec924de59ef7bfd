//! Deleting the PurchasePermission CRD with the controllers running: its objects are deleted
//! through their finalizers, so an enabled permission's grant is withdrawn (and logged) before
//! the CRD goes.

use crate::support::Env;
use crate::support::paths::EXAMPLES;

const NS: &str = "partner-a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_permission_crd_withdraws_enabled_grants_first() {
    let env = Env::with_controllers().await;
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;

    env.ok(&[
        "delete",
        "crd",
        "purchasepermissions.csp.operator.dev",
        "--wait=false",
    ])
    .await;
    env.ok(&[
        "wait",
        "--for=delete",
        "crd/purchasepermissions.csp.operator.dev",
        "--timeout=20s",
    ])
    .await;
    // The CRD could only go once the controller had let the permission go, after withdrawing
    // the grant.
    let log = env.activity_log(NS).await;
    assert!(
        log.iter()
            .any(|l| l == "PermissionDisabled/DeleteCustomerPurchasePermissions/contoso"),
        "{log:?}"
    );
}
