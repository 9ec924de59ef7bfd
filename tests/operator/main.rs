//! Operator tests: the real controllers, kubectl and the csp-operator binary against the embedded
//! API server, and the shipped files (crds/, deploy/, the Argo CD health scripts).

#[path = "../support/mod.rs"]
mod support;

mod activity_log;
mod argocd;
mod bench;
mod chaos;
mod convergence;
mod crd_deletion;
mod crds;
mod deploy;
mod failover;
mod import;
mod monitoring;
mod partner_center;
mod readme;
mod up;
mod workflow;
