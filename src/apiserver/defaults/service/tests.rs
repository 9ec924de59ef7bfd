//! Tests of a Service's defaults and allocations.

use super::*;

/// A write as the store makes it: defaults, then the registry's allocations.
fn write(mut svc: Value, old: Option<&Value>, taken: &Taken) -> Result<Value, ApiError> {
    defaults(&mut svc);
    allocate("web", &mut svc, old, taken)?;
    Ok(svc)
}

fn create(svc: Value, taken: &Taken) -> Result<Value, ApiError> {
    write(svc, None, taken)
}

fn in_cidr(ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().expect("an IPv4 address");
    let off = u32::from(ip).wrapping_sub(CIDR_BASE);
    (257..CIDR_SIZE - 1).contains(&off)
}

fn clusterip(ports: Value) -> Value {
    json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": ports}})
}

#[test]
fn defaults_as_set_defaults_service() {
    let mut s = clusterip(json!([
        {"port": 80, "targetPort": 8080},
        {"port": 443, "targetPort": 0, "protocol": "UDP"},
        {"port": 53, "targetPort": ""},
        {"port": 9, "targetPort": "http"}
    ]));
    defaults(&mut s);
    assert_eq!(
        s["spec"],
        json!({
            "selector": {"app": "web"},
            "ports": [
                {"port": 80, "targetPort": 8080, "protocol": "TCP"},
                {"port": 443, "targetPort": 443, "protocol": "UDP"},
                {"port": 53, "targetPort": 53, "protocol": "TCP"},
                {"port": 9, "targetPort": "http", "protocol": "TCP"}
            ],
            "sessionAffinity": "None",
            "type": "ClusterIP",
            "internalTrafficPolicy": "Cluster"
        })
    );

    let mut lb = json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP"}});
    defaults(&mut lb);
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );

    let mut external_ips = json!({"spec": {"externalIPs": ["1.2.3.4"]}});
    defaults(&mut external_ips);
    assert_eq!(external_ips["spec"]["externalTrafficPolicy"], "Cluster");

    let mut en = json!({"spec": {"type": "ExternalName", "externalName": "bar.com",
                                  "sessionAffinityConfig": {"clientIP": {}}}});
    defaults(&mut en);
    assert_eq!(
        en["spec"],
        json!({"type": "ExternalName", "externalName": "bar.com", "sessionAffinity": "None"})
    );
}

#[test]
fn cluster_ips_allocated_and_asked_for() {
    let mut taken = Taken::default();
    let a = create(clusterip(json!([{"port": 80}])), &taken).expect("created");
    let ip = a["spec"]["clusterIP"].as_str().expect("an IP").to_string();
    assert!(in_cidr(&ip), "{ip}");
    assert_eq!(a["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(a["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(a["spec"]["ipFamilyPolicy"], "SingleStack");
    assert!(
        a["spec"]
            .get("ports")
            .is_some_and(|p| p[0].get("nodePort").is_none())
    );
    taken.add(&a);

    // Asked for by value: free is fine (the lower band too), held is a 422.
    let mut asked = clusterip(json!([{"port": 80}]));
    asked["spec"]["clusterIP"] = json!("10.96.0.10");
    let b = create(asked.clone(), &taken).expect("created");
    assert_eq!(b["spec"]["clusterIPs"], json!(["10.96.0.10"]));
    taken.add(&b);
    let e = create(asked, &taken).expect_err("held");
    assert_eq!((e.code, e.reason), (422, "Invalid"));
    assert_eq!(
        e.message,
        "Service \"web\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.0.10\"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"
    );
    let mut same = clusterip(json!([]));
    same["spec"]["clusterIP"] = json!(ip);
    assert!(create(same, &taken).is_err());

    for outside in ["10.112.0.1", "10.96.0.0", "10.111.255.255", "192.168.0.1"] {
        let mut s = clusterip(json!([]));
        s["spec"]["clusterIP"] = json!(outside);
        let e = create(s, &taken).expect_err("outside");
        assert!(
            e.message.ends_with(&format!(
                "failed to allocate IP {outside}: the provided IP ({outside}) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
            )),
            "{}",
            e.message
        );
    }
    let mut bad = clusterip(json!([]));
    bad["spec"]["clusterIP"] = json!("not-an-ip");
    let e = create(bad, &taken).expect_err("bad");
    assert!(
        e.message.contains(
            "spec.clusterIPs[0]: Invalid value: \"not-an-ip\": must be a valid IP address"
        ),
        "{}",
        e.message
    );
    let mut v6 = clusterip(json!([]));
    v6["spec"]["ipFamilies"] = json!(["IPv6"]);
    let e = create(v6, &taken).expect_err("v6");
    assert!(
        e.message.contains(
            "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"
        ),
        "{}",
        e.message
    );
    let mut dual = clusterip(json!([]));
    dual["spec"]["ipFamilyPolicy"] = json!("RequireDualStack");
    assert!(create(dual, &taken).is_err());
    let mut prefer = clusterip(json!([]));
    prefer["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
    let p = create(prefer, &taken).expect("single-stack after all");
    assert_eq!(p["spec"]["ipFamilies"], json!(["IPv4"]));

    // Many Services, all different.
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let s = create(clusterip(json!([])), &taken).expect("created");
        taken.add(&s);
        assert!(seen.insert(s["spec"]["clusterIP"].as_str().map(String::from)));
    }
}

#[test]
fn headless_and_external_name() {
    let taken = Taken::default();
    let mut h = clusterip(json!([]));
    h["spec"]["clusterIP"] = json!("None");
    let h = create(h, &taken).expect("created");
    assert_eq!(h["spec"]["clusterIPs"], json!(["None"]));
    assert_eq!(h["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(h["spec"]["ipFamilyPolicy"], "SingleStack");

    // Headless without a selector: RequireDualStack, both families.
    let h = create(
        json!({"spec": {"clusterIP": "None", "ports": [{"port": 80}]}}),
        &taken,
    )
    .expect("created");
    assert_eq!(h["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(h["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));

    let en = create(
        json!({"spec": {"type": "ExternalName", "externalName": "bar.com"}}),
        &taken,
    )
    .expect("created");
    assert_eq!(
        en["spec"],
        json!({"type": "ExternalName", "externalName": "bar.com", "sessionAffinity": "None"})
    );
    let mut t = Taken::default();
    t.add(&en);
    assert!(t.ips.is_empty() && t.node_ports.is_empty());
}

#[test]
fn node_ports_allocated_and_asked_for() {
    let mut taken = Taken::default();
    let np = |ports: Value| json!({"spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": ports}});
    let a = create(
        np(json!([{"port": 80, "nodePort": 30080}, {"port": 443}])),
        &taken,
    )
    .expect("created");
    assert_eq!(a["spec"]["ports"][0]["nodePort"], 30080);
    let other = a["spec"]["ports"][1]["nodePort"].as_i64().expect("a port");
    assert!((30086..=32767).contains(&other), "{other}");
    assert_eq!(a["spec"]["externalTrafficPolicy"], "Cluster");
    assert!(a["spec"]["clusterIP"].is_string());
    taken.add(&a);

    let e = create(np(json!([{"port": 81, "nodePort": 30080}])), &taken).expect_err("held");
    assert_eq!(
        e.message,
        "Service \"web\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
    let e = create(np(json!([{"port": 81, "nodePort": 80}])), &taken).expect_err("range");
    assert!(
        e.message.ends_with(
            "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        ),
        "{}",
        e.message
    );
    // Two entries of one port number (TCP and UDP) share a node port; two numbers cannot.
    let dns = create(
        np(json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP", "nodePort": 30053}])),
        &taken,
    )
    .expect("created");
    assert_eq!(dns["spec"]["ports"][0]["nodePort"], 30053);
    assert_eq!(dns["spec"]["ports"][1]["nodePort"], 30053);
    let e = create(
        np(json!([{"port": 1, "nodePort": 30001}, {"port": 2, "nodePort": 30001}])),
        &taken,
    )
    .expect_err("twice");
    assert!(
        e.message.contains(
            "spec.ports[1].nodePort: Invalid value: 30001: provided port is already allocated"
        ),
        "{}",
        e.message
    );

    // A LoadBalancer allocates node ports unless told not to; with Local traffic it also
    // gets a health check port.
    let lb = create(
        json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}}),
        &taken,
    )
    .expect("created");
    assert!(lb["spec"]["ports"][0]["nodePort"].is_i64());
    assert!(lb["spec"]["healthCheckNodePort"].is_i64());
    assert_ne!(
        lb["spec"]["healthCheckNodePort"],
        lb["spec"]["ports"][0]["nodePort"]
    );
    let lb = create(
        json!({"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}}),
        &taken,
    )
    .expect("created");
    assert!(lb["spec"]["ports"][0].get("nodePort").is_none());

    // A ClusterIP Service may not name one.
    let e =
        create(clusterip(json!([{"port": 80, "nodePort": 30999}])), &taken).expect_err("forbidden");
    assert_eq!(
        e.message,
        "Service \"web\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    );
}

#[test]
fn node_ports_run_out() {
    let mut taken = Taken::default();
    taken
        .node_ports
        .extend((NODE_PORTS.0..=NODE_PORTS.1).filter(|p| *p != 30005));
    let held = HashSet::new();
    assert_eq!(next_node_port(&taken, &held, &HashSet::new()), Some(30005));
    taken.node_ports.insert(30005);
    assert_eq!(next_node_port(&taken, &held, &HashSet::new()), None);
    let e = create(
        json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        &taken,
    )
    .expect_err("full");
    assert_eq!(e.code, 500);
    assert!(
        e.message
            .contains("failed to allocate a nodePort: range is full"),
        "{}",
        e.message
    );
}

#[test]
fn updates_keep_what_was_allocated() {
    let taken = Taken::default();
    let old = create(
        json!({"spec": {"type": "NodePort", "selector": {"a": "b"},
                        "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}}),
        &taken,
    )
    .expect("created");
    let ip = old["spec"]["clusterIP"].clone();
    let (np0, np1) = (
        old["spec"]["ports"][0]["nodePort"].clone(),
        old["spec"]["ports"][1]["nodePort"].clone(),
    );

    // The manifest again (no cluster IP, no node ports): all kept.
    let again = write(
        json!({"spec": {"type": "NodePort", "selector": {"a": "b"},
                        "ports": [{"name": "https", "port": 443}, {"name": "http", "port": 80}]}}),
        Some(&old),
        &taken,
    )
    .expect("updated");
    assert_eq!(again["spec"]["clusterIP"], ip);
    assert_eq!(again["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(again["spec"]["ports"][0]["nodePort"], np1);
    assert_eq!(again["spec"]["ports"][1]["nodePort"], np0);

    // The cluster IP does not change.
    let mut moved = old.clone();
    moved["spec"]["clusterIP"] = json!("10.96.0.99");
    let e = write(moved, Some(&old), &taken).expect_err("immutable");
    assert_eq!(
        e.message,
        "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.99\"}: may not change once set"
    );

    // NodePort -> ClusterIP drops the node ports and the external traffic policy.
    let mut to_cluster_ip = old.clone();
    to_cluster_ip["spec"]["type"] = json!("ClusterIP");
    let c = write(to_cluster_ip, Some(&old), &taken).expect("updated");
    assert!(c["spec"]["ports"][0].get("nodePort").is_none());
    assert!(c["spec"].get("externalTrafficPolicy").is_none());
    assert_eq!(c["spec"]["clusterIP"], ip);

    // -> ExternalName drops the cluster IPs and families; back again allocates anew.
    let mut to_en = c.clone();
    to_en["spec"]["type"] = json!("ExternalName");
    to_en["spec"]["externalName"] = json!("bar.com");
    let en = write(to_en, Some(&c), &taken).expect("updated");
    for gone in [
        "clusterIP",
        "clusterIPs",
        "ipFamilies",
        "ipFamilyPolicy",
        "internalTrafficPolicy",
    ] {
        assert!(en["spec"].get(gone).is_none(), "{gone}: {en}");
    }
    let mut back = en.clone();
    back["spec"]["type"] = json!("ClusterIP");
    let back = write(back, Some(&en), &taken).expect("updated");
    assert!(in_cidr(back["spec"]["clusterIP"].as_str().expect("an IP")));

    // ClusterIP -> NodePort allocates node ports.
    let mut to_np = back.clone();
    to_np["spec"]["type"] = json!("NodePort");
    let np = write(to_np, Some(&back), &taken).expect("updated");
    assert!(np["spec"]["ports"][0]["nodePort"].is_i64());
}

#[test]
fn a_service_stored_without_cluster_ips_gets_them_on_its_next_write() {
    let mut taken = Taken::default();
    taken.add(&json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20"}}));
    assert!(taken.ips.contains(&Ipv4Addr::new(10, 96, 0, 20)));
    let old = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
    let s = write(old.clone(), Some(&old), &taken).expect("updated");
    assert!(in_cidr(s["spec"]["clusterIP"].as_str().expect("an IP")));
    assert_eq!(s["spec"]["clusterIPs"][0], s["spec"]["clusterIP"]);
}
