//! Table-driven tests of the PurchasePermission decision, on a fixed clock.

use super::*;
use crate::api::conditions::{reasons, types};
use crate::api::{AzureSubscriptionSpec, PermissionState, PurchasePermissionSpec};
use crate::api::{
    BillingType, DeletionPolicy, GrantBackend, LocalRef, Offer, PurchaseResource, SubscriptionState,
};
use crate::policy::conditions::find;
use crate::policy::events::{EventType, actions};
use crate::policy::testing::t;
use crate::policy::{Claimants, Observed};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

const PLAN_ID: &str = "0b9e3c1d-5a2f-4c8e-b7d6-1e2f3a4b5c6d";
const TENANT: &str = "6f1c2a44-3b7e-4d1a-9f0e-2b8c7d6e5f40";
const GLOBAL_ID: &str = "1b9e3c1d-5a2f-4c8e-b7d6-1e2f3a4b5c6d";

use crate::policy::testing::subscription as sub;

fn plan() -> AzureSubscriptionSpec {
    sub(
        PLAN_ID,
        Offer::AzurePlan,
        BillingType::Usage,
        SubscriptionState::Active,
    )
}

fn perm(enabled: bool) -> PurchasePermissionSpec {
    PurchasePermissionSpec {
        customer_ref: LocalRef::new("contoso"),
        subscription_ref: None,
        resources: vec![PurchaseResource::AzureReservations],
        enabled,
        deletion_policy: DeletionPolicy::Withdraw,
    }
}

fn facts<'a>(
    spec: &'a PurchasePermissionSpec,
    subs: Vec<SubscriptionFact<'a>>,
) -> PermissionFacts<'a> {
    PermissionFacts {
        spec,
        generation: Some(1),
        current: None,
        customer_tenant: Some(TENANT),
        subscriptions: subs,
        claimants: Claimants::default(),
        backend: BackendFact::default(),
    }
}

fn cond<'a>(d: &'a PermissionDecision, type_: &str) -> (&'a str, &'a str) {
    let c = find(&d.status.conditions, type_).expect("condition present");
    (c.status.as_str(), c.reason.as_str())
}

fn ready(d: &PermissionDecision) -> (&str, &str) {
    cond(d, types::READY)
}

/// Every path of the decision on a fresh object: (case, enabled, customer, subscriptions,
/// duplicate) -> (state, Ready, SubscriptionEligible, OwnerRoleAssigned).
#[test]
fn decision_table() {
    let plan = plan();
    let global = sub(
        GLOBAL_ID,
        Offer::AzureGlobal,
        BillingType::Usage,
        SubscriptionState::Active,
    );
    let license = sub(
        PLAN_ID,
        Offer::AzurePlan,
        BillingType::License,
        SubscriptionState::Active,
    );
    let suspended = sub(
        PLAN_ID,
        Offer::AzurePlan,
        BillingType::Usage,
        SubscriptionState::Suspended,
    );
    let other = sub(
        PLAN_ID,
        Offer::Other,
        BillingType::Usage,
        SubscriptionState::Active,
    );
    let f = |name, spec, has_owner| SubscriptionFact {
        name,
        spec,
        has_owner,
        observed: Observed::Off,
    };
    type Row<'a> = (
        &'a str,
        bool,
        bool,
        Vec<SubscriptionFact<'a>>,
        Option<&'a str>,
        PermissionState,
        (&'a str, &'a str),
        &'a str,
        &'a str,
    );
    let rows: Vec<Row<'_>> = vec![
        (
            "off by default, nothing else",
            false,
            true,
            vec![],
            None,
            PermissionState::Disabled,
            ("True", reasons::PERMISSION_DISABLED),
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "off, ready underneath",
            false,
            true,
            vec![f("plan", &plan, true)],
            None,
            PermissionState::Disabled,
            ("True", reasons::PERMISSION_DISABLED),
            reasons::ELIGIBLE,
            reasons::OWNER_ASSIGNED,
        ),
        (
            "no subscription",
            true,
            true,
            vec![],
            None,
            PermissionState::Blocked,
            ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "license-based only",
            true,
            true,
            vec![f("lic", &license, true)],
            None,
            PermissionState::Blocked,
            ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "suspended only",
            true,
            true,
            vec![f("sus", &suspended, true)],
            None,
            PermissionState::Blocked,
            ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "other offer only",
            true,
            true,
            vec![f("oth", &other, true)],
            None,
            PermissionState::Blocked,
            ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "eligible, no owner",
            true,
            true,
            vec![f("plan", &plan, false)],
            None,
            PermissionState::Blocked,
            ("False", reasons::OWNER_ROLE_MISSING),
            reasons::ELIGIBLE,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "owner only on the ineligible one",
            true,
            true,
            vec![f("plan", &plan, false), f("lic", &license, true)],
            None,
            PermissionState::Blocked,
            ("False", reasons::OWNER_ROLE_MISSING),
            reasons::ELIGIBLE,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "azure plan with owner",
            true,
            true,
            vec![f("plan", &plan, true)],
            None,
            PermissionState::Enabled,
            ("True", reasons::PERMISSION_ENABLED),
            reasons::ELIGIBLE,
            reasons::OWNER_ASSIGNED,
        ),
        (
            "azure global with owner",
            true,
            true,
            vec![f("global", &global, true)],
            None,
            PermissionState::Enabled,
            ("True", reasons::PERMISSION_ENABLED),
            reasons::ELIGIBLE,
            reasons::OWNER_ASSIGNED,
        ),
        (
            "customer not found",
            true,
            false,
            vec![f("plan", &plan, true)],
            None,
            PermissionState::Blocked,
            ("False", reasons::CUSTOMER_NOT_FOUND),
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "duplicate, prerequisites met",
            true,
            true,
            vec![f("plan", &plan, true)],
            Some("older"),
            PermissionState::Blocked,
            ("False", reasons::DUPLICATE_PERMISSION),
            reasons::ELIGIBLE,
            reasons::OWNER_ASSIGNED,
        ),
        (
            "duplicate reports missing prerequisites first",
            true,
            true,
            vec![],
            Some("older"),
            PermissionState::Blocked,
            ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION),
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            reasons::OWNER_ROLE_MISSING,
        ),
        (
            "duplicate, switched off",
            false,
            true,
            vec![f("plan", &plan, true)],
            Some("older"),
            PermissionState::Disabled,
            ("True", reasons::PERMISSION_DISABLED),
            reasons::ELIGIBLE,
            reasons::OWNER_ASSIGNED,
        ),
    ];
    for (
        case,
        enabled,
        customer_exists,
        subs,
        duplicate_of,
        state,
        want_ready,
        want_sub,
        want_owner,
    ) in rows
    {
        let spec = perm(enabled);
        let d = permission_decision(
            &PermissionFacts {
                customer_tenant: customer_exists.then_some(TENANT),
                claimants: duplicate_of
                    .map(crate::policy::testing::lost_to)
                    .unwrap_or_default(),
                ..facts(&spec, subs)
            },
            t(0),
        );
        assert_eq!(d.status.state, state, "{case}: state");
        assert_eq!(ready(&d), want_ready, "{case}: Ready");
        // kstatus: Stalled (True, Ready's reason) exactly when not ready, since every
        // Ready=False reason waits for a human; absent otherwise. Nothing in flight once decided.
        let conditions = &d.status.conditions;
        let stalled =
            find(conditions, types::STALLED).map(|c| (c.status.as_str(), c.reason.as_str()));
        let want_stalled = (want_ready.0 == "False").then_some(("True", want_ready.1));
        assert_eq!(stalled, want_stalled, "{case}: Stalled");
        let reconciling = find(conditions, types::RECONCILING);
        assert!(reconciling.is_none(), "{case}: Reconciling");
        assert_eq!(
            cond(&d, types::SUBSCRIPTION_ELIGIBLE).1,
            want_sub,
            "{case}: SubscriptionEligible"
        );
        assert_eq!(
            cond(&d, types::OWNER_ROLE_ASSIGNED).1,
            want_owner,
            "{case}: OwnerRoleAssigned"
        );
        assert_eq!(
            d.status.observed_generation,
            Some(1),
            "{case}: observedGeneration"
        );
        let ready_cond = find(&d.status.conditions, types::READY).expect("Ready");
        assert!(
            !ready_cond.message.is_empty(),
            "{case}: Ready has a message"
        );
    }
}

#[test]
fn enabling_records_create_event_and_grant() {
    let spec = perm(true);
    let plan = plan();
    let d = permission_decision(
        &facts(
            &spec,
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: true,
                observed: Observed::Off,
            }],
        ),
        t(5),
    );
    assert_eq!(d.grant, GrantChange::Create);
    assert_eq!(d.status.eligible_subscriptions, vec![PLAN_ID.to_string()]);
    assert_eq!(d.status.enabled_since, Some(Time(t(5))));
    assert_eq!(d.events.len(), 1);
    let e = &d.events[0];
    assert_eq!(
        (e.type_, e.reason, e.action),
        (
            EventType::Normal,
            reasons::PERMISSION_ENABLED,
            actions::CREATE
        )
    );
    assert!(
        e.note.contains("pays")
            && e.note.contains("not notified")
            && e.note.contains("exchange, cancel, renew")
    );
}

#[test]
fn settled_grant_makes_no_write_and_no_event() {
    let spec = perm(true);
    let plan = plan();
    let subs = || {
        vec![SubscriptionFact {
            name: "plan",
            spec: &plan,
            has_owner: true,
            observed: Observed::Off,
        }]
    };
    let first = permission_decision(&facts(&spec, subs()), t(5));
    let again = permission_decision(
        &PermissionFacts {
            current: Some(&first.status),
            ..facts(&spec, subs())
        },
        t(500),
    );
    assert_eq!(again.grant, GrantChange::None);
    assert!(again.events.is_empty());
    assert_eq!(
        crate::policy::status_change(Some(&first.status), again.status),
        None
    );
}

#[test]
fn blocked_warns_once() {
    let spec = perm(true);
    let first = permission_decision(&facts(&spec, vec![]), t(0));
    assert_eq!(first.grant, GrantChange::None);
    assert_eq!(first.events.len(), 1);
    let e = &first.events[0];
    assert_eq!(
        (e.type_, e.reason, e.action),
        (
            EventType::Warning,
            reasons::NO_ELIGIBLE_SUBSCRIPTION,
            actions::CHECK_PREREQUISITES
        )
    );
    let again = permission_decision(
        &PermissionFacts {
            current: Some(&first.status),
            ..facts(&spec, vec![])
        },
        t(60),
    );
    assert!(again.events.is_empty(), "no event without a transition");
    assert_eq!(
        crate::policy::status_change(Some(&first.status), again.status),
        None
    );
    // A different blocking reason is a transition: it warns again.
    let plan = plan();
    let third = permission_decision(
        &PermissionFacts {
            current: Some(&first.status),
            ..facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: false,
                    observed: Observed::Off,
                }],
            )
        },
        t(120),
    );
    assert_eq!(third.events.len(), 1);
    assert_eq!(third.events[0].reason, reasons::OWNER_ROLE_MISSING);
}

#[test]
fn lost_owner_keeps_grant_and_warns() {
    let spec = perm(true);
    let plan = plan();
    let granted = permission_decision(
        &facts(
            &spec,
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: true,
                observed: Observed::Off,
            }],
        ),
        t(0),
    );
    let lost = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            ..facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: false,
                    observed: Observed::Off,
                }],
            )
        },
        t(30),
    );
    assert_eq!(lost.status.state, PermissionState::Enabled);
    assert_eq!(lost.grant, GrantChange::None);
    assert_eq!(ready(&lost), ("False", reasons::OWNER_ROLE_MISSING));
    assert_eq!(
        lost.status.enabled_since,
        Some(Time(t(0))),
        "grant time kept"
    );
    assert!(lost.status.eligible_subscriptions.is_empty());
    assert_eq!(lost.events.len(), 1);
    let e = &lost.events[0];
    assert_eq!(
        (e.type_, e.reason, e.action),
        (
            EventType::Warning,
            reasons::OWNER_ROLE_MISSING,
            actions::CHECK_PREREQUISITES
        )
    );
    assert!(e.note.contains("Azure portal"));
    // Owner comes back: Ready again, no new grant, no Create event.
    let back = permission_decision(
        &PermissionFacts {
            current: Some(&lost.status),
            ..facts(
                &spec,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: true,
                    observed: Observed::Off,
                }],
            )
        },
        t(60),
    );
    assert_eq!(ready(&back), ("True", reasons::PERMISSION_ENABLED));
    assert_eq!(back.grant, GrantChange::None);
    assert!(back.events.is_empty());
    assert_eq!(back.status.enabled_since, Some(Time(t(0))));
}

#[test]
fn lost_customer_keeps_grant() {
    let spec = perm(true);
    let plan = plan();
    let granted = permission_decision(
        &facts(
            &spec,
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: true,
                observed: Observed::Off,
            }],
        ),
        t(0),
    );
    let lost = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            customer_tenant: None,
            ..facts(&spec, vec![])
        },
        t(30),
    );
    assert_eq!(lost.status.state, PermissionState::Enabled);
    assert_eq!(ready(&lost), ("False", reasons::CUSTOMER_NOT_FOUND));
    assert_eq!(lost.events[0].type_, EventType::Warning);
    // What to withdraw later is still known without the Customer.
    assert_eq!(granted.status.granted_tenant_id.as_deref(), Some(TENANT));
    assert_eq!(lost.status.granted_tenant_id.as_deref(), Some(TENANT));
}

#[test]
fn disabling_records_delete_event() {
    let on = perm(true);
    let plan = plan();
    let granted = permission_decision(
        &facts(
            &on,
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: true,
                observed: Observed::Off,
            }],
        ),
        t(0),
    );
    let off = perm(false);
    let d = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            generation: Some(2),
            ..facts(
                &off,
                vec![SubscriptionFact {
                    name: "plan",
                    spec: &plan,
                    has_owner: true,
                    observed: Observed::Off,
                }],
            )
        },
        t(10),
    );
    assert_eq!(d.status.state, PermissionState::Disabled);
    assert_eq!(d.grant, GrantChange::Delete);
    assert_eq!(d.status.enabled_since, None);
    assert_eq!(d.status.observed_generation, Some(2));
    assert_eq!(d.events.len(), 1);
    let e = &d.events[0];
    assert_eq!(
        (e.type_, e.reason, e.action),
        (
            EventType::Normal,
            reasons::PERMISSION_DISABLED,
            actions::DELETE
        )
    );
    // Disabling a permission that was only Blocked withdraws nothing.
    let blocked = permission_decision(&facts(&on, vec![]), t(0));
    let d = permission_decision(
        &PermissionFacts {
            current: Some(&blocked.status),
            ..facts(&off, vec![])
        },
        t(10),
    );
    assert_eq!(d.grant, GrantChange::None);
    assert!(d.events.is_empty());
    assert_eq!(ready(&d), ("True", reasons::PERMISSION_DISABLED));
}

#[test]
fn subscription_ref_narrows_the_check() {
    let plan = plan();
    let global = sub(
        GLOBAL_ID,
        Offer::AzureGlobal,
        BillingType::Usage,
        SubscriptionState::Active,
    );
    let subs = || {
        vec![
            SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: false,
                observed: Observed::Off,
            },
            SubscriptionFact {
                name: "global",
                spec: &global,
                has_owner: true,
                observed: Observed::Off,
            },
        ]
    };
    let mut spec = perm(true);
    let any = permission_decision(&facts(&spec, subs()), t(0));
    assert_eq!(any.status.state, PermissionState::Enabled);
    assert_eq!(
        any.status.eligible_subscriptions,
        vec![GLOBAL_ID.to_string()]
    );
    spec.subscription_ref = Some(LocalRef::new("plan"));
    let narrowed = permission_decision(&facts(&spec, subs()), t(0));
    assert_eq!(narrowed.status.state, PermissionState::Blocked);
    assert_eq!(ready(&narrowed), ("False", reasons::OWNER_ROLE_MISSING));
    spec.subscription_ref = Some(LocalRef::new("someone-elses"));
    let missing = permission_decision(&facts(&spec, subs()), t(0));
    assert_eq!(
        ready(&missing),
        ("False", reasons::NO_ELIGIBLE_SUBSCRIPTION)
    );
    assert!(
        find(&missing.status.conditions, types::READY)
            .expect("Ready")
            .message
            .contains("someone-elses")
    );
}

#[test]
fn contributor_does_not_count_is_the_callers_has_owner() {
    // has_owner is computed from Owner assignments only; the message says so.
    let spec = perm(true);
    let plan = plan();
    let d = permission_decision(
        &facts(
            &spec,
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: false,
                observed: Observed::Off,
            }],
        ),
        t(0),
    );
    assert!(
        find(&d.status.conditions, types::OWNER_ROLE_ASSIGNED)
            .expect("cond")
            .message
            .contains("Contributor or Reader does not count")
    );
}

#[test]
fn a_duplicate_never_holds_or_withdraws_the_grant() {
    let spec = perm(true);
    let plan = plan();
    let subs = || {
        vec![SubscriptionFact {
            name: "plan",
            spec: &plan,
            has_owner: true,
            observed: Observed::Off,
        }]
    };
    // Granted while it was the only one; then an older one shows up.
    let granted = permission_decision(&facts(&spec, subs()), t(0));
    let demoted = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            claimants: crate::policy::testing::lost_to("older"),
            ..facts(&spec, subs())
        },
        t(10),
    );
    assert_eq!(demoted.status.state, PermissionState::Blocked);
    assert_eq!(ready(&demoted), ("False", reasons::DUPLICATE_PERMISSION));
    assert_eq!(
        demoted.grant,
        GrantChange::None,
        "the older permission manages the customer's grant"
    );
    assert!(
        demoted
            .events
            .iter()
            .all(|e| e.action == actions::CHECK_PREREQUISITES)
    );
    assert_eq!(
        withdraw_on_delete(Some(&demoted.status), DeletionPolicy::Withdraw),
        None,
        "deleting it withdraws nothing"
    );
}

#[test]
fn deleting_an_enabled_permission_withdraws_it() {
    let spec = perm(true);
    let plan = plan();
    let granted = permission_decision(
        &facts(
            &spec,
            vec![SubscriptionFact {
                name: "plan",
                spec: &plan,
                has_owner: true,
                observed: Observed::Off,
            }],
        ),
        t(0),
    );
    let w =
        withdraw_on_delete(Some(&granted.status), DeletionPolicy::Withdraw).expect("withdrawal");
    assert!(w.revoke);
    let e = w.event;
    assert_eq!(
        (e.type_, e.reason, e.action),
        (
            EventType::Normal,
            reasons::PERMISSION_DISABLED,
            actions::DELETE
        )
    );
    // Orphan: the object goes, the grant stays, and the activity log says so.
    let w = withdraw_on_delete(Some(&granted.status), DeletionPolicy::Orphan).expect("logged");
    assert!(!w.revoke);
    assert_eq!(
        (w.event.reason, w.event.action),
        (reasons::PERMISSION_ORPHANED, actions::ORPHAN)
    );
    let blocked = permission_decision(&facts(&spec, vec![]), t(0));
    let policy = DeletionPolicy::Withdraw;
    assert_eq!(withdraw_on_delete(Some(&blocked.status), policy), None);
    assert_eq!(withdraw_on_delete(None, policy), None);
}

#[test]
fn lost_prerequisite_after_the_grant_is_stalled_too() {
    let spec = perm(true);
    let plan = plan();
    let with_owner = vec![SubscriptionFact {
        name: "plan",
        spec: &plan,
        has_owner: true,
        observed: Observed::Off,
    }];
    let granted = permission_decision(&facts(&spec, with_owner), t(0));
    assert!(find(&granted.status.conditions, types::STALLED).is_none());
    let without_owner = vec![SubscriptionFact {
        name: "plan",
        spec: &plan,
        has_owner: false,
        observed: Observed::Off,
    }];
    let lost = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            ..facts(&spec, without_owner)
        },
        t(10),
    );
    assert_eq!(lost.status.state, PermissionState::Enabled);
    assert_eq!(
        cond(&lost, types::STALLED),
        ("True", reasons::OWNER_ROLE_MISSING)
    );
}

#[test]
fn a_failed_grant_change_shows_reconciling_until_it_is_made() {
    let spec = perm(true);
    let plan = plan();
    let subs = || {
        vec![SubscriptionFact {
            name: "plan",
            spec: &plan,
            has_owner: true,
            observed: Observed::Off,
        }]
    };
    let disabled = permission_decision(&facts(&perm(false), subs()), t(0));
    let current = PermissionFacts {
        current: Some(&disabled.status),
        ..facts(&spec, subs())
    };
    let decision = permission_decision(&current, t(5));
    assert_eq!(decision.grant, GrantChange::Create);
    let pending = grant_pending(&current, &decision, "503 Service Unavailable", t(5))
        .expect("a pending status to write");
    // The state stays what the backend has; Reconciling says what is in flight and why.
    assert_eq!(pending.state, PermissionState::Disabled);
    let reconciling = find(&pending.conditions, types::RECONCILING).expect("Reconciling");
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("True", reasons::GRANT_PENDING)
    );
    assert!(reconciling.message.contains("switching the permission on"));
    assert!(reconciling.message.contains("503 Service Unavailable"));
    // Retried with the same error: nothing new to write.
    let retry = PermissionFacts {
        current: Some(&pending),
        ..facts(&spec, subs())
    };
    let again = permission_decision(&retry, t(9));
    assert_eq!(
        again.grant,
        GrantChange::Create,
        "the change is still to be made"
    );
    assert_eq!(
        grant_pending(&retry, &again, "503 Service Unavailable", t(9)),
        None
    );
    // Once made, the decided status clears Reconciling and records the grant.
    assert_eq!(again.status.state, PermissionState::Enabled);
    assert!(find(&again.status.conditions, types::RECONCILING).is_none());
    assert_eq!(
        again.events.len(),
        1,
        "the activity log records the switch once"
    );
    // No grant change, nothing pending.
    let settled = PermissionFacts {
        current: Some(&again.status),
        ..facts(&spec, subs())
    };
    let quiet = permission_decision(&settled, t(20));
    assert_eq!(grant_pending(&settled, &quiet, "irrelevant", t(20)), None);
}

fn owner_on_plan(plan: &AzureSubscriptionSpec) -> Vec<SubscriptionFact<'_>> {
    vec![SubscriptionFact {
        name: "plan",
        spec: plan,
        has_owner: true,
        observed: Observed::Off,
    }]
}

#[test]
fn a_grant_records_what_it_covers_where_it_lives_and_its_id() {
    let (spec, plan) = (perm(true), plan());
    let pc = BackendFact {
        kind: GrantBackend::PartnerCenter,
        not_ready: None,
    };
    let d = permission_decision(
        &PermissionFacts {
            backend: pc,
            ..facts(&spec, owner_on_plan(&plan))
        },
        t(0),
    );
    assert_eq!(d.grant, GrantChange::Create);
    assert_eq!(
        d.status.granted_resources,
        vec![PurchaseResource::AzureReservations]
    );
    assert_eq!(d.status.backend, Some(GrantBackend::PartnerCenter));
    let made = GrantMade {
        policy_id: Some("p_c".into()),
        adopted: false,
    };
    let d = with_grant_made(d, &made);
    assert_eq!(d.status.policy_id.as_deref(), Some("p_c"));
    assert_eq!(d.events[0].reason, reasons::PERMISSION_ENABLED);
    // An existing policy taken over is logged as adopted, not as a new grant.
    let adopted = with_grant_made(
        permission_decision(&facts(&spec, owner_on_plan(&plan)), t(0)),
        &GrantMade {
            adopted: true,
            ..made
        },
    );
    assert_eq!(
        (adopted.events[0].reason, adopted.events[0].action),
        (reasons::PERMISSION_ADOPTED, actions::ADOPT)
    );
    // The next decision keeps the record and changes nothing.
    let again = permission_decision(
        &PermissionFacts {
            current: Some(&d.status),
            backend: pc,
            ..facts(&spec, owner_on_plan(&plan))
        },
        t(10),
    );
    assert_eq!(again.grant, GrantChange::None);
    assert!(!again.status_changed, "{:?}", again.status);
    assert_eq!(again.status.policy_id.as_deref(), Some("p_c"));
}

#[test]
fn changing_the_resources_of_a_grant_updates_it() {
    let plan = plan();
    let spec = perm(true);
    let granted = permission_decision(&facts(&spec, owner_on_plan(&plan)), t(0));
    let both = PurchasePermissionSpec {
        resources: vec![
            PurchaseResource::AzureSavingsPlan,
            PurchaseResource::AzureReservations,
        ],
        ..perm(true)
    };
    let d = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            ..facts(&both, owner_on_plan(&plan))
        },
        t(10),
    );
    assert_eq!(d.grant, GrantChange::Update);
    assert_eq!(
        (d.events[0].reason, d.events[0].action),
        (reasons::PERMISSION_UPDATED, actions::UPDATE)
    );
    assert_eq!(d.status.granted_resources.len(), 2);
    assert_eq!(d.status.enabled_since, granted.status.enabled_since);
    // The same set in another order is no change.
    let reordered = PurchasePermissionSpec {
        resources: vec![
            PurchaseResource::AzureReservations,
            PurchaseResource::AzureSavingsPlan,
        ],
        ..perm(true)
    };
    let d2 = permission_decision(
        &PermissionFacts {
            current: Some(&d.status),
            ..facts(&reordered, owner_on_plan(&plan))
        },
        t(20),
    );
    assert_eq!(d2.grant, GrantChange::None);
}

#[test]
fn without_a_ready_connection_no_grant_changes_and_ready_says_why() {
    let plan = plan();
    let (on, off) = (perm(true), perm(false));
    let down = BackendFact {
        kind: GrantBackend::PartnerCenter,
        not_ready: Some("no PartnerCenterConnection in namespace \"partner-a\""),
    };
    // Enabling waits: Blocked, ConnectionNotReady, one warning.
    let d = permission_decision(
        &PermissionFacts {
            backend: down,
            ..facts(&on, owner_on_plan(&plan))
        },
        t(0),
    );
    assert_eq!(d.grant, GrantChange::None);
    assert_eq!(d.status.state, PermissionState::Blocked);
    assert_eq!(ready(&d), ("False", reasons::CONNECTION_NOT_READY));
    assert!(
        find(&d.status.conditions, types::READY)
            .is_some_and(|c| c.message.contains("no PartnerCenterConnection")),
        "{:?}",
        d.status.conditions
    );
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].type_, EventType::Warning);
    // A grant in effect stays Enabled when switching off must wait.
    let granted = permission_decision(&facts(&on, owner_on_plan(&plan)), t(0));
    let d = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            backend: down,
            ..facts(&off, owner_on_plan(&plan))
        },
        t(10),
    );
    assert_eq!(d.grant, GrantChange::None);
    assert_eq!(d.status.state, PermissionState::Enabled);
    assert_eq!(ready(&d), ("False", reasons::CONNECTION_NOT_READY));
    // A decision that changes no grant does not need the connection.
    let d = permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            backend: down,
            ..facts(&on, owner_on_plan(&plan))
        },
        t(10),
    );
    assert_eq!(ready(&d), ("True", reasons::PERMISSION_ENABLED));
}

#[test]
fn drift_corrections_are_logged_as_warnings_with_the_switch_direction() {
    let on = drift_corrected(true);
    let off = drift_corrected(false);
    assert_eq!(
        (on.type_, on.reason, on.action),
        (
            EventType::Warning,
            reasons::DRIFT_CORRECTED,
            actions::CREATE
        )
    );
    assert_eq!(off.action, actions::DELETE);
}
