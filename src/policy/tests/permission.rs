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
        rivals: Vec::new(),
        enabled_by: None,
        tenant_recorded_by_operator: false,
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

/// Partner Center as where grants live, ready.
const PARTNER_CENTER: BackendFact<'static> = BackendFact {
    kind: GrantBackend::PartnerCenter,
    not_ready: None,
};

fn owned_plan(plan: &AzureSubscriptionSpec) -> Vec<SubscriptionFact<'_>> {
    vec![SubscriptionFact {
        name: "plan",
        spec: plan,
        has_owner: true,
        observed: Observed::Off,
    }]
}

/// Granted while it was the only one; then an older rival `older` shows up, as `rival` says.
fn demoted(spec: &PurchasePermissionSpec, rival: RivalFact<'_>) -> PermissionDecision {
    let plan = plan();
    let on = perm(true);
    let granted = permission_decision(&facts(&on, owned_plan(&plan)), t(0));
    permission_decision(
        &PermissionFacts {
            current: Some(&granted.status),
            claimants: crate::policy::testing::lost_to("older"),
            rivals: vec![rival],
            ..facts(spec, owned_plan(&plan))
        },
        t(10),
    )
}

#[test]
fn a_demoted_holder_keeps_the_grant_until_the_older_rival_takes_it_over() {
    let spec = perm(true);
    let wants = RivalFact {
        name: "older",
        holds_grant: false,
        wants_grant: true,
    };
    let d = demoted(&spec, wants);
    assert_eq!(
        d.status.state,
        PermissionState::Enabled,
        "it still holds it"
    );
    assert_eq!(ready(&d), ("False", reasons::DUPLICATE_PERMISSION));
    assert_eq!(d.grant, GrantChange::None);
    assert_eq!(d.status.history.len(), 1, "no transition yet");

    // The older one took it over: let go, no backend call, and the log says to whom.
    let holds = RivalFact {
        holds_grant: true,
        ..wants
    };
    let d = demoted(&spec, holds);
    assert_eq!(d.status.state, PermissionState::Blocked);
    assert_eq!(d.grant, GrantChange::None, "the grant stays in effect");
    assert_eq!(d.status.granted_tenant_id, None);
    let last = d.status.history.last().expect("a transition");
    assert_eq!(
        (last.sequence, last.from, last.to, last.reason.as_str()),
        (
            2,
            PermissionState::Enabled,
            PermissionState::Blocked,
            reasons::PERMISSION_HANDED_OVER
        )
    );
    assert_eq!(last.peer.as_deref(), Some("older"));
    let e = &d.events[0];
    assert_eq!(
        (e.reason, e.action, e.transition),
        (reasons::PERMISSION_HANDED_OVER, actions::HAND_OVER, Some(2))
    );
    assert!(e.note.contains("\"older\"") && e.note.contains("stays in effect"));
}

#[test]
fn a_demoted_holder_withdraws_the_grant_the_older_rival_does_not_ask_for() {
    // The GitOps case: two created in the same second, the one granted first loses the tie.
    for rival in [
        RivalFact {
            name: "older",
            holds_grant: false,
            wants_grant: false,
        },
        RivalFact::default(),
    ] {
        let d = demoted(&perm(true), rival);
        assert_eq!(d.status.state, PermissionState::Blocked);
        assert_eq!(d.grant, GrantChange::Delete, "{rival:?}");
        let last = d.status.history.last().expect("a transition");
        assert_eq!(last.reason, reasons::PERMISSION_DISABLED);
        assert_eq!(d.events[0].reason, reasons::PERMISSION_DISABLED);
        assert_eq!(d.events[0].transition, Some(2));
    }
    // A demoted holder switched off withdraws too (it was never withdrawn before).
    let d = demoted(&perm(false), RivalFact::default());
    assert_eq!(
        (d.status.state, d.grant),
        (PermissionState::Disabled, GrantChange::Delete)
    );
}

#[test]
fn the_oldest_takes_over_a_grant_a_younger_rival_made() {
    let spec = perm(true);
    let plan = plan();
    let d = permission_decision(
        &PermissionFacts {
            rivals: vec![RivalFact {
                name: "younger",
                holds_grant: true,
                wants_grant: true,
            }],
            enabled_by: Some("argocd-controller"),
            ..facts(&spec, owned_plan(&plan))
        },
        t(0),
    );
    assert_eq!(d.grant, GrantChange::Create, "made sure of in the backend");
    let last = d.status.history.last().expect("a transition");
    assert_eq!(last.reason, reasons::PERMISSION_TAKEN_OVER);
    assert_eq!(last.peer.as_deref(), Some("younger"));
    assert_eq!(last.by.as_deref(), Some("argocd-controller"));
    assert!(d.events[0].note.contains("\"younger\""));
    assert!(d.events[0].note.contains("argocd-controller"));
}

#[test]
fn a_never_granted_duplicate_holds_nothing_and_withdraws_nothing() {
    let spec = perm(true);
    let plan = plan();
    let d = permission_decision(
        &PermissionFacts {
            claimants: crate::policy::testing::lost_to("older"),
            ..facts(&spec, owned_plan(&plan))
        },
        t(0),
    );
    assert_eq!(
        (d.status.state, d.grant),
        (PermissionState::Blocked, GrantChange::None)
    );
    assert!(d.status.history.is_empty());
    assert!(d.events.iter().all(|e| e.transition.is_none()));
}

#[test]
fn each_grant_transition_adds_one_history_entry_the_last_ten_kept() {
    let plan = plan();
    let (on, off) = (perm(true), perm(false));
    let mut status: Option<PurchasePermissionStatus> = None;
    for i in 0..13 {
        let spec = if i % 2 == 0 { &on } else { &off };
        let d = permission_decision(
            &PermissionFacts {
                current: status.as_ref(),
                enabled_by: Some("kubectl-patch"),
                ..facts(spec, owned_plan(&plan))
            },
            t(i),
        );
        let transitions: Vec<_> = d.events.iter().filter_map(|e| e.transition).collect();
        assert_eq!(transitions, vec![i + 1], "one Event per transition");
        // The same facts again (a retry, a second replica): no new transition.
        let again = permission_decision(
            &PermissionFacts {
                current: Some(&d.status),
                enabled_by: Some("kubectl-patch"),
                ..facts(spec, owned_plan(&plan))
            },
            t(i + 100),
        );
        assert!(!again.status_changed && again.events.is_empty());
        status = Some(d.status);
    }
    let history = status.expect("status").history;
    assert_eq!(history.len(), crate::api::HISTORY_LIMIT);
    assert_eq!(history.first().map(|h| h.sequence), Some(4));
    let last = history.last().expect("an entry");
    assert_eq!(
        (last.sequence, last.from, last.to),
        (13, PermissionState::Disabled, PermissionState::Enabled)
    );
    assert_eq!(last.time, Time(t(12)));
    assert_eq!(last.by.as_deref(), Some("kubectl-patch"));
}

#[test]
fn a_transition_event_is_rebuilt_alike_from_its_history_entry() {
    let plan = plan();
    let d = permission_decision(&facts(&perm(true), owned_plan(&plan)), t(0));
    let entry = d.status.history.last().expect("an entry");
    assert_eq!(
        crate::policy::transition_event(entry, &d.status, false),
        d.events[0],
        "a restart recovering a lost Event records the same one"
    );
}

#[test]
fn a_stale_cache_and_a_fresh_read_decide_differently() {
    // The cache still shows enabled: true; the fresh read shows it was switched off since.
    let plan = plan();
    let stale = permission_decision(&facts(&perm(true), owned_plan(&plan)), t(0));
    assert_eq!(stale.grant, GrantChange::Create);
    let fresh = permission_decision(&facts(&perm(false), owned_plan(&plan)), t(0));
    assert_eq!(fresh.grant, GrantChange::None, "nothing is granted");
    assert!(fresh.status.history.is_empty());
}

#[test]
fn deleting_an_enabled_permission_withdraws_it() {
    let spec = perm(true);
    let plan = plan();
    let granted = permission_decision(&facts(&spec, owned_plan(&plan)), t(0));
    let deletion = |policy, rival_holder| DeletionFacts {
        current: Some(&granted.status),
        policy,
        rival_holder,
        enabled_by: Some("kubectl-client-side-apply"),
    };
    let w = withdraw_on_delete(deletion(DeletionPolicy::Withdraw, None), t(5)).expect("withdrawal");
    assert!(w.revoke);
    assert_eq!(
        (w.event.type_, w.event.reason, w.event.action),
        (
            EventType::Normal,
            reasons::PERMISSION_DISABLED,
            actions::DELETE
        )
    );
    assert!(w.event.note.contains("deleted"));
    // The status says so while another finalizer holds the object.
    assert_eq!(w.status.state, PermissionState::Disabled);
    assert_eq!(w.status.granted_tenant_id, None);
    assert_eq!(
        find(&w.status.conditions, types::READY).map(|c| c.reason.as_str()),
        Some(reasons::PERMISSION_DISABLED)
    );
    let entry = w.status.history.last().expect("an entry");
    assert_eq!((entry.sequence, entry.time.clone()), (2, Time(t(5))));
    assert_eq!(w.event.transition, Some(2));
    // A retry reads that status: nothing more to withdraw, nothing more to log.
    let again = DeletionFacts {
        current: Some(&w.status),
        ..deletion(DeletionPolicy::Withdraw, None)
    };
    assert_eq!(withdraw_on_delete(again, t(6)), None);

    // Orphan: the object goes, the grant stays, and the activity log says so.
    let w = withdraw_on_delete(deletion(DeletionPolicy::Orphan, None), t(5)).expect("logged");
    assert!(!w.revoke);
    assert_eq!(
        (w.event.reason, w.event.action),
        (reasons::PERMISSION_ORPHANED, actions::ORPHAN)
    );
    // A rival holds the customer's grant too: it is not withdrawn from under it.
    let w = withdraw_on_delete(deletion(DeletionPolicy::Withdraw, Some("other")), t(5))
        .expect("handed over");
    assert!(!w.revoke);
    assert_eq!(w.event.reason, reasons::PERMISSION_HANDED_OVER);

    let blocked = permission_decision(&facts(&spec, vec![]), t(0));
    let none = DeletionFacts {
        current: Some(&blocked.status),
        ..deletion(DeletionPolicy::Withdraw, None)
    };
    assert_eq!(withdraw_on_delete(none, t(0)), None);
    let none = DeletionFacts {
        current: None,
        ..none
    };
    assert_eq!(withdraw_on_delete(none, t(0)), None);
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

#[test]
fn a_grant_put_on_record_before_partner_center_is_adopted_or_withdrawn_after_a_crash() {
    let plan = plan();
    let owned = || owned_plan(&plan);
    let on = perm(true);
    let enabling = PermissionFacts {
        backend: PARTNER_CENTER,
        ..facts(&on, owned())
    };
    let d = permission_decision(&enabling, t(5));
    // Before Partner Center is asked: the tenant on record, the state not yet Enabled.
    let intent = grant_intent(&enabling, &d, t(5)).expect("an intent for a Partner Center create");
    assert_eq!(intent.granted_tenant_id.as_deref(), Some(TENANT));
    assert_ne!(intent.state, PermissionState::Enabled);
    let cluster = facts(&on, owned());
    assert_eq!(
        grant_intent(&cluster, &permission_decision(&cluster, t(5)), t(5)),
        None
    );
    assert_eq!(
        grant_in_doubt(Some(&intent), Some(TENANT), false),
        Some(TENANT)
    );
    assert_eq!(
        grant_in_doubt(Some(&intent), Some("someone-else"), true),
        None
    );
    // The Customer gone: trusted only as the operator's own record.
    assert_eq!(grant_in_doubt(Some(&intent), None, false), None);
    assert_eq!(grant_in_doubt(Some(&intent), None, true), Some(TENANT));

    // The process died there. Still enabled: created again (a 409 is adopted).
    let again = PermissionFacts {
        current: Some(&intent),
        ..enabling
    };
    assert_eq!(permission_decision(&again, t(6)).grant, GrantChange::Create);

    // Switched off meanwhile: withdrawn, with no transition logged (none was recorded).
    let off = perm(false);
    let switched_off = PermissionFacts {
        current: Some(&intent),
        backend: PARTNER_CENTER,
        ..facts(&off, owned())
    };
    let d = permission_decision(&switched_off, t(6));
    assert_eq!(d.grant, GrantChange::Delete);
    assert_eq!(d.status.granted_tenant_id, None);
    assert!(
        d.events.iter().all(|e| e.transition.is_none()),
        "{:?}",
        d.events
    );
    assert_eq!(d.status.history, intent.history);

    // Without a ready connection the withdrawal waits, and the doubt stays on record.
    let waiting = PermissionFacts {
        backend: BackendFact {
            not_ready: Some("CredentialsInvalid"),
            ..PARTNER_CENTER
        },
        ..switched_off
    };
    let d = permission_decision(&waiting, t(6));
    assert_eq!(d.grant, GrantChange::None);
    assert_eq!(d.status.granted_tenant_id.as_deref(), Some(TENANT));
}

#[test]
fn a_grant_in_doubt_is_withdrawn_without_its_customer_and_kept_for_a_rival() {
    let plan = plan();
    let owned = || owned_plan(&plan);
    let on = perm(true);
    let enabling = PermissionFacts {
        backend: PARTNER_CENTER,
        ..facts(&on, owned())
    };
    let intent = grant_intent(&enabling, &permission_decision(&enabling, t(5)), t(5))
        .expect("an intent for a Partner Center create");

    // The Customer deleted while the grant was in doubt: withdrawn if the operator wrote the
    // tenant, left alone if someone else did.
    let orphaned = PermissionFacts {
        current: Some(&intent),
        customer_tenant: None,
        tenant_recorded_by_operator: true,
        ..enabling.clone()
    };
    assert_eq!(
        permission_decision(&orphaned, t(6)).grant,
        GrantChange::Delete
    );
    let forged = PermissionFacts {
        tenant_recorded_by_operator: false,
        ..orphaned.clone()
    };
    assert_eq!(permission_decision(&forged, t(6)).grant, GrantChange::None);

    // Switched off while a rival holds the customer's grant: that grant is the rival's.
    let off = perm(false);
    let held_by_rival = PermissionFacts {
        current: Some(&intent),
        rivals: vec![RivalFact {
            name: "rival",
            holds_grant: true,
            wants_grant: true,
        }],
        backend: PARTNER_CENTER,
        ..facts(&off, owned())
    };
    assert_eq!(
        permission_decision(&held_by_rival, t(6)).grant,
        GrantChange::None
    );
    let alone = PermissionFacts {
        rivals: Vec::new(),
        ..held_by_rival
    };
    assert_eq!(permission_decision(&alone, t(6)).grant, GrantChange::Delete);
}
