//! The built-in printers of Services and Deployments, as the real server's
//! (k8s.io/kubernetes pkg/printers/internalversion/printers.go: `printService`,
//! `printDeployment`, always "wide"; kubectl hides the priority 1 columns).

use super::Column;
use super::printers::{COMPUTED_AGE, COMPUTED_PREFIX, col, name_column};
use serde_json::{Value, json};

const SERVICE_TYPE: &str = "#computed:service.type";
const SERVICE_CLUSTER_IP: &str = "#computed:service.clusterIP";
const SERVICE_EXTERNAL_IP: &str = "#computed:service.externalIP";
const SERVICE_PORTS: &str = "#computed:service.ports";
const SERVICE_SELECTOR: &str = "#computed:service.selector";
const DEPLOYMENT_READY: &str = "#computed:deployment.ready";
const DEPLOYMENT_UPDATED: &str = "#computed:deployment.updated";
const DEPLOYMENT_AVAILABLE: &str = "#computed:deployment.available";
const DEPLOYMENT_CONTAINERS: &str = "#computed:deployment.containers";
const DEPLOYMENT_IMAGES: &str = "#computed:deployment.images";
const DEPLOYMENT_SELECTOR: &str = "#computed:deployment.selector";

const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Name, Type, Cluster-IP, External-IP, Port(s), Age, and Selector with `-o wide`.
pub fn service_columns() -> Vec<Column> {
    vec![
        name_column(0),
        col(
            "Type",
            "string",
            "",
            "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types",
            0,
            SERVICE_TYPE,
        ),
        col(
            "Cluster-IP",
            "string",
            "",
            "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
            0,
            SERVICE_CLUSTER_IP,
        ),
        col(
            "External-IP",
            "string",
            "",
            "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.",
            0,
            SERVICE_EXTERNAL_IP,
        ),
        col(
            "Port(s)",
            "string",
            "",
            "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies",
            0,
            SERVICE_PORTS,
        ),
        col("Age", "string", "", AGE_DESCRIPTION, 0, COMPUTED_AGE),
        col(
            "Selector",
            "string",
            "",
            "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/",
            1,
            SERVICE_SELECTOR,
        ),
    ]
}

/// Name, Ready, Up-to-date, Available, Age, and Containers, Images, Selector with `-o wide`.
pub fn deployment_columns() -> Vec<Column> {
    vec![
        name_column(0),
        col(
            "Ready",
            "string",
            "",
            "Number of the pod with ready state",
            0,
            DEPLOYMENT_READY,
        ),
        col(
            "Up-to-date",
            "string",
            "",
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            0,
            DEPLOYMENT_UPDATED,
        ),
        col(
            "Available",
            "string",
            "",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            0,
            DEPLOYMENT_AVAILABLE,
        ),
        col("Age", "string", "", AGE_DESCRIPTION, 0, COMPUTED_AGE),
        col(
            "Containers",
            "string",
            "",
            "Names of each container in the template.",
            1,
            DEPLOYMENT_CONTAINERS,
        ),
        col(
            "Images",
            "string",
            "",
            "Images referenced by each container in the template.",
            1,
            DEPLOYMENT_IMAGES,
        ),
        col(
            "Selector",
            "string",
            "",
            "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            1,
            DEPLOYMENT_SELECTOR,
        ),
    ]
}

/// A cell of one of the columns above (None: not one of theirs).
pub fn cell(marker: &str, obj: &Value) -> Option<Value> {
    if !marker.starts_with(COMPUTED_PREFIX) {
        return None;
    }
    let spec = &obj["spec"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    Some(match marker {
        SERVICE_TYPE => json!(str_of(&spec["type"])),
        SERVICE_CLUSTER_IP => json!(
            spec["clusterIPs"]
                .get(0)
                .and_then(Value::as_str)
                .unwrap_or("<none>")
        ),
        SERVICE_EXTERNAL_IP => json!(external_ip(obj)),
        SERVICE_PORTS => {
            let ports = service_ports(spec);
            json!(if ports.is_empty() {
                "<none>".into()
            } else {
                ports
            })
        }
        SERVICE_SELECTOR => json!(format_labels(&spec["selector"])),
        DEPLOYMENT_READY => json!(format!(
            "{}/{}",
            int(&obj["status"]["readyReplicas"]),
            int(&spec["replicas"])
        )),
        DEPLOYMENT_UPDATED => json!(int(&obj["status"]["updatedReplicas"])),
        DEPLOYMENT_AVAILABLE => json!(int(&obj["status"]["availableReplicas"])),
        DEPLOYMENT_CONTAINERS => json!(containers(spec, "name")),
        DEPLOYMENT_IMAGES => json!(containers(spec, "image")),
        DEPLOYMENT_SELECTOR => json!(format_selector(&spec["selector"])),
        _ => return None,
    })
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `getServiceExternalIP`.
fn external_ip(obj: &Value) -> String {
    let spec = &obj["spec"];
    let external_ips = strings(&spec["externalIPs"]);
    match str_of(&spec["type"]) {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".into()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let mut all: Vec<&str> = obj["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    [str_of(&i["ip"]), str_of(&i["hostname"])]
                        .into_iter()
                        .find(|s| !s.is_empty())
                })
                .collect();
            all.extend(external_ips);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_of(&spec["externalName"]).into(),
        _ => "<unknown>".into(),
    }
}

/// `makePortString`: `port[:nodePort]/protocol`, comma-separated.
fn service_ports(spec: &Value) -> String {
    spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p["port"].as_i64().unwrap_or(0);
            let protocol = str_of(&p["protocol"]);
            match p["nodePort"].as_i64().filter(|n| *n > 0) {
                Some(np) => format!("{port}:{np}/{protocol}"),
                None => format!("{port}/{protocol}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A field of each container of a pod template, comma-separated (`layoutContainerCells`).
fn containers(spec: &Value, field: &str) -> String {
    spec["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| str_of(&c[field]))
        .collect::<Vec<_>>()
        .join(",")
}

/// `labels.FormatLabels`: sorted `k=v` pairs, or `<none>`.
fn format_labels(map: &Value) -> String {
    let mut pairs: Vec<String> = map
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", str_of(v)))
        .collect();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs.join(",")
}

/// A LabelSelector as `metav1.LabelSelectorAsSelector(...).String()` prints it: requirements
/// sorted by key, `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`.
fn format_selector(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel["matchLabels"].as_object().into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", str_of(v))));
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = str_of(&e["key"]);
        let mut values = strings(&e["values"]);
        values.sort_unstable();
        let values = values.join(",");
        let text = match str_of(&e["operator"]) {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort();
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::super::table;
    use super::super::tests::ts;
    use super::*;

    #[test]
    fn service_rows() {
        let now = ts("2024-05-01T12:00:00Z");
        let cols = service_columns();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector"
            ]
        );
        let created = "2024-05-01T11:00:00Z";
        let svcs = [
            json!({"metadata": {"name": "web", "creationTimestamp": created},
                   "spec": {"type": "ClusterIP", "clusterIP": "10.96.7.8", "clusterIPs": ["10.96.7.8"],
                            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                            "selector": {"b": "2", "a": "1"}}}),
            json!({"metadata": {"name": "np", "creationTimestamp": created},
                   "spec": {"type": "NodePort", "clusterIPs": ["10.96.7.9"], "externalIPs": ["1.2.3.4"],
                            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}}),
            json!({"metadata": {"name": "lb", "creationTimestamp": created},
                   "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.7.10"], "ports": []},
                   "status": {"loadBalancer": {}}}),
            json!({"metadata": {"name": "lb2", "creationTimestamp": created},
                   "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.7.11"]},
                   "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "x.example"}]}}}),
            json!({"metadata": {"name": "en", "creationTimestamp": created},
                   "spec": {"type": "ExternalName", "externalName": "bar.com"}}),
            json!({"metadata": {"name": "h", "creationTimestamp": created},
                   "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}}),
        ];
        let t = table(&cols, &svcs, "1", None, now);
        let rows: Vec<Value> = t["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["cells"].clone())
            .collect();
        assert_eq!(
            rows,
            [
                json!([
                    "web",
                    "ClusterIP",
                    "10.96.7.8",
                    "<none>",
                    "80/TCP,53/UDP",
                    "60m",
                    "a=1,b=2"
                ]),
                json!([
                    "np",
                    "NodePort",
                    "10.96.7.9",
                    "1.2.3.4",
                    "80:30080/TCP",
                    "60m",
                    "<none>"
                ]),
                json!([
                    "lb",
                    "LoadBalancer",
                    "10.96.7.10",
                    "<pending>",
                    "<none>",
                    "60m",
                    "<none>"
                ]),
                json!([
                    "lb2",
                    "LoadBalancer",
                    "10.96.7.11",
                    "5.6.7.8,x.example",
                    "<none>",
                    "60m",
                    "<none>"
                ]),
                json!([
                    "en",
                    "ExternalName",
                    "<none>",
                    "bar.com",
                    "<none>",
                    "60m",
                    "<none>"
                ]),
                json!([
                    "h",
                    "ClusterIP",
                    "None",
                    "<none>",
                    "<none>",
                    "60m",
                    "<none>"
                ]),
            ]
        );
    }

    #[test]
    fn deployment_rows() {
        let now = ts("2024-05-01T12:00:00Z");
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:59:00Z"},
            "spec": {"replicas": 2,
                     "selector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                                       {"key": "canary", "operator": "DoesNotExist"}]},
                     "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"},
                                                          {"name": "side", "image": "busybox:1.36"}]}}},
            "status": {"readyReplicas": 1, "updatedReplicas": 2}
        });
        let t = table(
            &deployment_columns(),
            &[d, json!({"metadata": {"name": "x"}})],
            "1",
            None,
            now,
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "web",
                "1/2",
                2,
                0,
                "60s",
                "nginx,side",
                "nginx,busybox:1.36",
                "app=web,!canary,tier in (a,b)"
            ])
        );
        assert_eq!(
            t["rows"][1]["cells"],
            json!(["x", "0/0", 0, 0, "<unknown>", "", "", ""])
        );
    }
}
