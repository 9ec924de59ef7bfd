//! What Partner Center and Azure report about the customers, subscriptions and Owner roles the
//! objects declare, cached per customer and per subscription for the connection's
//! `resyncInterval` (jittered), so a reconcile that changes nothing makes no call.

use super::connections::Connections;
use crate::api::conditions::reasons;
use crate::api::{
    BillingType, ObservedAssignment, ObservedCustomer, ObservedSubscription, Offer,
    SubscriptionState,
};
use crate::partnercenter::{
    AzureEntitlement, Customer, NewRoleAssignment, PartnerCenter, PartnerCenterError,
    RoleAssignment, Subscription, role_assignment_name, same_role,
};
use crate::policy::Observed;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One of the customer's Partner Center subscriptions, with its Azure entitlements (an Azure
/// plan's Azure subscriptions).
#[derive(Clone, Debug)]
struct PartnerSubscription {
    subscription: Subscription,
    entitlements: Vec<AzureEntitlement>,
}

/// Observations, per namespace's connection.
#[derive(Clone, Default)]
pub struct Observations {
    connections: Connections,
    customers: Memo<String, Arc<HashMap<String, Customer>>>,
    subscriptions: Memo<(String, String), Arc<Vec<PartnerSubscription>>>,
    roles: Memo<(String, String), Arc<Vec<RoleAssignment>>>,
}

impl Observations {
    pub fn new(connections: Connections) -> Self {
        Observations {
            connections,
            ..Observations::default()
        }
    }

    /// The client to observe with: `Err(Off)` when the namespace does not observe, `Err(Unknown)`
    /// while its connection is not usable.
    fn client<T>(&self, ns: &str) -> Result<(PartnerCenter, Duration), Observed<T>> {
        let Some(ttl) = self.connections.observing(ns) else {
            return Err(Observed::Off);
        };
        match self.connections.client(ns) {
            Ok(client) => Ok((client, ttl)),
            Err(_) => Err(Observed::Unknown),
        }
    }

    /// Whether objects in `ns` are checked against Partner Center and Azure.
    pub fn observes(&self, ns: &str) -> bool {
        self.connections.observing(ns).is_some()
    }

    /// The customer as Partner Center lists it (one paged list of all customers per interval).
    pub async fn customer(&self, ns: &str, tenant: &str) -> Observed<ObservedCustomer> {
        let (pc, ttl) = match self.client(ns) {
            Ok(c) => c,
            Err(off_or_unknown) => return off_or_unknown,
        };
        let listed = self
            .customers
            .get(ns.to_string(), ttl, || async {
                let all = pc.customers().await?;
                Ok(Arc::new(
                    all.into_iter().map(|c| (c.id.to_lowercase(), c)).collect(),
                ))
            })
            .await;
        match listed {
            Ok(all) => match all.get(&tenant.to_lowercase()) {
                Some(c) => Observed::Seen(ObservedCustomer {
                    company_name: c.company_profile.company_name.clone(),
                    domain: Some(c.company_profile.domain.clone()).filter(|d| !d.is_empty()),
                    observed_at: Time(Timestamp::now()),
                }),
                None => Observed::NotFound,
            },
            Err(e) => unknown(ns, "customers", reasons::PARTNER_CENTER_ERROR, &e),
        }
    }

    /// An Azure subscription of the customer as Partner Center reports it: an Azure plan's
    /// entitlement, or a subscription of its own (legacy Azure, or another offer).
    pub async fn subscription(
        &self,
        ns: &str,
        customer_tenant: &str,
        subscription_id: &str,
    ) -> Observed<ObservedSubscription> {
        let (pc, ttl) = match self.client(ns) {
            Ok(c) => c,
            Err(off_or_unknown) => return off_or_unknown,
        };
        let key = (ns.to_string(), customer_tenant.to_lowercase());
        let fetched = self
            .subscriptions
            .get(key, ttl, || partner_subscriptions(&pc, customer_tenant))
            .await;
        match fetched {
            Ok(all) => match reported(&all, subscription_id) {
                Some(o) => Observed::Seen(o),
                None => Observed::NotFound,
            },
            Err(e) => unknown(ns, "subscriptions", reasons::PARTNER_CENTER_ERROR, &e),
        }
    }

    /// Whether Azure Resource Manager lists the role for the principal at the subscription's
    /// scope (at or above it: `$filter=atScope()`), compared by the role definition's GUID.
    pub async fn role_assignment(
        &self,
        ns: &str,
        customer_tenant: &str,
        subscription_id: &str,
        principal_id: &str,
        role_guid: &str,
    ) -> Observed<ObservedAssignment> {
        let (pc, ttl) = match self.client(ns) {
            Ok(c) => c,
            Err(off_or_unknown) => return off_or_unknown,
        };
        let key = (ns.to_string(), subscription_id.to_lowercase());
        let listed = self
            .roles
            .get(key, ttl, || async {
                Ok(Arc::new(
                    pc.role_assignments_at(customer_tenant, subscription_id)
                        .await?,
                ))
            })
            .await;
        match listed {
            Ok(all) => all
                .iter()
                .find(|a| {
                    a.properties.principal_id.eq_ignore_ascii_case(principal_id)
                        && same_role(&a.properties.role_definition_id, role_guid)
                })
                .map(|a| {
                    Observed::Seen(ObservedAssignment {
                        assignment_id: a.id.clone(),
                        observed_at: Time(Timestamp::now()),
                    })
                })
                .unwrap_or(Observed::NotFound),
            Err(e) => unknown(ns, "role assignments", reasons::AZURE_ERROR, &e),
        }
    }

    /// Makes sure Azure has the role assignment (the article's step 2, done for the partner):
    /// listed first, created only when missing, under a name derived from scope, principal and
    /// role (so a retry lands on the same assignment, never a 409 in the customer's activity log).
    pub async fn assign(
        &self,
        want: &WantedAssignment<'_>,
    ) -> Result<Observed<ObservedAssignment>, String> {
        let seen = self
            .role_assignment(
                want.ns,
                want.tenant,
                want.subscription_id,
                want.principal_id,
                want.role_guid,
            )
            .await;
        if !matches!(seen, Observed::NotFound) {
            return Ok(seen);
        }
        let (pc, _) = self
            .client::<()>(want.ns)
            .map_err(|_| "no Ready PartnerCenterConnection".to_string())?;
        let scope = format!("/subscriptions/{}", want.subscription_id);
        let name = role_assignment_name(&scope, want.principal_id, want.role_guid);
        let assignment = NewRoleAssignment {
            role_definition_id: format!(
                "{scope}/providers/Microsoft.Authorization/roleDefinitions/{}",
                want.role_guid
            ),
            principal_id: want.principal_id.to_string(),
            principal_type: want.principal_type.to_string(),
        };
        let made = pc
            .put_role_assignment(want.tenant, want.subscription_id, &name, &assignment)
            .await
            .map_err(|e| format!("{}: {e}", e.reason()))?;
        self.forget_subscription_roles(want.ns, want.subscription_id);
        Ok(Observed::Seen(ObservedAssignment {
            assignment_id: made.id,
            observed_at: Time(Timestamp::now()),
        }))
    }

    /// Removes the role assignment from Azure (the one at the subscription's own scope for this
    /// principal and role; inherited ones are not the object's to remove). Gone already is fine.
    pub async fn unassign(&self, want: &WantedAssignment<'_>) -> Result<(), String> {
        let (pc, _) = self
            .client::<()>(want.ns)
            .map_err(|_| "no Ready PartnerCenterConnection".to_string())?;
        let listed = pc
            .role_assignments_at(want.tenant, want.subscription_id)
            .await
            .map_err(|e| format!("{}: {e}", e.reason()))?;
        let scope = format!("/subscriptions/{}", want.subscription_id);
        for a in listed.iter().filter(|a| {
            a.properties
                .principal_id
                .eq_ignore_ascii_case(want.principal_id)
                && same_role(&a.properties.role_definition_id, want.role_guid)
                && a.properties
                    .scope
                    .trim_end_matches('/')
                    .eq_ignore_ascii_case(&scope)
        }) {
            pc.delete_role_assignment(want.tenant, want.subscription_id, &a.name)
                .await
                .map_err(|e| format!("{}: {e}", e.reason()))?;
        }
        self.forget_subscription_roles(want.ns, want.subscription_id);
        Ok(())
    }

    /// The namespace's customer list is asked for again (a `refresh` annotation on a Customer).
    pub fn forget_customers(&self, ns: &str) {
        self.customers.forget(&ns.to_string());
    }

    /// Partner Center changed the customer's subscriptions (the activity log says so): ask again.
    pub fn forget_customer(&self, ns: &str, customer_tenant: &str) {
        self.subscriptions
            .forget(&(ns.to_string(), customer_tenant.to_lowercase()));
    }

    /// Everything observed in a namespace is asked again (the refresh annotation, a new connection).
    pub fn forget_subscription_roles(&self, ns: &str, subscription_id: &str) {
        self.roles
            .forget(&(ns.to_string(), subscription_id.to_lowercase()));
    }

    /// How soon the objects of `ns` should be looked at again (jittered), when it observes.
    pub fn recheck_after(&self, ns: &str) -> Option<Duration> {
        self.connections.observing(ns).map(jittered)
    }
}

/// A role assignment the operator manages in Azure.
pub struct WantedAssignment<'a> {
    pub ns: &'a str,
    pub tenant: &'a str,
    pub subscription_id: &'a str,
    pub principal_id: &'a str,
    /// `User`, `Group` or `ServicePrincipal`.
    pub principal_type: &'a str,
    pub role_guid: &'a str,
}

/// The customer's Partner Center subscriptions, each Azure plan with its entitlements.
async fn partner_subscriptions(
    pc: &PartnerCenter,
    customer_tenant: &str,
) -> Result<Arc<Vec<PartnerSubscription>>, PartnerCenterError> {
    let mut out = Vec::new();
    for subscription in pc.subscriptions(customer_tenant).await? {
        let entitlements = if subscription.is_azure_plan() {
            pc.azure_entitlements(customer_tenant, &subscription.id)
                .await?
        } else {
            Vec::new()
        };
        out.push(PartnerSubscription {
            subscription,
            entitlements,
        });
    }
    Ok(Arc::new(out))
}

/// What Partner Center reports for one Azure subscription id.
fn reported(all: &[PartnerSubscription], subscription_id: &str) -> Option<ObservedSubscription> {
    let observed_at = Time(Timestamp::now());
    for p in all {
        let s = &p.subscription;
        if let Some(e) = p
            .entitlements
            .iter()
            .find(|e| e.id.eq_ignore_ascii_case(subscription_id))
        {
            // A plan that is not active holds its Azure subscriptions in its own state.
            let plan = state_of(&s.status);
            let state = match plan {
                SubscriptionState::Active => state_of(&e.status),
                other => other,
            };
            return Some(ObservedSubscription {
                offer: Offer::AzurePlan,
                billing_type: BillingType::Usage,
                state,
                observed_at,
            });
        }
        if s.id.eq_ignore_ascii_case(subscription_id) {
            let offer = if s.is_azure_plan() {
                Offer::AzurePlan
            } else if s.offer_id.to_uppercase().starts_with("MS-AZR-") {
                Offer::AzureGlobal
            } else {
                Offer::Other
            };
            let billing_type = if s.billing_type.eq_ignore_ascii_case("usage") {
                BillingType::Usage
            } else {
                BillingType::License
            };
            return Some(ObservedSubscription {
                offer,
                billing_type,
                state: state_of(&s.status),
                observed_at,
            });
        }
    }
    None
}

/// Partner Center's subscription status (`active`, `suspended`, ...; any casing; unknown values
/// read as Disabled, as the SDK reads them as undefined).
fn state_of(status: &str) -> SubscriptionState {
    match status.to_ascii_lowercase().as_str() {
        "active" => SubscriptionState::Active,
        "pending" => SubscriptionState::Pending,
        "suspended" => SubscriptionState::Suspended,
        "expired" => SubscriptionState::Expired,
        "deleted" => SubscriptionState::Deleted,
        _ => SubscriptionState::Disabled,
    }
}

/// A failed read: the observation stays as it was (`Unknown`), unless the service refused the
/// connection's user (401/403): then the object says so (`InSync` False, and it does not count).
fn unknown<T>(ns: &str, what: &str, reason: &'static str, e: &PartnerCenterError) -> Observed<T> {
    tracing::warn!(namespace = ns, error = %e, "could not read {what} from Partner Center / Azure");
    let refused = matches!(
        e.reason(),
        "CredentialsInvalid" | "MfaRequired" | "AdminAgentRequired" | "Forbidden"
    );
    if refused {
        Observed::Refused(reason, format!("reading {what} was refused: {e}"))
    } else {
        Observed::Unknown
    }
}

/// `period` give or take a tenth, so 10k customers do not all refresh in the same minute.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(rand::random_range(0.9..1.1))
}

/// One key's value and until when it holds; its lock makes concurrent askers share one fetch.
type Slot<V> = Arc<tokio::sync::Mutex<Option<(V, Instant)>>>;

/// Values fetched once per key until they go stale; concurrent askers of one key share one fetch.
struct Memo<K, V> {
    entries: Arc<Mutex<HashMap<K, Slot<V>>>>,
}

impl<K, V> Clone for Memo<K, V> {
    fn clone(&self) -> Self {
        Memo {
            entries: self.entries.clone(),
        }
    }
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    async fn get<F, Fut>(&self, key: K, ttl: Duration, fetch: F) -> Result<V, PartnerCenterError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, PartnerCenterError>>,
    {
        let slot = match self.entries.lock() {
            Ok(mut m) => m.entry(key).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let mut entry = slot.lock().await;
        if let Some((value, fresh_until)) = entry.as_ref()
            && *fresh_until > Instant::now()
        {
            return Ok(value.clone());
        }
        let value = fetch().await?;
        *entry = Some((value.clone(), Instant::now() + jittered(ttl)));
        Ok(value)
    }

    fn forget(&self, key: &K) {
        if let Ok(mut m) = self.entries.lock() {
            m.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(status: &str, entitlements: &[(&str, &str)]) -> PartnerSubscription {
        PartnerSubscription {
            subscription: Subscription {
                id: "plan".into(),
                offer_id: "DZH318Z0BPS6:0001".into(),
                status: status.into(),
                billing_type: "usage".into(),
                ..Subscription::default()
            },
            entitlements: entitlements
                .iter()
                .map(|(id, status)| AzureEntitlement {
                    id: id.to_string(),
                    status: status.to_string(),
                    ..AzureEntitlement::default()
                })
                .collect(),
        }
    }

    #[test]
    fn an_azure_plans_subscriptions_are_its_entitlements_in_the_plans_state() {
        let all = [plan("active", &[("AZ-1", "active"), ("az-2", "suspended")])];
        let a = reported(&all, "az-1").expect("found by entitlement id, any casing");
        assert_eq!(
            (a.offer, a.billing_type, a.state),
            (
                Offer::AzurePlan,
                BillingType::Usage,
                SubscriptionState::Active
            )
        );
        assert_eq!(
            reported(&all, "az-2").map(|o| o.state),
            Some(SubscriptionState::Suspended)
        );
        let suspended = [plan("suspended", &[("az-1", "active")])];
        assert_eq!(
            reported(&suspended, "az-1").map(|o| o.state),
            Some(SubscriptionState::Suspended)
        );
        assert_eq!(
            reported(&all, "plan").map(|o| o.offer),
            Some(Offer::AzurePlan)
        );
        assert!(reported(&all, "elsewhere").is_none());
    }

    #[test]
    fn legacy_and_license_subscriptions_are_reported_as_their_own() {
        let legacy = PartnerSubscription {
            subscription: Subscription {
                id: "legacy".into(),
                offer_id: "MS-AZR-0145P".into(),
                status: "active".into(),
                billing_type: "usage".into(),
                ..Subscription::default()
            },
            entitlements: Vec::new(),
        };
        let license = PartnerSubscription {
            subscription: Subscription {
                id: "m365".into(),
                offer_id: "CFQ7TTC0LH18:0001".into(),
                status: "weird".into(),
                billing_type: "license".into(),
                ..Subscription::default()
            },
            entitlements: Vec::new(),
        };
        let all = [legacy, license];
        assert_eq!(
            reported(&all, "legacy").map(|o| o.offer),
            Some(Offer::AzureGlobal)
        );
        let m = reported(&all, "m365").expect("found");
        assert_eq!(
            (m.offer, m.billing_type, m.state),
            (
                Offer::Other,
                BillingType::License,
                SubscriptionState::Disabled
            )
        );
    }
}
