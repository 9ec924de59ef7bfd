//! `csp-operator import`: reads a partner's customers, subscriptions, Owner roles and purchase
//! switches from Partner Center and Azure, and writes them as our objects, ready for a GitOps repo.
//!
//! Applying the output changes nothing in Partner Center: each PurchasePermission is `enabled`
//! exactly when a SelfServePolicy exists now (with its resources), and RoleAssignments are
//! observed, never managed. Where a faithful object cannot be written (a policy with only unknown
//! resources, a principal type we do not model, an id that is not a GUID), none is: a YAML comment
//! says what was left out, so the operator leaves that thing alone.
//!
//! Decisions: license-based and other offers are included (offer Other) so the partner sees why
//! they are not eligible; role assignments are read only on eligible Azure subscriptions (Owner
//! elsewhere does not count); a Partner Center error stops the import (a missing policy read as
//! "no policy" would withdraw a grant), an Azure Resource Manager error on one subscription only
//! leaves its role assignments out, with a comment.

mod connection;

pub use connection::from_connection;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use futures::{StreamExt, TryStreamExt};
use kube::api::ObjectMeta;
use serde::Serialize;

use crate::api::{
    self, AzureSubscription, AzureSubscriptionSpec, BillingType, Customer, CustomerSpec,
    DeletionPolicy, LocalRef, Offer, Principal, PrincipalType, PurchasePermission,
    PurchasePermissionSpec, PurchaseResource, Role, RoleAssignment, RoleAssignmentSpec,
    SubscriptionState,
};
use crate::partnercenter::{
    self as pc, AZURE_RESERVED_INSTANCES, AZURE_SAVINGS_PLAN, OWNER_ROLE, PartnerCenter,
    PartnerCenterError, role_definition_guid,
};

/// Customers read at once (each reads its subscriptions, entitlements, policy and roles in turn);
/// the client's budget keeps the rate under Partner Center's limit.
const CUSTOMERS_AT_ONCE: usize = 8;
/// The longest DNS-1123 label, the limit of a Customer's name.
pub const MAX_NAME: usize = 63;
/// The longest object name (a DNS-1123 subdomain): AzureSubscription and RoleAssignment names.
const MAX_OBJECT_NAME: usize = 253;
/// The offer id prefix of legacy Azure (MS-AZR-0145P and its kin).
const LEGACY_AZURE_PREFIX: &str = "MS-AZR-";

/// Why the import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{what} failed: {source}")]
    PartnerCenter {
        what: String,
        #[source]
        source: PartnerCenterError,
    },
    #[error("cannot write the YAML: {0}")]
    Yaml(#[from] serde_saphyr::ser::Error),
}

impl ImportError {
    fn reading(what: impl Into<String>) -> impl FnOnce(PartnerCenterError) -> ImportError {
        let what = what.into();
        move |source| ImportError::PartnerCenter { what, source }
    }
}

/// One object of the output.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Object {
    Customer(Customer),
    AzureSubscription(AzureSubscription),
    RoleAssignment(RoleAssignment),
    PurchasePermission(PurchasePermission),
}

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Customer(_) => "Customer",
            Object::AzureSubscription(_) => "AzureSubscription",
            Object::RoleAssignment(_) => "RoleAssignment",
            Object::PurchasePermission(_) => "PurchasePermission",
        }
    }

    pub fn name(&self) -> &str {
        let meta = match self {
            Object::Customer(o) => &o.metadata,
            Object::AzureSubscription(o) => &o.metadata,
            Object::RoleAssignment(o) => &o.metadata,
            Object::PurchasePermission(o) => &o.metadata,
        };
        meta.name.as_deref().unwrap_or_default()
    }

    /// The object as JSON (what `kubectl apply` sends).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// One YAML document: comment lines, then the object.
#[derive(Clone, Debug)]
pub struct Document {
    pub comments: Vec<String>,
    pub object: Object,
}

/// What one import read.
#[derive(Clone, Debug)]
pub struct Import {
    pub partner_tenant_id: String,
    pub namespace: String,
    /// The partner user the connection signs in as.
    pub signed_in_as: Option<String>,
    /// RFC 3339.
    pub read_at: String,
    /// Customer by name, then its subscriptions (each followed by its role assignments), then
    /// its purchase permission.
    pub documents: Vec<Document>,
    /// What was left out and why (also written as comments beside the objects).
    pub notes: Vec<String>,
}

impl Import {
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.documents.iter().map(|d| &d.object)
    }

    /// A multi-document YAML stream opening with a comment header.
    pub fn to_yaml(&self) -> Result<String, ImportError> {
        let mut out = self.header();
        for document in &self.documents {
            out.push_str("---\n");
            for comment in &document.comments {
                push_comment(&mut out, comment);
            }
            out.push_str(&serde_saphyr::to_string(&document.object)?);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        Ok(out)
    }

    fn header(&self) -> String {
        let count = |kind: &str| self.objects().filter(|o| o.kind() == kind).count();
        let enabled = self
            .objects()
            .filter(|o| matches!(o, Object::PurchasePermission(p) if p.spec.enabled))
            .count();
        let user = self
            .signed_in_as
            .as_deref()
            .map(|u| format!(" as {u}"))
            .unwrap_or_default();
        let mut lines = vec![
            format!(
                "Written by `csp-operator import`: read from Partner Center and Azure Resource Manager at {}",
                self.read_at
            ),
            format!(
                "for partner tenant {}{user}, into namespace {}.",
                self.partner_tenant_id, self.namespace
            ),
            format!(
                "{} customers, {} subscriptions, {} Owner role assignments, {} purchase permissions ({enabled} enabled).",
                count("Customer"),
                count("AzureSubscription"),
                count("RoleAssignment"),
                count("PurchasePermission")
            ),
            "Applying this changes nothing in Partner Center or Azure: each PurchasePermission is".into(),
            "`enabled` exactly when Partner Center has the customer's SelfServePolicy now, with its".into(),
            "resources; role assignments are observed (management Observe), never created or removed.".into(),
            "Only Owner role assignments are listed, and only on eligible Azure subscriptions: the".into(),
            "article requires Owner, other roles do not count for the purchase prerequisite.".into(),
            "License-based and other offers are listed as offer Other, so you see why they are not eligible.".into(),
        ];
        if !self.notes.is_empty() {
            lines.push(format!("Left out ({}):", self.notes.len()));
            lines.extend(self.notes.iter().map(|n| format!("- {n}")));
        }
        let mut out = String::new();
        for line in lines {
            push_comment(&mut out, &line);
        }
        out
    }
}

/// `# text` lines (a line break in the text starts another comment line).
fn push_comment(out: &mut String, text: &str) {
    for line in text.lines() {
        out.push_str("# ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Reads everything the partner has in Partner Center (and the Owner roles in Azure) as objects in
/// `namespace`. Read-only: only GETs (and sign-ins) are sent.
pub async fn import(pc: &PartnerCenter, namespace: &str) -> Result<Import, ImportError> {
    let signed_in = pc
        .sign_in()
        .await
        .map_err(ImportError::reading("signing in to Partner Center"))?;
    let read_at = k8s_openapi::jiff::Timestamp::now().to_string();
    let mut customers = pc
        .customers()
        .await
        .map_err(ImportError::reading("reading the customers"))?;
    customers.sort_by_key(|c| c.id.to_ascii_lowercase());
    let mut names = Names::default();
    let mut notes = Vec::new();
    let mut named = Vec::new();
    for customer in customers {
        let tenant_id = customer_tenant_id(&customer);
        if !is_guid(&tenant_id) {
            notes.push(format!(
                "customer {:?}: tenant id {tenant_id:?} is not a GUID",
                customer.company_profile.company_name
            ));
            continue;
        }
        let name = names.unique(&customer_base_name(&customer), &tenant_id);
        named.push((name, tenant_id, customer));
    }
    let reads = futures::stream::iter(
        named
            .into_iter()
            .map(|(name, tenant_id, customer)| read_customer(pc, name, tenant_id, customer)),
    )
    .buffered(CUSTOMERS_AT_ONCE)
    .try_collect::<Vec<_>>()
    .await?;
    let mut read: Vec<CustomerRead> = reads;
    read.sort_by(|a, b| a.name.cmp(&b.name));
    let mut subscription_names = Names::with_max(MAX_OBJECT_NAME);
    let mut role_names = Names::with_max(MAX_OBJECT_NAME);
    let mut documents = Vec::new();
    for customer in read {
        notes.extend(customer.notes.iter().cloned());
        documents.extend(customer.documents(namespace, &mut subscription_names, &mut role_names));
    }
    Ok(Import {
        partner_tenant_id: pc.partner_tenant_id().to_string(),
        namespace: namespace.to_string(),
        signed_in_as: signed_in.user,
        read_at,
        documents,
        notes,
    })
}

fn customer_tenant_id(customer: &pc::Customer) -> String {
    let profile = &customer.company_profile.tenant_id;
    let id = if customer.id.is_empty() {
        profile
    } else {
        &customer.id
    };
    id.to_ascii_lowercase()
}

/// What was read for one customer.
struct CustomerRead {
    name: String,
    tenant_id: String,
    company_name: String,
    domain: Option<String>,
    subscriptions: Vec<SubscriptionRead>,
    /// Resources of its SelfServePolicy; None when it has none.
    policy: Option<PolicyRead>,
    notes: Vec<String>,
}

struct SubscriptionRead {
    id: String,
    offer: Offer,
    billing_type: BillingType,
    state: SubscriptionState,
    /// Where it came from, for the comment above it.
    origin: String,
    /// Owner principals (id, type); None when the roles were not read (not eligible).
    owners: Vec<(String, PrincipalType)>,
    comments: Vec<String>,
}

impl SubscriptionRead {
    fn eligible(&self) -> bool {
        matches!(self.offer, Offer::AzurePlan | Offer::AzureGlobal)
            && self.billing_type == BillingType::Usage
            && self.state == SubscriptionState::Active
    }

    /// A word for the object name: what kind of subscription it is.
    fn kind_word(&self) -> &'static str {
        match (self.offer, self.billing_type) {
            (Offer::AzurePlan | Offer::AzureGlobal, _) => "azure",
            (Offer::Other, BillingType::License) => "license",
            (Offer::Other, BillingType::Usage) => "other",
        }
    }
}

struct PolicyRead {
    resources: Vec<PurchaseResource>,
    unknown: Vec<String>,
}

/// One customer as Partner Center and Azure have it: its subscriptions, their Owners, its policy.
async fn read_customer(
    pc: &PartnerCenter,
    name: String,
    tenant_id: String,
    customer: pc::Customer,
) -> Result<CustomerRead, ImportError> {
    let company_name = customer.company_profile.company_name.trim().to_string();
    let label = if company_name.is_empty() {
        tenant_id.clone()
    } else {
        company_name.clone()
    };
    let mut notes = Vec::new();
    let mut subscriptions = read_subscriptions(pc, &tenant_id, &label).await?;
    // One object per subscription id (AzureSubscription refuses duplicates); sorted for stable names.
    subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
    subscriptions.dedup_by(|a, b| a.id == b.id);
    subscriptions.retain(|s| {
        let ok = is_guid(&s.id);
        if !ok {
            notes.push(format!(
                "{label}: {} has id {:?}, not a GUID",
                s.origin, s.id
            ));
        }
        ok
    });
    for subscription in subscriptions.iter_mut().filter(|s| s.eligible()) {
        read_owners(pc, &tenant_id, &label, subscription, &mut notes).await;
    }
    let policy = read_policy(pc, &tenant_id, &label).await?;
    if let Some(policy) = &policy
        && policy.resources.is_empty()
    {
        notes.push(format!(
            "{label}: its SelfServePolicy allows only {:?}, which this operator does not know; no PurchasePermission, so the operator leaves it alone",
            policy.unknown
        ));
    }
    let domain = customer.company_profile.domain.trim().to_string();
    Ok(CustomerRead {
        name,
        tenant_id,
        company_name: if company_name.is_empty() {
            label
        } else {
            company_name
        },
        domain: (!domain.is_empty()).then_some(domain),
        subscriptions,
        policy,
        notes,
    })
}

/// The customer's subscriptions: an Azure plan's Azure subscriptions (its entitlements), and
/// every other subscription as its own.
async fn read_subscriptions(
    pc: &PartnerCenter,
    tenant_id: &str,
    label: &str,
) -> Result<Vec<SubscriptionRead>, ImportError> {
    let mut subscriptions = Vec::new();
    let pc_subscriptions = pc
        .subscriptions(tenant_id)
        .await
        .map_err(ImportError::reading(format!(
            "reading the subscriptions of {label}"
        )))?;
    for subscription in &pc_subscriptions {
        if !subscription.is_azure_plan() {
            subscriptions.push(own_subscription(subscription));
            continue;
        }
        let entitlements = pc
            .azure_entitlements(tenant_id, &subscription.id)
            .await
            .map_err(ImportError::reading(format!(
                "reading the Azure subscriptions of {label}'s Azure plan {}",
                subscription.id
            )))?;
        let plan_active = subscription.status.eq_ignore_ascii_case("active");
        for entitlement in entitlements {
            // A plan that is not active holds its Azure subscriptions in its own state.
            let status = if plan_active || subscription.status.is_empty() {
                &entitlement.status
            } else {
                &subscription.status
            };
            let friendly = entitlement.friendly_name.trim();
            subscriptions.push(SubscriptionRead {
                id: entitlement.id.to_ascii_lowercase(),
                offer: Offer::AzurePlan,
                billing_type: BillingType::Usage,
                state: state_of(status),
                origin: format!(
                    "Azure subscription {:?} of the Azure plan {}",
                    friendly, subscription.id
                ),
                owners: Vec::new(),
                comments: unknown_state(status),
            });
        }
    }
    Ok(subscriptions)
}

/// A subscription that is not an Azure plan: legacy Azure (AzureGlobal), or another offer.
fn own_subscription(subscription: &pc::Subscription) -> SubscriptionRead {
    let legacy = subscription.offer_id.len() >= LEGACY_AZURE_PREFIX.len()
        && subscription.offer_id[..LEGACY_AZURE_PREFIX.len()]
            .eq_ignore_ascii_case(LEGACY_AZURE_PREFIX);
    let billing_type = if subscription.billing_type.eq_ignore_ascii_case("usage") {
        BillingType::Usage
    } else {
        BillingType::License
    };
    let offer_name = if subscription.offer_name.is_empty() {
        &subscription.offer_id
    } else {
        &subscription.offer_name
    };
    SubscriptionRead {
        id: subscription.id.to_ascii_lowercase(),
        offer: if legacy {
            Offer::AzureGlobal
        } else {
            Offer::Other
        },
        billing_type,
        state: state_of(&subscription.status),
        origin: format!(
            "Partner Center subscription {:?} (offer {} {:?}, billing {})",
            subscription.friendly_name.trim(),
            subscription.offer_id,
            offer_name,
            if subscription.billing_type.is_empty() {
                "unknown"
            } else {
                &subscription.billing_type
            }
        ),
        owners: Vec::new(),
        comments: unknown_state(&subscription.status),
    }
}

/// The Owners Azure lists at an eligible subscription's scope (one that cannot be read is a note,
/// and the import goes on).
async fn read_owners(
    pc: &PartnerCenter,
    tenant_id: &str,
    label: &str,
    subscription: &mut SubscriptionRead,
    notes: &mut Vec<String>,
) {
    let assignments = match pc.role_assignments_at(tenant_id, &subscription.id).await {
        Ok(a) => a,
        Err(error) => {
            let note = format!(
                "{label}: the role assignments of Azure subscription {} could not be read, none listed: {error}",
                subscription.id
            );
            subscription.comments.push(note.clone());
            notes.push(note);
            return;
        }
    };
    let mut owners = BTreeMap::new();
    for assignment in assignments {
        let properties = assignment.properties;
        if !role_definition_guid(&properties.role_definition_id).eq_ignore_ascii_case(OWNER_ROLE) {
            continue;
        }
        let principal = properties.principal_id.to_ascii_lowercase();
        match principal_type(&properties.principal_type) {
            Some(kind) if is_guid(&principal) => {
                owners.insert(principal, kind);
            }
            _ => subscription.comments.push(format!(
                "Owner {principal} ({}) left out: not a principal of the customer this operator models (User, Group, ServicePrincipal)",
                if properties.principal_type.is_empty() {
                    "no type"
                } else {
                    &properties.principal_type
                }
            )),
        }
    }
    subscription.owners = owners.into_iter().collect();
}

/// The customer's SelfServePolicy, if any: what it lets the customer purchase.
async fn read_policy(
    pc: &PartnerCenter,
    tenant_id: &str,
    label: &str,
) -> Result<Option<PolicyRead>, ImportError> {
    let policies = pc
        .self_serve_policies(tenant_id)
        .await
        .map_err(ImportError::reading(format!(
            "reading the purchase permission (SelfServePolicy) of {label}"
        )))?;
    let policies: Vec<_> = policies
        .into_iter()
        .filter(|p| {
            p.self_serve_entity.tenant_id.is_empty()
                || p.self_serve_entity
                    .tenant_id
                    .eq_ignore_ascii_case(tenant_id)
        })
        .collect();
    if policies.is_empty() {
        return Ok(None);
    }
    let mut granted = Vec::new();
    let mut unknown = BTreeSet::new();
    for resource in policies.iter().flat_map(|p| p.resources()) {
        match purchase_resource(&resource) {
            Some(r) => granted.push(r),
            None => {
                unknown.insert(resource);
            }
        }
    }
    Ok(Some(PolicyRead {
        // Our order (reservations first), each once.
        resources: [
            PurchaseResource::AzureReservations,
            PurchaseResource::AzureSavingsPlan,
        ]
        .into_iter()
        .filter(|r| granted.contains(r))
        .collect(),
        unknown: unknown.into_iter().collect(),
    }))
}

impl CustomerRead {
    fn documents(
        &self,
        namespace: &str,
        subscription_names: &mut Names,
        role_names: &mut Names,
    ) -> Vec<Document> {
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        };
        let mut documents = vec![Document {
            comments: Vec::new(),
            object: Object::Customer(Customer {
                metadata: meta(&self.name),
                spec: CustomerSpec {
                    tenant_id: self.tenant_id.clone(),
                    company_name: truncate_chars(&self.company_name, 256),
                    domain: self.domain.clone(),
                },
                status: None,
            }),
        }];
        for subscription in &self.subscriptions {
            let base = format!(
                "{}-{}-{}",
                self.name,
                subscription.kind_word(),
                &subscription.id[..8]
            );
            let subscription_name = subscription_names.unique(&base, &subscription.id[28..]);
            let mut comments = vec![subscription.origin.clone()];
            comments.extend(subscription.comments.iter().cloned());
            documents.push(Document {
                comments,
                object: Object::AzureSubscription(AzureSubscription {
                    metadata: meta(&subscription_name),
                    spec: AzureSubscriptionSpec {
                        customer_ref: LocalRef::new(&self.name),
                        subscription_id: subscription.id.clone(),
                        offer: subscription.offer,
                        billing_type: subscription.billing_type,
                        state: subscription.state,
                    },
                    status: None,
                }),
            });
            for (principal, kind) in &subscription.owners {
                let base = format!("{subscription_name}-owner-{}", &principal[..8]);
                let name = role_names.unique(&base, &principal[28..]);
                documents.push(Document {
                    comments: Vec::new(),
                    object: Object::RoleAssignment(RoleAssignment {
                        metadata: meta(&name),
                        spec: RoleAssignmentSpec {
                            subscription_ref: LocalRef::new(&subscription_name),
                            principal: Principal {
                                id: principal.clone(),
                                type_: *kind,
                                display_name: None,
                            },
                            role: Role::Owner,
                            management: Default::default(),
                        },
                        status: None,
                    }),
                });
            }
        }
        let permission = match &self.policy {
            None => Some((false, vec![PurchaseResource::AzureReservations], Vec::new())),
            Some(policy) if policy.resources.is_empty() => None,
            Some(policy) => {
                let mut comments = vec![
                    "Partner Center has this customer's SelfServePolicy: the customer may purchase now, billed to you."
                        .to_string(),
                ];
                if !policy.unknown.is_empty() {
                    comments.push(format!(
                        "The policy also allows {:?}, which this operator does not know.",
                        policy.unknown
                    ));
                }
                Some((true, policy.resources.clone(), comments))
            }
        };
        if let Some((enabled, resources, comments)) = permission {
            documents.push(Document {
                comments,
                object: Object::PurchasePermission(PurchasePermission {
                    metadata: meta(&self.name),
                    spec: PurchasePermissionSpec {
                        customer_ref: LocalRef::new(&self.name),
                        subscription_ref: None,
                        resources,
                        enabled,
                        deletion_policy: DeletionPolicy::default(),
                    },
                    status: None,
                }),
            });
        }
        documents
    }
}

/// A Partner Center status as our state; unknown values read as Disabled (never eligible).
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

fn unknown_state(status: &str) -> Vec<String> {
    let known = [
        "active",
        "pending",
        "suspended",
        "expired",
        "deleted",
        "disabled",
    ];
    if known.iter().any(|k| k.eq_ignore_ascii_case(status)) {
        Vec::new()
    } else {
        vec![format!(
            "Partner Center reports status {status:?}, written as Disabled"
        )]
    }
}

/// ARM's principal types this operator models; ForeignGroup (the partner's own agents in the
/// customer's tenant) is not the customer's principal and does not let the customer purchase.
fn principal_type(principal_type: &str) -> Option<PrincipalType> {
    match principal_type.to_ascii_lowercase().as_str() {
        "user" | "" => Some(PrincipalType::User),
        "group" => Some(PrincipalType::Group),
        "serviceprincipal" => Some(PrincipalType::ServicePrincipal),
        _ => None,
    }
}

/// A SelfServePolicy permission resource as ours.
fn purchase_resource(resource: &str) -> Option<PurchaseResource> {
    if resource.eq_ignore_ascii_case(AZURE_RESERVED_INSTANCES) {
        Some(PurchaseResource::AzureReservations)
    } else if resource.eq_ignore_ascii_case(AZURE_SAVINGS_PLAN) {
        Some(PurchaseResource::AzureSavingsPlan)
    } else {
        None
    }
}

fn is_guid(s: &str) -> bool {
    static GUID: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    GUID.get_or_init(|| regex::Regex::new(api::GUID_PATTERN).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(s))
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Legal-form words dropped from the end of a company name ("Contoso Ltd" is `contoso`).
const LEGAL_FORMS: &[&str] = &[
    "ab",
    "ag",
    "as",
    "bv",
    "co",
    "company",
    "corp",
    "corporation",
    "gmbh",
    "inc",
    "incorporated",
    "kg",
    "limited",
    "llc",
    "llp",
    "ltd",
    "nv",
    "oy",
    "plc",
    "pty",
    "sa",
    "sarl",
    "sas",
    "spa",
    "srl",
];

/// The name a customer's objects start from: its company name as a DNS-1123 label without the
/// legal form, else its domain's first label, else `customer-` and its tenant id's first block.
pub fn customer_base_name(customer: &pc::Customer) -> String {
    let from_company = company_label(&customer.company_profile.company_name);
    if !from_company.is_empty() {
        return from_company;
    }
    let domain = customer
        .company_profile
        .domain
        .split('.')
        .next()
        .unwrap_or_default();
    let from_domain = dns_label(domain);
    if !from_domain.is_empty() {
        return from_domain;
    }
    let tenant = customer_tenant_id(customer);
    dns_label(&format!("customer-{}", tenant.get(..8).unwrap_or(&tenant)))
}

/// A company name as a DNS-1123 label, its trailing legal form dropped when a word remains.
pub fn company_label(company_name: &str) -> String {
    let label = dns_label(company_name);
    let mut words: Vec<&str> = label.split('-').filter(|w| !w.is_empty()).collect();
    while words.len() > 1 && words.last().is_some_and(|w| LEGAL_FORMS.contains(w)) {
        words.pop();
    }
    dns_label(&words.join("-"))
}

/// Any text as a DNS-1123 label: lower-case ASCII letters and digits (Latin letters with
/// diacritics folded, `ß` as `ss`), anything else one `-`, no `-` at either end, at most 63.
pub fn dns_label(text: &str) -> String {
    sanitize(text, MAX_NAME)
}

/// [`dns_label`] with another length limit.
fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        match fold(c) {
            Some(ascii) => out.push_str(ascii),
            None if c.is_ascii_alphanumeric() => out.push(c),
            None => {
                if !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
            }
        }
    }
    trim_label(&out, max)
}

/// At most `max` bytes (all ASCII here), without a `-` at either end.
fn trim_label(label: &str, max: usize) -> String {
    let cut = &label[..label.len().min(max)];
    cut.trim_matches('-').to_string()
}

/// Latin letters with diacritics (and ligatures) as plain ASCII.
fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        '&' => "-and-",
        _ => return None,
    })
}

/// Names handed out for one kind: a name taken gets a suffix from its tie-break (an id), then
/// a counter. Handing out in a fixed order (by id) keeps the output the same from run to run.
#[derive(Debug)]
pub struct Names {
    taken: HashSet<String>,
    max: usize,
}

impl Default for Names {
    /// DNS-1123 labels (at most 63), as a Customer's name.
    fn default() -> Self {
        Names::with_max(MAX_NAME)
    }
}

impl Names {
    /// Names of at most `max` characters (253 for an object that is only a subdomain).
    pub fn with_max(max: usize) -> Self {
        Names {
            taken: HashSet::new(),
            max,
        }
    }

    /// `base` if free, else `base-{first 8 of tiebreak}`, else that with `-2`, `-3`, …, each at
    /// most `max` characters (the base is cut to make room).
    pub fn unique(&mut self, base: &str, tiebreak: &str) -> String {
        let base = sanitize(base, self.max);
        let base = if base.is_empty() {
            "x".to_string()
        } else {
            base
        };
        let short = sanitize(tiebreak, 8);
        let mut candidates = vec![base.clone()];
        if !short.is_empty() {
            candidates.push(with_suffix(&base, &short, self.max));
        }
        for candidate in candidates {
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
        let stem = if short.is_empty() {
            base
        } else {
            with_suffix(&base, &short, self.max)
        };
        let mut n = 2usize;
        loop {
            let candidate = with_suffix(&stem, &n.to_string(), self.max);
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// `base-suffix`, the base cut so the whole is at most `max` characters.
fn with_suffix(base: &str, suffix: &str, max: usize) -> String {
    let room = max.saturating_sub(suffix.len() + 1);
    format!("{}-{suffix}", trim_label(base, room))
}

#[cfg(test)]
mod tests;
