//! Fencing for the leader: an external write (a grant or revoke in Partner Center, any
//! Kubernetes write such as a status recording one, an Event) starts only while this replica's
//! Lease is valid for at least the write's margin, and must finish before the Lease could pass
//! to another replica (it is cut off then). Reads are never fenced, so a standby keeps warm.

use crate::api::GrantBackend;
use crate::backend::{
    Backend, BackendError, BackendFuture, Connections, Grant, Observations, Readiness,
};
use crate::policy::GrantMade;
use futures::FutureExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Until when this replica may write (None: it does not lead).
#[derive(Clone, Debug, Default)]
pub struct Fence(Arc<Mutex<Option<Instant>>>);

/// Why a write was not started.
#[derive(Debug, thiserror::Error)]
#[error("not started: this replica {0}")]
pub struct Fenced(&'static str);

impl Fence {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This replica leads until `until` (a renewal moves it on).
    pub fn hold_until(&self, until: Instant) {
        *self.lock() = Some(until);
    }

    /// This replica no longer leads: nothing starts from now on.
    pub fn revoke(&self) {
        *self.lock() = None;
    }

    /// How long the Lease still holds (zero when it does not lead).
    pub fn remaining(&self) -> Duration {
        self.lock()
            .map(|until| until.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    /// May a write that takes up to `margin` start now? Answers the time it has (the Lease's
    /// remaining validity), after which it must be cut off.
    pub fn check(&self, margin: Duration) -> Result<Duration, Fenced> {
        let held = self.lock().is_some();
        let remaining = self.remaining();
        match (held, remaining > margin) {
            (false, _) => Err(Fenced("does not hold the leader Lease")),
            (true, false) => Err(Fenced("holds the leader Lease too briefly for a write")),
            (true, true) => Ok(remaining),
        }
    }

    /// Runs `write` if it may start, cut off when the Lease could pass to another replica.
    pub async fn guard<T, E>(
        &self,
        margin: Duration,
        write: impl Future<Output = Result<T, E>>,
        fenced: impl FnOnce(String) -> E,
    ) -> Result<T, E> {
        let time = match self.check(margin) {
            Ok(time) => time,
            Err(e) => return Err(fenced(e.to_string())),
        };
        match tokio::time::timeout(time, write).await {
            Ok(result) => result,
            Err(_) => Err(fenced(
                "cut off: the leader Lease ran out during the write".into(),
            )),
        }
    }
}

/// A kube client whose writes are fenced (reads and watches pass).
pub fn client(inner: kube::Client, fence: Fence, margin: Duration) -> kube::Client {
    let namespace = inner.default_namespace().to_string();
    let service = tower::service_fn(move |request: hyper::http::Request<kube::client::Body>| {
        let (inner, fence) = (inner.clone(), fence.clone());
        async move {
            let read = matches!(
                *request.method(),
                hyper::http::Method::GET | hyper::http::Method::HEAD | hyper::http::Method::OPTIONS
            );
            if read {
                inner.send(request).await.map_err(box_error)
            } else {
                let send = inner.send(request).map(|r| r.map_err(box_error));
                fence.guard(margin, send, |m| m.into()).await
            }
        }
    });
    kube::Client::new(service, namespace)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn box_error(e: kube::Error) -> BoxError {
    Box::new(e)
}

/// A backend whose grants, revokes and corrections are fenced.
pub struct FencedBackend {
    inner: Arc<dyn Backend>,
    fence: Fence,
    margin: Duration,
}

impl FencedBackend {
    pub fn wrap(inner: Arc<dyn Backend>, fence: Fence, margin: Duration) -> Arc<dyn Backend> {
        Arc::new(FencedBackend {
            inner,
            fence,
            margin,
        })
    }
}

/// The error of a fenced call: retried by the reconciler's backoff like any failed call.
fn not_leader(message: String) -> BackendError {
    BackendError::new("NotLeader", message)
}

impl Backend for FencedBackend {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn kind(&self) -> GrantBackend {
        self.inner.kind()
    }

    fn readiness(&self, namespace: &str) -> Readiness {
        self.inner.readiness(namespace)
    }

    fn grant<'a>(&'a self, grant: &'a Grant) -> BackendFuture<'a, GrantMade> {
        let call = self.inner.grant(grant);
        Box::pin(self.fence.guard(self.margin, call, not_leader))
    }

    fn revoke<'a>(
        &'a self,
        namespace: &'a str,
        customer_tenant_id: &'a str,
    ) -> BackendFuture<'a, ()> {
        let call = self.inner.revoke(namespace, customer_tenant_id);
        Box::pin(self.fence.guard(self.margin, call, not_leader))
    }

    fn verify<'a>(&'a self, grant: &'a Grant, enabled: bool) -> BackendFuture<'a, bool> {
        let call = self.inner.verify(grant, enabled);
        Box::pin(self.fence.guard(self.margin, call, not_leader))
    }

    fn connections(&self) -> Option<Connections> {
        self.inner.connections()
    }

    fn observations(&self) -> Option<Observations> {
        self.inner.observations()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_start_only_with_margin_and_are_cut_off_when_the_lease_runs_out() {
        let fence = Fence::default();
        let ms = Duration::from_millis;
        let margin = ms(200);
        assert!(fence.check(margin).is_err(), "not leading: nothing starts");
        fence.hold_until(Instant::now() + ms(600));
        assert!(fence.check(margin).is_ok());
        tokio::time::sleep(ms(450)).await;
        assert!(
            fence.check(margin).is_err(),
            "150 ms left is less than the margin"
        );
        fence.hold_until(Instant::now() + ms(600));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, String>(())
        };
        let cut = fence.guard(margin, slow, |m| m).await;
        assert!(cut.is_err_and(|m| m.contains("cut off")));
        fence.hold_until(Instant::now() + ms(600));
        fence.revoke();
        let refused = fence
            .guard(margin, async { Ok::<_, String>(()) }, |m| m)
            .await;
        assert!(refused.is_err_and(|m| m.contains("does not hold")));
    }
}
