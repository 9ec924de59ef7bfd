//! The checked-in `crds/` must be exactly what the generator prints, plus the `Kustomization`
//! that lets `deploy/` use them without a second copy.

use crate::support::paths::CRDS;
use std::path::Path;

/// The one hand-written file in `crds/`: kustomize reads it, `kubectl apply -f crds/` skips it.
const KUSTOMIZATION: &str = "Kustomization";

#[test]
fn checked_in_crds_match_the_generator() {
    let dir = Path::new(CRDS);
    let files = csp_operator::api::crd_files().expect("CRDs render as YAML");
    assert_eq!(files.len(), 5, "one file per kind");
    let mut stale = Vec::new();
    for (name, yaml) in &files {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if &on_disk != yaml {
            stale.push(name.clone());
        }
    }
    let mut extra: Vec<String> = std::fs::read_dir(dir)
        .expect("crds/ exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n != KUSTOMIZATION && !files.iter().any(|(f, _)| f == n))
        .collect();
    extra.sort();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "crds/ is out of date (stale: {stale:?}, not generated: {extra:?}); \
         regenerate with: cargo run -- crd --dir crds"
    );
}

#[test]
fn crds_kustomization_lists_exactly_the_generated_files() {
    let path = Path::new(CRDS).join(KUSTOMIZATION);
    let text = std::fs::read_to_string(&path).expect("crds/Kustomization exists");
    let kustomization: serde_json::Value =
        serde_saphyr::from_str(&text).expect("crds/Kustomization parses");
    assert_eq!(kustomization["kind"], "Kustomization", "{text}");
    let mut listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources is a list")
        .iter()
        .map(|r| r.as_str().expect("each resource is a file name"))
        .collect();
    listed.sort();
    let generated = csp_operator::api::crd_files().expect("render");
    let mut want: Vec<&str> = generated.iter().map(|(f, _)| f.as_str()).collect();
    want.sort();
    assert_eq!(
        listed, want,
        "crds/Kustomization must list exactly the generated CRD files"
    );
    // Nothing but resources: a patch or generator here would make deploy/ differ from crds/.
    let mut keys: Vec<&str> = kustomization
        .as_object()
        .expect("a mapping")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["apiVersion", "kind", "resources"], "{text}");
}

#[test]
fn generated_yaml_parses_back_into_the_same_crds() {
    for (crd, (_, yaml)) in csp_operator::api::crds()
        .into_iter()
        .zip(csp_operator::api::crd_files().expect("render"))
    {
        let parsed: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            serde_saphyr::from_str(&yaml).expect("YAML parses");
        assert_eq!(parsed.metadata.name, crd.metadata.name);
        assert_eq!(
            serde_json::to_value(&parsed).expect("json"),
            serde_json::to_value(&crd).expect("json")
        );
    }
}
