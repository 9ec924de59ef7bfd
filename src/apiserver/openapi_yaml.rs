//! The YAML text gnostic keeps in an `Any` (a vendor extension's value, a `default`, an enum).
//!
//! It is yaml.v3's Marshal of the JSON value's node with its styles cleared, byte for byte.
//!
//! gnostic's compiler parses the JSON document as YAML (go.yaml.in/yaml/v3), and for each
//! `Any` calls `compiler.Marshal(node)`: the node's styles are cleared and yaml.v3 emits it in
//! block style with its default indent of 4. This is a port of the part of yaml.v3's emitter
//! (emitterc.go, encode.go, resolve.go) such a node reaches: block sequences and mappings, `[]`
//! and `{}` for empty ones, plain, single- and double-quoted and literal scalars, simple and
//! `?` keys; no comments, anchors, tags or flow style, which JSON cannot produce. Lines are not
//! folded (yaml.v3 sets no width). A string whose plain form would read back as another type
//! (`"true"`, `"1"`, `""`, `"2024-01-02"`) is double-quoted, as yaml.v3's encoder forces it.

use serde_json::Value;

/// `compiler.Marshal` of a JSON value, as gnostic stores it in `Any.yaml`.
pub fn marshal(v: &Value) -> String {
    let mut e = Emitter {
        out: Vec::new(),
        column: 0,
        whitespace: true,
        indention: true,
        indent: -1,
        indents: Vec::new(),
    };
    e.node(v, Ctx::Root);
    // Document end (implicit): a line break unless the last line already ended.
    e.write_indent();
    String::from_utf8(e.out).unwrap_or_default()
}

const BEST_INDENT: i64 = 4;

/// Where a node stands, as the emitter's `root/sequence/mapping/simple_key` context and the
/// state on top of its stack (only "a sequence item" changes the indentation).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Root,
    SeqItem,
    SimpleKey,
    ComplexKey,
    Value,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: Vec<u8>,
    column: i64,
    whitespace: bool,
    indention: bool,
    indent: i64,
    indents: Vec<i64>,
}

/// A scalar as yaml.v3 holds it after parsing JSON: its text and whether its tag is `!!str`
/// (a JSON string) or the tag its plain text resolves to (numbers, booleans, null).
struct Scalar<'a> {
    text: std::borrow::Cow<'a, str>,
    is_str: bool,
}

fn scalar(v: &Value) -> Option<Scalar<'_>> {
    Some(match v {
        Value::String(s) => Scalar {
            text: s.as_str().into(),
            is_str: true,
        },
        Value::Number(n) => Scalar {
            text: n.to_string().into(),
            is_str: false,
        },
        Value::Bool(b) => Scalar {
            text: if *b { "true" } else { "false" }.into(),
            is_str: false,
        },
        Value::Null => Scalar {
            text: "null".into(),
            is_str: false,
        },
        _ => return None,
    })
}

impl Emitter {
    fn node(&mut self, v: &Value, ctx: Ctx) {
        match v {
            Value::Array(items) if items.is_empty() => self.empty_flow(b"[", b"]"),
            Value::Object(map) if map.is_empty() => self.empty_flow(b"{", b"}"),
            Value::Array(items) => {
                self.increase_indent(false, ctx);
                for item in items {
                    self.write_indent();
                    self.write_indicator(b"-", true, false, true);
                    self.node(item, Ctx::SeqItem);
                }
                self.pop_indent();
            }
            Value::Object(map) => {
                self.increase_indent(false, ctx);
                for (k, val) in map {
                    self.write_indent();
                    let key = Value::String(k.clone());
                    if simple_key(k) {
                        self.node(&key, Ctx::SimpleKey);
                        self.write_indicator(b":", false, false, false);
                    } else {
                        self.write_indicator(b"?", true, false, true);
                        self.node(&key, Ctx::ComplexKey);
                        self.write_indent();
                        self.write_indicator(b":", true, false, true);
                    }
                    self.node(val, Ctx::Value);
                }
                self.pop_indent();
            }
            _ => {
                if let Some(s) = scalar(v) {
                    self.scalar(&s, ctx);
                }
            }
        }
    }

    fn empty_flow(&mut self, open: &[u8], close: &[u8]) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, Ctx::Value);
        self.pop_indent();
        if self.column == 0 {
            self.write_indent();
        }
        self.write_indicator(close, false, false, false);
    }

    fn scalar(&mut self, s: &Scalar<'_>, ctx: Ctx) {
        let value = s.text.as_bytes();
        let simple_key_context = ctx == Ctx::SimpleKey;
        // encode.go: a string whose plain text resolves to another tag is double-quoted; one
        // with a line break asks for the literal style.
        let mut style = if s.is_str && value.contains(&b'\n') {
            Style::Literal
        } else if s.is_str && !resolves_to_str(&s.text) {
            Style::Double
        } else {
            Style::Plain
        };
        // emitterc.go yaml_emitter_select_scalar_style (block context, flow_level 0).
        let a = analyze(value);
        if simple_key_context && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain
            && (!a.block_plain_allowed || (value.is_empty() && simple_key_context))
        {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key_context) {
            style = Style::Double;
        }
        self.increase_indent(true, ctx);
        match style {
            Style::Plain => self.write_plain(value),
            Style::Single => self.write_single_quoted(value),
            Style::Double => self.write_double_quoted(value),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn increase_indent(&mut self, flow: bool, ctx: Ctx) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if ctx == Ctx::SeqItem {
            self.indent += 2;
        } else {
            self.indent = BEST_INDENT * ((self.indent + BEST_INDENT) / BEST_INDENT);
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn put(&mut self, b: u8) {
        self.out.push(b);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
        self.indention = true;
    }

    /// Copies one character (all its UTF-8 bytes) from `s` at `*i`.
    fn write(&mut self, s: &[u8], i: &mut usize) {
        let w = width(s[*i]);
        self.out.extend_from_slice(&s[*i..(*i + w).min(s.len())]);
        self.column += 1;
        *i += w;
    }

    fn write_break(&mut self, s: &[u8], i: &mut usize) {
        if s[*i] == b'\n' {
            self.put_break();
            *i += 1;
        } else {
            self.write(s, i);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(b' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &[u8],
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(b' ');
        }
        let mut i = 0;
        while i < indicator.len() {
            self.write(indicator, &mut i);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, value: &[u8]) {
        if !value.is_empty() && !self.whitespace {
            self.put(b' ');
        }
        let mut i = 0;
        while i < value.len() {
            if is_break(value, i) {
                self.write_break(value, &mut i);
            } else {
                self.write(value, &mut i);
                self.indention = false;
            }
        }
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single_quoted(&mut self, value: &[u8]) {
        self.write_indicator(b"'", true, false, false);
        let mut breaks = false;
        let mut i = 0;
        while i < value.len() {
            if value[i] == b' ' {
                self.write(value, &mut i);
            } else if is_break(value, i) {
                if !breaks && value[i] == b'\n' {
                    self.put_break();
                }
                self.write_break(value, &mut i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if value[i] == b'\'' {
                    self.put(b'\'');
                }
                self.write(value, &mut i);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator(b"'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, value: &[u8]) {
        self.write_indicator(b"\"", true, false, false);
        let bom = value.starts_with(&[0xEF, 0xBB, 0xBF]);
        let mut i = 0;
        while i < value.len() {
            let c = value[i];
            if !is_printable(value, i) || bom || is_break(value, i) || c == b'"' || c == b'\\' {
                let w = width(c);
                let ch = std::str::from_utf8(&value[i..(i + w).min(value.len())])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or(0, u32::from);
                i += w;
                self.put(b'\\');
                let short = match ch {
                    0x00 => Some(b'0'),
                    0x07 => Some(b'a'),
                    0x08 => Some(b'b'),
                    0x09 => Some(b't'),
                    0x0A => Some(b'n'),
                    0x0B => Some(b'v'),
                    0x0C => Some(b'f'),
                    0x0D => Some(b'r'),
                    0x1B => Some(b'e'),
                    0x22 => Some(b'"'),
                    0x5C => Some(b'\\'),
                    0x85 => Some(b'N'),
                    0xA0 => Some(b'_'),
                    0x2028 => Some(b'L'),
                    0x2029 => Some(b'P'),
                    _ => None,
                };
                match short {
                    Some(b) => self.put(b),
                    None => {
                        let (letter, digits) = match ch {
                            0..=0xFF => (b'x', 2),
                            0x100..=0xFFFF => (b'u', 4),
                            _ => (b'U', 8),
                        };
                        self.put(letter);
                        for k in (0..digits).rev() {
                            let d = ((ch >> (k * 4)) & 0xF) as u8;
                            self.put(if d < 10 { b'0' + d } else { b'A' + d - 10 });
                        }
                    }
                }
            } else {
                self.write(value, &mut i);
            }
        }
        self.write_indicator(b"\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &[u8]) {
        self.write_indicator(b"|", true, false, false);
        // Block scalar hints: an indentation digit when the text starts with a space or a
        // break; `-` when it ends without a break, `+` when it ends with two (or is one).
        if value.first().is_some_and(|&c| c == b' ') || (!value.is_empty() && is_break(value, 0)) {
            self.write_indicator(&[b'0' + BEST_INDENT as u8], false, false, false);
        }
        let chomp = if value.is_empty() {
            Some(b'-')
        } else {
            let mut i = value.len() - 1;
            while i > 0 && value[i] & 0xC0 == 0x80 {
                i -= 1;
            }
            if !is_break(value, i) {
                Some(b'-')
            } else if i == 0 {
                Some(b'+')
            } else {
                i -= 1;
                while i > 0 && value[i] & 0xC0 == 0x80 {
                    i -= 1;
                }
                is_break(value, i).then_some(b'+')
            }
        };
        if let Some(c) = chomp {
            self.write_indicator(&[c], false, false, false);
        }
        self.whitespace = true;
        let mut breaks = true;
        let mut i = 0;
        while i < value.len() {
            if is_break(value, i) {
                self.write_break(value, &mut i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write(value, &mut i);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// emitterc.go yaml_emitter_check_simple_key for a string key: one line, at most 128 bytes.
fn simple_key(k: &str) -> bool {
    !analyze(k.as_bytes()).multiline && k.len() <= 128
}

/// What yaml_emitter_analyze_scalar finds of a scalar (the block-context answers).
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn analyze(value: &[u8]) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = value.starts_with(b"---") || value.starts_with(b"...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut i = 0;
    while i < value.len() {
        let w = width(value[i]);
        let followed_by_whitespace = i + w >= value.len() || is_blank(value, i + w);
        let c = value[i];
        if i == 0 {
            match c {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>'
                | b'\'' | b'"' | b'%' | b'@' | b'`' => block_indicators = true,
                b'?' | b':' | b'-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                b':' if followed_by_whitespace => block_indicators = true,
                b'#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if c == b'\t' {
            tabs = true;
        } else if !is_printable(value, i) {
            special = true;
        }
        if c == b' ' {
            leading_space |= i == 0;
            trailing_space |= i + w == value.len();
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(value, i) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i + w == value.len();
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(value, i) || is_break(value, i) || c == 0;
        i += w;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn width(b: u8) -> usize {
    match b {
        _ if b & 0x80 == 0 => 1,
        _ if b & 0xE0 == 0xC0 => 2,
        _ if b & 0xF0 == 0xE0 => 3,
        _ if b & 0xF8 == 0xF0 => 4,
        _ => 1,
    }
}

fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

fn is_blank(b: &[u8], i: usize) -> bool {
    matches!(at(b, i), b' ' | b'\t')
}

fn is_break(b: &[u8], i: usize) -> bool {
    let c = at(b, i);
    c == b'\r'
        || c == b'\n'
        || (c == 0xC2 && at(b, i + 1) == 0x85)
        || (c == 0xE2 && at(b, i + 1) == 0x80 && matches!(at(b, i + 2), 0xA8 | 0xA9))
}

fn is_printable(b: &[u8], i: usize) -> bool {
    let (c, n1, n2) = (at(b, i), at(b, i + 1), at(b, i + 2));
    c == 0x0A
        || (0x20..=0x7E).contains(&c)
        || (c == 0xC2 && n1 >= 0xA0)
        || (c > 0xC2 && c < 0xED)
        || (c == 0xED && n1 < 0xA0)
        || c == 0xEE
        || (c == 0xEF && !(n1 == 0xBB && n2 == 0xBF) && !(n1 == 0xBF && matches!(n2, 0xBE | 0xBF)))
}

/// Whether yaml.v3's `resolve("", s)` keeps a plain `s` a string (resolve.go): not null, a
/// boolean, a number (decimal, 0x/0o/0b/leading-0 octal, `_` separators, YAML floats, `.inf`,
/// `.nan`), a timestamp or the merge key.
fn resolves_to_str(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", ".nan",
        ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf",
        "-.INF", "<<",
    ];
    let Some(first) = s.bytes().next() else {
        return false;
    };
    match first {
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => {
            !SPECIAL.contains(&s)
        }
        b'.' => !SPECIAL.contains(&s) && !go_float(s),
        b'0'..=b'9' | b'+' | b'-' => {
            if SPECIAL.contains(&s) || is_timestamp(s) {
                return false;
            }
            let plain = s.replace('_', "");
            !(go_int_base0(&plain) || yaml_style_float(&plain))
        }
        _ => true,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint(s, 0, 64)` succeeds (underscores removed).
fn go_int_base0(s: &str) -> bool {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() {
        return false;
    }
    match u64::from_str_radix(digits, radix) {
        Ok(v) if neg => v <= 1 << 63,
        Ok(_) => true,
        Err(_) => false,
    }
}

/// yaml.v3's `yamlStyleFloat` (`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`) and a
/// finite value.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len() && s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Go's `strconv.ParseFloat(s, 64)` for a string starting with `.`.
fn go_float(s: &str) -> bool {
    yaml_style_float(s)
}

/// yaml.v3's parseTimestamp: `2006-1-2`, `2006-1-2 15:4:5[.frac]`, or `2006-1-2T15:4:5[.frac]`
/// with `Z` or a `±07:00` zone.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let num = |i: &mut usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max && b[*i].is_ascii_digit() {
            *i += 1;
        }
        (*i > start).then(|| s[start..*i].parse().ok()).flatten()
    };
    let mut i = 5;
    let year: u32 = s[..4].parse().unwrap_or(0);
    let Some(month) = num(&mut i, 2) else {
        return false;
    };
    if b.get(i) != Some(&b'-') {
        return false;
    }
    i += 1;
    let Some(day) = num(&mut i, 2) else {
        return false;
    };
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > days[month as usize - 1] {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zoned = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    let (Some(h), true) = (num(&mut i, 2), b.get(i) == Some(&b':')) else {
        return false;
    };
    i += 1;
    let (Some(m), true) = (num(&mut i, 2), b.get(i) == Some(&b':')) else {
        return false;
    };
    i += 1;
    let Some(sec) = num(&mut i, 2) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if !zoned {
        return i == b.len();
    }
    match &s[i..] {
        "Z" => true,
        zone => {
            let z = zone.as_bytes();
            z.len() == 6
                && matches!(z[0], b'+' | b'-')
                && z[1..3].iter().all(u8::is_ascii_digit)
                && z[3] == b':'
                && z[4..6].iter().all(u8::is_ascii_digit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::marshal;
    use serde_json::json;

    // Expected texts are what gnostic-models (go.yaml.in/yaml/v3) writes for the same JSON.
    #[test]
    fn block_layout_as_yaml_v3_writes_it() {
        let gvk = json!([{"group": "", "kind": "ConfigMap", "version": "v1"}]);
        assert_eq!(
            marshal(&gvk),
            "- group: \"\"\n  kind: ConfigMap\n  version: v1\n"
        );
        assert_eq!(
            marshal(&json!({"a": [1, 2.5, "x"], "b": {}})),
            "a:\n    - 1\n    - 2.5\n    - x\nb: {}\n"
        );
        assert_eq!(
            marshal(&json!("line1\nline2")),
            "|-\n    line1\n    line2\n"
        );
    }

    #[test]
    fn strings_that_would_read_back_otherwise_are_quoted() {
        assert_eq!(marshal(&json!("a: b")), "'a: b'\n");
        assert_eq!(marshal(&json!("1")), "\"1\"\n");
        assert_eq!(marshal(&json!("")), "\"\"\n");
        assert_eq!(marshal(&json!(true)), "true\n");
        assert_eq!(marshal(&json!("true")), "\"true\"\n");
        assert_eq!(marshal(&json!("2024-02-29")), "\"2024-02-29\"\n");
        assert_eq!(marshal(&json!("2023-02-29")), "2023-02-29\n");
        assert_eq!(marshal(&json!("yes")), "yes\n");
        assert_eq!(marshal(&json!("tab\there")), "\"tab\\there\"\n");
    }

    #[test]
    fn the_corner_cases_yaml_v3_has() {
        // A multi-line key is a `?` key; a text ending in two breaks keeps them (`|+`).
        assert_eq!(
            marshal(&json!({"a b": "on", "line1\nline2\n\n": [false]})),
            "a b: on\n? |+\n    line1\n    line2\n\n:   - false\n"
        );
        assert_eq!(
            marshal(&json!({"line1\nline2": "line1\nline2"})),
            "? |-\n    line1\n    line2\n: |-\n    line1\n    line2\n"
        );
        assert_eq!(marshal(&json!("\n")), "|4+\n");
        // Outside the Basic Multilingual Plane, and after a byte-order mark, everything is escaped.
        assert_eq!(
            marshal(&json!("emoji \u{1F600}")),
            "\"emoji \\U0001F600\"\n"
        );
        assert_eq!(
            marshal(&json!("\u{FEFF}bom")),
            "\"\\uFEFF\\x62\\x6F\\x6D\"\n"
        );
        // A line separator is a break inside single quotes.
        assert_eq!(marshal(&json!("ls\u{2028}x")), "'ls\u{2028}    x'\n");
        assert_eq!(marshal(&json!("? q")), "'? q'\n");
    }
}
