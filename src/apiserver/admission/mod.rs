//! Admission: what a write must pass before it is stored.

mod cel;
pub mod names;
pub mod schema;
