//! Waiting for a condition: one `eventually` (async, and blocking for plain threads) that retries
//! a check until it passes, or panics naming what it awaited and what it last saw.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a check may take to pass, unless the test says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// How often a failing check is tried again, unless the test says otherwise.
pub const EVERY: Duration = Duration::from_millis(100);

/// One try of a check: passed (with a value), or not yet (with what it saw, for the panic).
pub trait Check {
    type Value;
    fn outcome(self) -> Result<Self::Value, String>;
}

impl Check for bool {
    type Value = ();
    fn outcome(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition did not hold".into())
        }
    }
}

/// `Err` carries what was seen; `{:#}` (pretty JSON for a `serde_json::Value`) goes in the panic.
impl<T, E: Display> Check for Result<T, E> {
    type Value = T;
    fn outcome(self) -> Result<T, String> {
        self.map_err(|seen| format!("{seen:#}"))
    }
}

/// How long to keep trying, and how often.
#[derive(Clone, Copy, Debug)]
pub struct Poll {
    pub timeout: Duration,
    pub every: Duration,
}

impl Default for Poll {
    fn default() -> Poll {
        Poll {
            timeout: TIMEOUT,
            every: EVERY,
        }
    }
}

impl Poll {
    /// Tries `check` until it passes; panics after `timeout` naming `what` and the last try.
    pub async fn eventually<C, Fut>(self, what: &str, mut check: impl FnMut() -> Fut) -> C::Value
    where
        C: Check,
        Fut: Future<Output = C>,
    {
        let start = Instant::now();
        loop {
            match check().await.outcome() {
                Ok(value) => return value,
                Err(seen) if start.elapsed() >= self.timeout => self.timed_out(what, &seen),
                Err(_) => tokio::time::sleep(self.every).await,
            }
        }
    }

    /// [`Poll::eventually`] for code that is not async (it sleeps the thread).
    pub fn eventually_blocking<C: Check>(
        self,
        what: &str,
        mut check: impl FnMut() -> C,
    ) -> C::Value {
        let start = Instant::now();
        loop {
            match check().outcome() {
                Ok(value) => return value,
                Err(seen) if start.elapsed() >= self.timeout => self.timed_out(what, &seen),
                Err(_) => std::thread::sleep(self.every),
            }
        }
    }

    fn timed_out(self, what: &str, seen: &str) -> ! {
        panic!(
            "timed out after {:?} awaiting {what}; last seen: {seen}",
            self.timeout
        )
    }
}

/// [`Poll::eventually`] with the default timeout and interval.
pub async fn eventually<C, Fut>(what: &str, check: impl FnMut() -> Fut) -> C::Value
where
    C: Check,
    Fut: Future<Output = C>,
{
    Poll::default().eventually(what, check).await
}
