//! Call budgets: a governor limiter for the connection's Partner Center calls, keyed ones per Azure subscription, and 429 pauses.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Which of ARM's per-subscription token buckets a call draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ArmOperation {
    Read,
    Write,
    Delete,
}

/// Which budget a request draws from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BudgetKey {
    /// Token grants: not rate limited, only paused by a 429.
    Login,
    PartnerCenter,
    Subscription(String, ArmOperation),
}

/// A pause after a 429: when it ends, on both clocks (monotonic to wait, wall to report).
#[derive(Clone, Copy, Debug)]
struct Pause {
    until: Instant,
    until_wall: SystemTime,
}

/// The budgets of one connection.
pub(crate) struct Budgets {
    partner_center: DefaultDirectRateLimiter,
    arm_reads: DefaultKeyedRateLimiter<String>,
    arm_writes: DefaultKeyedRateLimiter<String>,
    arm_deletes: DefaultKeyedRateLimiter<String>,
    /// Pauses by budget: the Partner Center one, or an Azure subscription id (all its operations).
    pauses: Mutex<HashMap<PauseKey, Pause>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum PauseKey {
    Login,
    PartnerCenter,
    Subscription(String),
}

impl BudgetKey {
    fn pause_key(&self) -> PauseKey {
        match self {
            BudgetKey::Login => PauseKey::Login,
            BudgetKey::PartnerCenter => PauseKey::PartnerCenter,
            BudgetKey::Subscription(id, _) => PauseKey::Subscription(id.to_ascii_lowercase()),
        }
    }
}

/// ARM's documented subscription buckets: (burst, refill per second).
const ARM_READS: (u32, u32) = (250, 25);
const ARM_WRITES: (u32, u32) = (200, 10);
const ARM_DELETES: (u32, u32) = (200, 10);

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn bucket((burst, per_second): (u32, u32)) -> Quota {
    Quota::per_second(non_zero(per_second)).allow_burst(non_zero(burst))
}

impl Budgets {
    /// `requests_per_minute` spread evenly, with a burst of a tenth of it so that no rolling
    /// minute exceeds the budget by much (Partner Center allows 500/min per tenant).
    pub fn new(requests_per_minute: u32) -> Self {
        let per_minute = non_zero(requests_per_minute);
        let quota = Quota::per_minute(per_minute).allow_burst(non_zero(requests_per_minute / 10));
        Budgets {
            partner_center: RateLimiter::direct(quota),
            arm_reads: RateLimiter::keyed(bucket(ARM_READS)),
            arm_writes: RateLimiter::keyed(bucket(ARM_WRITES)),
            arm_deletes: RateLimiter::keyed(bucket(ARM_DELETES)),
            pauses: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until the budget allows one more request. With `max_pause_wait` shorter than a
    /// pending 429 pause, returns that pause's end instead of waiting (try-style).
    pub async fn acquire(
        &self,
        key: &BudgetKey,
        max_pause_wait: Duration,
    ) -> Result<(), SystemTime> {
        // A loop: another 429 may extend the pause while this call sleeps.
        while let Some(pause) = self.current_pause(key) {
            let left = pause.until.saturating_duration_since(Instant::now());
            if left > max_pause_wait {
                return Err(pause.until_wall);
            }
            tokio::time::sleep(left).await;
        }
        match key {
            BudgetKey::Login => {}
            BudgetKey::PartnerCenter => self.partner_center.until_ready().await,
            BudgetKey::Subscription(id, operation) => {
                let id = id.to_ascii_lowercase();
                self.limiter(*operation).until_key_ready(&id).await
            }
        }
        Ok(())
    }

    fn limiter(&self, operation: ArmOperation) -> &DefaultKeyedRateLimiter<String> {
        match operation {
            ArmOperation::Read => &self.arm_reads,
            ArmOperation::Write => &self.arm_writes,
            ArmOperation::Delete => &self.arm_deletes,
        }
    }

    /// The pause in force for the budget `key` belongs to, if any.
    fn current_pause(&self, key: &BudgetKey) -> Option<Pause> {
        let pause_key = key.pause_key();
        let mut pauses = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        pauses.retain(|_, p| p.until > now);
        pauses.get(&pause_key).copied()
    }

    /// Pauses the whole budget `key` belongs to for `for_how_long` (a 429's Retry-After);
    /// a longer pause already in force stays. Returns when the budget resumes.
    pub fn pause_for(&self, key: &BudgetKey, for_how_long: Duration) -> SystemTime {
        let until = Pause {
            until: Instant::now() + for_how_long,
            until_wall: SystemTime::now() + for_how_long,
        };
        let pause_key = key.pause_key();
        let mut pauses = self.pauses.lock().unwrap_or_else(|e| e.into_inner());
        let pause = pauses.entry(pause_key).or_insert(until);
        if pause.until < until.until {
            *pause = until;
        }
        pause.until_wall
    }

    /// When the Partner Center budget resumes, if it is paused.
    pub fn partner_center_paused_until(&self) -> Option<SystemTime> {
        self.current_pause(&BudgetKey::PartnerCenter)
            .map(|p| p.until_wall)
    }

    /// When an Azure subscription's budget resumes, if it is paused.
    pub fn subscription_paused_until(&self, azure_subscription_id: &str) -> Option<SystemTime> {
        let key = BudgetKey::Subscription(azure_subscription_id.into(), ArmOperation::Read);
        self.current_pause(&key).map(|p| p.until_wall)
    }
}
