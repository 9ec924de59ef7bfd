//! PartnerCenterConnection: its status from what signing in and reading the activity log found.

use super::DesiredCondition;
use super::merge_conditions;
use crate::api::PartnerCenterConnectionStatus;
use crate::api::conditions::{reasons, types};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// `CredentialsExpiring` turns True this long before the refresh token expires.
pub const EXPIRY_WARNING: SignedDuration = SignedDuration::from_hours(14 * 24);

/// What the connection reconciler found.
#[derive(Clone, Debug, Default)]
pub struct ConnectionFacts<'a> {
    pub generation: Option<i64>,
    pub current: Option<&'a PartnerCenterConnectionStatus>,
    /// Why the connection cannot be used (a Ready=False reason and message); `None` when signed in.
    pub problem: Option<(&'static str, String)>,
    pub signed_in_as: Option<String>,
    pub refresh_token_expires_at: Option<Timestamp>,
    pub throttled_until: Option<Timestamp>,
    pub last_audit_sync: Option<Timestamp>,
}

/// The connection's status: Ready (Connected, or why not), CredentialsExpiring, and the times.
/// Unchanged facts give an unchanged status (no write).
pub fn connection_status(
    facts: &ConnectionFacts<'_>,
    now: Timestamp,
) -> PartnerCenterConnectionStatus {
    let ready = match &facts.problem {
        None => DesiredCondition::new(
            types::READY,
            true,
            reasons::CONNECTED,
            match &facts.signed_in_as {
                Some(user) => format!("signed in to Partner Center as {user}"),
                None => "signed in to Partner Center".to_string(),
            },
        ),
        Some((reason, message)) => {
            DesiredCondition::new(types::READY, false, reason, message.clone())
        }
    };
    let expiring = expiry_condition(facts.refresh_token_expires_at, now);
    let existing = facts
        .current
        .map(|s| s.conditions.as_slice())
        .unwrap_or(&[]);
    let current = facts.current.cloned().unwrap_or_default();
    PartnerCenterConnectionStatus {
        observed_generation: facts.generation,
        last_audit_sync: facts.last_audit_sync.map(Time).or(current.last_audit_sync),
        refresh_token_expires_at: facts
            .refresh_token_expires_at
            .map(Time)
            .or(current.refresh_token_expires_at),
        signed_in_as: facts.signed_in_as.clone().or(current.signed_in_as),
        throttled_until: facts.throttled_until.map(Time),
        conditions: merge_conditions(existing, &[ready, expiring], facts.generation, now),
    }
}

fn expiry_condition(expires_at: Option<Timestamp>, now: Timestamp) -> DesiredCondition {
    match expires_at {
        Some(at) if at.duration_since(now) <= EXPIRY_WARNING => DesiredCondition::new(
            types::CREDENTIALS_EXPIRING,
            true,
            reasons::CREDENTIALS_EXPIRING,
            format!(
                "the refresh token expires at {at}; an Admin Agent must sign in again (with MFA) and update the Secret"
            ),
        ),
        Some(at) => DesiredCondition::new(
            types::CREDENTIALS_EXPIRING,
            false,
            reasons::CREDENTIALS_VALID,
            format!("the refresh token is valid until {at} (renewed with every use)"),
        ),
        None => DesiredCondition::new(
            types::CREDENTIALS_EXPIRING,
            false,
            reasons::CREDENTIALS_VALID,
            "no refresh token used yet",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::conditions::find;
    use crate::policy::testing::t;

    #[test]
    fn signed_in_is_ready_and_a_refusal_says_why() {
        let ok = connection_status(
            &ConnectionFacts {
                signed_in_as: Some("admin@partner.example".into()),
                refresh_token_expires_at: Some(t(90 * 86_400)),
                ..Default::default()
            },
            t(0),
        );
        let ready = find(&ok.conditions, types::READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", reasons::CONNECTED)
        );
        assert!(ready.message.contains("admin@partner.example"));
        let exp = find(&ok.conditions, types::CREDENTIALS_EXPIRING).expect("expiring");
        assert_eq!(exp.status, "False");

        let refused = connection_status(
            &ConnectionFacts {
                current: Some(&ok),
                problem: Some((reasons::MFA_REQUIRED, "sign in with MFA".into())),
                ..Default::default()
            },
            t(10),
        );
        let ready = find(&refused.conditions, types::READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", reasons::MFA_REQUIRED)
        );
        assert_eq!(
            refused.signed_in_as.as_deref(),
            Some("admin@partner.example"),
            "kept"
        );
    }

    #[test]
    fn credentials_expiring_turns_true_fourteen_days_ahead() {
        let soon = connection_status(
            &ConnectionFacts {
                refresh_token_expires_at: Some(t(13 * 86_400)),
                ..Default::default()
            },
            t(0),
        );
        let exp = find(&soon.conditions, types::CREDENTIALS_EXPIRING).expect("expiring");
        assert_eq!(
            (exp.status.as_str(), exp.reason.as_str()),
            ("True", reasons::CREDENTIALS_EXPIRING)
        );
        // The same facts again change nothing (no write).
        let again = connection_status(
            &ConnectionFacts {
                current: Some(&soon),
                refresh_token_expires_at: Some(t(13 * 86_400)),
                ..Default::default()
            },
            t(50),
        );
        assert_eq!(again, soon);
    }
}
