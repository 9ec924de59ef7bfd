//! Everything a reconcile can go wrong with, labelled for Warning Events and metrics.

/// Everything a reconcile can go wrong with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("backend: {0}")]
    Backend(#[from] crate::backend::BackendError),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("object has no namespace")]
    NoNamespace,
    #[error("leader election: {0}")]
    Leader(String),
    #[error("Partner Center connection: {0}")]
    Connection(String),
}

impl Error {
    /// The reason of the Warning Event a failed reconcile records (a short PascalCase category).
    pub fn event_reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApiError",
            Error::Backend(e) => e.reason,
            Error::Finalizer(_) => "FinalizerError",
            Error::NoNamespace => "InvalidObject",
            Error::Leader(_) => "LeaderElectionError",
            Error::Connection(_) => "PartnerCenterError",
        }
    }

    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Backend(_) => "backend",
            Error::Finalizer(_) => "finalizer",
            Error::NoNamespace => "no_namespace",
            Error::Leader(_) => "leader",
            Error::Connection(_) => "connection",
        }
    }

    /// Refused by the API server as invalid (422): retrying the same write cannot help.
    pub fn is_invalid(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(status)) if status.code == 422)
    }
}
