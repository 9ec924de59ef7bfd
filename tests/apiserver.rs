//! Embedded API server behaviour that is neither kube-rs nor kubectl specific.

use csp_operator::apiserver::{ApiServer, Config};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_their_ttl() {
    let server = ApiServer::start(Config {
        event_ttl: Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .expect("server starts");
    let events: Api<Event> = Api::namespaced(server.client().expect("client"), "default");
    let event: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "old"},
        "involvedObject": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
        "reason": "Tested", "message": "expires", "type": "Normal",
    }))
    .expect("event");
    events
        .create(&PostParams::default(), &event)
        .await
        .expect("create");
    assert_eq!(
        events
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
    let mut left = 1;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = events
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len();
        if left == 0 {
            break;
        }
    }
    assert_eq!(left, 0, "the event is gone once older than the TTL");
    server.shutdown();
}
