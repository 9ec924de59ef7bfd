//! Streaming watches: `GET ...?watch=true` answered with a chunked stream of watch events (the
//! initial objects or the history to replay, bookmarks, then live changes, each object a Table
//! when asked `as=Table`), fed by a task that ends at the timeout, on a dropped watch, or when
//! the client goes.

use super::list_options;
use super::metadata_only::MetadataOnly;
use super::verbs::selection;
use super::{Body, Req};
use crate::apiserver::Shared;
use crate::apiserver::error::ApiError;
use crate::apiserver::resources::ResourceDef;
use crate::apiserver::selector::Selection;
use crate::apiserver::storage::{Change, change_bytes, too_large_resource_version};
use crate::apiserver::table::{self, IncludeObject};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// What a watch request asks for.
struct WatchParams {
    sel: Selection,
    /// `sendInitialEvents`: the current objects, then a bookmark that marks their end.
    initial_events: bool,
    /// The resourceVersion to resume after (None: start with the current objects).
    from: Option<u64>,
    /// With the initial events: the version they must be at least as new as.
    not_older_than: Option<u64>,
    bookmarks: bool,
    timeout: Duration,
    /// `Accept: ...;as=Table`: each event's object a one-row Table (with `includeObject`).
    table: Option<IncludeObject>,
    /// `Accept: ...;as=PartialObjectMetadata`: each event's object its metadata only.
    metadata_only: Option<MetadataOnly>,
}

/// A watch as it starts: the events to send first, the live changes, and the resourceVersion
/// they start from.
type Started = Result<(Vec<Arc<Change>>, broadcast::Receiver<Arc<Change>>, u64), ApiError>;

pub fn watch(
    shared: &Shared,
    def: Arc<ResourceDef>,
    ns: Option<&str>,
    r: &Req,
) -> Result<Response<Body>, ApiError> {
    let params = WatchParams::parse(r, &def, ns)?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    let started = match params.not_older_than {
        // The initial events at a version the store has not reached (after the wait in
        // route): an ERROR event, as the watch cache sends it.
        Some(rv) if rv > shared.store.resource_version() => Err(too_large_resource_version(
            rv,
            shared.store.resource_version(),
        )),
        _ => shared.store.watch(&def, &params.sel, params.from),
    };
    let dropped = shared.faults.watch_drops();
    let delay = shared.faults.watch_delay();
    tokio::spawn(stream_events(def, params, started, (dropped, delay), tx));
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|o| o.map(|b| Ok::<_, Infallible>(Frame::data(b))))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .header("Transfer-Encoding", "chunked")
        .body(StreamBody::new(stream).boxed_unsync())
        .map_err(|e| ApiError::internal(e.to_string()))
}

impl WatchParams {
    fn parse(r: &Req, def: &ResourceDef, ns: Option<&str>) -> Result<Self, ApiError> {
        list_options::validate_watch(r)?;
        let sel = selection(r, def, ns)?;
        let initial_events = r.flag("sendInitialEvents");
        let rv =
            match r.q("resourceVersion") {
                None | Some("") | Some("0") => None,
                Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
            };
        let (from, not_older_than) = if initial_events {
            (None, rv)
        } else {
            (rv, None)
        };
        let bookmarks = r.flag("allowWatchBookmarks");
        let timeout = r
            .q("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or(Duration::from_secs(1800));
        let table = if r.wants_table() {
            Some(
                IncludeObject::parse(r.q("includeObject").unwrap_or(""))
                    .map_err(ApiError::bad_request)?,
            )
        } else {
            None
        };
        Ok(Self {
            sel,
            initial_events,
            from,
            not_older_than,
            bookmarks,
            timeout,
            table,
            metadata_only: MetadataOnly::negotiate(r, false)?,
        })
    }
}

/// Feeds one watch's stream: the initial events, the end-of-initial-events bookmark when asked
/// for, then live changes (and periodic bookmarks) until the timeout, a dropped watch, or the
/// client going away.
async fn stream_events(
    def: Arc<ResourceDef>,
    p: WatchParams,
    started: Started,
    (mut dropped, delay): (
        tokio::sync::watch::Receiver<u64>,
        tokio::sync::watch::Receiver<Option<Duration>>,
    ),
    tx: mpsc::Sender<Bytes>,
) {
    let api_version = def.api_version();
    let kind = def.kind.clone();
    let (initial, mut live, mut last_rv) = match started {
        Ok(s) => s,
        Err(e) => {
            let status = serde_json::to_vec(&e.status()).unwrap_or_default();
            let _ = tx.send(line("ERROR", &status)).await;
            return;
        }
    };
    let mut encoder = EventEncoder {
        table: p.table,
        metadata_only: p.metadata_only.clone(),
        headers_sent: false,
    };
    for c in &initial {
        last_rv = last_rv.max(c.rv);
        let Some(type_) = p.sel.event_for(c, &def) else {
            continue;
        };
        if tx
            .send(line(type_, &encoder.encode(&def, c)))
            .await
            .is_err()
        {
            return;
        }
    }
    // A metadata-only watch's bookmarks are PartialObjectMetadata too, as the real server's
    // transform makes every object of the stream.
    let (kind, api_version) = match &p.metadata_only {
        Some(m) => ("PartialObjectMetadata".to_string(), m.api_version.clone()),
        None => (kind, api_version),
    };
    let bookmark = |rv: u64, initial_end: bool| bookmark(&kind, &api_version, rv, initial_end);
    if p.initial_events
        && tx
            .send(line("BOOKMARK", &bookmark(last_rv, true)))
            .await
            .is_err()
    {
        return;
    }
    let deadline = tokio::time::sleep(p.timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = dropped.changed() => break,
            _ = tick.tick(), if p.bookmarks => {
                if tx.send(line("BOOKMARK", &bookmark(last_rv, false))).await.is_err() { break; }
            }
            c = live.recv() => match c {
                Ok(c) => {
                    if c.rv <= last_rv || c.store != def.store {
                        continue;
                    }
                    let Some(type_) = p.sel.event_for(&c, &def) else { continue };
                    last_rv = c.rv;
                    let held = *delay.borrow();
                    if let Some(d) = held { tokio::time::sleep(d).await; }
                    if tx.send(line(type_, &encoder.encode(&def, &c))).await.is_err() { break; }
                }
                // A watcher too slow for the stream ends; the client re-watches from its version.
                Err(_) => break,
            },
        }
    }
}

/// Encodes the objects of one watch's events: as stored, or as the real server's watch encoder
/// does for `as=Table`, a Table of one row whose column definitions only the first event carries
/// (kubectl prints the header once).
struct EventEncoder {
    table: Option<IncludeObject>,
    metadata_only: Option<MetadataOnly>,
    headers_sent: bool,
}

impl EventEncoder {
    fn encode(&mut self, def: &ResourceDef, change: &Change) -> Bytes {
        let object = change_bytes(def, change);
        if let Some(m) = &self.metadata_only {
            return serde_json::from_slice::<Value>(&object)
                .ok()
                .and_then(|obj| serde_json::to_vec(&m.object(&obj)).ok())
                .map(Bytes::from)
                .unwrap_or(object);
        }
        let Some(include) = self.table else {
            return object;
        };
        let Ok(obj) = serde_json::from_slice::<Value>(&object) else {
            return object;
        };
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut t = table::table_with(
            &def.columns,
            std::slice::from_ref(&obj),
            rv,
            None,
            Timestamp::now(),
            include,
        );
        if self.headers_sent {
            t["columnDefinitions"] = Value::Null;
        }
        self.headers_sent = true;
        serde_json::to_vec(&t).map(Bytes::from).unwrap_or(object)
    }
}

/// One watch event, `{"type":...,"object":...}` and a newline, around the object's JSON.
fn line(type_: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(type_.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// A BOOKMARK's object: the kind with only a resourceVersion (and, at the end of the initial
/// events, the annotation that says so).
fn bookmark(kind: &str, api_version: &str, rv: u64, initial_end: bool) -> Vec<u8> {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    serde_json::to_vec(&json!({"kind": kind, "apiVersion": api_version, "metadata": meta}))
        .unwrap_or_default()
}
