//! Metadata-only answers (`Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`):
//! what the metadata client, kube-rs' `list_metadata`/`get_metadata`/`metadata_watcher` and
//! controllers that need only names, labels and owners ask for. Each object becomes a
//! `meta.k8s.io` PartialObjectMetadata carrying only its metadata, as the real server's
//! `asPartialObjectMetadata` does.

use super::Req;
use crate::apiserver::error::ApiError;
use serde_json::{Value, json};

/// The group-version of the PartialObjectMetadata a request asks for, if it asks for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetadataOnly {
    /// `meta.k8s.io/v1` or `meta.k8s.io/v1beta1`.
    pub api_version: String,
}

impl MetadataOnly {
    /// What the Accept header asks of a get or watch (`list == false`: each object as a
    /// PartialObjectMetadata) or of a list (`as=PartialObjectMetadataList`). The first media
    /// type the endpoint can answer wins; asking only for a form it cannot answer is 406.
    pub fn negotiate(r: &Req, list: bool) -> Result<Option<Self>, ApiError> {
        let wanted = if list {
            "PartialObjectMetadataList"
        } else {
            "PartialObjectMetadata"
        };
        let mut refused = false;
        for media in r.accept.split(',') {
            let mut parts = media.split(';').map(str::trim);
            let media_type = parts.next().unwrap_or("");
            let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
            let param = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
            let Some(as_kind) = param("as") else {
                return Ok(None);
            };
            let version = param("v").unwrap_or("");
            let meta_group =
                param("g") == Some("meta.k8s.io") && matches!(version, "v1" | "v1beta1");
            let json = matches!(media_type, "application/json" | "*/*" | "application/*");
            match as_kind {
                "Table" if meta_group => return Ok(None),
                k if k == wanted && meta_group && json => {
                    return Ok(Some(Self {
                        api_version: format!("meta.k8s.io/{version}"),
                    }));
                }
                _ => refused = true,
            }
        }
        if refused {
            return Err(ApiError::new(
                406,
                "NotAcceptable",
                format!(
                    "only the following media types are accepted: application/json, application/json;as={wanted};g=meta.k8s.io;v=v1, application/json;as=Table;g=meta.k8s.io;v=v1"
                ),
            ));
        }
        Ok(None)
    }

    /// The object as a PartialObjectMetadata.
    pub fn object(&self, obj: &Value) -> Value {
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": self.api_version,
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    }

    /// A list's objects as a PartialObjectMetadataList with the list's metadata.
    pub fn list(&self, items: &[Value], list_meta: Value) -> Value {
        let items: Vec<Value> = items.iter().map(|o| self.object(o)).collect();
        json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": self.api_version,
            "metadata": list_meta,
            "items": items,
        })
    }
}
