//! Embedded API server behaviour that is neither kube-rs nor kubectl specific.

use crate::support::Env;
use crate::support::poll::Poll;
use csp_operator::apiserver::Config;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams, PostParams};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_expire_after_their_ttl() {
    let env = Env::with_config(Config {
        event_ttl: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let events: Api<Event> = Api::namespaced(env.client.clone(), "default");
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
    // Gone within 5 s of being written.
    let expiry = Poll {
        timeout: Duration::from_secs(5),
        ..Default::default()
    };
    expiry
        .eventually("the event to be gone once older than the TTL", || async {
            let left = events
                .list(&ListParams::default())
                .await
                .expect("list")
                .items
                .len();
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} events"))
            }
        })
        .await;
}
