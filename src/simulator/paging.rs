//! Partner Center paging: page sizes, the opaque `MS-ContinuationToken`, and the collection body
//! with `links.self` / `links.next` (the last page has no `next`).
//!
//! Choices (the docs leave them open):
//! - `size`: default 100, at most 500; a larger size is served as 500; 0 or junk is a 400.
//! - The continuation token is base64url of `{collection, offset, generation}`. Customers and audit
//!   records only ever grow at the end (newest last), so an offset stays consistent after changes:
//!   new items show up on a later page, nothing is skipped or repeated. The self-serve policy list
//!   can shrink, so its generation counts deletions: a token minted before a delete is refused with
//!   400 (start the listing again) rather than silently skipping an item.
//! - `totalCount` is the number of items on the page (as on Partner Center's seek-based
//!   collections), not the size of the whole collection.

use super::state::{Req, encode_query};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const DEFAULT_PAGE_SIZE: usize = 100;
pub const MAX_PAGE_SIZE: usize = 500;

/// Where the next page starts, as carried in `MS-ContinuationToken`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continuation {
    pub collection: String,
    pub offset: usize,
    pub generation: u64,
}

impl Continuation {
    pub fn encode(&self) -> String {
        let raw = json!({"c": self.collection, "o": self.offset, "g": self.generation});
        URL_SAFE_NO_PAD.encode(raw.to_string())
    }

    /// `None` for anything this server did not mint.
    pub fn decode(token: &str) -> Option<Continuation> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        Some(Continuation {
            collection: v.get("c")?.as_str()?.to_string(),
            offset: usize::try_from(v.get("o")?.as_u64()?).ok()?,
            generation: v.get("g")?.as_u64()?,
        })
    }
}

/// The `size` query parameter: default, clamped to the maximum; `Err` for 0 or junk.
pub fn page_size(size: Option<&str>) -> Result<usize, String> {
    match size {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(s) => match s.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(format!("size {s:?} is not a positive number")),
            Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
        },
    }
}

/// One page of a collection, ready to render.
pub struct Page<'a> {
    pub items: Vec<Value>,
    /// The request's path and query as the client sent it (for `links.self`).
    pub self_uri: &'a str,
    /// The next page's uri (path + query, without the token) and its token; `None` on the last.
    pub next: Option<(String, Continuation)>,
}

/// Slices `all[offset..offset+size]` and says where the next page starts, if anywhere.
pub fn slice(all: Vec<Value>, offset: usize, size: usize) -> (Vec<Value>, usize, Option<usize>) {
    let total = all.len();
    let end = offset.saturating_add(size).min(total);
    let items: Vec<Value> = all
        .into_iter()
        .skip(offset)
        .take(end.saturating_sub(offset))
        .collect();
    let next = (end < total).then_some(end);
    (items, total, next)
}

/// `{"totalCount", "items", "links": {"self", "next"?}, "attributes": {"objectType": "Collection"}}`.
pub fn collection(page: Page<'_>) -> Value {
    let mut links = json!({"self": {"uri": page.self_uri, "method": "GET", "headers": []}});
    if let Some((uri, token)) = page.next {
        links["next"] = json!({
            "uri": uri,
            "method": "GET",
            "headers": [{"key": "MS-ContinuationToken", "value": token.encode()}],
        });
    }
    json!({
        "totalCount": page.items.len(),
        "items": page.items,
        "links": links,
        "attributes": {"objectType": "Collection"},
    })
}

/// One page of `all` for `req` (first page, or where its `MS-ContinuationToken` says), as the
/// collection body; `Err(description)` for a size or token this server cannot serve.
pub fn respond(
    req: &Req,
    collection_name: &str,
    generation: u64,
    all: Vec<Value>,
) -> Result<Value, String> {
    let size = page_size(req.query("size"))?;
    let offset = match req.header("MS-ContinuationToken") {
        None => 0,
        Some(token) => match Continuation::decode(token) {
            Some(c) if c.collection == collection_name && c.generation == generation => c.offset,
            Some(c) if c.collection == collection_name => {
                return Err("The continuation token is no longer valid: the collection changed; list again from the first page".into());
            }
            _ => return Err("The continuation token is invalid".into()),
        },
    };
    let (items, _, next_offset) = slice(all, offset, size);
    let next = next_offset.map(|offset| {
        let mut query = req.query_without(&["seekOperation"]);
        query.push(("seekOperation".into(), "Next".into()));
        let uri = format!("{}?{}", req.path, encode_query(&query));
        let token = Continuation {
            collection: collection_name.to_string(),
            offset,
            generation,
        };
        (uri, token)
    });
    Ok(collection(Page {
        items,
        self_uri: &req.path_and_query,
        next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_junk_is_refused() {
        let c = Continuation {
            collection: "customers".into(),
            offset: 200,
            generation: 3,
        };
        assert_eq!(Continuation::decode(&c.encode()), Some(c));
        assert_eq!(Continuation::decode("not a token"), None);
        assert_eq!(Continuation::decode(&URL_SAFE_NO_PAD.encode("{}")), None);
    }

    #[test]
    fn sizes_default_clamp_and_refuse() {
        assert_eq!(page_size(None), Ok(100));
        assert_eq!(page_size(Some("2")), Ok(2));
        assert_eq!(page_size(Some("9999")), Ok(500));
        assert!(page_size(Some("0")).is_err());
        assert!(page_size(Some("two")).is_err());
    }

    #[test]
    fn slices_say_where_the_next_page_starts() {
        let all: Vec<Value> = (0..5).map(|i| json!(i)).collect();
        let (items, total, next) = slice(all.clone(), 0, 2);
        assert_eq!((items.len(), total, next), (2, 5, Some(2)));
        let (items, _, next) = slice(all.clone(), 4, 2);
        assert_eq!((items, next), (vec![json!(4)], None));
        let (items, _, next) = slice(all, 9, 2);
        assert_eq!((items.len(), next), (0, None));
    }

    #[test]
    fn the_last_page_has_no_next_link() {
        let body = collection(Page {
            items: vec![json!(1)],
            self_uri: "/v1/customers",
            next: None,
        });
        assert!(body["links"].get("next").is_none());
        assert_eq!(body["attributes"]["objectType"], "Collection");
    }
}
