//! Audit records (Partner Center's activity log): one per change made through the API, and the
//! `GET /v1/auditrecords` query with its dates, filters and paging.
//!
//! Dates: `startDate` (default 30 days ago) counts from 00:00 UTC of that day; an `endDate` given
//! as a date includes that whole day, one given as a timestamp ends there. A `startDate` before
//! 00:00 UTC of the day 90 days ago, a malformed date, or an end before the start is a 400.

use super::paging;
use super::state::{Answer, Req, State, now_rfc3339};
use super::tokens::Caller;
use super::world::Customer;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::civil::Date;
use k8s_openapi::jiff::tz::TimeZone;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

/// What one audit record says about a change.
pub struct Change<'a> {
    pub customer: &'a Customer,
    /// `self_serve_policy`, `subscription`, …
    pub resource_type: &'a str,
    /// `create_self_serve_policy`, `update_subscription`, …
    pub operation_type: &'a str,
    pub old: Option<&'a Value>,
    pub new: Option<&'a Value>,
    pub customized: Vec<(&'a str, String)>,
}

/// The audit record of a successful change, as the wire JSON.
pub fn record(
    partner_id: &str,
    caller: &Caller,
    correlation_id: Option<&str>,
    change: Change<'_>,
) -> Value {
    let as_string = |v: Option<&Value>| {
        v.map(|v| Value::String(v.to_string()))
            .unwrap_or(Value::Null)
    };
    let customized: Vec<Value> = change
        .customized
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "partnerId": partner_id,
        "customerId": change.customer.tenant_id,
        "customerName": change.customer.company_name,
        "userPrincipalName": caller.claims.upn,
        "applicationId": caller.claims.appid,
        "resourceType": change.resource_type,
        "resourceOldValue": as_string(change.old),
        "resourceNewValue": as_string(change.new),
        "operationType": change.operation_type,
        "originalCorrelationId": correlation_id.map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        "operationDate": now_rfc3339(),
        "operationStatus": "succeeded",
        "customizedData": customized,
        "attributes": {"objectType": "AuditRecord"},
    })
}

/// `GET /v1/auditrecords?startDate=…[&endDate=…][&size=…][&filter=…]`.
pub fn query(state: &State, req: &Req) -> Answer {
    let now = Timestamp::now().as_second();
    let window = match date_window(req.query("startDate"), req.query("endDate"), now) {
        Ok(w) => w,
        Err(text) => return bad_request(&text),
    };
    let filter = match req.query("filter").map(Filter::parse).transpose() {
        Ok(f) => f,
        Err(text) => return bad_request(&text),
    };
    let matching: Vec<Value> = state
        .audit
        .iter()
        .filter(|r| operation_second(r).is_some_and(|t| t >= window.0 && t < window.1))
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
        .cloned()
        .collect();
    match paging::respond(req, "auditrecords", 0, matching) {
        Ok(body) => Answer::json(200, &body),
        Err(text) => bad_request(&text),
    }
}

fn bad_request(text: &str) -> Answer {
    Answer::json(
        400,
        &json!({"code": 400, "description": text, "data": [], "source": "PartnerFD"}),
    )
}

fn operation_second(record: &Value) -> Option<i64> {
    let date = record.get("operationDate")?.as_str()?;
    date.parse::<Timestamp>().ok().map(|t| t.as_second())
}

/// `[start, end)` in unix seconds.
fn date_window(start: Option<&str>, end: Option<&str>, now: i64) -> Result<(i64, i64), String> {
    let oldest = (now - 90 * DAY).div_euclid(DAY) * DAY;
    let start = match start {
        None => now - 30 * DAY,
        Some(s) => parse_date(s, false)
            .ok_or_else(|| format!("startDate {s:?} is not a date (YYYY-MM-DD)"))?,
    };
    if start < oldest {
        return Err(
            "startDate must be within the last 90 days: audit records are kept 90 days".into(),
        );
    }
    let end = match end {
        None => i64::MAX,
        Some(e) => parse_date(e, true)
            .ok_or_else(|| format!("endDate {e:?} is not a date (YYYY-MM-DD)"))?,
    };
    if end <= start {
        return Err("endDate must be after startDate".into());
    }
    Ok((start, end))
}

/// A date (`YYYY-MM-DD`, 00:00 UTC; with `whole_day` the next midnight) or an RFC 3339 timestamp.
fn parse_date(text: &str, whole_day: bool) -> Option<i64> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t.as_second());
    }
    let date: Date = text.parse().ok()?;
    let midnight = date.to_zoned(TimeZone::UTC).ok()?.timestamp().as_second();
    Some(if whole_day { midnight + DAY } else { midnight })
}

/// `{"Field": "ResourceType" | "CustomerId" | "CompanyName", "Value": …, "Operator": …}`.
#[derive(Debug, PartialEq)]
enum Filter {
    ResourceType(String),
    CustomerId(String),
    CompanyName { value: String, substring: bool },
}

impl Filter {
    fn parse(text: &str) -> Result<Filter, String> {
        let v: Value = serde_json::from_str(text).map_err(|_| "filter is not JSON".to_string())?;
        let field = |name: &str| v.get(name).and_then(Value::as_str).unwrap_or_default();
        let (name, value, operator) = (
            field("Field"),
            field("Value").to_string(),
            field("Operator"),
        );
        match (
            name.to_ascii_lowercase().as_str(),
            operator.to_ascii_lowercase().as_str(),
        ) {
            ("resourcetype", "equals") => Ok(Filter::ResourceType(normalise(&value))),
            ("customerid", "equals") => Ok(Filter::CustomerId(value.to_ascii_lowercase())),
            ("companyname", "substring") => Ok(Filter::CompanyName {
                value: value.to_lowercase(),
                substring: true,
            }),
            ("companyname", "equals") => Ok(Filter::CompanyName {
                value: value.to_lowercase(),
                substring: false,
            }),
            _ => Err(format!(
                "filter field {name:?} with operator {operator:?} is not supported"
            )),
        }
    }

    fn matches(&self, record: &Value) -> bool {
        let field = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default();
        match self {
            Filter::ResourceType(t) => normalise(field("resourceType")) == *t,
            Filter::CustomerId(id) => field("customerId").eq_ignore_ascii_case(id),
            Filter::CompanyName {
                value,
                substring: true,
            } => field("customerName").to_lowercase().contains(value),
            Filter::CompanyName {
                value,
                substring: false,
            } => field("customerName").to_lowercase() == *value,
        }
    }
}

/// `SelfServePolicy` and `self_serve_policy` alike.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000; // 2026-05-28

    #[test]
    fn dates_give_a_window_and_old_or_bad_dates_are_refused() {
        let (start, end) = date_window(Some("2026-05-01"), Some("2026-05-01"), NOW).unwrap();
        assert_eq!(end - start, DAY);
        assert!(date_window(Some("2025-01-01"), None, NOW).is_err());
        assert!(date_window(Some("May 1st"), None, NOW).is_err());
        assert!(date_window(Some("2026-05-02"), Some("2026-05-01"), NOW).is_err());
        let (start, end) = date_window(None, None, NOW).unwrap();
        assert_eq!((start, end), (NOW - 30 * DAY, i64::MAX));
        // The day 90 days ago is still served from its midnight.
        let oldest = Timestamp::from_second(NOW - 90 * DAY).unwrap();
        let day = oldest.to_zoned(TimeZone::UTC).date().to_string();
        assert!(date_window(Some(&day), None, NOW).is_ok());
    }

    #[test]
    fn filters_parse_and_match() {
        let record = json!({"resourceType": "self_serve_policy", "customerId": "ABC", "customerName": "Contoso Ltd"});
        let f = |t: &str| Filter::parse(t).unwrap().matches(&record);
        assert!(f(
            r#"{"Field":"ResourceType","Value":"SelfServePolicy","Operator":"equals"}"#
        ));
        assert!(!f(
            r#"{"Field":"ResourceType","Value":"Subscription","Operator":"equals"}"#
        ));
        assert!(f(
            r#"{"Field":"CustomerId","Value":"abc","Operator":"equals"}"#
        ));
        assert!(f(
            r#"{"Field":"CompanyName","Value":"toso","Operator":"substring"}"#
        ));
        assert!(Filter::parse(r#"{"Field":"Colour","Value":"x","Operator":"equals"}"#).is_err());
        assert!(Filter::parse("not json").is_err());
    }
}
