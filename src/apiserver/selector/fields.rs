//! Field selectors (`k8s.io/apimachinery/pkg/fields`): parsed and matched the way the real
//! apiserver does, including the wording of its parse errors.

use serde_json::Value;

/// A parsed fieldSelector (k=v, k==v, k!=v, comma-separated AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// `(field, equal, value)`: `equal` is false for `!=`. Values are unescaped.
    pub requirements: Vec<(String, bool /*equal*/, String)>,
}

impl FieldSelector {
    /// Parses a field selector; errors read like the real apiserver's.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut requirements = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(&part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_value(rhs)?;
            requirements.push((lhs.to_string(), op != "!=", value));
        }
        Ok(Self { requirements })
    }

    /// True when the selector has no requirements (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// `get` resolves a field path like "metadata.name" or "involvedObject.kind" to its string value on the object (None if absent -> treated as "").
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|(field, equal, value)| {
            let have = get(field).unwrap_or_default();
            (have == *value) == *equal
        })
    }
}

fn split_terms(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            in_slash = false;
            cur.push(c);
        } else if c == '\\' {
            in_slash = true;
            cur.push(c);
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], op, rhs));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go formats the rune with %v, i.e. as its code point.
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// Resolves a dotted field path ("metadata.namespace", "involvedObject.uid", "regarding.name", "spec.foo") on a JSON object to a string (strings as-is, numbers/bools via to_string).
pub fn field_value(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for seg in path.split('.') {
        cur = cur.as_object()?.get(seg)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selector() {
        let s = FieldSelector::parse("metadata.name=foo,involvedObject.kind!=Pod").unwrap();
        assert_eq!(
            s.requirements,
            vec![
                ("involvedObject.kind".to_string(), false, "Pod".to_string()),
                ("metadata.name".to_string(), true, "foo".to_string()),
            ]
        );
        let obj = json!({"metadata": {"name": "foo", "generation": 3}, "involvedObject": {"kind": "Node"}, "spec": {"ok": true}});
        assert!(s.matches(|p| field_value(&obj, p)));
        let obj2 = json!({"metadata": {"name": "foo"}, "involvedObject": {"kind": "Pod"}});
        assert!(!s.matches(|p| field_value(&obj2, p)));

        let s = FieldSelector::parse("metadata.name==foo").unwrap();
        assert!(s.requirements[0].1);
        // absent field is ""
        let s = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(s.matches(|p| field_value(&obj, p)));
        let s = FieldSelector::parse("spec.nodeName!=").unwrap();
        assert!(!s.matches(|p| field_value(&obj, p)));

        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert_eq!(
            field_value(&obj, "metadata.generation").as_deref(),
            Some("3")
        );
        assert_eq!(field_value(&obj, "spec.ok").as_deref(), Some("true"));
        assert_eq!(field_value(&obj, "spec"), None);
        assert_eq!(field_value(&obj, "nope.x"), None);

        // escaping
        let s = FieldSelector::parse(r"metadata.name=a\,b\=c\\d").unwrap();
        assert_eq!(s.requirements[0].2, r"a,b=c\d");
    }

    #[test]
    fn field_selector_errors() {
        assert_eq!(
            FieldSelector::parse("metadata.name").unwrap_err(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\x").unwrap_err(),
            r"invalid field selector: invalid escape sequence: \x"
        );
    }
}
