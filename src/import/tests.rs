//! Name derivation of the import: labels from company names, collisions, non-ASCII, length.

use super::*;
use crate::partnercenter::CompanyProfile;

fn customer(tenant_id: &str, company_name: &str, domain: &str) -> pc::Customer {
    pc::Customer {
        id: tenant_id.into(),
        company_profile: CompanyProfile {
            tenant_id: tenant_id.into(),
            domain: domain.into(),
            company_name: company_name.into(),
        },
        relationship_to_partner: "reseller".into(),
    }
}

const T1: &str = "1a2b3c4d-0000-4000-8000-000000000001";
const T2: &str = "9f8e7d6c-0000-4000-8000-000000000002";

#[test]
fn company_names_become_labels_without_their_legal_form() {
    let cases = [
        ("Contoso Ltd", "contoso"),
        ("Adatum Corporation", "adatum"),
        ("Fabrikam, Inc.", "fabrikam"),
        ("Northwind Traders", "northwind-traders"),
        ("Contoso Pty Ltd", "contoso"),
        ("Ltd", "ltd"),
        ("  Wide   World -- Importers  ", "wide-world-importers"),
        ("AT&T", "at-and-t"),
        ("123 Go", "123-go"),
    ];
    for (company, want) in cases {
        assert_eq!(company_label(company), want, "{company:?}");
    }
}

#[test]
fn non_ascii_letters_fold_and_other_scripts_fall_back_to_the_domain() {
    assert_eq!(company_label("Müller & Söhne GmbH"), "muller-and-sohne");
    assert_eq!(company_label("Straße Œuvre Łódź"), "strasse-oeuvre-lodz");
    assert_eq!(
        company_label("Électricité de France SA"),
        "electricite-de-france"
    );
    assert_eq!(company_label("株式会社"), "");
    assert_eq!(
        customer_base_name(&customer(T1, "株式会社テスト", "tesuto.onmicrosoft.com")),
        "tesuto"
    );
    assert_eq!(
        customer_base_name(&customer(T1, "株式会社", "")),
        "customer-1a2b3c4d"
    );
    for name in ["muller-and-sohne", "tesuto", "customer-1a2b3c4d"] {
        assert!(is_label(name), "{name}");
    }
}

#[test]
fn long_names_are_cut_to_63_without_a_trailing_dash() {
    let label = company_label(&format!("{} Holdings Ltd", "Ä".repeat(70)));
    assert_eq!(label, "a".repeat(63));
    // A cut that lands on a dash drops it.
    let cut = company_label(&("x".repeat(62) + " yz"));
    assert_eq!(cut, "x".repeat(62));
    // Suffixes from a collision also keep the name within 63.
    let mut names = Names::default();
    let first = names.unique(&"z".repeat(63), T1);
    let second = names.unique(&"z".repeat(63), T2);
    assert_eq!(first, "z".repeat(63));
    assert_eq!(second, format!("{}-9f8e7d6c", "z".repeat(54)));
    assert!(second.len() <= 63 && is_label(&second));
}

#[test]
fn collisions_get_the_tenant_id_then_a_counter() {
    let mut names = Names::default();
    assert_eq!(names.unique("contoso", T1), "contoso");
    assert_eq!(names.unique("contoso", T2), "contoso-9f8e7d6c");
    assert_eq!(names.unique("contoso", T2), "contoso-9f8e7d6c-2");
    assert_eq!(names.unique("contoso", T2), "contoso-9f8e7d6c-3");
    // A base that is itself a suffixed name is not handed out twice.
    assert_eq!(
        names.unique("contoso-9f8e7d6c", T1),
        "contoso-9f8e7d6c-1a2b3c4d"
    );
}

#[test]
fn object_names_may_be_longer_than_a_label() {
    let mut names = Names::with_max(MAX_OBJECT_NAME);
    let base = format!("{}-azure-2b3c4d5e", "c".repeat(63));
    assert_eq!(names.unique(&base, "000000000004"), base);
}

#[test]
fn partner_center_values_map_to_ours() {
    assert_eq!(state_of("active"), SubscriptionState::Active);
    assert_eq!(state_of("Suspended"), SubscriptionState::Suspended);
    assert_eq!(state_of("none"), SubscriptionState::Disabled);
    assert!(unknown_state("active").is_empty());
    assert_eq!(unknown_state("none").len(), 1);
    assert_eq!(
        purchase_resource("azurereservedinstances"),
        Some(PurchaseResource::AzureReservations)
    );
    assert_eq!(
        purchase_resource("AzureSavingsPlan"),
        Some(PurchaseResource::AzureSavingsPlan)
    );
    assert_eq!(purchase_resource("AzureSomethingNew"), None);
    assert_eq!(principal_type("ForeignGroup"), None);
    assert_eq!(
        principal_type("ServicePrincipal"),
        Some(PrincipalType::ServicePrincipal)
    );
}

fn is_label(s: &str) -> bool {
    let re = regex::Regex::new("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("regex");
    s.len() <= 63 && re.is_match(s)
}
