//! Rate limits as the real services apply them: Partner Center's requests per minute per partner
//! tenant (a sliding one-minute window) and Azure Resource Manager's token buckets per
//! subscription and operation kind (reads, writes, deletes).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// The limits the simulator enforces; `Default` is the real services' numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Partner Center: requests per minute per partner tenant (real: 500).
    pub partner_center_per_minute: u32,
    /// ARM, per subscription: GET.
    pub arm_reads: Bucket,
    /// ARM, per subscription: PUT, PATCH, POST.
    pub arm_writes: Bucket,
    /// ARM, per subscription: DELETE.
    pub arm_deletes: Bucket,
}

/// A token bucket: `burst` tokens at most, `per_second` added back each second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub burst: u32,
    pub per_second: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            partner_center_per_minute: 500,
            arm_reads: Bucket {
                burst: 250,
                per_second: 25,
            },
            arm_writes: Bucket {
                burst: 200,
                per_second: 10,
            },
            arm_deletes: Bucket {
                burst: 200,
                per_second: 10,
            },
        }
    }
}

/// The ARM operation kinds, each with a bucket of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArmOperation {
    Read,
    Write,
    Delete,
}

impl ArmOperation {
    pub fn of(method: &str) -> ArmOperation {
        match method {
            "GET" | "HEAD" => ArmOperation::Read,
            "DELETE" => ArmOperation::Delete,
            _ => ArmOperation::Write,
        }
    }

    /// The kind's name in `x-ms-ratelimit-remaining-subscription-{name}`.
    pub fn header_suffix(self) -> &'static str {
        match self {
            ArmOperation::Read => "reads",
            ArmOperation::Write => "writes",
            ArmOperation::Delete => "deletes",
        }
    }
}

/// The outcome of asking a limiter for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed; this many requests remain right now.
    Allowed { remaining: u32 },
    /// Refused; try again after this many whole seconds (at least 1).
    Throttled { retry_after_secs: u64 },
}

/// Every limiter's state.
#[derive(Default)]
pub struct Limiters {
    partner_center: HashMap<String, VecDeque<Instant>>,
    arm: HashMap<(String, ArmOperation), BucketState>,
}

struct BucketState {
    tokens: f64,
    at: Instant,
}

const MINUTE: Duration = Duration::from_secs(60);

impl Limiters {
    /// One Partner Center request of `tenant`: at most `per_minute` in any 60 seconds.
    pub fn partner_center(&mut self, tenant: &str, per_minute: u32, now: Instant) -> Verdict {
        let window = self.partner_center.entry(tenant.to_string()).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= MINUTE)
        {
            window.pop_front();
        }
        if window.len() >= per_minute as usize {
            // The window frees when its oldest request is a minute old.
            let frees_in = window
                .front()
                .map(|oldest| MINUTE.saturating_sub(now.duration_since(*oldest)))
                .unwrap_or(MINUTE);
            return Verdict::Throttled {
                retry_after_secs: whole_seconds(frees_in),
            };
        }
        window.push_back(now);
        Verdict::Allowed {
            remaining: per_minute - window.len() as u32,
        }
    }

    /// One ARM request of kind `op` on `subscription`.
    pub fn arm(
        &mut self,
        subscription: &str,
        op: ArmOperation,
        spec: Bucket,
        now: Instant,
    ) -> Verdict {
        let key = (subscription.to_ascii_lowercase(), op);
        let state = self.arm.entry(key).or_insert(BucketState {
            tokens: f64::from(spec.burst),
            at: now,
        });
        let refill = now.duration_since(state.at).as_secs_f64() * f64::from(spec.per_second);
        state.tokens = (state.tokens + refill).min(f64::from(spec.burst));
        state.at = now;
        if state.tokens < 1.0 {
            let missing = 1.0 - state.tokens;
            let wait = if spec.per_second == 0 {
                MINUTE
            } else {
                Duration::from_secs_f64(missing / f64::from(spec.per_second))
            };
            return Verdict::Throttled {
                retry_after_secs: whole_seconds(wait),
            };
        }
        state.tokens -= 1.0;
        Verdict::Allowed {
            remaining: state.tokens.floor() as u32,
        }
    }
}

/// Rounded up, at least 1 (a `Retry-After: 0` would invite an immediate retry).
fn whole_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partner_center_window_frees_a_minute_after_the_oldest_request() {
        let mut l = Limiters::default();
        let t0 = Instant::now();
        assert_eq!(
            l.partner_center("p", 2, t0),
            Verdict::Allowed { remaining: 1 }
        );
        let t1 = t0 + Duration::from_secs(20);
        assert_eq!(
            l.partner_center("p", 2, t1),
            Verdict::Allowed { remaining: 0 }
        );
        let t2 = t0 + Duration::from_secs(30);
        assert_eq!(
            l.partner_center("p", 2, t2),
            Verdict::Throttled {
                retry_after_secs: 30
            }
        );
        // Another tenant has a window of its own.
        assert!(matches!(
            l.partner_center("q", 2, t2),
            Verdict::Allowed { .. }
        ));
        let t3 = t0 + Duration::from_secs(60);
        assert!(matches!(
            l.partner_center("p", 2, t3),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn an_arm_bucket_empties_then_refills() {
        let mut l = Limiters::default();
        let spec = Bucket {
            burst: 2,
            per_second: 1,
        };
        let t0 = Instant::now();
        assert_eq!(
            l.arm("s", ArmOperation::Write, spec, t0),
            Verdict::Allowed { remaining: 1 }
        );
        assert_eq!(
            l.arm("s", ArmOperation::Write, spec, t0),
            Verdict::Allowed { remaining: 0 }
        );
        assert_eq!(
            l.arm("s", ArmOperation::Write, spec, t0),
            Verdict::Throttled {
                retry_after_secs: 1
            }
        );
        // Reads have a bucket of their own.
        assert!(matches!(
            l.arm("s", ArmOperation::Read, spec, t0),
            Verdict::Allowed { .. }
        ));
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(
            l.arm("s", ArmOperation::Write, spec, later),
            Verdict::Allowed { remaining: 0 }
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }
}
