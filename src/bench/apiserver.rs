//! `csp-operator bench-apiserver`: the embedded API server alone (creates, status patches, watch
//! fan-out, memory per stored object).

use super::{
    AnyError, NS, bench_server, create_all, current_rss_mib, customer_objects, peak_rss_mib,
    percentile, resource,
};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use std::time::{Duration, Instant};

/// `csp-operator bench-apiserver`: creates/s and status patches/s over HTTP with concurrent
/// clients, watch fan-out latency, and memory per stored object.
pub async fn api_server(
    objects: usize,
    clients: usize,
    watchers: usize,
    state: Option<std::path::PathBuf>,
) -> Result<String, AnyError> {
    let (server, client) = bench_server(10_000, false, state).await?;
    let rss_before = current_rss_mib();
    let perms = resource("PurchasePermission", "purchasepermissions");
    let t = Instant::now();
    let items = (0..objects).map(|i| customer_objects(i)[3].clone());
    create_all(&client, items, clients).await?;
    let create_s = t.elapsed().as_secs_f64();
    let rss_after = current_rss_mib();
    let bytes_per_object = server.stored_bytes() as f64 / objects as f64;

    // Status patches (server-side apply, as the operator writes them).
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &perms);
    let t = Instant::now();
    let results: Vec<Result<(), kube::Error>> = futures::stream::iter(0..objects)
        .map(|i| {
            let api = api.clone();
            async move {
                let status = json!({"apiVersion": "csp.operator.dev/v1alpha1", "kind": "PurchasePermission",
                    "status": {"state": "Disabled", "observedGeneration": 1}});
                api.patch_status(&format!("c{i}"), &PatchParams::apply("bench").force(), &Patch::Apply(&status))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let patch_s = t.elapsed().as_secs_f64();

    let fanout = watch_fanout(&api, watchers).await?;
    server.shutdown();
    Ok(format!(
        "objects={objects} clients={clients} creates_per_s={:.0} status_patches_per_s={:.0} watchers={watchers} fanout_p50_ms={:.2} fanout_p99_ms={:.2} stored_json_bytes_per_object={bytes_per_object:.0} rss_per_object_bytes={:.0} peak_rss_mib={:.0}",
        objects as f64 / create_s,
        objects as f64 / patch_s,
        percentile(&fanout, 0.5).as_secs_f64() * 1000.0,
        percentile(&fanout, 0.99).as_secs_f64() * 1000.0,
        (rss_after - rss_before) * 1024.0 * 1024.0 / objects as f64,
        peak_rss_mib()
    ))
}

/// Watch fan-out, sorted: `watchers` watches of one object; the time from a write to each
/// watcher's event, over 20 writes.
async fn watch_fanout(
    api: &Api<DynamicObject>,
    watchers: usize,
) -> Result<Vec<Duration>, AnyError> {
    let mut streams = Vec::new();
    for _ in 0..watchers {
        let api = api.clone();
        let s = api
            .watch(
                // No bookmarks: each stream then carries only c0's own events.
                &kube::api::WatchParams::default()
                    .fields("metadata.name=c0")
                    .disable_bookmarks(),
                "0",
            )
            .await?
            .boxed();
        streams.push(s);
    }
    // Drain the initial ADDED of c0.
    for s in streams.iter_mut() {
        let _ = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
    }
    let mut fanout = Vec::new();
    for round in 0..20 {
        let t0 = Instant::now();
        api.patch(
            "c0",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"round": round.to_string()}}})),
        )
        .await?;
        let want = round.to_string();
        let waits = streams.iter_mut().map(|s| {
            let want = want.clone();
            async move {
                // This round's change, not an earlier event still queued.
                let seen = tokio::time::timeout(Duration::from_secs(5), async {
                    while let Some(ev) = s.next().await {
                        if let Ok(kube::api::WatchEvent::Modified(o)) = ev
                            && o.metadata.labels.as_ref().and_then(|l| l.get("round"))
                                == Some(&want)
                        {
                            return true;
                        }
                    }
                    false
                })
                .await;
                matches!(seen, Ok(true)).then(|| t0.elapsed())
            }
        });
        for waited in futures::future::join_all(waits).await {
            fanout.push(waited.ok_or("a watcher did not see the change within 5 s")?);
        }
    }
    fanout.sort();
    Ok(fanout)
}
