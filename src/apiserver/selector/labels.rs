//! Label selectors (`k8s.io/apimachinery/pkg/labels`): parsed and matched the way the real
//! apiserver does, including the wording of its parse errors.

use crate::apiserver::admission::names::{is_valid_label_value, validate_label_key};
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
}
