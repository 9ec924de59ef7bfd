//! The connection bound: at most `max_connections` are served at once; when all are taken the
//! oldest idle one is closed to make room, and accept errors (EMFILE) back off instead of
//! spinning.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long the accept loop rests after an accept error (out of file descriptors, most often)
/// before it tries again: the error stays until a connection closes, so retrying at once would
/// spin a core.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How often a newcomer waiting for room looks again for an idle connection to close.
const RECHECK: Duration = Duration::from_millis(100);

/// The open connections, oldest first, and the permits that bound them.
pub struct Connections {
    permits: Arc<Semaphore>,
    open: Mutex<BTreeMap<u64, OpenConnection>>,
    next_id: AtomicU64,
    accept_errors: AtomicU64,
}

struct OpenConnection {
    /// Requests in flight (a watch is in flight until its stream ends).
    busy: Arc<AtomicUsize>,
    close: Arc<Notify>,
}

/// A connection's place: its permit, its in-flight count and the signal that asks it to close.
pub struct Slot {
    id: u64,
    connections: Arc<Connections>,
    pub busy: Arc<AtomicUsize>,
    pub close: Arc<Notify>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections.lock_open().remove(&self.id);
    }
}

impl Connections {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(max.max(1))),
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
        })
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, OpenConnection>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room for one more connection. When every permit is taken, the oldest idle connection is
    /// asked to close (an idle keep-alive only costs its client a reconnect, while a newcomer
    /// left waiting would be kubectl hanging); when none is idle, this waits for one to end.
    pub async fn room(self: &Arc<Self>) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return Some(permit);
            }
            self.close_oldest_idle();
            match tokio::time::timeout(RECHECK, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => return Some(permit),
                Ok(Err(_closed)) => return None,
                Err(_elapsed) => {}
            }
        }
    }

    /// Registers an accepted connection holding `permit`.
    pub fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        self.lock_open().insert(
            id,
            OpenConnection {
                busy: busy.clone(),
                close: close.clone(),
            },
        );
        Slot {
            id,
            connections: self.clone(),
            busy,
            close,
            _permit: permit,
        }
    }

    /// Asks the oldest connection without a request in flight to close; it leaves the list at
    /// once, so the next call picks the next one.
    fn close_oldest_idle(&self) {
        let mut open = self.lock_open();
        let oldest_idle = open
            .iter()
            .find(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        if let Some(conn) = oldest_idle.and_then(|id| open.remove(&id)) {
            conn.close.notify_one();
        }
    }

    /// Counts a failed accept; the caller backs off.
    pub fn accept_failed(&self, error: &std::io::Error) {
        let n = self.accept_errors.fetch_add(1, Ordering::Relaxed) + 1;
        // One line per 100 failures: a long EMFILE spell must not flood the log either.
        if n % 100 == 1 {
            tracing::warn!(%error, failures = n, "accept failed; backing off");
        }
    }

    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.lock_open().len()
    }
}

/// Counts a request in flight on its connection until dropped (with the response body, once
/// it is sent).
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn start(busy: &Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(busy.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted in flight until it is sent (or dropped).
pub struct Tracked {
    pub body: super::Body,
    /// Held, never read: dropping it ends the count.
    pub _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
