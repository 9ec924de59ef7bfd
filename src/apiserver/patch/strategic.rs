//! Strategic merge patch (`application/strategic-merge-patch+json`) as the real server applies it
//! to a built-in kind: k8s.io/apimachinery v0.32 `pkg/util/strategicpatch/patch.go`
//! (`StrategicMergeMapPatch`, with `MergeParallelList` and `IgnoreUnmatchedNulls`), driven by the
//! kinds' patch strategies in [`strategies`].
//!
//! Objects merge key by key and `null` deletes; a list is replaced unless its field has the
//! `merge` strategy, when lists of objects merge element by element on the field's merge key and
//! lists of scalars are unioned. The directives: `$patch: replace | delete` in an object,
//! `$patch: delete | replace` as a list element, `$setElementOrder/<list>`,
//! `$deleteFromPrimitiveList/<list>` and `$retainKeys`. Lists come out ordered as the Go code
//! orders them. Errors are the Go code's, answered as `interpretStrategicMergePatchError` does
//! (400 for the malformed directives, 422 for lists of lists, 500 otherwise).
//!
//! Where the Go code leaves a directive in its result (inside a `$patch: replace`d object, or in
//! an element appended to a merged list), the real server drops it when it decodes the result
//! into the typed object; [`apply`] strips them likewise, so none is ever stored.

pub mod strategies;

use super::super::error::ApiError;
use serde_json::{Map, Value};
pub use strategies::Type;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

/// mergepatch's sentinel errors that the handler answers with 400.
const ERR_BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
/// The one it answers with 422.
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";

/// A failed strategic merge, by the HTTP answer the real server gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmpError {
    /// 400 BadRequest (a malformed directive).
    BadRequest(&'static str),
    /// 422 Invalid (a list of lists).
    Unprocessable(&'static str),
    /// Any other error of patch.go: not a Status, so the real server answers 500 with it.
    Other(String),
}

impl SmpError {
    /// `interpretStrategicMergePatchError`, then `ErrorToAPIStatus` for the plain errors.
    pub fn into_api(self) -> ApiError {
        match self {
            SmpError::BadRequest(m) => ApiError::bad_request(m),
            SmpError::Unprocessable(_) => ApiError::new(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
            ),
            // StatusReasonUnknown is the empty reason.
            SmpError::Other(m) => ApiError::new(500, "", m),
        }
    }
}

type Schema = Option<&'static Type>;
type Result<T> = std::result::Result<T, SmpError>;

/// Applies a strategic merge patch to `original`, an object of the kind whose strategies are
/// `schema`, as the real server does (directives left by the Go code stripped, as the typed
/// decoding drops them).
pub fn apply(
    original: &Value,
    patch: &Value,
    schema: &'static Type,
) -> std::result::Result<Value, ApiError> {
    let patch = match patch {
        Value::Object(p) => p.clone(),
        // json.Unmarshal of `null` into a map leaves it empty.
        Value::Null => Map::new(),
        other => {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type_name(other)
            )));
        }
    };
    let mut merged = strategic_merge_patch(original, patch, schema).map_err(SmpError::into_api)?;
    strip_directives(&mut merged);
    Ok(merged)
}

/// `StrategicMergeMapPatchUsingLookupPatchMeta`: the Go function's result, directives it leaves
/// included.
pub fn strategic_merge_patch(
    original: &Value,
    patch: Map<String, Value>,
    schema: &'static Type,
) -> Result<Value> {
    let original = original.as_object().cloned().unwrap_or_default();
    merge_map(original, patch, Some(schema)).map(Value::Object)
}

/// The kind of a decoded JSON value as Go's `reflect.TypeOf` tells them apart (apimachinery's
/// JSON decoding makes integers int64 and other numbers float64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Slice,
        Value::Object(_) => Kind::Map,
    }
}

/// The field's subschema, patch strategy tag and merge key (nothing for a field not listed).
fn lookup(schema: Schema, key: &str) -> (Schema, &'static str, &'static str) {
    schema
        .and_then(|t| t.fields.iter().find(|f| f.json == key))
        .map_or((None, "", ""), |f| (f.ty, f.strategy, f.merge_key))
}

/// `extractRetainKeysPatchStrategy`: the strategy other than retainKeys.
fn other_strategy(tag: &'static str) -> Result<&'static str> {
    let strategies: Vec<&'static str> = tag.split(',').collect();
    match strategies.as_slice() {
        [single] if *single == RETAIN_KEYS_STRATEGY => Ok(""),
        [single] => Ok(single),
        [a, b] if *a == RETAIN_KEYS_STRATEGY => Ok(b),
        [a, b] if *b == RETAIN_KEYS_STRATEGY => Ok(a),
        _ => Err(SmpError::Other(format!(
            "unexpected patch strategy: [{}]",
            strategies.join(" ")
        ))),
    }
}

/// `mergeMap`: merges `patch` into `original`.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
        return handle_directive_in_merge_map(&directive, patch);
    }
    apply_retain_keys_directive(&mut original, &mut patch)?;
    merge_patch_into_original(&mut original, &mut patch, schema)?;

    for (key, patch_v) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (
                extract_key(
                    &key,
                    DELETE_FROM_PRIMITIVE_LIST_PREFIX,
                    ERR_BAD_PRIMITIVE_LIST,
                )?,
                true,
            )
        } else {
            (key, false)
        };
        // A null deletes the key (and is dropped where there is nothing to delete).
        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }
        let Some(original_v) = original.remove(&key) else {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_v);
            }
            continue;
        };
        if kind(&original_v) != kind(&patch_v) {
            if is_delete_list {
                original.insert(key, original_v);
            } else {
                set_from_patch(&mut original, key, patch_v);
            }
            continue;
        }
        match (original_v, patch_v) {
            (Value::Object(o), Value::Object(p)) => {
                let (sub, tag, _) = lookup(schema, &key);
                let merged = if other_strategy(tag)? != REPLACE_DIRECTIVE {
                    merge_map(o, p, sub)?
                } else {
                    p
                };
                original.insert(key, Value::Object(merged));
            }
            (Value::Array(o), Value::Array(p)) => {
                let (sub, tag, merge_key) = lookup(schema, &key);
                let strategy = other_strategy(tag)?;
                let merged = merge_slice_handler(o, p, sub, strategy, merge_key, is_delete_list)?;
                original.insert(key, Value::Array(merged));
            }
            (_, p) => {
                if let Some(v) = remove_directives(p) {
                    original.insert(key, v);
                }
            }
        }
    }
    Ok(original)
}

/// A patch value where the original has none (or one of another type): its nulls discarded
/// and its directives removed.
fn set_from_patch(original: &mut Map<String, Value>, key: String, mut patch_v: Value) {
    discard_null_values(&mut patch_v);
    if let Some(v) = remove_directives(patch_v) {
        original.insert(key, v);
    }
}

/// `handleDirectiveInMergeMap`.
fn handle_directive_in_merge_map(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>> {
    match directive.as_str() {
        Some(REPLACE_DIRECTIVE) => {
            patch.remove(DIRECTIVE_MARKER);
            Ok(patch)
        }
        Some(DELETE_DIRECTIVE) => Ok(Map::new()),
        _ => Err(bad_patch_type(directive, &patch)),
    }
}

/// `applyRetainKeysDirective`: with `$retainKeys`, every key the patch sets must be listed, and
/// the original keeps only the listed keys.
fn apply_retain_keys_directive(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(SmpError::BadRequest(ERR_BAD_RETAIN_KEYS));
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !listed(k) {
            return Err(SmpError::BadRequest(ERR_BAD_RETAIN_KEYS));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `mergePatchIntoOriginal`: each `$setElementOrder/<list>` with its list, merged and ordered
/// ($setElementOrder first, then the patch's order, then the live order).
fn merge_patch_into_original(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type("[]interface {}", &order));
        };
        let original_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX, ERR_BAD_SET_ELEMENT_ORDER)?;
        let as_list = |v: Option<&Value>| -> Result<Option<Vec<Value>>> {
            match v {
                None => Ok(None),
                Some(Value::Array(a)) => Ok(Some(a.clone())),
                Some(other) => Err(bad_arg_type("[]interface {}", other)),
            }
        };
        let original_list = as_list(original.get(&original_key))?;
        let patch_list = as_list(patch.get(&original_key))?;
        let (sub, tag, merge_key) = lookup(schema, &original_key);
        let strategy = other_strategy(tag)?;
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &order,
            merge_key,
        )?;

        let mut original_values = original_list.clone().unwrap_or_default();
        let patch_values = patch_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(a)) => a,
                _ => continue,
            },
            (Some(o), Some(p)) => {
                if strategy == MERGE_DIRECTIVE && !merge_key.is_empty() {
                    original_values = shared_original_after_merge(&o, &p, merge_key);
                }
                merge_slice_handler(o, p, sub, strategy, merge_key, false)?
            }
            (None, None) => continue,
        };
        let (patch_items, server_only) = if merge_key.is_empty() {
            partition_primitives(merged, &order)
        } else {
            partition_maps(merged, &order, merge_key)?
        };
        let elem = slice_element_type(&[&original_values, &patch_values])?;
        let both = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &original_values,
            merge_key,
            elem,
        )?;
        original.insert(original_key.clone(), Value::Array(both));
        patch.remove(&original_key);
    }
    Ok(())
}

/// What the Go code's `originalFieldValue` holds once a list of objects is merged: the merge
/// shares its array. Deleting an element (`append(original[:k], original[k+1:]...)`) shifts the
/// rest left in place, and the elements the merge then appends fill the room this made; it is
/// by this array's order that `$setElementOrder` then places the server-only items
/// (apimachinery's own tests expect the outcome: "add map and delete map from merging list").
fn shared_original_after_merge(original: &[Value], patch: &[Value], merge_key: &str) -> Vec<Value> {
    let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();
    let mut shared = original.to_vec();
    let mut current = original.to_vec();
    let mut replace = false;
    for v in patch {
        match v.get(DIRECTIVE_MARKER).and_then(Value::as_str) {
            Some(DELETE_DIRECTIVE) => {
                let Some(wanted) = key_of(v) else { continue };
                while let Some(k) = current
                    .iter()
                    .position(|o| key_of(o).as_ref() == Some(&wanted))
                {
                    let len = current.len();
                    for i in k..len - 1 {
                        shared[i] = shared[i + 1].clone();
                    }
                    current.remove(k);
                }
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            _ => {}
        }
    }
    if replace {
        return shared;
    }
    for v in patch.iter().filter(|v| !contains_directive_marker(v)) {
        let wanted = key_of(v);
        if current.iter().any(|o| key_of(o) == wanted) {
            continue;
        }
        if let Some(slot) = shared.get_mut(current.len()) {
            *slot = v.clone();
        }
        current.push(v.clone());
    }
    shared
}

/// `validatePatchWithSetOrderList`: the patch list's items (deletions aside) appear in the
/// `$setElementOrder` list, in the same relative order.
fn validate_patch_with_set_order_list(
    patch_list: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<Value> = if merge_key.is_empty() {
        patch_list.to_vec()
    } else {
        extract_to_delete_items(patch_list.to_vec())?.0
    };
    let (mut p, mut s) = (0, 0);
    while p < non_delete.len() && s < order.len() {
        if contains_directive_marker(&non_delete[p]) {
            p += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[p], &order[s], merge_key)? {
            p += 1;
        }
        s += 1;
    }
    if p < non_delete.len() && s >= order.len() {
        return Err(SmpError::Other(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_slice(patch_list),
            go_slice(order)
        )));
    }
    Ok(())
}

fn contains_directive_marker(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
}

/// `mergeKeyValueEqual`.
fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let l = left
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", left))?;
    let r = right
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", right))?;
    let lk = l.get(merge_key).ok_or_else(|| no_merge_key(l, merge_key))?;
    let rk = r.get(merge_key).ok_or_else(|| no_merge_key(r, merge_key))?;
    Ok(lk == rk)
}

/// `extractKey`: the list a `$prefix/<list>` directive names.
fn extract_key(s: &str, prefix: &str, err: &'static str) -> Result<String> {
    match s.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest.to_string()),
        _ => Err(SmpError::BadRequest(err)),
    }
}

/// `mergeSliceHandler`: lists merge under the merge strategy (and `$deleteFromPrimitiveList`);
/// otherwise the patch's list replaces the original.
fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    strategy: &str,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if strategy == MERGE_DIRECTIVE || is_delete_list {
        merge_slice(original, patch, schema, merge_key, is_delete_list)
    } else {
        Ok(patch)
    }
}

/// `mergeSlice`.
fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: Schema,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let elem = slice_element_type(&[&original, &patch])?;
    let (merged, patch, original) = if elem != Kind::Map {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (merged, patch, original)
    } else {
        if merge_key.is_empty() {
            return Err(SmpError::Other(format!(
                "cannot merge lists without merge key for {}",
                schema_name(schema)
            )));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged =
            merge_slice_without_special_elements(original.clone(), &patch, merge_key, schema)?;
        (merged, patch, original)
    };
    let (patch_items, server_only) = if merge_key.is_empty() {
        partition_primitives(merged, &patch)
    } else {
        partition_maps(merged, &patch, merge_key)?
    };
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, elem)
}

/// Go's `schema.Name()` of a list's element type: the kind of the struct.
fn schema_name(_schema: Schema) -> &'static str {
    "struct"
}

/// `mergeSliceWithSpecialElements`: `$patch: delete` elements delete every element with their
/// merge key; `$patch: replace` makes the rest of the patch list the whole list.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut without_special = Vec::new();
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(bad_arg_type("map[string]interface {}", &v));
        };
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            without_special.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                while let Some(i) = find_map_in_slice(&original, merge_key, value)? {
                    original.remove(i);
                }
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(SmpError::Other(
                    "merging lists cannot yet be specified in the patch".into(),
                ));
            }
            _ => return Err(bad_patch_type(directive, m)),
        }
    }
    if replace {
        Ok((without_special, Vec::new()))
    } else {
        Ok((original, without_special))
    }
}

/// `mergeSliceWithoutSpecialElements`: each patch element merges into the first original
/// element with its merge key, or is appended.
fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: Schema,
) -> Result<Vec<Value>> {
    for v in patch {
        let Value::Object(m) = v else {
            return Err(bad_arg_type("map[string]interface {}", v));
        };
        let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
        match find_map_in_slice(&original, merge_key, value)? {
            Some(i) => {
                let o = match std::mem::take(&mut original[i]) {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                original[i] = Value::Object(merge_map(o, m.clone(), schema)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

/// `findMapInSliceBasedOnKeyValue`: the index of the first element whose `key` is `value`.
fn find_map_in_slice(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(SmpError::Other(format!("value for key {i} is not a map")));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// `partitionPrimitivesByPresentInList`: (present in `by`, the rest), in `list`'s order.
fn partition_primitives(list: Vec<Value>, by: &[Value]) -> (Vec<Value>, Vec<Value>) {
    list.into_iter().partition(|v| by.contains(v))
}

/// `partitionMapsByPresentInList`: by merge key.
fn partition_maps(
    list: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut present = Vec::with_capacity(list.len());
    let mut absent = Vec::with_capacity(list.len());
    for v in list {
        let Value::Object(m) = &v else {
            return Err(bad_arg_type("map[string]interface {}", &v));
        };
        let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
        if find_map_in_slice(by, merge_key, value)?.is_some() {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}

/// `sliceElementType`: the one kind of every element of the lists.
fn slice_element_type(lists: &[&[Value]]) -> Result<Kind> {
    let mut prev: Option<Kind> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let current = kind(v);
        match prev {
            None if current == Kind::Slice => {
                return Err(SmpError::Unprocessable(ERR_NO_LIST_OF_LISTS));
            }
            None => prev = Some(current),
            Some(p) if p != current => {
                let shown: Vec<String> = lists.iter().map(|l| go_slice(l)).collect();
                return Err(SmpError::Other(format!(
                    "list element types are not identical: [{}]",
                    shown.join(" ")
                )));
            }
            Some(_) => {}
        }
    }
    prev.ok_or_else(|| SmpError::Other("no elements in any of the given slices".into()))
}

/// `normalizeElementOrder`: the patch's items in the patch's order, the server-only items in
/// the live order, then the two interleaved by the live order where both are known.
fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    elem: Kind,
) -> Result<Vec<Value>> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, elem)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, elem)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        elem,
    ))
}

/// `index`: the position of `v` in `list` (by merge key for objects), if any.
fn index_of(list: &[Value], v: &Value, merge_key: &str, elem: Kind) -> Option<usize> {
    if elem == Kind::Map {
        let wanted = v.as_object().and_then(|m| m.get(merge_key));
        list.iter()
            .position(|x| x.as_object().and_then(|m| m.get(merge_key)) == wanted)
    } else {
        list.iter().position(|x| x == v)
    }
}

/// `normalizeSliceOrder`: sorts `to_sort` by `order` (deletions last).
fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    elem: Kind,
) -> Result<Vec<Value>> {
    let (to_sort, to_delete) = if elem == Kind::Map {
        validate_merge_key_in_lists(merge_key, &[&to_sort, order])?;
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    let mut keyed: Vec<(Option<usize>, Value)> = to_sort
        .into_iter()
        .map(|v| (index_of(order, &v, merge_key, elem), v))
        .collect();
    if keyed.iter().all(|(i, _)| i.is_some()) {
        keyed.sort_by_key(|(i, _)| *i);
    } else {
        // Go's sort.SliceStable with its comparator, which calls an item not found in `order`
        // less than anything: the insertion sort it runs on up to 20 items.
        let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
            (Some(a), Some(b)) => a < b,
            _ => true,
        };
        for i in 1..keyed.len() {
            let mut j = i;
            while j > 0 && less(keyed[j].0, keyed[j - 1].0) {
                keyed.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    let mut sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    sorted.extend(to_delete);
    Ok(sorted)
}

/// `validateMergeKeyInLists`.
fn validate_merge_key_in_lists(merge_key: &str, lists: &[&[Value]]) -> Result<()> {
    for v in lists.iter().flat_map(|l| l.iter()) {
        let Value::Object(m) = v else {
            return Err(bad_arg_type("map[string]interface {}", v));
        };
        if !m.contains_key(merge_key) {
            return Err(no_merge_key(m, merge_key));
        }
    }
    Ok(())
}

/// `extractToDeleteItems`: (the items to keep, those marked `$patch: delete`).
fn extract_to_delete_items(list: Vec<Value>) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut keep = Vec::new();
    let mut delete = Vec::new();
    for v in list {
        let Value::Object(m) = &v else {
            return Err(bad_arg_type("map[string]interface {}", &v));
        };
        if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

/// `mergeSortedSlice`: inserts the server-only items (`left`) among the patch's (`right`),
/// keeping each list's order; a server-only item goes first when the live order puts it
/// before the patch item at hand.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    elem: Kind,
) -> Vec<Value> {
    let pos = |v: &Value| index_of(server_order, v, merge_key, elem);
    let left: Vec<(Option<usize>, Value)> = left.into_iter().map(|v| (pos(&v), v)).collect();
    let right: Vec<(Option<usize>, Value)> = right.into_iter().map(|v| (pos(&v), v)).collect();
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((Some(l), _)), Some((Some(r), _))) => l < r,
            _ => false,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, v)) = next {
            out.push(v);
        }
    }
    out
}

/// `discardNullValuesFromPatch`: drops null object members, at every depth.
fn discard_null_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(a) => a.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}

/// `removeDirectives`: drops every object that carries `$patch` (None: the value itself).
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(a) => Some(Value::Array(
            a.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Drops the directive keys the Go code leaves in its result: the real server's decoding into
/// the typed object does not keep fields it does not know.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| {
                !(k == DIRECTIVE_MARKER
                    || k == RETAIN_KEYS_DIRECTIVE
                    || k.starts_with(&format!("{SET_ELEMENT_ORDER_PREFIX}/"))
                    || k.starts_with(&format!("{DELETE_FROM_PRIMITIVE_LIST_PREFIX}/")))
            });
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

// Errors worded as the Go code's (`mergepatch.ErrNoMergeKey` and the rest), values printed as
// Go's `%v` prints decoded JSON.

fn no_merge_key(m: &Map<String, Value>, key: &str) -> SmpError {
    SmpError::Other(format!(
        "map: {} does not contain declared merge key: {key}",
        go_map(m)
    ))
}

fn bad_arg_type(expected: &str, actual: &Value) -> SmpError {
    SmpError::Other(format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    ))
}

fn bad_patch_type(directive: &Value, m: &Map<String, Value>) -> SmpError {
    let shown = match directive {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".to_string(),
        Value::Bool(_) | Value::Number(_) => {
            format!("%!s({}={})", go_type_name(directive), go_value(directive))
        }
        other => go_value(other),
    };
    SmpError::Other(format!("unknown patch type: {shown} in map: {}", go_map(m)))
}

/// The Go type of a decoded JSON value, as `reflect.TypeOf` prints it.
fn go_type_name(v: &Value) -> &'static str {
    match kind(v) {
        Kind::Null => "<nil>",
        Kind::Bool => "bool",
        Kind::Int => "int64",
        Kind::Float => "float64",
        Kind::String => "string",
        Kind::Slice => "[]interface {}",
        Kind::Map => "map[string]interface {}",
    }
}

/// The JSON type of a value, as encoding/json names it in an unmarshal error.
fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `%v` of a decoded JSON value.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => go_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) => go_slice(a),
        Value::Object(m) => go_map(m),
    }
}

fn go_slice(a: &[Value]) -> String {
    let items: Vec<String> = a.iter().map(go_value).collect();
    format!("[{}]", items.join(" "))
}

fn go_map(m: &Map<String, Value>) -> String {
    let items: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}:{}", go_value(v)))
        .collect();
    format!("map[{}]", items.join(" "))
}

/// `%v` of a float64: the shortest representation, in exponent form below 1e-4 or from 1e6
/// (strconv's `'g'` with the shortest precision).
fn go_float(f: f64) -> String {
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if (-4..6).contains(&exp) {
        return f.to_string();
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, e)) => {
            let e: i32 = e.parse().unwrap_or(0);
            let sign = if e < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", e.abs())
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::{Field, Type};
    use super::*;
    use serde_json::json;

    /// apimachinery's test type `MergeItem` (strategicpatch/patch_test.go) and its tags.
    static MERGE_ITEM: Type = Type {
        fields: &[
            Field {
                json: "mergingList",
                strategy: "merge",
                merge_key: "name",
                ty: Some(&MERGE_ITEM),
            },
            Field {
                json: "nonMergingList",
                strategy: "",
                merge_key: "",
                ty: Some(&MERGE_ITEM),
            },
            Field {
                json: "mergingIntList",
                strategy: "merge",
                merge_key: "",
                ty: None,
            },
            Field {
                json: "mergeItemPtr",
                strategy: "merge",
                merge_key: "name",
                ty: Some(&MERGE_ITEM),
            },
            Field {
                json: "replacingItem",
                strategy: "replace",
                merge_key: "",
                ty: None,
            },
            Field {
                json: "retainKeysMap",
                strategy: "retainKeys",
                merge_key: "",
                ty: Some(&RETAIN_KEYS_MERGE_ITEM),
            },
            Field {
                json: "retainKeysMergingList",
                strategy: "merge,retainKeys",
                merge_key: "name",
                ty: Some(&MERGE_ITEM),
            },
        ],
    };

    /// `RetainKeysMergeItem`.
    static RETAIN_KEYS_MERGE_ITEM: Type = Type {
        fields: &[
            Field {
                json: "mergingIntList",
                strategy: "merge",
                merge_key: "",
                ty: None,
            },
            Field {
                json: "mergingList",
                strategy: "merge",
                merge_key: "name",
                ty: Some(&MERGE_ITEM),
            },
        ],
    };

    /// Applies `patch` to `original` with `MergeItem`'s tags, as the Go tests do.
    fn smp(original: Value, patch: Value) -> Result<Value> {
        let Value::Object(patch) = patch else {
            panic!("a patch is an object")
        };
        strategic_merge_patch(&original, patch, &MERGE_ITEM)
    }

    /// A case of apimachinery's patch_test.go: `patch` (its two-way or three-way patch) applied
    /// to `original` (its original or current object) gives `want`.
    fn case(original: Value, patch: Value, want: Value) {
        assert_eq!(smp(original, patch).expect("the patch applies"), want);
    }

    fn error(original: Value, patch: Value) -> SmpError {
        smp(original, patch).expect_err("the patch is refused")
    }

    // strategicMergePatchRawTestCases: "merge lists of maps" (three-way). Elements merge by
    // their merge key; new ones go where $setElementOrder puts them.
    #[test]
    fn merges_list_elements_by_key_in_set_element_order() {
        case(
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
            json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"},
                                   {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
        );
    }

    // "delete map from merging list" (three-way).
    #[test]
    fn deletes_a_list_element_by_key() {
        case(
            json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}],
                   "mergingList": [{"name": 1, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "other": "b"}]}),
        );
    }

    // customStrategicMergePatchTestCaseData: "delete all duplicate entries in a merging list".
    #[test]
    fn delete_directive_removes_every_element_with_the_key() {
        case(
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        );
    }

    // "delete field from map in merging list" (three-way): null deletes inside an element.
    #[test]
    fn null_deletes_a_field_of_a_merged_element() {
        case(
            json!({"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                   "mergingList": [{"name": 1, "value": null}]}),
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
        );
    }

    // TestUnknownField: "discard nulls in nested and adds not nulls" and "removed only".
    #[test]
    fn nulls_delete_keys_and_are_dropped_from_new_values() {
        case(
            json!({"name": "foo", "scalar": true, "complex": {"nested": true}, "array": [1, 2, 3]}),
            json!({"complex": null, "scalar": null,
                   "complex_nullable": {"key": {"keynotnull": "value", "keynull": null}}}),
            json!({"name": "foo", "array": [1, 2, 3],
                   "complex_nullable": {"key": {"keynotnull": "value"}}}),
        );
    }

    // "set elements order in a list with server-only items 2" (three-way): an item only the
    // server has stays after the item the live list put it after.
    #[test]
    fn set_element_order_keeps_server_only_items_in_place() {
        case(
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2}, {"name": 9},
                                   {"name": 3, "value": 3}, {"name": 4, "value": 4}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]}),
            json!({"mergingList": [{"name": 2, "value": 2}, {"name": 1, "other": "a"}, {"name": 9},
                                   {"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
        );
    }

    // "add map and delete map from merging list" (three-way): the order Go's shared array
    // gives (the server-only 4 before the new 3).
    #[test]
    fn add_and_delete_orders_as_the_go_code() {
        case(
            json!({"mergingList": [{"name": 1}, {"name": 2, "other": "b"}, {"name": 4, "other": "c"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 3}, {"name": 1, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "other": "b"}, {"name": 4, "other": "c"}, {"name": 3}]}),
        );
    }

    // Lists of scalars with the merge strategy are unioned. Without $setElementOrder (the
    // patch of an older client, or a hand-written one) an item new to the list goes before the
    // server's items, as mergeSortedSlice places items the live list does not know.
    #[test]
    fn lists_of_scalars_union_and_follow_set_element_order() {
        // customStrategicMergePatchTestCaseData: "unique scalars when merging lists".
        case(
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        );
        case(
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [3]}),
            json!({"mergingIntList": [3, 1, 2]}),
        );
        // "add an item in a int list and preserve order" (two-way), and the item put last.
        case(
            json!({"mergingIntList": [1, 2]}),
            json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]}),
            json!({"mergingIntList": [3, 1, 2]}),
        );
        case(
            json!({"mergingIntList": [1, 2]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        );
    }

    // "delete items in lists of scalars" (three-way) and the custom raw cases on
    // $deleteFromPrimitiveList: it deletes, with or without the merge strategy, and adds
    // nothing.
    #[test]
    fn delete_from_primitive_list() {
        case(
            json!({"mergingIntList": [1, 2, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"mergingIntList": [1, 2, 4]}),
        );
        case(
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
            json!({"nonMergingIntList": [1, 3]}),
        );
        case(
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]}),
            json!({"foo": ["bar"]}),
        );
    }

    // "retainKeys map should clear defaulted field" (three-way) and "retainKeys list of maps
    // adds a field and clear a field" (three-way).
    #[test]
    fn retain_keys_clears_unlisted_fields() {
        case(
            json!({"retainKeysMap": {"value": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["other"], "other": "bar"}}),
            json!({"retainKeysMap": {"other": "bar"}}),
        );
        case(
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "other": "x"}]}),
            json!({"$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                   "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
        );
        // A field the patch sets must be listed (ErrBadPatchFormatForRetainKeys).
        assert_eq!(
            error(
                json!({"retainKeysMap": {"value": "foo"}}),
                json!({"retainKeysMap": {"$retainKeys": ["other"], "value": "bar"}}),
            ),
            SmpError::BadRequest(ERR_BAD_RETAIN_KEYS)
        );
    }

    // customStrategicMergePatchTestCaseData: "delete all items from merging list", "add key and
    // delete all keys from map", "delete map from nested map".
    #[test]
    fn replace_and_delete_directives() {
        case(
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        );
        case(
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        );
        case(
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        );
    }

    // "replace non merging list nested in merging list" (three-way): a list without the merge
    // strategy is replaced, inside a merged element.
    #[test]
    fn lists_without_the_merge_strategy_are_replaced() {
        case(
            json!({"mergingList": [{"name": 1, "other": "a", "nonMergingList": [{"name": 1}, {"name": 2, "value": 2}]},
                                   {"name": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                   "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]}),
            json!({"mergingList": [{"name": 1, "other": "a", "nonMergingList": [{"name": 1, "value": 1}]},
                                   {"name": 2, "other": "b"}]}),
        );
    }

    // customStrategicMergePatchRawTestCases: "$setElementOrder contains item that is not present
    // in the list to be merged", "should check if order in $setElementOrder and patch list
    // match", "missing merge key should error out".
    #[test]
    fn set_element_order_is_checked_against_the_patch_list() {
        case(
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        );
        let err = error(
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        );
        assert_eq!(
            err,
            SmpError::Other(
                "The order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n doesn't match $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n".into()
            )
        );
        assert_eq!(
            error(
                json!({"mergingList": [{"name": 1, "value": "a"}]}),
                json!({"mergingList": [{"value": "b"}]}),
            ),
            SmpError::Other("map: map[value:b] does not contain declared merge key: name".into())
        );
    }

    #[test]
    fn malformed_directives_are_bad_requests_and_lists_of_lists_invalid() {
        assert_eq!(
            error(json!({}), json!({"$setElementOrder": []})),
            SmpError::BadRequest(ERR_BAD_SET_ELEMENT_ORDER)
        );
        assert_eq!(
            error(
                json!({"mergingIntList": [1]}),
                json!({"$deleteFromPrimitiveList": [1]})
            ),
            SmpError::BadRequest(ERR_BAD_PRIMITIVE_LIST)
        );
        assert_eq!(
            error(
                json!({"mergingIntList": [[1]]}),
                json!({"mergingIntList": [[2]]})
            ),
            SmpError::Unprocessable(ERR_NO_LIST_OF_LISTS)
        );
        assert_eq!(
            error(
                json!({"mergingList": [{"name": 1}]}),
                json!({"mergingList": [{"name": 1, "$patch": "merge"}]})
            ),
            SmpError::Other("merging lists cannot yet be specified in the patch".into())
        );
        let answer = SmpError::Unprocessable(ERR_NO_LIST_OF_LISTS).into_api();
        assert_eq!((answer.code, answer.reason), (422, "Invalid"));
        let answer = SmpError::Other("x".into()).into_api();
        assert_eq!(answer.code, 500);
        assert!(answer.status().get("reason").is_none());
    }

    /// A Deployment as `kubectl create deployment web --image=nginx --port=80` stores it.
    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "finalizers": ["a"], "labels": {"app": "web"}},
            "spec": {
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"spec": {"containers": [{
                    "name": "nginx", "image": "nginx", "imagePullPolicy": "Always",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                }]}},
            },
        })
    }

    // What `kubectl set image deployment/web nginx=nginx:1.27` sends: the container keeps its
    // other fields, and no directive is stored.
    #[test]
    fn deployment_containers_merge_by_name() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"image": "nginx:1.27", "name": "nginx"}],
        }}}});
        let got = apply(
            &deployment(),
            &patch,
            strategies::for_kind("apps", "Deployment"),
        )
        .expect("applies");
        let mut want = deployment();
        want["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27".into();
        assert_eq!(got, want);
        // The same patch as a JSON merge would have replaced the container.
        let mut merged = deployment();
        json_patch::merge(&mut merged, &patch);
        assert_ne!(merged, want);
    }

    // Client-side apply turning the RollingUpdate strategy into Recreate: $retainKeys clears
    // `rollingUpdate`; env A deleted by name; finalizer b added (merge of scalars); and
    // directives nested in a new value (which the Go code keeps) are not stored.
    #[test]
    fn deployment_directives_of_client_side_apply() {
        let patch = json!({
            "metadata": {"finalizers": ["b"], "$setElementOrder/finalizers": ["a", "b"]},
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {
                    "metadata": {"annotations": {"x": "1"}, "$setElementOrder/unknown": []},
                    "spec": {"containers": [{"name": "nginx", "env": [{"$patch": "delete", "name": "A"}]}]},
                },
            },
        });
        let got = apply(
            &deployment(),
            &patch,
            strategies::for_kind("apps", "Deployment"),
        )
        .expect("applies");
        assert_eq!(got["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
        let container = &got["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["env"], json!([{"name": "B", "value": "2"}]));
        assert_eq!(
            container["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(
            got["spec"]["template"]["metadata"],
            json!({"annotations": {"x": "1"}})
        );
    }

    #[test]
    fn the_body_must_be_an_object() {
        let err =
            apply(&deployment(), &json!([]), &strategies::METADATA_ONLY).expect_err("refused");
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
    }
}
