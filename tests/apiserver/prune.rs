//! `kubectl apply --prune -l ...` without `--prune-allowlist`: every kind of kubectl's default
//! prune list is in discovery and lists (empty where nothing is stored), so pruning works.

use crate::support::Env;

const TWO: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: first, namespace: default, labels: {app: x}}
data: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: second, namespace: default, labels: {app: x}}
data: {k: v}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_prune_with_the_default_allowlist_removes_what_left_the_folder() {
    let env = Env::new().await;
    let dir = env.dir.path().join("app");
    std::fs::create_dir_all(&dir).expect("dir");
    let manifest = dir.join("app.yaml");
    std::fs::write(&manifest, TWO).expect("write");
    let dir = dir.to_string_lossy().into_owned();
    env.ok(&["apply", "--prune", "-l", "app=x", "-f", &dir])
        .await;
    // An unlabelled ConfigMap is not the apply set's: it stays.
    env.ok(&["create", "configmap", "bystander", "-n", "default"])
        .await;

    std::fs::write(&manifest, &TWO[..TWO.find("---").unwrap_or(TWO.len())]).expect("write");
    let out = env
        .ok(&["apply", "--prune", "-l", "app=x", "-f", &dir])
        .await;
    assert!(out.contains("configmap/second pruned"), "{out}");
    let left = env
        .ok(&["get", "configmaps", "-n", "default", "-o", "name"])
        .await;
    assert!(
        left.contains("configmap/first") && left.contains("configmap/bystander"),
        "{left}"
    );
    assert!(!left.contains("configmap/second"), "{left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workload_kinds_are_served_empty_and_read_only() {
    let env = Env::new().await;
    let resources = env.ok(&["api-resources", "-o", "name"]).await;
    for kind in [
        "endpoints",
        "persistentvolumeclaims",
        "persistentvolumes",
        "pods",
        "replicationcontrollers",
        "jobs.batch",
        "cronjobs.batch",
        "ingresses.networking.k8s.io",
        "daemonsets.apps",
        "replicasets.apps",
        "statefulsets.apps",
    ] {
        assert!(
            resources.lines().any(|l| l == kind),
            "{kind} in {resources}"
        );
        let out = env.kubectl(&["get", kind, "-A"]).await;
        assert!(out.status.success(), "{kind}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("No resources found"),
            "{kind}: {out:?}"
        );
    }
    let err = env
        .fails(&["create", "job", "once", "--image=busybox", "-n", "default"])
        .await;
    assert!(
        err.contains("the server does not allow this method on the requested resource"),
        "{err}"
    );
}
