//! Label and field selectors, parsed and matched the way the real apiserver
//! does (`k8s.io/apimachinery/pkg/labels` and `.../pkg/fields`), including the
//! wording of its parse errors.

use serde_json::{Map, Value};

/// Operator of one label-selector requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key=a`
    Equals,
    /// `key==a`
    DoubleEquals,
    /// `key!=a`
    NotEquals,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5`
    GreaterThan,
    /// `key<5`
    LessThan,
}

/// One requirement (`key op values`) of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: LabelOp,
    /// Values, sorted and de-duplicated (as the apiserver's `sets.String` does).
    pub values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = label(labels, &self.key);
        match self.op {
            LabelOp::In | LabelOp::Equals | LabelOp::DoubleEquals => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            LabelOp::NotIn | LabelOp::NotEquals => {
                value.is_none_or(|v| !self.values.iter().any(|x| x == v))
            }
            LabelOp::Exists => value.is_some(),
            LabelOp::DoesNotExist => value.is_none(),
            LabelOp::GreaterThan | LabelOp::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let Some(want) = self.values.first().and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                if self.op == LabelOp::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

fn label<'a>(labels: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    labels.get(key).and_then(Value::as_str)
}

/// A parsed labelSelector query parameter (=, ==, !=, in (a,b), notin (a,b), key (exists), !key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// All requirements; a label set matches when every requirement does.
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a label selector; errors read like the real apiserver's.
    pub fn parse(s: &str) -> Result<Self, String> {
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
        let requirements = p.parse()?;
        Ok(Self { requirements })
    }

    /// True when the selector selects nothing in particular (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// labels = metadata.labels (may be missing: pass an empty map).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn special_token(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn lex(s: &str) -> Vec<(Tok, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && is_whitespace(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            out.push((Tok::End, String::new()));
            return out;
        }
        if is_special(chars[i]) {
            // Longest special symbol that is a known token.
            let mut buf = String::new();
            let mut last: Option<(Tok, String)> = None;
            while i < chars.len() && is_special(chars[i]) {
                buf.push(chars[i]);
                match special_token(&buf) {
                    Some(t) => {
                        last = Some((t, buf.clone()));
                        i += 1;
                    }
                    None => break,
                }
            }
            match last {
                Some(t) => out.push(t),
                None => {
                    out.push((Tok::Error, format!("error expected: keyword found '{buf}'")));
                    i += 1;
                }
            }
        } else {
            let start = i;
            while i < chars.len() && !is_whitespace(chars[i]) && !is_special(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let tok = match word.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Identifier,
            };
            out.push((tok, word));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn item(&self) -> (Tok, String) {
        self.tokens
            .get(self.pos)
            .cloned()
            .unwrap_or((Tok::End, String::new()))
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        let (mut t, l) = self.item();
        if ctx == Ctx::Values && matches!(t, Tok::In | Tok::NotIn) {
            t = Tok::Identifier;
        }
        (t, l)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.lookahead(ctx);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        r
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (LabelOp::Exists | LabelOp::DoesNotExist)) = op {
            return new_requirement(key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            LabelOp::In | LabelOp::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        new_requirement(key, op, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<LabelOp>), String> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(LabelOp::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        if let Some(e) = validate_label_key(&lit, "key") {
            return Err(e);
        }
        let (t, _) = self.lookahead(Ctx::Values);
        if (t == Tok::End || t == Tok::Comma) && op.is_none() {
            op = Some(LabelOp::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<LabelOp, String> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => LabelOp::In,
            Tok::Equals => LabelOp::Equals,
            Tok::DoubleEquals => LabelOp::DoubleEquals,
            Tok::GreaterThan => LabelOp::GreaterThan,
            Tok::LessThan => LabelOp::LessThan,
            Tok::NotIn => LabelOp::NotIn,
            Tok::NotEquals => LabelOp::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut s: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    s.push(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(sorted_set(s)),
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.push(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        s.push(String::new());
                        return Ok(sorted_set(s));
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            return Ok(vec![lit]);
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

fn sorted_set(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn go_quote_list(vals: &[String]) -> String {
    let inner: Vec<String> = vals.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", inner.join(","))
}

fn new_requirement(key: String, op: LabelOp, values: Vec<String>) -> Result<Requirement, String> {
    let mut errs: Vec<String> = Vec::new();
    if let Some(e) = validate_label_key(&key, "key") {
        errs.push(e);
    }
    let list = go_quote_list(&values);
    match op {
        LabelOp::In | LabelOp::NotIn => {
            if values.is_empty() {
                errs.push(format!(
                    "values: Invalid value: {list}: for 'in', 'notin' operators, values set can't be empty"
                ));
            }
        }
        LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::NotEquals => {
            if values.len() != 1 {
                errs.push(format!(
                    "values: Invalid value: {list}: exact-match compatibility requires one single value"
                ));
            }
        }
        LabelOp::Exists | LabelOp::DoesNotExist => {
            if !values.is_empty() {
                errs.push(format!(
                    "values: Invalid value: {list}: values set must be empty for exists and does not exist"
                ));
            }
        }
        LabelOp::GreaterThan | LabelOp::LessThan => {
            if values.len() != 1 {
                errs.push(format!(
                    "values: Invalid value: {list}: for 'Gt', 'Lt' operators, exactly one value is required"
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(format!(
                        "values[{i}]: Invalid value: {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                    ));
                }
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = is_valid_label_value(v);
        if !msgs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {v:?}: {}",
                msgs.join("; ")
            ));
        }
    }
    match errs.len() {
        0 => Ok(Requirement { key, op, values }),
        1 => Err(errs.remove(0)),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}

// ---- validation (k8s.io/apimachinery/pkg/util/validation) ----

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => ok(f) && ok(l) && b.iter().all(|c| ok(c) || *c == b'-'),
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !s.split('.').all(is_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

fn is_valid_label_value(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !v.is_empty() && !is_qualified_name_part(v) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            &format!("({QUALIFIED_NAME_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

fn validate_label_key(k: &str, path: &str) -> Option<String> {
    let errs = is_qualified_name(k);
    if errs.is_empty() {
        None
    } else {
        Some(format!("{path}: Invalid value: {k:?}: {}", errs.join("; ")))
    }
}

// ---- field selectors (k8s.io/apimachinery/pkg/fields) ----

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

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn m(sel: &str, l: Value) -> bool {
        LabelSelector::parse(sel).unwrap().matches(&labels(l))
    }

    #[test]
    fn label_equals() {
        assert!(m("app=web", json!({"app": "web"})));
        assert!(m("app==web", json!({"app": "web"})));
        assert!(!m("app=web", json!({"app": "db"})));
        assert!(!m("app=web", json!({})));
        assert!(m(
            " app = web , tier=fe ",
            json!({"app": "web", "tier": "fe"})
        ));
        assert!(!m("app=web,tier=fe", json!({"app": "web"})));
        // empty value
        assert!(m("app=", json!({"app": ""})));
        assert!(!m("app=", json!({"app": "x"})));
    }

    #[test]
    fn label_not_equals() {
        assert!(m("app!=web", json!({"app": "db"})));
        assert!(m("app!=web", json!({})));
        assert!(!m("app!=web", json!({"app": "web"})));
    }

    #[test]
    fn label_in_notin() {
        let s = LabelSelector::parse("env in (prod, dev,prod)").unwrap();
        assert_eq!(s.requirements[0].values, vec!["dev", "prod"]);
        assert!(m("env in (prod,dev)", json!({"env": "dev"})));
        assert!(!m("env in (prod,dev)", json!({"env": "qa"})));
        assert!(!m("env in (prod,dev)", json!({})));
        assert!(m("env notin (prod,dev)", json!({"env": "qa"})));
        assert!(m("env notin (prod,dev)", json!({})));
        assert!(!m("env notin (prod,dev)", json!({"env": "prod"})));
        // "in" is a valid value and key
        assert!(m("in in (in)", json!({"in": "in"})));
        // empty list means the empty value
        assert!(m("env in ()", json!({"env": ""})));
    }

    #[test]
    fn label_exists() {
        assert!(m("app", json!({"app": "x"})));
        assert!(!m("app", json!({})));
        assert!(m("!app", json!({})));
        assert!(!m("!app", json!({"app": "x"})));
        assert!(m(
            "example.com/team,!legacy",
            json!({"example.com/team": "a"})
        ));
    }

    #[test]
    fn label_gt_lt() {
        assert!(m("n>5", json!({"n": "7"})));
        assert!(!m("n>5", json!({"n": "3"})));
        assert!(!m("n>5", json!({"n": "abc"})));
        assert!(m("n<5", json!({"n": "3"})));
        assert!(!m("n<5", json!({})));
    }

    #[test]
    fn label_empty() {
        let s = LabelSelector::parse("").unwrap();
        assert!(s.is_empty());
        assert!(s.matches(&Map::new()));
        assert!(LabelSelector::parse("   ").unwrap().is_empty());
    }

    #[test]
    fn label_errors() {
        let e = |s: &str| LabelSelector::parse(s).unwrap_err();
        assert_eq!(e("app=web,"), "found '', expected: identifier after ','");
        assert_eq!(
            e("app in"),
            "unable to parse requirement: found '' expected: '('"
        );
        assert_eq!(
            e("app in (a"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(e("app=a b"), "found 'b', expected: ',' or 'end of string'");
        assert_eq!(
            e("app foo"),
            "unable to parse requirement: found 'foo', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            e("=x"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            e("app==("),
            "unable to parse requirement: found '(', expected: identifier"
        );
        // "app==" is valid: the empty value.
        assert!(m("app==", json!({"app": ""})));
        assert_eq!(
            e("app notin a"),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert!(e("app=a@b").starts_with(
            "unable to parse requirement: values[0][app]: Invalid value: \"a@b\": a valid label must be an empty string"
        ));
        assert_eq!(
            e("-bad=x"),
            "unable to parse requirement: key: Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(e("Bad_Prefix/x=y").contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(e("a/b/c").contains("a qualified name must consist"));
        assert!(e("n>x").contains("for 'Gt', 'Lt' operators, the value must be an integer"));
        assert!(e("!app=x").contains("expected: ',' or 'end of string'"));
    }

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
