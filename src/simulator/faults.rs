//! Fault injection at run time: the next N requests matching (method?, path substring?) answer a
//! status, time out (before or after doing the work), meet a 429 storm, or wait longer.
//!
//! ```no_run
//! # use csp_operator::simulator::{FaultAction, FaultRule, Simulator};
//! # fn f(sim: &Simulator) {
//! sim.faults().add(FaultRule::new(FaultAction::Status(503)).method("POST").path("/SelfServePolicy").times(2));
//! # }
//! ```

use super::route::Service;
use super::state::Answer;
use super::tokens::aad_error;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

/// What a matching request meets.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer this status with the service's error body (Partner Center, ARM or Azure AD).
    Status(u16),
    /// Hold the request for `delay`, then drop the connection without an answer. With
    /// `after_effect` the change is made first (a client retrying it meets its own create).
    Timeout { delay: Duration, after_effect: bool },
    /// 429 with `Retry-After: retry_after_secs` and the service's throttling body.
    Throttle { retry_after_secs: u64 },
    /// Answer normally, this much later.
    Latency(Duration),
}

/// A rule: an action for the next `remaining` requests that match.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub method: Option<String>,
    pub path_contains: Option<String>,
    pub remaining: u64,
    pub action: FaultAction,
}

impl FaultRule {
    /// Matches every request, once.
    pub fn new(action: FaultAction) -> FaultRule {
        FaultRule {
            method: None,
            path_contains: None,
            remaining: 1,
            action,
        }
    }

    pub fn method(mut self, method: &str) -> FaultRule {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Matches paths containing `part`, case-insensitively.
    pub fn path(mut self, part: &str) -> FaultRule {
        self.path_contains = Some(part.to_ascii_lowercase());
        self
    }

    pub fn times(mut self, n: u64) -> FaultRule {
        self.remaining = n;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.remaining > 0
            && self.method.as_deref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.to_ascii_lowercase().contains(p))
    }
}

/// The rules in force, first added first matched.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.lock().push(rule);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Rules not used up yet.
    pub fn pending(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// For one request: the added latency of every matching latency rule, and the first other
    /// matching action; each rule used counts down.
    pub fn take(&self, method: &str, path: &str) -> (Duration, Option<FaultAction>) {
        let mut rules = self.lock();
        let mut latency = Duration::ZERO;
        let mut action = None;
        for rule in rules.iter_mut().filter(|r| r.matches(method, path)) {
            match &rule.action {
                FaultAction::Latency(d) => latency += *d,
                other if action.is_none() => action = Some(other.clone()),
                _ => continue,
            }
            rule.remaining -= 1;
        }
        rules.retain(|r| r.remaining > 0);
        (latency, action)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An injected error status with the body the service would send.
pub fn status_answer(service: Service, status: u16) -> Answer {
    let text = format!("Injected fault: {status}");
    match service {
        Service::Login => aad_error(status, "temporarily_unavailable", 50000, &text),
        Service::Arm => Answer::json(
            status,
            &json!({"error": {"code": arm_code(status), "message": text}}),
        ),
        Service::PartnerCenter | Service::Unknown => Answer::json(
            status,
            &json!({"code": status, "description": text, "data": [], "source": "PartnerFD"}),
        ),
    }
}

fn arm_code(status: u16) -> &'static str {
    match status {
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "InjectedFault",
    }
}

/// The 429 each service sends.
pub fn throttle_answer(service: Service, retry_after_secs: u64) -> Answer {
    let body = match service {
        Service::Arm => json!({"error": {
            "code": "SubscriptionRequestsThrottled",
            "message": format!("Number of requests for subscription exceeded the limit. Please try again after '{retry_after_secs}' seconds."),
        }}),
        Service::Login => {
            json!({"error": "temporarily_unavailable", "error_description": "AADSTS50196: The server terminated an operation because it encountered a client request loop.", "error_codes": [50196]})
        }
        Service::PartnerCenter | Service::Unknown => json!({
            "statusCode": 429,
            "message": format!("Rate limit is exceeded. Try again in {retry_after_secs} seconds."),
        }),
    };
    Answer::json(429, &body).with_header("Retry-After", retry_after_secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_count_down_and_expire() {
        let f = Faults::default();
        f.add(
            FaultRule::new(FaultAction::Status(503))
                .method("post")
                .path("/selfservepolicy")
                .times(2),
        );
        assert_eq!(f.take("GET", "/v1/SelfServePolicy"), (Duration::ZERO, None));
        assert_eq!(f.take("POST", "/v1/customers"), (Duration::ZERO, None));
        for _ in 0..2 {
            assert_eq!(
                f.take("POST", "/v1/SelfServePolicy"),
                (Duration::ZERO, Some(FaultAction::Status(503)))
            );
        }
        assert_eq!(
            f.take("POST", "/v1/SelfServePolicy"),
            (Duration::ZERO, None)
        );
        assert!(f.pending().is_empty());
    }

    #[test]
    fn latency_adds_up_beside_one_action() {
        let f = Faults::default();
        let ms = Duration::from_millis(5);
        f.add(FaultRule::new(FaultAction::Latency(ms)).times(10));
        f.add(FaultRule::new(FaultAction::Throttle {
            retry_after_secs: 3,
        }));
        f.add(FaultRule::new(FaultAction::Status(500)));
        assert_eq!(
            f.take("GET", "/x"),
            (
                ms,
                Some(FaultAction::Throttle {
                    retry_after_secs: 3
                })
            )
        );
        assert_eq!(f.take("GET", "/x"), (ms, Some(FaultAction::Status(500))));
        assert_eq!(f.pending().len(), 1);
    }

    #[test]
    fn bodies_fit_the_service() {
        let pc = throttle_answer(Service::PartnerCenter, 7);
        let body: serde_json::Value = serde_json::from_slice(&pc.body).unwrap();
        assert_eq!(
            body["message"],
            "Rate limit is exceeded. Try again in 7 seconds."
        );
        assert!(pc.headers.contains(&("Retry-After".into(), "7".into())));
        let arm: serde_json::Value =
            serde_json::from_slice(&status_answer(Service::Arm, 503).body).unwrap();
        assert_eq!(arm["error"]["code"], "ServiceUnavailable");
    }
}
