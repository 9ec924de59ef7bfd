//! The checked-in `crds/` must be exactly what the generator prints.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_generator() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let files = csp_operator::api::crd_files().expect("CRDs render as YAML");
    assert_eq!(files.len(), 4, "one file per kind");
    let mut stale = Vec::new();
    for (name, yaml) in &files {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if &on_disk != yaml {
            stale.push(name.clone());
        }
    }
    let mut extra: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| !files.iter().any(|(f, _)| f == n))
        .collect();
    extra.sort();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "crds/ is out of date (stale: {stale:?}, not generated: {extra:?}); \
         regenerate with: cargo run -- crd --dir crds"
    );
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
