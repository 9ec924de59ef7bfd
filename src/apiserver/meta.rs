//! Reading and writing an object's metadata (name, resourceVersion, finalizers), and the
//! server's timestamp format; storage and admission both use them.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

pub fn meta_str(obj: &Value, key: &str) -> Option<String> {
    obj.get("metadata")?.get(key)?.as_str().map(String::from)
}

pub fn set_meta(obj: &mut Value, key: &str, v: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][key] = v;
}

pub fn now_string() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
