//! kubectl's typed `create` subcommands send built-in kinds as application/vnd.kubernetes.protobuf;
//! the embedded server decodes them (and refuses the kinds it cannot decode with a clear 415), and
//! stores what a real server would: a Deployment's and a Service's defaults, cluster IPs and
//! node ports allocated once each.

use crate::support::Env;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

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

/// The table kubectl prints, as rows of cells (the header first).
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_deployment_stores_what_a_real_server_does() {
    let env = Env::new().await;
    env.ok(&["create", "namespace", "d"]).await;
    let out = env
        .ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            "d",
            "--image=nginx",
            "--replicas=2",
            "--port=8080",
        ])
        .await;
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let d = env.get_json("deployment/web", "d").await;
    assert_eq!(
        d["spec"],
        json!({
            "progressDeadlineSeconds": 600,
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                "type": "RollingUpdate"
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "image": "nginx",
                        "imagePullPolicy": "Always",
                        "name": "nginx",
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                }
            }
        })
    );
    assert_eq!(d["status"], json!({}));
    assert_eq!(d["metadata"]["generation"], 1);

    // Several images: a container each, pulled Always only for :latest or no tag. A replica
    // count of 0 stays 0 (sent, a pointer's zero is a value).
    env.ok(&[
        "create",
        "deployment",
        "multi",
        "-n",
        "d",
        "--image=nginx:1.27",
        "--image=busybox",
        "--image=registry.example.com:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "--replicas=0",
    ])
    .await;
    let got = env
        .jsonpath(
            "deployment/multi",
            "d",
            "{.spec.replicas} {.spec.template.spec.containers[*].name} {.spec.template.spec.containers[*].imagePullPolicy}",
        )
        .await;
    assert_eq!(got, "0 nginx busybox app IfNotPresent Always IfNotPresent");

    // `kubectl get deploy` shows the real printer's columns.
    let table = rows(&env.ok(&["get", "deploy", "-n", "d", "-o", "wide"]).await);
    assert_eq!(
        table[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ]
    );
    let web = table.iter().find(|r| r[0] == "web").expect("web listed");
    assert_eq!(
        [&web[1], &web[2], &web[3], &web[5], &web[6], &web[7]],
        ["0/2", "0", "0", "nginx", "nginx", "app=web"]
    );

    // The defaults are the kind's, not the encoding's: the same Deployment applied as YAML
    // gets them too, and applying it again changes nothing.
    let f = env.manifest(
        "d.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: applied, namespace: d}
spec:
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers:
      - {name: a, image: 'busybox:1.36', ports: [{containerPort: 80}],
         readinessProbe: {httpGet: {port: 80}}}
",
    );
    env.ok(&["apply", "-f", &f]).await;
    let a = env.get_json("deployment/applied", "d").await;
    assert_eq!(a["spec"]["replicas"], 1);
    assert_eq!(a["spec"]["strategy"]["type"], "RollingUpdate");
    let c = &a["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["readinessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    let again = env.ok(&["apply", "-f", &f]).await;
    assert!(
        again.contains("deployment.apps/applied unchanged"),
        "{again}"
    );
    let diff = env.kubectl(&["diff", "-f", &f]).await;
    assert!(diff.status.success(), "kubectl diff found a difference");
}

/// The service CIDR the embedded server allocates from (kubeadm's default).
fn in_service_cidr(ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
    u32::from(ip) >> 20 == u32::from(Ipv4Addr::new(10, 96, 0, 0)) >> 20
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_service_allocates_cluster_ips_and_node_ports() {
    let env = Env::new().await;
    env.ok(&["create", "namespace", "s"]).await;
    let out = env
        .ok(&[
            "create",
            "service",
            "clusterip",
            "web",
            "-n",
            "s",
            "--tcp=80:8080",
        ])
        .await;
    assert!(out.contains("service/web created"), "{out}");
    let web = env.get_json("service/web", "s").await;
    let ip = web["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(in_service_cidr(&ip), "{web}");
    assert_eq!(
        web["spec"],
        json!({
            "clusterIP": ip,
            "clusterIPs": [ip],
            "internalTrafficPolicy": "Cluster",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": "web"},
            "sessionAffinity": "None",
            "type": "ClusterIP"
        })
    );
    assert_eq!(web["status"], json!({"loadBalancer": {}}));

    // A second Service gets another address; asking for a held one is the real 422.
    env.ok(&[
        "create",
        "service",
        "clusterip",
        "api",
        "-n",
        "s",
        "--tcp=443",
    ])
    .await;
    let api_ip = env.jsonpath("service/api", "s", "{.spec.clusterIP}").await;
    assert!(in_service_cidr(&api_ip) && api_ip != ip, "{api_ip} {ip}");
    let asked = format!("--clusterip={ip}");
    let err = env
        .fails(&[
            "create",
            "service",
            "clusterip",
            "copy",
            "-n",
            "s",
            "--tcp=80",
            &asked,
        ])
        .await;
    assert!(
        err.contains(&format!(
            r#"Service "copy" is invalid: spec.clusterIPs: Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is already allocated"#
        )),
        "{err}"
    );
    // Once the holder is gone, the address is free again.
    env.ok(&["delete", "service", "web", "-n", "s"]).await;
    env.ok(&[
        "create",
        "service",
        "clusterip",
        "copy",
        "-n",
        "s",
        "--tcp=80",
        &asked,
    ])
    .await;
    assert_eq!(
        env.jsonpath("service/copy", "s", "{.spec.clusterIP}").await,
        ip
    );

    // Node ports: the one asked for, then a held one refused, then one allocated.
    env.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "-n",
        "s",
        "--tcp=80:8080",
        "--node-port=30080",
    ])
    .await;
    let err = env
        .fails(&[
            "create",
            "service",
            "nodeport",
            "np2",
            "-n",
            "s",
            "--tcp=81",
            "--node-port=30080",
        ])
        .await;
    assert!(
        err.contains(r#"Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"#),
        "{err}"
    );
    env.ok(&[
        "create", "service", "nodeport", "np3", "-n", "s", "--tcp=81",
    ])
    .await;
    let np3 = env.get_json("service/np3", "s").await;
    let port = np3["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
    assert!((30000..=32767).contains(&port) && port != 30080, "{np3}");
    assert_eq!(np3["spec"]["externalTrafficPolicy"], "Cluster");
    env.ok(&[
        "create",
        "service",
        "loadbalancer",
        "lb",
        "-n",
        "s",
        "--tcp=5678:8080",
    ])
    .await;
    let lb = env.get_json("service/lb", "s").await;
    let lb_port = lb["spec"]["ports"][0]["nodePort"].as_i64().unwrap_or(0);
    assert!(
        (30000..=32767).contains(&lb_port) && lb_port != port && lb_port != 30080,
        "{lb}"
    );
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);

    env.ok(&[
        "create",
        "service",
        "externalname",
        "en",
        "-n",
        "s",
        "--external-name=bar.com",
    ])
    .await;
    let en = env.get_json("service/en", "s").await;
    assert_eq!(
        en["spec"],
        json!({"externalName": "bar.com", "selector": {"app": "en"}, "sessionAffinity": "None", "type": "ExternalName"})
    );
    env.ok(&[
        "create",
        "service",
        "clusterip",
        "headless",
        "-n",
        "s",
        "--clusterip=None",
    ])
    .await;

    // `kubectl get svc` shows the real printer's columns.
    let table = rows(&env.ok(&["get", "svc", "-n", "s"]).await);
    assert_eq!(
        table[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let row = |name: &str| -> Vec<String> {
        table
            .iter()
            .find(|r| r[0] == name)
            .map(|r| r[1..5].to_vec())
            .unwrap_or_default()
    };
    assert_eq!(row("copy"), ["ClusterIP", &ip, "<none>", "80/TCP"]);
    assert_eq!(
        row("np"),
        [
            "NodePort",
            &env.jsonpath("service/np", "s", "{.spec.clusterIP}").await,
            "<none>",
            "80:30080/TCP"
        ]
    );
    assert_eq!(
        row("lb")[2..],
        ["<pending>".to_string(), format!("5678:{lb_port}/TCP")]
    );
    assert_eq!(row("en"), ["ExternalName", "<none>", "bar.com", "<none>"]);
    assert_eq!(row("headless"), ["ClusterIP", "None", "<none>", "<none>"]);

    // A manifest applied again keeps its allocations (it names none), and the cluster IP is
    // immutable.
    let f = env.manifest(
        "svc.yaml",
        "apiVersion: v1
kind: Service
metadata: {name: applied, namespace: s}
spec:
  type: NodePort
  selector: {app: a}
  ports: [{name: http, port: 80}]
",
    );
    env.ok(&["apply", "-f", &f]).await;
    let first: Value = env.get_json("service/applied", "s").await;
    let again = env.ok(&["apply", "-f", &f]).await;
    assert!(again.contains("service/applied unchanged"), "{again}");
    env.ok(&["apply", "--server-side", "--force-conflicts", "-f", &f])
        .await;
    let after: Value = env.get_json("service/applied", "s").await;
    assert_eq!(after["spec"], first["spec"]);
    let err = env
        .fails(&[
            "patch",
            "service",
            "applied",
            "-n",
            "s",
            "--type=merge",
            "-p",
            r#"{"spec":{"clusterIP":"10.96.0.77"}}"#,
        ])
        .await;
    assert!(
        err.contains(
            r#"spec.clusterIPs[0]: Invalid value: []string{"10.96.0.77"}: may not change once set"#
        ),
        "{err}"
    );
}
