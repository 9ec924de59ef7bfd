//! Where things are: the repository's folders and files the tests read or apply, and the binary.
//!
//! Plain `&str` constants, so they go straight into kubectl argument lists.

/// The repository root.
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// `examples/`: the article's walkthrough (namespace partner-a, four customers).
pub const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
/// `examples/00-namespace.yaml`: just the partner-a namespace.
pub const EXAMPLES_NAMESPACE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/00-namespace.yaml");
/// `crds/`: the generated CRDs and their Kustomization.
pub const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
/// `deploy/`: the kustomization a cluster installs.
pub const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
/// `deploy/namespace.yaml`: the operator's namespace alone.
pub const DEPLOY_NAMESPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/namespace.yaml");
/// `deploy/examples/agent-rolebindings.yaml`: partner-a's bindings of the shipped agent roles.
pub const AGENT_ROLEBINDINGS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/examples/agent-rolebindings.yaml"
);
/// `deploy/argocd/`: the Argo CD health scripts, their template and README.
pub const ARGOCD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/argocd");
/// `deploy/monitoring/`: the Grafana dashboard and the Prometheus alert rules.
pub const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/monitoring");
/// The project's own binary, as cargo built it for these tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_csp-operator");
