//! API-server conformance: the embedded API server answers kube-rs, kubectl (JSON and protobuf)
//! and impersonated requests (RBAC) as a real cluster would.

#[path = "../support/mod.rs"]
mod support;

mod auth_reviews;
mod crd_deletion;
mod garbage_collection;
mod kube_rs;
mod kubectl;
mod metadata_only;
mod openapi;
mod ownership;
mod paging;
mod protobuf;
mod prune;
mod rbac;
mod security;
mod server;
mod watch_tables;
