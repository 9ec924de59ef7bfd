//! The oracle of a chaos run: what must hold once the operations stopped and the operator went
//! quiet. (1) every permission's status is the pure `policy` verdict recomputed from the final
//! objects, and with the simulator a SelfServePolicy exists exactly for the Enabled ones, with
//! their resources; (2) nothing is written and nothing is called after quiet; (3) one
//! activity-log Event per grant transition that happened; (4) nothing stuck Terminating, no
//! policy created twice for one transition, no invalid object accepted.

use super::AnyError;
use super::runner::{Env, Replicas, activity};
use crate::api::{
    AzureSubscription, Customer, DeletionPolicy, GrantBackend, ObservedSubscription,
    PartnerCenterConnection, PermissionState, PurchasePermission, PurchasePermissionStatus, Role,
    RoleAssignment,
};
use crate::backend::BackendChoice;
use crate::controller::{reported_subscription, rival_permission};
use crate::policy::{self, Claimants, GrantChange, Observed, Seniority};
use kube::api::{Api, ListParams};
use kube::{Resource, ResourceExt};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One thing the oracle found wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which check: `status`, `grant`, `idle`, `events`, `terminating`, `creates`, `invalid`,
    /// `quiet`.
    pub check: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(check: &'static str, detail: impl Into<String>) -> Violation {
        Violation {
            check,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.check, self.detail)
    }
}

/// What happened to one permission (by uid) as the store saw it, write by write.
#[derive(Clone, Debug, Default)]
struct Transitions {
    namespace: String,
    name: String,
    /// The namespace's deletion count when the permission was first seen (a deleted namespace
    /// takes its Events along, so they are not counted against it).
    epoch: u32,
    state: PermissionState,
    /// Transitions into Enabled, and the tenant each was granted to.
    enables: u32,
    tenants: Vec<String>,
    /// Transitions out of Enabled, a withdrawing deletion included.
    disables: u32,
    /// The tenant of each grant put in doubt (`grantedTenantId` recorded while not Enabled: the
    /// intent written before Partner Center is asked to create), and the one in doubt now.
    doubts: Vec<String>,
    in_doubt: Option<String>,
}

/// The run's ground truth, recorded from the store's own change feed (no HTTP, so no injected
/// fault hides a write from it).
#[derive(Debug, Default)]
pub struct History {
    permissions: HashMap<String, Transitions>,
    epochs: HashMap<String, u32>,
    /// The feed fell behind and changes were missed: the Event count cannot be checked.
    lagged: bool,
    /// Invalid objects the API server accepted.
    pub accepted_invalid: Vec<String>,
}

impl History {
    /// Grant transitions seen so far, both ways.
    pub fn transitions(&self) -> usize {
        let each = self.permissions.values().map(|t| t.enables + t.disables);
        each.sum::<u32>() as usize
    }

    pub fn namespace_deleted(&mut self, namespace: &str) {
        *self.epochs.entry(namespace.to_string()).or_default() += 1;
    }

    fn observe(&mut self, type_: &str, v: &Value) {
        let Ok(p) = serde_json::from_value::<PurchasePermission>(v.clone()) else {
            return;
        };
        let ns = p.namespace().unwrap_or_default();
        let epoch = self.epochs.get(&ns).copied().unwrap_or(0);
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let t = self.permissions.entry(uid).or_insert_with(|| Transitions {
            namespace: ns.clone(),
            name: p.name_any(),
            epoch,
            ..Default::default()
        });
        let state = p.status.as_ref().map(|s| s.state).unwrap_or_default();
        let was = t.state == PermissionState::Enabled;
        if type_ == "DELETED" {
            // Deleting an Enabled permission withdraws the grant and logs it (unless orphaned).
            if was && p.spec.deletion_policy != DeletionPolicy::Orphan {
                t.disables += 1;
            }
            t.state = PermissionState::Disabled;
            return;
        }
        let is = state == PermissionState::Enabled;
        let doubt = p
            .status
            .as_ref()
            .filter(|_| !is)
            .and_then(|s| s.granted_tenant_id.clone());
        if let Some(tenant) = doubt.as_ref().filter(|d| t.in_doubt.as_ref() != Some(*d)) {
            t.doubts.push(tenant.clone());
        }
        t.in_doubt = doubt;
        if !was && is {
            t.enables += 1;
            let tenant = p.status.as_ref().and_then(|s| s.granted_tenant_id.clone());
            t.tenants.push(tenant.unwrap_or_default());
        } else if was && !is {
            t.disables += 1;
        }
        t.state = state;
    }
}

/// Records every permission change into `history` until aborted.
pub fn record(
    server: &crate::apiserver::ApiServer,
    history: Arc<Mutex<History>>,
) -> tokio::task::JoinHandle<()> {
    let mut changes = server.stored_changes(super::objects::GROUP, "purchasepermissions");
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            let mut h = history.lock().unwrap_or_else(|p| p.into_inner());
            match change {
                Some((type_, v)) => h.observe(type_, &v),
                None => h.lagged = true,
            }
        }
    })
}

/// The final objects, every namespace.
struct Snapshot {
    customers: Vec<Customer>,
    subscriptions: Vec<AzureSubscription>,
    roles: Vec<RoleAssignment>,
    permissions: Vec<PurchasePermission>,
    connections: Vec<PartnerCenterConnection>,
}

impl Snapshot {
    async fn read(client: &kube::Client) -> Result<Snapshot, kube::Error> {
        let lp = ListParams::default();
        Ok(Snapshot {
            customers: Api::all(client.clone()).list(&lp).await?.items,
            subscriptions: Api::all(client.clone()).list(&lp).await?.items,
            roles: Api::all(client.clone()).list(&lp).await?.items,
            permissions: Api::all(client.clone()).list(&lp).await?.items,
            connections: Api::all(client.clone()).list(&lp).await?.items,
        })
    }

    /// Owner roles on a subscription that count (not reported missing by Azure).
    fn owners_on(&self, ns: &str, subscription: &str) -> usize {
        self.roles
            .iter()
            .filter(|r| in_ns(*r, ns) && r.spec.subscription_ref.name == subscription)
            .filter(|r| r.spec.role == Role::Owner)
            .filter(|r| {
                !r.status
                    .as_ref()
                    .is_some_and(|s| policy::out_of_sync(&s.conditions))
            })
            .count()
    }

    /// Whether the namespace checks subscriptions against Partner Center.
    fn observes(&self, ns: &str, backend: BackendChoice) -> bool {
        backend == BackendChoice::PartnerCenter
            && self
                .connections
                .iter()
                .any(|c| in_ns(c, ns) && c.spec.observe)
    }
}

fn in_ns<K: Resource>(obj: &K, ns: &str) -> bool {
    obj.meta().namespace.as_deref() == Some(ns)
}

fn seniority<K: Resource>(o: &K) -> Seniority<'_> {
    Seniority::new(
        o.meta().creation_timestamp.as_ref().map(|t| t.0),
        o.meta().name.as_deref().unwrap_or(""),
    )
}

/// The decision the permission reconciler would make now, from the final objects.
fn verdict(
    snap: &Snapshot,
    p: &PurchasePermission,
    backend: BackendChoice,
) -> policy::PermissionDecision {
    let ns = p.namespace().unwrap_or_default();
    let customer_name = &p.spec.customer_ref.name;
    let observes = snap.observes(&ns, backend);
    let subscriptions = snap
        .subscriptions
        .iter()
        .filter(|s| in_ns(*s, &ns) && &s.spec.customer_ref.name == customer_name)
        .map(|s| {
            let name = s.metadata.name.as_deref().unwrap_or("");
            policy::SubscriptionFact {
                name,
                spec: &s.spec,
                has_owner: snap.owners_on(&ns, name) > 0,
                observed: reported_subscription(s, observes),
            }
        })
        .collect();
    let customer = snap
        .customers
        .iter()
        .find(|c| in_ns(*c, &ns) && &c.name_any() == customer_name);
    let claimants: Vec<&PurchasePermission> = snap
        .permissions
        .iter()
        .filter(|o| in_ns(*o, &ns) && &o.spec.customer_ref.name == customer_name)
        .collect();
    let facts = policy::PermissionFacts {
        spec: &p.spec,
        generation: p.metadata.generation,
        current: p.status.as_ref(),
        customer_tenant: customer.map(|c| c.spec.tenant_id.as_str()),
        subscriptions,
        claimants: Claimants {
            me: seniority(p),
            all: claimants.iter().map(|o| seniority(*o)).collect(),
        },
        rivals: claimants
            .iter()
            .filter(|o| o.metadata.name != p.metadata.name)
            .map(|o| rival_permission(o))
            .collect(),
        enabled_by: None,
        tenant_recorded_by_operator: crate::controller::tenant_recorded_by_operator(p),
        backend: policy::BackendFact {
            kind: match backend {
                BackendChoice::Cluster => GrantBackend::Cluster,
                BackendChoice::PartnerCenter => GrantBackend::PartnerCenter,
            },
            not_ready: None,
        },
    };
    policy::permission_decision(&facts, k8s_openapi::jiff::Timestamp::now())
}

/// What of a status the oracle compares (messages and times aside).
fn essentials(s: &PurchasePermissionStatus) -> String {
    format!(
        "state={:?} generation={:?} eligible={:?} conditions={:?}",
        s.state,
        s.observed_generation,
        s.eligible_subscriptions,
        conditions_of(&s.conditions)
    )
}

/// Oracle 1 on the permissions: each status is the policy's verdict and no grant change is due.
fn check_statuses(snap: &Snapshot, backend: BackendChoice) -> Vec<Violation> {
    let mut out = Vec::new();
    for p in snap.permissions.iter().filter(|p| !terminating(*p)) {
        let d = verdict(snap, p, backend);
        let id = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
        if d.grant != GrantChange::None {
            out.push(Violation::new(
                "grant",
                format!("{id}: the policy still asks for {:?} of the grant", d.grant),
            ));
        }
        let current = p.status.as_ref().map(essentials).unwrap_or_default();
        let wanted = essentials(&d.status);
        if current != wanted {
            out.push(Violation::new(
                "status",
                format!("{id}: status {current} but the policy says {wanted}"),
            ));
        }
    }
    out
}

/// Oracle 1 on the customers and subscriptions: each status is the policy's (conditions,
/// counts, eligibility; messages, times and observations aside).
fn check_summaries(snap: &Snapshot, backend: BackendChoice) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut differs = |kind: &str, obj: &dyn ResourceNamed, current: String, wanted: String| {
        if current != wanted {
            out.push(Violation::new(
                "status",
                format!(
                    "{kind} {}/{}: status {current} but the policy says {wanted}",
                    obj.ns(),
                    obj.name()
                ),
            ));
        }
    };
    for c in snap.customers.iter().filter(|c| !terminating(*c)) {
        let wanted = customer_verdict(snap, c, backend);
        let current = c
            .status
            .as_ref()
            .map(customer_essentials)
            .unwrap_or_default();
        differs("Customer", c, current, customer_essentials(&wanted));
    }
    for s in snap.subscriptions.iter().filter(|s| !terminating(*s)) {
        let wanted = subscription_verdict(snap, s, backend);
        let current = s.status.as_ref().map(subscription_essentials);
        let current = current.unwrap_or_default();
        differs(
            "AzureSubscription",
            s,
            current,
            subscription_essentials(&wanted),
        );
    }
    out
}

/// Names an object in a violation.
trait ResourceNamed {
    fn ns(&self) -> String;
    fn name(&self) -> String;
}

impl<K: Resource> ResourceNamed for K {
    fn ns(&self) -> String {
        self.meta().namespace.clone().unwrap_or_default()
    }
    fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }
}

fn conditions_of(conditions: &[crate::api::Condition]) -> BTreeSet<String> {
    conditions
        .iter()
        .map(|c| format!("{}={}/{}", c.type_, c.status, c.reason))
        .collect()
}

fn customer_essentials(s: &crate::api::CustomerStatus) -> String {
    format!(
        "generation={:?} subscriptions={} eligible={} permission={:?} conditions={:?}",
        s.observed_generation,
        s.subscriptions,
        s.eligible_subscriptions,
        s.purchase_permission,
        conditions_of(&s.conditions)
    )
}

fn subscription_essentials(s: &crate::api::AzureSubscriptionStatus) -> String {
    format!(
        "generation={:?} eligible={} owners={} conditions={:?}",
        s.observed_generation,
        s.eligible,
        s.owners,
        conditions_of(&s.conditions)
    )
}

/// A subscription's observation as its status records it (what the reconcilers read).
fn subscription_observed(s: &AzureSubscription, observes: bool) -> Observed<ObservedSubscription> {
    match reported_subscription(s, observes) {
        Observed::Seen(o) => Observed::Seen(o.clone()),
        Observed::Off => Observed::Off,
        Observed::NotFound => Observed::NotFound,
        Observed::Refused(r, m) => Observed::Refused(r, m),
        Observed::Unknown => Observed::Unknown,
    }
}

fn customer_verdict(
    snap: &Snapshot,
    c: &Customer,
    backend: BackendChoice,
) -> crate::api::CustomerStatus {
    let ns = c.ns();
    let name = c.name_any();
    let observes = snap.observes(&ns, backend);
    let subscriptions: Vec<&AzureSubscription> = snap
        .subscriptions
        .iter()
        .filter(|s| in_ns(*s, &ns) && s.spec.customer_ref.name == name)
        .collect();
    let eligible = subscriptions
        .iter()
        .filter(|s| {
            let reported = reported_subscription(s, observes);
            policy::observed_eligibility(&s.spec, true, &reported).is_ok()
        })
        .count() as i32;
    let granted = snap.permissions.iter().any(|p| {
        in_ns(p, &ns)
            && p.spec.customer_ref.name == name
            && p.status
                .as_ref()
                .is_some_and(|s| s.state == PermissionState::Enabled)
    });
    let observed = match c.status.as_ref().and_then(|s| s.observed.clone()) {
        _ if !observes => Observed::Off,
        Some(o) => Observed::Seen(o),
        None => Observed::Unknown,
    };
    let facts = policy::CustomerFacts {
        spec: &c.spec,
        generation: c.metadata.generation,
        current: c.status.as_ref(),
        claimants: Claimants {
            me: seniority(c),
            all: snap
                .customers
                .iter()
                .filter(|o| in_ns(*o, &ns) && o.spec.tenant_id == c.spec.tenant_id)
                .map(seniority)
                .collect(),
        },
        subscriptions: subscriptions.len() as i32,
        eligible_subscriptions: eligible,
        permission_granted: granted,
        observed,
    };
    policy::customer_status(&facts, k8s_openapi::jiff::Timestamp::now())
}

fn subscription_verdict(
    snap: &Snapshot,
    s: &AzureSubscription,
    backend: BackendChoice,
) -> crate::api::AzureSubscriptionStatus {
    let ns = s.ns();
    let name = s.name_any();
    let customer_exists = snap
        .customers
        .iter()
        .any(|c| in_ns(c, &ns) && c.name_any() == s.spec.customer_ref.name);
    let facts = policy::SubscriptionFacts {
        spec: &s.spec,
        generation: s.metadata.generation,
        current: s.status.as_ref(),
        customer_exists,
        claimants: Claimants {
            me: seniority(s),
            all: snap
                .subscriptions
                .iter()
                .filter(|o| in_ns(*o, &ns) && o.spec.subscription_id == s.spec.subscription_id)
                .map(seniority)
                .collect(),
        },
        owners: snap.owners_on(&ns, &name) as i32,
        // Without its customer the reconciler does not ask Partner Center: the status stands.
        observed: match (snap.observes(&ns, backend), customer_exists) {
            (true, false) => Observed::Unknown,
            (observes, _) => subscription_observed(s, observes),
        },
    };
    policy::subscription_status(&facts, k8s_openapi::jiff::Timestamp::now())
}

fn terminating<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

/// Whether the final objects already satisfy oracle 1 (cheap enough to ask while waiting).
pub async fn converged(env: &Env) -> bool {
    match Snapshot::read(&env.client).await {
        Ok(snap) => {
            check_statuses(&snap, env.backend).is_empty()
                && check_summaries(&snap, env.backend).is_empty()
        }
        Err(_) => false,
    }
}

/// Oracle 2: nothing written (Lease renewals aside) and nothing called during `window`.
pub async fn idle(
    env: &Env,
    replicas: &mut Replicas,
    window: Duration,
) -> Result<Vec<Violation>, AnyError> {
    let before = (
        env.server.stats(),
        env.simulator.as_ref().map(|s| s.stats()),
    );
    let quiet = activity(env);
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        replicas.tend().await?;
    }
    let after = (
        env.server.stats(),
        env.simulator.as_ref().map(|s| s.stats()),
    );
    let now = activity(env);
    let mut out = Vec::new();
    if now.0 != quiet.0 {
        let grown = grown(&before.0.writes_by_resource, &after.0.writes_by_resource);
        out.push(Violation::new(
            "idle",
            format!("API writes after quiet: {grown:?}"),
        ));
    }
    if let (true, Some(b), Some(a)) = (now.1 != quiet.1, &before.1, &after.1) {
        let b: HashMap<String, u64> = b.requests.clone().into_iter().collect();
        let a: HashMap<String, u64> = a.requests.clone().into_iter().collect();
        out.push(Violation::new(
            "idle",
            format!(
                "Partner Center / Azure calls after quiet: {:?}",
                grown(&b, &a)
            ),
        ));
    }
    Ok(out)
}

/// The counters that grew between two snapshots, by how much (Lease renewals left out).
fn grown(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(k, _)| k.as_str() != "leases")
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0).min(*n)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Oracles 1, 3 and 4 on the final state.
pub async fn check(env: &Env, history: &Mutex<History>) -> Result<Vec<Violation>, AnyError> {
    let snap = Snapshot::read(&env.client).await?;
    let mut out = check_statuses(&snap, env.backend);
    out.extend(check_summaries(&snap, env.backend));
    if let Some(sim) = &env.simulator {
        out.extend(check_policies(&snap, &sim.self_serve_policies()));
    }
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::all(env.client.clone());
    let events = events.list(&ListParams::default()).await?.items;
    let creates = env
        .simulator
        .as_ref()
        .map(|s| s.stats().self_serve_policy_creates)
        .unwrap_or_default();
    out.extend(check_terminating(env, &snap).await?);
    let history = history.lock().unwrap_or_else(|p| p.into_inner());
    out.extend(check_events(&history, &events));
    out.extend(check_creates(&history, &creates));
    for invalid in &history.accepted_invalid {
        out.push(Violation::new(
            "invalid",
            format!("the API server accepted {invalid}"),
        ));
    }
    Ok(out)
}

/// With the simulator: a SelfServePolicy exists exactly for the Enabled permissions, covering
/// the resources they granted.
fn check_policies(snap: &Snapshot, policies: &[Value]) -> Vec<Violation> {
    let mut wanted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut out = Vec::new();
    // A permission stuck Terminating is reported as such; its grant may be half withdrawn.
    let mut withdrawing = BTreeSet::new();
    for p in &snap.permissions {
        let Some(s) = p
            .status
            .as_ref()
            .filter(|s| s.state == PermissionState::Enabled)
        else {
            continue;
        };
        let tenant = s.granted_tenant_id.clone().unwrap_or_default();
        if terminating(p) {
            withdrawing.insert(tenant.to_ascii_lowercase());
            continue;
        }
        let resources = if s.granted_resources.is_empty() {
            &p.spec.resources
        } else {
            &s.granted_resources
        };
        let names = resources
            .iter()
            .map(|r| r.partner_center_name().to_ascii_lowercase())
            .collect();
        if wanted.insert(tenant.clone(), names).is_some() {
            out.push(Violation::new(
                "grant",
                format!("two permissions claim the grant of tenant {tenant}"),
            ));
        }
    }
    let held: BTreeMap<String, BTreeSet<String>> = policies
        .iter()
        .map(|p| {
            let tenant = p["selfServeEntity"]["tenantID"]
                .as_str()
                .unwrap_or_default();
            let resources = p["permissions"].as_array().into_iter().flatten();
            let names = resources
                .filter_map(|r| r["resource"].as_str())
                .map(str::to_ascii_lowercase)
                .collect();
            (tenant.to_ascii_lowercase(), names)
        })
        .collect();
    for (tenant, names) in &wanted {
        match held.get(&tenant.to_ascii_lowercase()) {
            None => out.push(Violation::new(
                "grant",
                format!("tenant {tenant}: Enabled in the cluster, no SelfServePolicy (grant lost)"),
            )),
            Some(h) if h != names => out.push(Violation::new(
                "grant",
                format!("tenant {tenant}: policy covers {h:?}, the permission granted {names:?}"),
            )),
            Some(_) => {}
        }
    }
    let wanted_tenants: BTreeSet<String> = wanted.keys().map(|t| t.to_ascii_lowercase()).collect();
    let unrecorded = held
        .keys()
        .filter(|t| !wanted_tenants.contains(*t) && !withdrawing.contains(*t));
    for tenant in unrecorded {
        out.push(Violation::new(
            "grant",
            format!(
                "tenant {tenant}: a SelfServePolicy no Enabled permission records (grant leaked)"
            ),
        ));
    }
    out
}

/// Oracle 3: per permission, one PermissionEnabled (or PermissionAdopted) Event per transition
/// into Enabled and one PermissionDisabled per transition out of it.
fn check_events(
    history: &History,
    events: &[k8s_openapi::api::events::v1::Event],
) -> Vec<Violation> {
    if history.lagged {
        return vec![Violation::new(
            "events",
            "the change feed fell behind; transitions unknown (run fewer operations)",
        )];
    }
    let mut counts: HashMap<(&str, &str), u32> = HashMap::new();
    for e in events {
        let uid = e.regarding.as_ref().and_then(|r| r.uid.as_deref());
        if let (Some(uid), Some(reason)) = (uid, e.reason.as_deref()) {
            *counts.entry((uid, reason)).or_default() += 1;
        }
    }
    let count = |uid: &str, reason: &str| counts.get(&(uid, reason)).copied().unwrap_or(0);
    let mut out = Vec::new();
    for (uid, t) in &history.permissions {
        if history.epochs.get(&t.namespace).copied().unwrap_or(0) != t.epoch {
            continue;
        }
        let enabled = count(uid, "PermissionEnabled") + count(uid, "PermissionAdopted");
        let disabled = count(uid, "PermissionDisabled");
        for (what, happened, logged) in [
            ("into Enabled", t.enables, enabled),
            ("out of Enabled", t.disables, disabled),
        ] {
            if happened != logged {
                let verdict = if logged < happened { "lost" } else { "doubled" };
                out.push(Violation::new(
                    "events",
                    format!(
                        "{}/{} (uid {uid}): {happened} transitions {what}, {logged} Events ({verdict})",
                        t.namespace, t.name
                    ),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.detail.cmp(&b.detail));
    out
}

/// Oracle 4: no more SelfServePolicy creates for a tenant than grants meant for it: each create
/// is preceded by its intent on the status, and ends in a transition into Enabled or, when the
/// permission was switched off meanwhile, in a withdrawal; so the larger of the two counts.
fn check_creates(history: &History, creates: &BTreeMap<String, u64>) -> Vec<Violation> {
    let count = |tenants: &mut dyn Iterator<Item = &String>| {
        let mut n: HashMap<String, u64> = HashMap::new();
        for tenant in tenants {
            *n.entry(tenant.to_ascii_lowercase()).or_default() += 1;
        }
        n
    };
    let into_enabled = count(&mut history.permissions.values().flat_map(|t| &t.tenants));
    let intents = count(&mut history.permissions.values().flat_map(|t| &t.doubts));
    let mut enables = into_enabled;
    for (tenant, n) in intents {
        let e = enables.entry(tenant).or_default();
        *e = (*e).max(n);
    }
    creates
        .iter()
        .filter_map(|(id, n)| {
            let tenant = id
                .rsplit('_')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let transitions = enables.get(&tenant).copied().unwrap_or(0);
            (*n > transitions).then(|| {
                Violation::new(
                    "creates",
                    format!(
                        "policy {id}: created {n} times for {transitions} grants (transitions into Enabled, or intents)"
                    ),
                )
            })
        })
        .collect()
}

/// Oracle 4: nothing of ours, and no namespace, stuck Terminating.
async fn check_terminating(env: &Env, snap: &Snapshot) -> Result<Vec<Violation>, AnyError> {
    let mut out = Vec::new();
    let stuck = |kind: &str, ns: Option<&str>, name: &str| {
        Violation::new(
            "terminating",
            format!("{kind} {}/{name} stuck Terminating", ns.unwrap_or("")),
        )
    };
    let of = |m: &kube::api::ObjectMeta| {
        (m.deletion_timestamp.is_some()).then(|| (m.namespace.clone(), m.name.clone()))
    };
    let metas = snap
        .customers
        .iter()
        .map(|o| ("Customer", of(&o.metadata)))
        .chain(
            snap.subscriptions
                .iter()
                .map(|o| ("AzureSubscription", of(&o.metadata))),
        )
        .chain(
            snap.roles
                .iter()
                .map(|o| ("RoleAssignment", of(&o.metadata))),
        )
        .chain(
            snap.permissions
                .iter()
                .map(|o| ("PurchasePermission", of(&o.metadata))),
        );
    for (kind, (ns, name)) in metas.filter_map(|(k, m)| m.map(|m| (k, m))) {
        out.push(stuck(kind, ns.as_deref(), name.as_deref().unwrap_or("")));
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    for ns in namespaces.list(&ListParams::default()).await?.items {
        if terminating(&ns) {
            out.push(stuck("Namespace", None, &ns.name_any()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn permission(uid: &str, state: Option<&str>) -> Value {
        let mut v = json!({"apiVersion": "csp.operator.dev/v1alpha1", "kind": "PurchasePermission",
            "metadata": {"name": "p0", "namespace": "chaos-0", "uid": uid},
            "spec": {"customerRef": {"name": "c0"}, "enabled": true}});
        if let Some(s) = state {
            v["status"] = json!({"state": s, "grantedTenantId": "t0"});
        }
        v
    }

    #[test]
    fn transitions_are_counted_once_per_change_of_state() {
        let mut h = History::default();
        h.observe("ADDED", &permission("u", None));
        h.observe("MODIFIED", &permission("u", Some("Blocked")));
        h.observe("MODIFIED", &permission("u", Some("Enabled")));
        h.observe("MODIFIED", &permission("u", Some("Enabled")));
        h.observe("MODIFIED", &permission("u", Some("Disabled")));
        h.observe("MODIFIED", &permission("u", Some("Enabled")));
        h.observe("DELETED", &permission("u", Some("Enabled")));
        let t = &h.permissions["u"];
        assert_eq!((t.enables, t.disables), (2, 2));
        assert_eq!(t.tenants, ["t0", "t0"]);

        // A missing Event and a doubled one are both found.
        let event = |reason: &str| -> k8s_openapi::api::events::v1::Event {
            serde_json::from_value(json!({"metadata": {"name": "e"}, "eventTime": null,
                "reason": reason, "regarding": {"uid": "u"}}))
            .expect("an event")
        };
        let events = [event("PermissionEnabled"), event("PermissionDisabled")];
        let found = check_events(&h, &events);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|v| v.detail.contains("lost")));
        let events: Vec<_> = ["PermissionEnabled", "PermissionAdopted"]
            .into_iter()
            .chain(["PermissionDisabled"; 3])
            .map(event)
            .collect();
        let found = check_events(&h, &events);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("doubled"));

        // Two creates for two transitions are fine; a third is a create made twice.
        let mut creates = BTreeMap::from([("partner_t0".to_string(), 2)]);
        assert!(check_creates(&h, &creates).is_empty());
        creates.insert("partner_t0".into(), 3);
        assert_eq!(check_creates(&h, &creates).len(), 1);
    }

    #[test]
    fn a_create_put_in_doubt_and_withdrawn_counts_as_meant() {
        let mut h = History::default();
        let status = |v: &mut Value, tenant: Option<&str>| {
            v["status"] = json!({"state": "Disabled", "grantedTenantId": tenant});
        };
        let mut p = permission("u", None);
        h.observe("ADDED", &p);
        // The intent (a create about to be sent), then the withdrawal that clears it.
        status(&mut p, Some("t1"));
        h.observe("MODIFIED", &p);
        h.observe("MODIFIED", &p);
        status(&mut p, None);
        h.observe("MODIFIED", &p);
        let mut creates = BTreeMap::from([("partner_t1".to_string(), 1)]);
        assert!(check_creates(&h, &creates).is_empty());
        creates.insert("partner_t1".into(), 2);
        assert_eq!(
            check_creates(&h, &creates).len(),
            1,
            "one intent, two creates"
        );
    }

    #[test]
    fn a_deleted_namespace_takes_its_events_out_of_the_count() {
        let mut h = History::default();
        h.observe("MODIFIED", &permission("u", Some("Enabled")));
        assert_eq!(check_events(&h, &[]).len(), 1);
        h.namespace_deleted("chaos-0");
        assert!(check_events(&h, &[]).is_empty());
    }
}
