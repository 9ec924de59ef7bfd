//! A Service's defaults and allocations, as the real server makes them: `SetDefaults_Service`
//! (pkg/apis/core/v1/defaults.go), then what the service registry does on create and update
//! (pkg/registry/core/service: `NormalizeClusterIPs`, `patchAllocatedValues`,
//! `dropTypeDependentFields`, and storage/alloc.go's IP family fields, cluster IPs and node
//! ports). The cluster is single-stack IPv4 with kubeadm's defaults: cluster IPs from
//! 10.96.0.0/12, node ports from 30000-32767, each held by one Service at a time.

use super::{obj_mut_value, set_if_absent};
use crate::apiserver::admission::schema::Cause;
use crate::apiserver::error::ApiError;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

/// The service CIDR (`--service-cluster-ip-range`), as the real server's messages name it.
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
const CIDR_BASE: u32 = 0x0a60_0000; // 10.96.0.0
const CIDR_SIZE: u32 = 1 << 20;
/// The node port range (`--service-node-port-range`).
const NODE_PORTS: (i64, i64) = (30000, 32767);

/// The cluster IPs and node ports Services hold (each Service's but the one being written).
#[derive(Debug, Default)]
pub struct Taken {
    ips: HashSet<Ipv4Addr>,
    node_ports: HashSet<i64>,
}

impl Taken {
    /// Counts what a stored Service holds.
    pub fn add(&mut self, svc: &Value) {
        let spec = &svc["spec"];
        if str_at(spec, "type") == "ExternalName" {
            return;
        }
        let mut ips = strings(spec.get("clusterIPs"));
        ips.push(str_at(spec, "clusterIP").to_string());
        for ip in ips {
            if let Ok(ip) = ip.parse() {
                self.ips.insert(ip);
            }
        }
        self.node_ports.extend(node_ports(spec));
        let hc = spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if hc != 0 {
            self.node_ports.insert(hc);
        }
    }
}

/// `SetDefaults_Service`.
pub fn defaults(obj: &mut Value) {
    let Some(spec) = obj_mut_value(obj, "spec") else {
        return;
    };
    set_if_absent(spec, "sessionAffinity", json!("None"));
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .filter(|t| !t.is_null());
            if timeout.is_none() {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    set_if_absent(spec, "type", json!("ClusterIP"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_if_absent(p, "protocol", json!("TCP"));
            let target_unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if target_unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let externally_accessible = matches!(ty.as_str(), "LoadBalancer" | "NodePort")
        || (ty == "ClusterIP" && !strings(spec.get("externalIPs")).is_empty());
    if externally_accessible {
        set_if_absent(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        set_if_absent(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        set_if_absent(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
}

/// What the service registry makes of a create (`old` None) or an update of the main resource:
/// allocated values kept, type-dependent fields dropped, IP family fields filled, cluster IPs
/// and node ports allocated from those `taken` leaves free. A value another Service holds is
/// refused with the real server's 422.
pub fn allocate(
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
    taken: &Taken,
) -> Result<(), ApiError> {
    let old_spec = old.and_then(|o| o.get("spec")).filter(|s| s.is_object());
    let Some(spec) = obj_mut_value(obj, "spec") else {
        return Ok(());
    };
    if let Some(old) = old_spec {
        patch_allocated_values(spec, old);
    }
    normalize_cluster_ips(spec, old_spec);
    if let Some(old) = old_spec {
        drop_type_dependent_fields(spec, old);
    }
    let invalid = |causes: Vec<Cause>| ApiError::invalid("Service", name, causes);
    init_ip_family_fields(spec, old_spec).map_err(invalid)?;
    cluster_ips(spec, old_spec, taken).map_err(|e| match e {
        Failure::Invalid(c) => invalid(c),
        Failure::Internal(m) => ApiError::internal(m),
    })?;
    node_ports_for(spec, old_spec, taken).map_err(|e| match e {
        Failure::Invalid(c) => invalid(c),
        Failure::Internal(m) => ApiError::internal(m),
    })?;
    if ty(spec) == "ClusterIP" {
        let causes: Vec<Cause> = ports(spec)
            .iter()
            .enumerate()
            .filter(|(_, p)| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
            .map(|(i, _)| {
                cause(
                    "FieldValueForbidden",
                    &format!("spec.ports[{i}].nodePort"),
                    "Forbidden: may not be used when `type` is 'ClusterIP'".into(),
                )
            })
            .collect();
        if !causes.is_empty() {
            return Err(invalid(causes));
        }
    }
    Ok(())
}

enum Failure {
    Invalid(Vec<Cause>),
    Internal(String),
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

/// A Go `%#v` of a `[]string`, as field errors print values that are not scalars.
fn go_strings(v: &[String]) -> String {
    if v.is_empty() {
        return "[]string(nil)".into();
    }
    let quoted: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn ty(spec: &Map<String, Value>) -> &str {
    spec.get("type").and_then(Value::as_str).unwrap_or("")
}

fn ports(spec: &Map<String, Value>) -> Vec<Value> {
    spec.get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn node_ports(spec: &Value) -> Vec<i64> {
    spec.get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .filter(|n| *n != 0)
        .collect()
}

fn needs_cluster_ip(ty: &str) -> bool {
    ty != "ExternalName"
}

fn needs_node_port(ty: &str) -> bool {
    matches!(ty, "NodePort" | "LoadBalancer")
}

fn needs_hc_node_port(spec: &Value) -> bool {
    str_at(spec, "type") == "LoadBalancer" && str_at(spec, "externalTrafficPolicy") == "Local"
}

/// `patchAllocatedValues`: an update that leaves out what was allocated keeps it (a manifest
/// applied again, a PUT without the cluster IP).
fn patch_allocated_values(spec: &mut Map<String, Value>, old: &Value) {
    let old_ty = str_at(old, "type");
    if needs_cluster_ip(old_ty) && needs_cluster_ip(ty(spec)) {
        if spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && let Some(ip) = old.get("clusterIP")
        {
            spec.insert("clusterIP".into(), ip.clone());
        }
        if strings(spec.get("clusterIPs")).is_empty()
            && let Some(ips) = old
                .get("clusterIPs")
                .filter(|v| !strings(Some(v)).is_empty())
        {
            spec.insert("clusterIPs".into(), ips.clone());
        }
    }
    if needs_node_port(old_ty) && needs_node_port(ty(spec)) {
        let new_used: HashSet<i64> = node_ports(&Value::Object(spec.clone()))
            .into_iter()
            .collect();
        let used: HashSet<i64> = node_ports(old)
            .into_iter()
            .filter(|p| new_used.contains(p))
            .collect();
        let by_name: HashMap<String, i64> = old
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    str_at(p, "name").to_string(),
                    p.get("nodePort").and_then(Value::as_i64).unwrap_or(0),
                )
            })
            .collect();
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) == 0 {
                    let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                    let old_port = by_name.get(name).copied().unwrap_or(0);
                    if old_port != 0 && !used.contains(&old_port) {
                        p.insert("nodePort".into(), json!(old_port));
                    }
                }
            }
        }
    }
    if needs_hc_node_port(old)
        && needs_hc_node_port(&Value::Object(spec.clone()))
        && spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
        && let Some(hc) = old.get("healthCheckNodePort")
    {
        spec.insert("healthCheckNodePort".into(), hc.clone());
    }
}

/// `NormalizeClusterIPs`: `clusterIPs` follows `clusterIP` when only that was given or changed.
fn normalize_cluster_ips(spec: &mut Map<String, Value>, old: Option<&Value>) {
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ips = strings(spec.get("clusterIPs"));
    let Some(old) = old else {
        if !cluster_ip.is_empty() && ips.is_empty() {
            spec.insert("clusterIPs".into(), json!([cluster_ip]));
        }
        return;
    };
    let old_ip = str_at(old, "clusterIP");
    let same_ips = strings(old.get("clusterIPs")) == ips;
    if old_ip != cluster_ip && same_ips {
        if !old_ip.is_empty() && cluster_ip.is_empty() {
            spec.remove("clusterIPs");
        } else {
            spec.insert("clusterIPs".into(), json!([cluster_ip]));
        }
    }
}

/// `dropTypeDependentFields`: a type change wipes what the old type needed and the update did
/// not change.
fn drop_type_dependent_fields(spec: &mut Map<String, Value>, old: &Value) {
    let old_ty = str_at(old, "type").to_string();
    let new_ty = ty(spec).to_string();
    let same = |spec: &Map<String, Value>, key: &str| spec.get(key) == old.get(key);
    if needs_cluster_ip(&old_ty) && !needs_cluster_ip(&new_ty) {
        if same(spec, "clusterIP") && same(spec, "clusterIPs") {
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
        }
        if same(spec, "ipFamilies") {
            spec.remove("ipFamilies");
        }
        if same(spec, "ipFamilyPolicy") {
            spec.remove("ipFamilyPolicy");
        }
    }
    if needs_node_port(&old_ty) && !needs_node_port(&new_ty) {
        let new_ports = node_ports(&Value::Object(spec.clone()));
        if new_ports == node_ports(old)
            && let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut)
        {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
    if needs_hc_node_port(old)
        && !needs_hc_node_port(&Value::Object(spec.clone()))
        && same(spec, "healthCheckNodePort")
    {
        spec.remove("healthCheckNodePort");
    }
    if needs_cluster_ip(&old_ty)
        && !needs_cluster_ip(&new_ty)
        && same(spec, "internalTrafficPolicy")
    {
        spec.remove("internalTrafficPolicy");
    }
    if old_ty == "LoadBalancer" && new_ty != "LoadBalancer" {
        if same(spec, "allocateLoadBalancerNodePorts") {
            spec.remove("allocateLoadBalancerNodePorts");
        }
        if same(spec, "loadBalancerClass") {
            spec.remove("loadBalancerClass");
        }
    }
    let externally_accessible = |ty: &str, s: &Value| {
        matches!(ty, "LoadBalancer" | "NodePort")
            || (ty == "ClusterIP" && !strings(s.get("externalIPs")).is_empty())
    };
    if externally_accessible(&old_ty, old)
        && !externally_accessible(&new_ty, &Value::Object(spec.clone()))
        && same(spec, "externalTrafficPolicy")
    {
        spec.remove("externalTrafficPolicy");
    }
}

/// `initIPFamilyFields` on a single-stack IPv4 cluster: `ipFamilyPolicy` (SingleStack, or
/// RequireDualStack for a headless Service without a selector) and `ipFamilies`.
fn init_ip_family_fields(
    spec: &mut Map<String, Value>,
    old: Option<&Value>,
) -> Result<(), Vec<Cause>> {
    if ty(spec) == "ExternalName" {
        return Ok(());
    }
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let selectorless = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if spec.get("ipFamilyPolicy").is_none_or(Value::is_null) {
        let policy = match old
            .and_then(|o| o.get("ipFamilyPolicy"))
            .filter(|p| !p.is_null())
        {
            Some(p) => p.clone(),
            None if cluster_ip == "None" && selectorless => json!("RequireDualStack"),
            None => json!("SingleStack"),
        };
        spec.insert("ipFamilyPolicy".into(), policy);
    }
    let policy = spec
        .get("ipFamilyPolicy")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ips = strings(spec.get("clusterIPs"));
    let mut families = strings(spec.get("ipFamilies"));

    let mut causes = validate_cluster_ips_related_fields(&cluster_ip, &ips, &families, &policy);
    if !causes.is_empty() {
        return Err(causes);
    }
    if policy == "SingleStack" {
        if ips.len() == 2 {
            causes.push(cause("FieldValueInvalid", "spec.ipFamilyPolicy", format!("Invalid value: \"{policy}\": must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified")));
        }
        if families.len() == 2 {
            causes.push(cause("FieldValueInvalid", "spec.ipFamilyPolicy", format!("Invalid value: \"{policy}\": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified")));
        }
    }
    // Families inferred from the cluster IPs; only IPv4 is configured here.
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            if ip.contains(':') {
                causes.push(cause(
                    "FieldValueInvalid",
                    &format!("spec.clusterIPs[{i}]"),
                    format!(
                        "Invalid value: {}: IPv6 is not configured on this cluster",
                        go_strings(&ips)
                    ),
                ));
            } else {
                families.push("IPv4".into());
            }
        }
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    if cluster_ip == "None" && selectorless {
        if families.is_empty() {
            families.push("IPv4".into());
        }
        if families.len() < 2 && policy != "SingleStack" {
            let other = if families[0] == "IPv4" {
                "IPv6"
            } else {
                "IPv4"
            };
            families.push(other.into());
        }
        spec.insert("ipFamilies".into(), json!(families));
        return Ok(());
    }
    if policy == "RequireDualStack" {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.ipFamilyPolicy",
            "Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services".into(),
        ));
    }
    for (i, family) in families.iter().enumerate() {
        if family != "IPv4" {
            causes.push(cause(
                "FieldValueInvalid",
                &format!("spec.ipFamilies[{i}]"),
                format!("Invalid value: \"{family}\": not configured on this cluster"),
            ));
        }
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    if families.is_empty() {
        families.push("IPv4".into());
    }
    spec.insert("ipFamilies".into(), json!(families));
    Ok(())
}

/// The checks of `ValidateServiceClusterIPsRelatedFields` that allocation relies on.
fn validate_cluster_ips_related_fields(
    cluster_ip: &str,
    ips: &[String],
    families: &[String],
    policy: &str,
) -> Vec<Cause> {
    let mut causes = Vec::new();
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            causes.push(cause(
                "FieldValueRequired",
                "spec.clusterIPs",
                "Required value".into(),
            ));
        } else if ips[0] != cluster_ip {
            causes.push(cause(
                "FieldValueInvalid",
                "spec.clusterIPs",
                format!(
                    "Invalid value: {}: first value must match `clusterIP`",
                    go_strings(ips)
                ),
            ));
        }
    } else if !ips.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.clusterIPs",
            format!(
                "Invalid value: {}: must be empty when `clusterIP` is not specified",
                go_strings(ips)
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (i, f) in families.iter().enumerate() {
        if f != "IPv4" && f != "IPv6" {
            causes.push(cause(
                "FieldValueNotSupported",
                &format!("spec.ipFamilies[{i}]"),
                format!("Unsupported value: \"{f}\": supported values: \"IPv4\", \"IPv6\""),
            ));
        }
        if !seen.insert(f) {
            causes.push(cause(
                "FieldValueDuplicate",
                &format!("spec.ipFamilies[{i}]"),
                format!("Duplicate value: \"{f}\""),
            ));
        }
    }
    if !matches!(
        policy,
        "SingleStack" | "PreferDualStack" | "RequireDualStack"
    ) {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.ipFamilyPolicy",
            format!("Unsupported value: \"{policy}\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\""),
        ));
    }
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: {}: 'None' must be the first and only value",
                        go_strings(ips)
                    ),
                ));
            }
            continue;
        }
        if ip.parse::<std::net::IpAddr>().is_err() {
            causes.push(cause(
                "FieldValueInvalid",
                &format!("spec.clusterIPs[{i}]"),
                format!(
                    "Invalid value: \"{ip}\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
                ),
            ));
        }
    }
    if ips.len() > 2 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.clusterIPs",
            format!(
                "Invalid value: {}: may only hold up to 2 values",
                go_strings(ips)
            ),
        ));
    }
    causes
}

/// The cluster IPs: allocated on create (or when leaving ExternalName), immutable after.
fn cluster_ips(
    spec: &mut Map<String, Value>,
    old: Option<&Value>,
    taken: &Taken,
) -> Result<(), Failure> {
    let new_ty = ty(spec).to_string();
    if !needs_cluster_ip(&new_ty) {
        return Ok(());
    }
    let ips = strings(spec.get("clusterIPs"));
    let old_ips = old
        .map(|o| strings(o.get("clusterIPs")))
        .unwrap_or_default();
    // One stored without cluster IPs (by a server before allocation) gets them as on create.
    if let Some(old) = old
        && needs_cluster_ip(str_at(old, "type"))
        && !old_ips.is_empty()
    {
        // `validateUpgradeDowngradeClusterIPs`, single-stack: the first IP stays.
        let headless = |v: &[String]| v.len() == 1 && v[0] == "None";
        if headless(&old_ips) && headless(&ips) {
            return Ok(());
        }
        if old_ips.first() != ips.first() || old_ips.len() != ips.len() {
            let message = if ips.is_empty() {
                "primary clusterIP can not be unset"
            } else {
                "may not change once set"
            };
            return Err(Failure::Invalid(vec![cause(
                "FieldValueInvalid",
                "spec.clusterIPs[0]",
                format!("Invalid value: {}: {message}", go_strings(&ips)),
            )]));
        }
        return Ok(());
    }
    if ips.first().is_some_and(|ip| ip == "None") {
        return Ok(());
    }
    let ip = match ips.first() {
        Some(requested) => {
            let fail = |why: String| {
                Failure::Invalid(vec![cause(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: {}: failed to allocate IP {requested}: {why}",
                        go_strings(&ips)
                    ),
                )])
            };
            let ip: Ipv4Addr = requested.parse().map_err(|_| {
                fail(format!(
                    "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                ))
            })?;
            let offset = u32::from(ip).wrapping_sub(CIDR_BASE);
            if offset == 0 || offset >= CIDR_SIZE - 1 {
                return Err(fail(format!(
                    "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
                )));
            }
            if taken.ips.contains(&ip) {
                return Err(fail("provided IP is already allocated".into()));
            }
            ip
        }
        None => next_ip(taken).ok_or_else(|| {
            Failure::Internal("failed to allocate a serviceIP: range is full".into())
        })?,
    };
    spec.insert("clusterIP".into(), json!(ip.to_string()));
    spec.insert("clusterIPs".into(), json!([ip.to_string()]));
    Ok(())
}

/// A free address: at random in the upper band first (offsets 256 and up, the lower band kept
/// for addresses asked for by value), then anywhere; never the network or broadcast address.
fn next_ip(taken: &Taken) -> Option<Ipv4Addr> {
    let usable = 1..CIDR_SIZE - 1;
    let upper = 257..CIDR_SIZE - 1;
    let free = |off: u32| {
        let ip = Ipv4Addr::from(CIDR_BASE + off);
        (!taken.ips.contains(&ip)).then_some(ip)
    };
    random_scan(upper, free).or_else(|| random_scan(usable, free))
}

/// The first value `f` accepts, scanning `range` from a random start and wrapping around.
fn random_scan<T>(range: std::ops::Range<u32>, f: impl Fn(u32) -> Option<T>) -> Option<T> {
    use rand::Rng;
    if range.is_empty() {
        return None;
    }
    let len = range.end - range.start;
    let start = rand::rng().random_range(0..len);
    (0..len).find_map(|i| f(range.start + (start + i) % len))
}

/// The node ports of a NodePort or LoadBalancer Service (and a LoadBalancer's health check
/// port with `externalTrafficPolicy: Local`): those asked for must be free and in range, the
/// rest are allocated; ports with the same number share one.
fn node_ports_for(
    spec: &mut Map<String, Value>,
    old: Option<&Value>,
    taken: &Taken,
) -> Result<(), Failure> {
    let new_ty = ty(spec).to_string();
    let own: HashSet<i64> = old
        .filter(|o| needs_node_port(str_at(o, "type")))
        .map(node_ports)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut held: HashSet<i64> = HashSet::new();
    if needs_node_port(&new_ty) {
        let allocate_all = new_ty == "NodePort"
            || spec
                .get("allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                != Some(false);
        let creating = old.is_none();
        let ports = ports(spec);
        // On create, a port number asked for with a node port lends it to its other entries
        // (TCP and UDP on 53); on update each entry is on its own.
        let mut by_port: HashMap<i64, i64> = HashMap::new();
        let mut chosen = Vec::with_capacity(ports.len());
        for (i, p) in ports.iter().enumerate() {
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let mut np = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
            if np == 0 && creating {
                np = by_port.get(&port).copied().unwrap_or(0);
                if np == 0 {
                    np = ports[i..]
                        .iter()
                        .filter(|q| q.get("port").and_then(Value::as_i64) == Some(port))
                        .find_map(|q| {
                            q.get("nodePort")
                                .and_then(Value::as_i64)
                                .filter(|n| *n != 0)
                        })
                        .unwrap_or(0);
                }
            }
            if np == 0 && !allocate_all {
                chosen.push(0);
                continue;
            }
            let shared = creating && by_port.get(&port) == Some(&np) && np != 0;
            if np != 0 {
                // On update a number asked for twice is allocated once (`portAllocated`).
                if !shared && !own.contains(&np) && (creating || !held.contains(&np)) {
                    check_node_port(np, taken, &held).map_err(|why| {
                        Failure::Invalid(vec![cause(
                            "FieldValueInvalid",
                            &format!("spec.ports[{i}].nodePort"),
                            format!("Invalid value: {np}: {why}"),
                        )])
                    })?;
                }
            } else {
                np = next_node_port(taken, &held, &own).ok_or_else(|| {
                    Failure::Internal("failed to allocate a nodePort: range is full".into())
                })?;
            }
            held.insert(np);
            by_port.entry(port).or_insert(np);
            chosen.push(np);
        }
        if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (p, np) in list.iter_mut().zip(chosen) {
                if let Some(p) = p.as_object_mut()
                    && np != 0
                {
                    p.insert("nodePort".into(), json!(np));
                }
            }
        }
    }
    if needs_hc_node_port(&Value::Object(spec.clone())) {
        let old_hc = old
            .and_then(|o| o.get("healthCheckNodePort"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let hc = spec
            .get("healthCheckNodePort")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if hc == 0 {
            let np = next_node_port(taken, &held, &own).ok_or_else(|| {
                Failure::Internal(
                    "failed to allocate a HealthCheck NodePort 0: range is full".into(),
                )
            })?;
            spec.insert("healthCheckNodePort".into(), json!(np));
        } else if hc != old_hc {
            check_node_port(hc, taken, &held).map_err(|why| {
                Failure::Internal(format!(
                    "failed to allocate requested HealthCheck NodePort {hc}: {why}"
                ))
            })?;
        }
    }
    Ok(())
}

/// Whether a node port asked for may be had (the port allocator's errors).
fn check_node_port(np: i64, taken: &Taken, held: &HashSet<i64>) -> Result<(), String> {
    if !(NODE_PORTS.0..=NODE_PORTS.1).contains(&np) {
        return Err(format!(
            "provided port is not in the valid range. The range of valid ports is {}-{}",
            NODE_PORTS.0, NODE_PORTS.1
        ));
    }
    if taken.node_ports.contains(&np) || held.contains(&np) {
        return Err("provided port is already allocated".into());
    }
    Ok(())
}

/// A free node port: at random above the band kept for ports asked for by number (the first
/// 86 of the range), then anywhere in it.
fn next_node_port(taken: &Taken, held: &HashSet<i64>, own: &HashSet<i64>) -> Option<i64> {
    let size = u32::try_from(NODE_PORTS.1 - NODE_PORTS.0 + 1).ok()?;
    let free = |off: u32| {
        let np = NODE_PORTS.0 + i64::from(off);
        (!taken.node_ports.contains(&np) && !held.contains(&np) && !own.contains(&np)).then_some(np)
    };
    random_scan(86..size, free).or_else(|| random_scan(0..size, free))
}

#[cfg(test)]
mod tests;
