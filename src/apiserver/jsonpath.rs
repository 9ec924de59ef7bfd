//! The JSONPath subset printer columns use (`.a.b`, `[0]`, `[*]`, `[?(@.x=="y")]`, `..name`), as
//! kubectl's and the apiserver's `k8s.io/client-go/util/jsonpath` read it.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Field(String),
    Fields(Vec<String>),
    Indices(Vec<i64>),
    Slice(Option<i64>, Option<i64>, i64),
    Wildcard,
    Recursive,
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Path(Vec<Seg>),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    op: Option<(String, Operand)>,
}

/// JSONPath subset used by printer columns: `.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.type=="Ready")].status`, `['key.with.dots']`. Returns every match.
///
/// Also accepted: an enclosing `{...}`, a leading `$`, `.*`, `..name`
/// (recursive descent), negative indices, `[a:b]` slices, unions
/// (`[0,1]`, `['a','b']`), filter operators `== != < <= > >=` against
/// string/number/bool literals or `@` paths, and `[?(@.x)]` (existence).
/// Missing keys yield no match; an unparsable path yields no match.
pub fn jsonpath(obj: &Value, path: &str) -> Vec<Value> {
    let Ok(segs) = parse_path(path) else {
        return Vec::new();
    };
    eval(&segs, vec![obj]).into_iter().cloned().collect()
}

fn parse_path(path: &str) -> Result<Vec<Seg>, String> {
    let mut p = path.trim();
    if let Some(inner) = p.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        p = inner.trim();
    }
    let p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let mut pos = 0;
    let segs = parse_segments(&chars, &mut pos, true)?;
    if pos != chars.len() {
        return Err(format!("unexpected {:?} at {pos}", chars[pos]));
    }
    Ok(segs)
}

fn is_name_char(c: char) -> bool {
    !matches!(
        c,
        '.' | '[' | ']' | '(' | ')' | ' ' | '=' | '!' | '<' | '>' | ',' | '\'' | '"' | '&' | '|'
    )
}

/// Parses segments until something that can't continue a path (used for both
/// the top-level path and `@...` operands inside filters).
fn parse_segments(chars: &[char], pos: &mut usize, top: bool) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    // A relaxed path may start with a bare name ("metadata.name").
    if top && *pos < chars.len() && is_name_char(chars[*pos]) && chars[*pos] != '*' {
        segs.push(Seg::Field(read_name(chars, pos)));
    }
    while *pos < chars.len() {
        match chars[*pos] {
            '.' => {
                *pos += 1;
                if chars.get(*pos) == Some(&'.') {
                    *pos += 1;
                    segs.push(Seg::Recursive);
                    if chars.get(*pos) == Some(&'[') {
                        continue;
                    }
                }
                if chars.get(*pos) == Some(&'*') {
                    *pos += 1;
                    segs.push(Seg::Wildcard);
                } else {
                    let name = read_name(chars, pos);
                    if name.is_empty() {
                        if *pos == chars.len() && segs.is_empty() {
                            // "." alone: the object itself.
                            continue;
                        }
                        return Err("empty field name".into());
                    }
                    segs.push(Seg::Field(name));
                }
            }
            '[' => {
                *pos += 1;
                segs.push(parse_bracket(chars, pos)?);
            }
            _ => break,
        }
    }
    Ok(segs)
}

fn read_name(chars: &[char], pos: &mut usize) -> String {
    let start = *pos;
    while *pos < chars.len() && is_name_char(chars[*pos]) {
        *pos += 1;
    }
    chars[start..*pos].iter().collect()
}

fn skip_ws(chars: &[char], pos: &mut usize) {
    while *pos < chars.len() && chars[*pos].is_whitespace() {
        *pos += 1;
    }
}

fn read_quoted(chars: &[char], pos: &mut usize) -> Result<String, String> {
    let q = chars[*pos];
    *pos += 1;
    let mut s = String::new();
    while *pos < chars.len() {
        let c = chars[*pos];
        *pos += 1;
        if c == '\\' && *pos < chars.len() {
            s.push(chars[*pos]);
            *pos += 1;
        } else if c == q {
            return Ok(s);
        } else {
            s.push(c);
        }
    }
    Err("unterminated quote".into())
}

fn expect(chars: &[char], pos: &mut usize, c: char) -> Result<(), String> {
    skip_ws(chars, pos);
    if chars.get(*pos) == Some(&c) {
        *pos += 1;
        Ok(())
    } else {
        Err(format!("expected {c:?} at {pos}"))
    }
}

fn parse_bracket(chars: &[char], pos: &mut usize) -> Result<Seg, String> {
    skip_ws(chars, pos);
    match chars.get(*pos) {
        Some('*') => {
            *pos += 1;
            expect(chars, pos, ']')?;
            Ok(Seg::Wildcard)
        }
        Some('?') => {
            *pos += 1;
            expect(chars, pos, '(')?;
            let f = parse_filter(chars, pos)?;
            expect(chars, pos, ')')?;
            expect(chars, pos, ']')?;
            Ok(Seg::Filter(f))
        }
        Some('\'' | '"') => parse_quoted_names(chars, pos),
        _ => parse_indices(chars, pos),
    }
}

/// `['a']` or the union `['a','b']`.
fn parse_quoted_names(chars: &[char], pos: &mut usize) -> Result<Seg, String> {
    let mut names = Vec::new();
    loop {
        skip_ws(chars, pos);
        if !matches!(chars.get(*pos), Some('\'' | '"')) {
            return Err("expected quoted name".into());
        }
        names.push(read_quoted(chars, pos)?);
        skip_ws(chars, pos);
        match chars.get(*pos) {
            Some(',') => *pos += 1,
            Some(']') => {
                *pos += 1;
                break;
            }
            _ => return Err("expected ',' or ']'".into()),
        }
    }
    if names.len() == 1 {
        Ok(Seg::Field(names.remove(0)))
    } else {
        Ok(Seg::Fields(names))
    }
}

/// `[0]`, the union `[0,1]` or the slice `[a:b:step]`.
fn parse_indices(chars: &[char], pos: &mut usize) -> Result<Seg, String> {
    let start = *pos;
    while *pos < chars.len() && chars[*pos] != ']' {
        *pos += 1;
    }
    if *pos >= chars.len() {
        return Err("unterminated '['".into());
    }
    let inner: String = chars[start..*pos].iter().collect();
    *pos += 1;
    let inner = inner.trim();
    let int = |s: &str| -> Result<Option<i64>, String> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse::<i64>().map(Some).map_err(|e| e.to_string())
        }
    };
    if inner.contains(':') {
        let parts: Vec<&str> = inner.split(':').collect();
        if parts.len() > 3 {
            return Err("bad slice".into());
        }
        let a = int(parts[0])?;
        let b = int(parts.get(1).copied().unwrap_or(""))?;
        let step = int(parts.get(2).copied().unwrap_or(""))?.unwrap_or(1);
        if step <= 0 {
            return Err("bad slice step".into());
        }
        return Ok(Seg::Slice(a, b, step));
    }
    let mut idx = Vec::new();
    for part in inner.split(',') {
        idx.push(int(part)?.ok_or("empty index")?);
    }
    Ok(Seg::Indices(idx))
}

fn parse_operand(chars: &[char], pos: &mut usize) -> Result<Operand, String> {
    skip_ws(chars, pos);
    match chars.get(*pos) {
        Some('@') => {
            *pos += 1;
            Ok(Operand::Path(parse_segments(chars, pos, false)?))
        }
        Some('\'' | '"') => Ok(Operand::Literal(Value::String(read_quoted(chars, pos)?))),
        Some(_) => {
            let start = *pos;
            while *pos < chars.len()
                && !chars[*pos].is_whitespace()
                && !matches!(chars[*pos], ')' | '=' | '!' | '<' | '>')
            {
                *pos += 1;
            }
            let lit: String = chars[start..*pos].iter().collect();
            match lit.as_str() {
                "true" => Ok(Operand::Literal(Value::Bool(true))),
                "false" => Ok(Operand::Literal(Value::Bool(false))),
                "nil" | "null" => Ok(Operand::Literal(Value::Null)),
                _ => serde_json::from_str::<serde_json::Number>(&lit)
                    .map(|n| Operand::Literal(Value::Number(n)))
                    .map_err(|_| format!("unrecognized literal {lit:?}")),
            }
        }
        None => Err("missing operand".into()),
    }
}

fn parse_filter(chars: &[char], pos: &mut usize) -> Result<Filter, String> {
    let left = parse_operand(chars, pos)?;
    skip_ws(chars, pos);
    let rest: String = chars[*pos..].iter().take(2).collect();
    let op = ["==", "!=", "<=", ">=", "<", ">"]
        .into_iter()
        .find(|op| rest.starts_with(op));
    let Some(op) = op else {
        return Ok(Filter { left, op: None });
    };
    *pos += op.len();
    let right = parse_operand(chars, pos)?;
    Ok(Filter {
        left,
        op: Some((op.to_string(), right)),
    })
}

fn eval<'a>(segs: &[Seg], mut cur: Vec<&'a Value>) -> Vec<&'a Value> {
    for seg in segs {
        let mut next: Vec<&'a Value> = Vec::new();
        for v in cur {
            match seg {
                Seg::Field(name) => {
                    if let Some(x) = v.as_object().and_then(|m| m.get(name)) {
                        next.push(x);
                    }
                }
                Seg::Fields(names) => {
                    if let Some(m) = v.as_object() {
                        next.extend(names.iter().filter_map(|n| m.get(n)));
                    }
                }
                Seg::Indices(idx) => {
                    if let Some(a) = v.as_array() {
                        for &i in idx {
                            let i = if i < 0 { a.len() as i64 + i } else { i };
                            if let Some(x) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                next.push(x);
                            }
                        }
                    }
                }
                Seg::Slice(start, end, step) => {
                    if let Some(a) = v.as_array() {
                        let len = a.len() as i64;
                        let norm = |x: i64| if x < 0 { (len + x).max(0) } else { x.min(len) };
                        let s = norm(start.unwrap_or(0));
                        let e = norm(end.unwrap_or(len));
                        let mut i = s;
                        while i < e {
                            if let Some(x) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                                next.push(x);
                            }
                            i += step;
                        }
                    }
                }
                Seg::Wildcard => match v {
                    Value::Object(m) => next.extend(m.values()),
                    Value::Array(a) => next.extend(a.iter()),
                    _ => {}
                },
                Seg::Recursive => collect_all(v, &mut next),
                Seg::Filter(f) => {
                    if let Some(a) = v.as_array() {
                        next.extend(a.iter().filter(|item| filter_matches(f, item)));
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn collect_all<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Object(m) => m.values().for_each(|x| collect_all(x, out)),
        Value::Array(a) => a.iter().for_each(|x| collect_all(x, out)),
        _ => {}
    }
}

fn operand_value<'a>(o: &'a Operand, item: &'a Value) -> Option<&'a Value> {
    match o {
        Operand::Literal(v) => Some(v),
        Operand::Path(segs) => eval(segs, vec![item]).into_iter().next(),
    }
}

fn filter_matches(f: &Filter, item: &Value) -> bool {
    let Some(left) = operand_value(&f.left, item) else {
        return false;
    };
    let Some((op, right)) = &f.op else {
        return true;
    };
    let Some(right) = operand_value(right, item) else {
        return false;
    };
    let ord = match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(std::cmp::Ordering::Equal),
        _ => None,
    };
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op.as_str() {
        "==" => ord == Some(Equal),
        "!=" => ord != Some(Equal),
        "<" => ord == Some(Less),
        "<=" => matches!(ord, Some(Less | Equal)),
        ">" => ord == Some(Greater),
        ">=" => matches!(ord, Some(Greater | Equal)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p1", "labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"containers": [{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]},
            "status": {
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "False", "n": 2}
                ],
                "replicas": 3,
                "ratio": 0.5
            }
        })
    }

    #[test]
    fn jsonpath_basic() {
        let p = pod();
        assert_eq!(jsonpath(&p, ".metadata.name"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, "{.metadata.name}"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, "$.metadata.name"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, "metadata.name"), vec![json!("p1")]);
        assert_eq!(jsonpath(&p, ".spec.containers[0].name"), vec![json!("a")]);
        assert_eq!(jsonpath(&p, ".spec.containers[-1].name"), vec![json!("b")]);
        assert_eq!(
            jsonpath(&p, ".spec.containers[*].image"),
            vec![json!("ia"), json!("ib")]
        );
        assert_eq!(jsonpath(&p, ".spec.containers[0:1].name"), vec![json!("a")]);
        assert_eq!(
            jsonpath(&p, ".spec.containers[0,1].name"),
            vec![json!("a"), json!("b")]
        );
        assert_eq!(
            jsonpath(&p, ".metadata.labels['app.kubernetes.io/name']"),
            vec![json!("x")]
        );
        assert_eq!(
            jsonpath(&p, r#".metadata["labels"]["app.kubernetes.io/name"]"#),
            vec![json!("x")]
        );
        assert_eq!(jsonpath(&p, "..image"), vec![json!("ia"), json!("ib")]);
        assert!(jsonpath(&p, ".spec.missing.x").is_empty());
        assert!(jsonpath(&p, ".spec.containers[5]").is_empty());
        assert!(jsonpath(&p, ".spec[").is_empty());
        assert_eq!(jsonpath(&p, ".metadata.*").len(), 2);
    }

    #[test]
    fn jsonpath_filter() {
        let p = pod();
        assert_eq!(
            jsonpath(&p, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec![json!("False")]
        );
        assert_eq!(
            jsonpath(&p, ".status.conditions[?(@.type == 'Ready')].status"),
            vec![json!("False")]
        );
        assert_eq!(
            jsonpath(&p, r#".status.conditions[?(@.type!="Ready")].type"#),
            vec![json!("Initialized")]
        );
        assert_eq!(
            jsonpath(&p, ".status.conditions[?(@.n)].type"),
            vec![json!("Ready")]
        );
        assert_eq!(
            jsonpath(&p, ".status.conditions[?(@.n >= 2)].type"),
            vec![json!("Ready")]
        );
        assert!(jsonpath(&p, ".status.conditions[?(@.n < 2)].type").is_empty());
        assert!(jsonpath(&p, r#".status.conditions[?(@.type=="Nope")].status"#).is_empty());
    }
}
