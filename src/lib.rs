//! csp-operator: declarative "Allow customer to purchase" Azure reservations for CSP partners.

pub mod api;
pub mod apiserver;
pub mod backend;
pub mod bench;
pub mod chaos;
pub mod controller;
pub mod import;
pub mod partnercenter;
pub mod policy;
pub mod simulator;
pub mod up;
