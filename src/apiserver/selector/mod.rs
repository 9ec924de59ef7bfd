//! Label and field selectors, parsed and matched the way the real apiserver
//! does (`k8s.io/apimachinery/pkg/labels` and `.../pkg/fields`), including the
//! wording of its parse errors.

mod fields;
mod labels;

pub use fields::{FieldSelector, field_value};
pub use labels::{LabelOp, LabelSelector, Requirement};
