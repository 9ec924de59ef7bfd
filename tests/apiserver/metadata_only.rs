//! Metadata-only reads: kube-rs' `list_metadata`, `get_metadata` and its metadata watcher get
//! PartialObjectMetadata (no spec, data or status), as from a real server; a form the endpoint
//! cannot answer is 406.

use crate::support::Env;
use crate::support::clients::Raw;
use crate::support::poll::eventually;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

const NS: &str = "default";

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "x"}},
        "data": {"secret-ish": "not in a metadata answer"},
    }))
    .expect("a ConfigMap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_metadata_list_get_and_watcher() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    api.create(&PostParams::default(), &config_map("one"))
        .await
        .expect("create");

    let list = api
        .list_metadata(&ListParams::default().labels("app=x"))
        .await
        .expect("list_metadata");
    assert_eq!(list.types.kind, "PartialObjectMetadataList");
    assert_eq!(list.types.api_version, "meta.k8s.io/v1");
    let names: Vec<String> = list.items.iter().map(|o| o.name_any()).collect();
    assert_eq!(names, ["one"]);
    assert!(list.metadata.resource_version.is_some());
    let one = api.get_metadata("one").await.expect("get_metadata");
    assert_eq!(one.labels().get("app").map(String::as_str), Some("x"));
    assert!(one.uid().is_some());

    // The metadata watcher (kube 5's `metadata_watcher`: a watcher on PartialObjectMeta) sees
    // objects come.
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let record = seen.clone();
    let watch = tokio::spawn(
        watcher(
            Api::<PartialObjectMeta<ConfigMap>>::namespaced(env.client.clone(), NS),
            watcher::Config::default(),
        )
        .applied_objects()
        .for_each(move |o| {
            if let Ok(o) = o {
                record.lock().expect("lock").insert(o.name_any());
            }
            async {}
        }),
    );
    api.create(&PostParams::default(), &config_map("two"))
        .await
        .expect("create");
    eventually("the metadata watcher to see both", || async {
        let now = seen.lock().expect("lock").clone();
        if now.contains("one") && now.contains("two") {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await;
    watch.abort();
}

/// The body of a raw GET of `path` with `accept`.
async fn raw_get(env: &Env, path: &str, accept: &str) -> (u16, Value) {
    let (code, response) = Raw::new(&env.server, "GET", path)
        .admin(&env.server)
        .header("Accept", accept)
        .send(&env.server)
        .await;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_metadata_only_and_wrong_forms_are_not_acceptable() {
    let env = Env::new().await;
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), NS);
    api.create(&PostParams::default(), &config_map("one"))
        .await
        .expect("create");
    let list_path = format!("/api/v1/namespaces/{NS}/configmaps");
    // client-go's metadata client asks for protobuf first, then JSON.
    let accept = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
    let (code, list) = raw_get(&env, &list_path, accept).await;
    assert_eq!(code, 200, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert_eq!(item["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(item["metadata"]["name"], "one");
    assert!(item.get("data").is_none(), "{item}");

    let one = format!("{list_path}/one");
    let single = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let (code, refused) = raw_get(&env, &one, single).await;
    assert_eq!(code, 406, "{refused}");
    let (code, got) = raw_get(
        &env,
        &one,
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(got.as_object().map(|o| o.len()), Some(3), "{got}");
}
