//! Leader election through a Lease (kube-lease-manager): one replica reconciles, the others keep
//! warm caches and wait; on shutdown the leader releases the Lease so another leads at once.

use super::run::Shutdown;
use super::{Error, MANAGER, Metrics};
use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Client;
use kube_lease_manager::LeaseManager;
use tokio::sync::watch;

/// The Lease that makes one replica the writer.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
}

/// A Lease being contended for: whether this replica holds it, and the task renewing it.
pub struct Lease {
    held: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl LeaderElection {
    /// Starts contending for the Lease.
    pub async fn contend(&self, client: Client) -> Result<Lease, Error> {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client, &self.lease_name)
            .with_namespace(&self.namespace)
            .with_identity(&self.identity)
            .with_field_manager(format!("{MANAGER}-{}", self.identity))
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .map_err(|e| Error::Leader(e.to_string()))?;
        let (held, task) = manager.watch().await;
        Ok(Lease { held, task })
    }
}

impl Lease {
    /// Waits to lead, runs `controllers` while leading (until `shutdown` or the Lease is
    /// lost), then releases the Lease. Losing it is an error: the process should restart.
    pub async fn lead(
        self,
        shutdown: Shutdown,
        metrics: &Metrics,
        controllers: impl FnOnce(Shutdown) -> BoxFuture<'static, ()>,
    ) -> Result<(), Error> {
        let Lease { mut held, task } = self;
        let is_leader = wait_to_lead(&mut held, shutdown.clone()).await;
        let outcome = if is_leader {
            tracing::info!("leading");
            metrics.leader.set(1);
            let lost = lost(held.clone()).boxed().shared();
            let stop = futures::future::select(shutdown, lost.clone()).map(|_| ());
            controllers(stop.boxed().shared()).await;
            if lost.now_or_never().is_some() {
                Err(Error::Leader("lost the leader Lease".into()))
            } else {
                Ok(())
            }
        } else {
            Ok(())
        };
        metrics.leader.set(0);
        // Closing the channel ends the lease task; releasing lets another replica lead now.
        drop(held);
        if let Ok(Ok(manager)) = task.await
            && let Err(e) = manager.release().await
        {
            tracing::warn!(error = %e, "could not release the leader Lease");
        }
        outcome
    }
}

/// Whether this replica came to lead before `shutdown` (or the Lease task ended).
async fn wait_to_lead(held: &mut watch::Receiver<bool>, shutdown: Shutdown) -> bool {
    let mut is_leader = *held.borrow_and_update();
    while !is_leader {
        tracing::info!("waiting for the leader Lease");
        tokio::select! {
            changed = held.changed() => {
                if changed.is_err() { break; }
                is_leader = *held.borrow_and_update();
            }
            _ = shutdown.clone() => break,
        }
    }
    is_leader
}

/// Resolves when the Lease is lost (not when its channel closes).
async fn lost(mut held: watch::Receiver<bool>) {
    while held.changed().await.is_ok() {
        if !*held.borrow_and_update() {
            return;
        }
    }
}
