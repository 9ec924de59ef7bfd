//! The shipped Grafana dashboard and Prometheus alert rules (deploy/monitoring/) only use
//! metrics, and labels, that the real operator exports after the article's workflow.

use crate::support::Env;
use crate::support::clients::http_get;
use crate::support::paths::{EXAMPLES, MONITORING};
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const NS: &str = "partner-a";

/// Sample names of a Prometheus text scrape, each with the label names it carries.
fn samples(scrape: &str) -> BTreeMap<String, BTreeSet<String>> {
    let line = Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s").expect("regex");
    let label = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="#).expect("regex");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in scrape.lines().filter(|l| !l.starts_with('#')) {
        if let Some(c) = line.captures(l) {
            let labels = out.entry(c[1].to_string()).or_default();
            if let Some(set) = c.get(2) {
                labels.extend(label.captures_iter(set.as_str()).map(|m| m[1].to_string()));
            }
        }
    }
    out
}

/// Every PromQL expression of the dashboard's panels and of the alert rules, with where it is.
fn shipped_expressions() -> Vec<(String, String)> {
    let dir = Path::new(MONITORING);
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("dashboard.json")).expect("dashboard.json"),
    )
    .expect("dashboard.json is JSON");
    let mut exprs = Vec::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty(), "the dashboard has panels");
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "ids unique"
        );
        let title = p["title"].as_str().expect("panel title");
        let targets = p["targets"].as_array().expect("panel targets");
        assert!(!targets.is_empty(), "panel {title} queries something");
        for t in targets {
            let expr = t["expr"].as_str().expect("target expr");
            exprs.push((format!("dashboard panel {title:?}"), expr.to_string()));
        }
    }
    let rules: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(dir.join("alerts.yaml")).expect("alerts.yaml"),
    )
    .expect("alerts.yaml is YAML");
    assert_eq!(rules["kind"], "PrometheusRule");
    for group in rules["spec"]["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: summary"
            );
            let expr = rule["expr"].as_str().expect("alert expr");
            exprs.push((format!("alert {name}"), expr.to_string()));
        }
    }
    exprs
}

/// The metric names an expression reads, with the label names its selectors match on.
fn metrics_used(expr: &str) -> Vec<(String, Vec<String>)> {
    let metric = Regex::new(r"(csp_operator_[a-z0-9_]+)(\{[^}]*\})?").expect("regex");
    let matcher = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)"#).expect("regex");
    metric
        .captures_iter(expr)
        .map(|c| {
            let labels = c
                .get(2)
                .map(|m| {
                    matcher
                        .captures_iter(m.as_str())
                        .map(|l| l[1].to_string())
                        .collect()
                })
                .unwrap_or_default();
            (c[1].to_string(), labels)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_and_alerts_use_only_exported_metrics() {
    let mut env = Env::new().await;
    let addr = env.start_controllers_with_metrics();
    // The workflow: grant contoso, then lose its Owner (the grant stays, at risk).
    env.ok(&["apply", "-f", EXAMPLES]).await;
    env.wait_for_permission(NS, "contoso", "Enabled/True/PermissionEnabled")
        .await;
    env.ok(&["delete", "azrole", "contoso-plan-alice-owner", "-n", NS])
        .await;
    env.wait_for_permission(NS, "contoso", "Enabled/False/OwnerRoleMissing")
        .await;

    let (code, scrape) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    // The alert on a lost prerequisite would fire on this very scrape.
    assert!(
        scrape.contains("csp_operator_purchase_permissions_prerequisite_lost 1"),
        "{scrape}"
    );
    assert!(
        scrape.contains(
            r#"csp_operator_backend_calls_total{backend="cluster",call="grant",result="ok"} 1"#
        ),
        "{scrape}"
    );
    let exported = samples(&scrape);
    let mut missing = Vec::new();
    for (place, expr) in shipped_expressions() {
        let used = metrics_used(&expr);
        assert!(
            !used.is_empty(),
            "{place} reads no csp_operator_ metric: {expr}"
        );
        for (metric, labels) in used {
            match exported.get(&metric) {
                None => missing.push(format!("{place}: metric {metric}")),
                Some(have) => missing.extend(
                    labels
                        .iter()
                        .filter(|l| !have.contains(*l))
                        .map(|l| format!("{place}: label {l} on {metric}")),
                ),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not exported: {missing:#?}\nscrape:\n{scrape}"
    );
}

#[test]
fn kustomization_ships_every_monitoring_file() {
    let dir = Path::new(MONITORING);
    let text = std::fs::read_to_string(dir.join("kustomization.yaml")).expect("kustomization");
    for file in ["servicemonitor.yaml", "alerts.yaml", "dashboard.json"] {
        assert!(dir.join(file).is_file(), "{file} exists");
        assert!(text.contains(file), "kustomization.yaml ships {file}");
    }
}
