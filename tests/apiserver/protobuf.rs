//! kubectl's typed `create` subcommands send built-in kinds as application/vnd.kubernetes.protobuf;
//! the embedded server decodes them (and refuses the kinds it cannot decode with a clear 415).

use crate::support::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_create_label_delete() {
    let env = Env::new().await;
    let out = env.ok(&["create", "namespace", "foo"]).await;
    assert!(out.contains("namespace/foo created"), "{out}");
    let name = env
        .ok(&["get", "ns", "foo", "-o", "jsonpath={.metadata.name}"])
        .await;
    assert_eq!(name, "foo");
    let err = env.fails(&["create", "namespace", "foo"]).await;
    assert!(
        err.contains("AlreadyExists") || err.contains("already exists"),
        "{err}"
    );

    env.ok(&["label", "ns", "foo", "a=b"]).await;
    env.ok(&["annotate", "ns", "foo", "note=hi"]).await;
    let got = env
        .ok(&[
            "get",
            "ns",
            "foo",
            "-o",
            "jsonpath={.metadata.labels.a}/{.metadata.annotations.note}",
        ])
        .await;
    assert_eq!(got, "b/hi");

    // --save-config puts the last-applied annotation into the protobuf ObjectMeta.
    env.ok(&["create", "namespace", "bar", "--save-config"])
        .await;
    let got = env
        .ok(&[
            "get",
            "ns",
            "bar",
            "-o",
            "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
        ])
        .await;
    assert!(got.contains("\"name\":\"bar\""), "{got}");

    env.ok(&["delete", "ns", "foo", "--wait=false"]).await;
    env.fails(&["get", "ns", "foo"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_secret_and_serviceaccount_round_trip() {
    let env = Env::new().await;
    env.ok(&["create", "namespace", "p"]).await;

    let bin = env.dir.path().join("bin.dat");
    std::fs::write(&bin, [0x00u8, 0xff, 0x01]).expect("write");
    let from_file = format!("--from-file={}", bin.display());
    let out = env
        .ok(&[
            "create",
            "configmap",
            "x",
            "-n",
            "p",
            "--from-literal=a=b",
            "--from-literal=empty=",
            &from_file,
        ])
        .await;
    assert!(out.contains("configmap/x created"), "{out}");
    let got = env
        .ok(&[
            "get",
            "cm",
            "x",
            "-n",
            "p",
            "-o",
            "jsonpath={.data.a}|{.data.empty}|{.binaryData.bin\\.dat}",
        ])
        .await;
    assert_eq!(got, "b||AP8B");

    let out = env
        .ok(&[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "p",
            "--from-literal=k=v",
            "--from-literal=pw=hunter2",
        ])
        .await;
    assert!(out.contains("secret/s created"), "{out}");
    let got = env
        .ok(&[
            "get",
            "secret",
            "s",
            "-n",
            "p",
            "-o",
            "jsonpath={.data.k} {.data.pw}",
        ])
        .await;
    assert_eq!(got, "dg== aHVudGVyMg==");

    env.ok(&[
        "create",
        "secret",
        "generic",
        "t",
        "-n",
        "p",
        "--type=example.com/token",
        "--from-literal=k=v",
    ])
    .await;
    let got = env
        .ok(&["get", "secret", "t", "-n", "p", "-o", "jsonpath={.type}"])
        .await;
    assert_eq!(got, "example.com/token");

    let out = env
        .ok(&["create", "serviceaccount", "robot", "-n", "p"])
        .await;
    assert!(out.contains("serviceaccount/robot created"), "{out}");
    let got = env
        .ok(&[
            "get",
            "sa",
            "robot",
            "-n",
            "p",
            "-o",
            "jsonpath={.metadata.name}",
        ])
        .await;
    assert_eq!(got, "robot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_creates() {
    let env = Env::new().await;
    env.ok(&["create", "namespace", "r"]).await;
    env.ok(&[
        "create",
        "role",
        "reader",
        "-n",
        "r",
        "--verb=get,list",
        "--resource=configmaps,deployments.apps",
        "--resource-name=one",
    ])
    .await;
    let got = env
        .ok(&[
            "get",
            "role",
            "reader",
            "-n",
            "r",
            "-o",
            "jsonpath={.rules}",
        ])
        .await;
    let rules: serde_json::Value = serde_json::from_str(&got).expect("json");
    assert_eq!(
        rules,
        serde_json::json!([
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"]},
            {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["one"]}
        ])
    );
    env.ok(&[
        "create",
        "rolebinding",
        "rb",
        "-n",
        "r",
        "--role=reader",
        "--user=alice",
        "--serviceaccount=r:robot",
    ])
    .await;
    let got = env
        .ok(&[
            "get",
            "rolebinding",
            "rb",
            "-n",
            "r",
            "-o",
            "jsonpath={.roleRef.name} {.subjects[*].name}",
        ])
        .await;
    assert_eq!(got, "reader alice robot");
    env.ok(&[
        "create",
        "clusterrole",
        "health",
        "--verb=get",
        "--non-resource-url=/healthz",
    ])
    .await;
    env.ok(&[
        "create",
        "clusterrolebinding",
        "health",
        "--clusterrole=health",
        "--group=system:authenticated",
    ])
    .await;
    let got = env
        .ok(&[
            "get",
            "clusterrole",
            "health",
            "-o",
            "jsonpath={.rules[0].nonResourceURLs[0]}",
        ])
        .await;
    assert_eq!(got, "/healthz");
}
