//! Leader election through a coordination.k8s.io Lease, as client-go's leaderelection does it:
//! a standby watches the Lease and takes it once it has seen no renewal for a lease duration
//! (on its own clock, so other nodes' clocks never matter); the leader renews it every retry
//! period and holds a [`Fence`] that lets external writes start only while the Lease is valid
//! with margin. A leader that cannot renew stops (its fence closes before another replica may
//! take the Lease); on shutdown it finishes in-flight reconciles and releases the Lease, so a
//! standby leads at once.

use super::fence::Fence;
use super::run::Shutdown;
use super::{Error, Metrics};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The Lease that makes one replica the writer.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
    pub timing: LeaseTiming,
}

impl LeaderElection {
    /// The Lease `namespace/lease_name`, contended for as `identity`, with the default timing.
    pub fn new(namespace: &str, lease_name: &str, identity: &str) -> LeaderElection {
        LeaderElection {
            namespace: namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            timing: LeaseTiming::default(),
        }
    }
}

/// How long a Lease holds and how often it is renewed.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTiming {
    /// A Lease not renewed for this long may be taken (`leaseDurationSeconds`: whole seconds).
    pub lease_duration: Duration,
    /// The leader renews this often; a standby retries a failed take this often.
    pub retry_period: Duration,
    /// An external write starts only with this much of the Lease left, and the leader gives up
    /// when it could not renew before only this much is left.
    pub write_margin: Duration,
}

impl Default for LeaseTiming {
    /// client-go's defaults: 15 s, renewed every 2 s, given up 5 s before it runs out.
    fn default() -> Self {
        LeaseTiming {
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
            write_margin: Duration::from_secs(5),
        }
    }
}

/// A Lease being contended for.
pub struct Lease {
    api: Api<LeaseObject>,
    name: String,
    identity: String,
    timing: LeaseTiming,
    fence: Fence,
    seen: watch::Sender<Option<Seen>>,
}

type LeaseObject = k8s_openapi::api::coordination::v1::Lease;

/// The Lease's record as this replica last saw it change, and when (on its own clock).
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    holder: Option<String>,
    renewed: Option<Timestamp>,
    duration: Duration,
    at: Instant,
}

impl Seen {
    fn of(lease: &LeaseObject, default: Duration) -> Seen {
        let spec = lease.spec.clone().unwrap_or_default();
        Seen {
            holder: spec.holder_identity.filter(|h| !h.is_empty()),
            renewed: spec.renew_time.map(|t| t.0),
            duration: spec
                .lease_duration_seconds
                .map_or(default, |s| Duration::from_secs(s.max(1) as u64)),
            at: Instant::now(),
        }
    }

    fn same_record(&self, other: &Seen) -> bool {
        self.holder == other.holder && self.renewed == other.renewed
    }

    /// When another replica may take it (now when nobody holds it).
    fn free_at(&self) -> Instant {
        match self.holder {
            None => self.at,
            Some(_) => self.at + self.duration,
        }
    }
}

/// How leading ended.
#[derive(Debug, PartialEq)]
enum Kept {
    /// The controllers stopped (shutdown): release the Lease.
    Done,
    /// The Lease could not be renewed or another replica took it.
    Lost,
}

impl LeaderElection {
    /// Starts contending for the Lease (nothing is written until [`Lease::lead`]).
    pub async fn contend(&self, client: Client) -> Result<Lease, Error> {
        Ok(Lease {
            api: Api::namespaced(client, &self.namespace),
            name: self.lease_name.clone(),
            identity: self.identity.clone(),
            timing: self.timing,
            fence: Fence::default(),
            seen: watch::channel(None).0,
        })
    }
}

impl Lease {
    /// The fence external writes go through (open only while this replica leads).
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The margin a write needs on the fence.
    pub fn write_margin(&self) -> Duration {
        self.timing.write_margin
    }

    /// Waits to lead, runs `controllers` while leading (until `shutdown` or the Lease is
    /// lost), then releases the Lease. Losing it is an error: the process should restart.
    pub async fn lead(
        self,
        shutdown: Shutdown,
        metrics: &Metrics,
        controllers: impl FnOnce(Shutdown) -> BoxFuture<'static, ()>,
    ) -> Result<(), Error> {
        let work = async {
            if !self.acquire(shutdown.clone()).await {
                return Ok(());
            }
            tracing::info!(identity = %self.identity, "leading");
            metrics.leader.set(1);
            let kept = self.run_while_held(shutdown, controllers).await;
            metrics.leader.set(0);
            self.fence.revoke();
            match kept {
                Kept::Done => {
                    self.release().await;
                    Ok(())
                }
                Kept::Lost => Err(Error::Leader("lost the leader Lease".into())),
            }
        };
        tokio::select! {
            result = work => result,
            () = self.observe() => Err(Error::Leader("the Lease watch ended".into())),
        }
    }

    /// Runs the controllers while renewing; they stop on shutdown or when the Lease is lost
    /// (the fence closes at once then, so in-flight reconciles start no further write).
    async fn run_while_held(
        &self,
        shutdown: Shutdown,
        controllers: impl FnOnce(Shutdown) -> BoxFuture<'static, ()>,
    ) -> Kept {
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let lost = lost_rx.map(|_| ());
        let stop = futures::future::select(shutdown, lost.boxed()).map(|_| ());
        let run = controllers(stop.boxed().shared()).map(|()| {
            let _ = done_tx.send(());
        });
        let (kept, ()) = futures::future::join(self.keep(done_rx, lost_tx), run).await;
        kept
    }

    /// Renews every retry period until the controllers are done; on a loss, closes the fence
    /// and tells the controllers.
    async fn keep(
        &self,
        mut done: tokio::sync::oneshot::Receiver<()>,
        lost: tokio::sync::oneshot::Sender<()>,
    ) -> Kept {
        loop {
            tokio::select! {
                _ = &mut done => return Kept::Done,
                () = tokio::time::sleep(self.timing.retry_period) => {}
            }
            if !self.renew().await {
                tracing::error!(identity = %self.identity, "lost the leader Lease; stopping");
                self.fence.revoke();
                let _ = lost.send(());
                // In-flight reconciles end (their writes refused); wait for them.
                let _ = done.await;
                return Kept::Lost;
            }
        }
    }

    /// One renewal; false when the Lease is lost (taken by another, or not renewed in time).
    async fn renew(&self) -> bool {
        let left = self
            .fence
            .remaining()
            .saturating_sub(self.timing.write_margin);
        match tokio::time::timeout(left, self.try_take()).await {
            Ok(Ok(true)) => true,
            Ok(Ok(false)) => false,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not renew the leader Lease");
                self.fence.remaining() > self.timing.write_margin
            }
            Err(_) => false,
        }
    }

    /// Waits until this replica holds the Lease (true), or until `shutdown` (false).
    async fn acquire(&self, shutdown: Shutdown) -> bool {
        let mut seen = self.seen.subscribe();
        tracing::info!(identity = %self.identity, "waiting for the leader Lease");
        loop {
            let free_at = seen.borrow_and_update().as_ref().map(|s| match &s.holder {
                Some(h) if *h == self.identity => s.at,
                _ => s.free_at(),
            });
            let mut next = free_at.unwrap_or_else(Instant::now);
            if next <= Instant::now() {
                match self.try_take().await {
                    Ok(true) => return true,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "could not take the leader Lease"),
                }
                next = Instant::now() + self.timing.retry_period;
            }
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                _ = seen.changed() => {}
                _ = shutdown.clone() => return false,
            }
        }
    }

    /// Takes or renews the Lease if this replica may: it holds it, nobody does, or the holder
    /// has not renewed for a lease duration as this replica saw it. On success the fence
    /// holds until a lease duration after the attempt began.
    async fn try_take(&self) -> Result<bool, kube::Error> {
        let began = Instant::now();
        let current = self.api.get_opt(&self.name).await?;
        let now = MicroTime(Timestamp::now());
        let seconds = self.timing.lease_duration.as_secs().max(1) as i32;
        let taken = match current {
            None => self.create(now, seconds).await?,
            Some(lease) => {
                if !self.may_take(&lease) {
                    return Ok(false);
                }
                self.replace(lease, now, seconds).await?
            }
        };
        if taken {
            self.fence.hold_until(began + self.timing.lease_duration);
        }
        Ok(taken)
    }

    /// Whether this replica may write `lease` as its holder.
    fn may_take(&self, lease: &LeaseObject) -> bool {
        let record = Seen::of(lease, self.timing.lease_duration);
        match &record.holder {
            None => true,
            Some(h) if *h == self.identity => true,
            // Expired only if this very record was seen a lease duration ago.
            Some(_) => self
                .seen
                .borrow()
                .as_ref()
                .is_some_and(|s| s.same_record(&record) && s.free_at() <= Instant::now()),
        }
    }

    async fn create(&self, now: MicroTime, seconds: i32) -> Result<bool, kube::Error> {
        let lease = LeaseObject {
            metadata: kube::api::ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `lease` with this replica as holder (a 409 means another wrote it first).
    async fn replace(
        &self,
        mut lease: LeaseObject,
        now: MicroTime,
        seconds: i32,
    ) -> Result<bool, kube::Error> {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (holder cleared), so a standby takes it at once.
    async fn release(&self) {
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(identity = %self.identity, "released the leader Lease"),
            Err(e) => tracing::warn!(error = %e, "could not release the leader Lease"),
        }
    }

    /// Watches the Lease, noting when its record changes; never ends on its own.
    async fn observe(&self) {
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let events = watcher(self.api.clone(), config).default_backoff();
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let lease = match event {
                Ok(watcher::Event::Apply(l) | watcher::Event::InitApply(l)) => Some(l),
                Ok(watcher::Event::Delete(_)) => None,
                Ok(watcher::Event::Init | watcher::Event::InitDone) | Err(_) => continue,
            };
            let record = lease
                .filter(|l| l.name_any() == self.name)
                .map(|l| Seen::of(&l, self.timing.lease_duration));
            self.seen
                .send_if_modified(|seen| match (seen.as_ref(), record) {
                    (Some(old), Some(new)) if old.same_record(&new) => false,
                    (_, record) => {
                        *seen = record;
                        true
                    }
                });
        }
        futures::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs: i64, duration: i32) -> LeaseObject {
        LeaseObject {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                renew_time: Some(MicroTime(
                    Timestamp::from_second(renewed_secs).expect("timestamp"),
                )),
                lease_duration_seconds: Some(duration),
                ..LeaseSpec::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_held_lease_frees_a_lease_duration_after_its_record_was_seen() {
        let seen = Seen::of(&lease(Some("a"), 100, 15), Duration::from_secs(30));
        assert_eq!(seen.duration, Duration::from_secs(15));
        assert_eq!(seen.free_at(), seen.at + Duration::from_secs(15));
        let renewed = Seen::of(&lease(Some("a"), 102, 15), Duration::from_secs(30));
        assert!(!seen.same_record(&renewed), "a renewal is a new record");
        let released = Seen::of(&lease(Some(""), 103, 15), Duration::from_secs(30));
        assert_eq!(released.holder, None);
        assert_eq!(released.free_at(), released.at, "nobody holds it: free now");
    }
}
