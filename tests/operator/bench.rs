//! `bench --backend partner-center` in process, on 20 customers: every permission is enabled, a
//! first sync costs a few Partner Center calls per customer, nothing is called once settled, and a
//! simulator limit under the client's budget shows as throttled calls. No time is asserted.

use csp_operator::backend::BackendChoice;
use csp_operator::bench::{BenchOptions, PartnerCenterOptions, partner_center};
use std::time::Duration;

const CUSTOMERS: usize = 20;

fn options(simulator_per_minute: u32, requests_per_minute: u32) -> BenchOptions {
    BenchOptions {
        customers: if simulator_per_minute < 100 {
            5
        } else {
            CUSTOMERS
        },
        clients: 4,
        samples: 0,
        debounce: Duration::ZERO,
        server_thread: false,
        backend: BackendChoice::PartnerCenter,
        partner_center: PartnerCenterOptions {
            simulator_per_minute,
            requests_per_minute,
            settle: Duration::from_secs(3),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_costs_a_few_calls_per_customer_and_none_once_settled() {
    let s = partner_center::run(&options(6000, 6000))
        .await
        .expect("bench runs");
    assert_eq!(s.enabled, CUSTOMERS, "{s}");
    assert_eq!(s.calls_after_settling, 0, "{s}");
    assert!(s.pc_calls_per_customer() <= 4.0, "{s}");
    assert!(
        s.pc_calls >= CUSTOMERS as u64,
        "a self-serve policy per customer: {s}"
    );
    assert_eq!(s.throttled_calls, 0, "{s}");
    assert!(s.login_calls >= 1, "{s}");
    let line = s.to_string();
    for field in [
        "pc_calls_per_customer=",
        "arm_calls_per_customer=",
        "login_calls=",
        "throttled_calls=0",
        "calls_after_settling=0",
        "floor_secs=",
        "vs_floor=",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
}

/// The simulator admits 12 calls a minute, the client budgets 600: on 5 customers (about 20
/// calls: customers, subscriptions, entitlements, creates) the calls over 12 are answered 429,
/// waited out, and counted (this test waits about a minute for the window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_limit_under_the_budget_is_counted_as_throttled() {
    let s = partner_center::run(&options(12, 600))
        .await
        .expect("bench runs");
    assert_eq!(s.enabled, 5, "{s}");
    assert!(s.throttled_calls > 0, "{s}");
    assert_eq!(s.calls_after_settling, 0, "{s}");
}
