//! Values as Python writes them: `str()` (what jinja2 prints for `{{ x }}` and `x | string`),
//! `repr()` (strings inside printed containers), float repr, and `json.dumps` (transformers'
//! `tojson` filter). minijinja's own formatting prints `none`, `true` and `[1, "a"]` where
//! Python prints `None`, `True` and `[1, 'a']`.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, Output, State};

/// Containers nested deeper than this are an error rather than a deep recursion (a namespace
/// can even contain itself).
const MAX_DEPTH: usize = 128;

/// The longest `tojson` result.
const MAX_JSON: usize = 64 << 20;

/// The formatter: `{{ value }}` writes Python's `str(value)`.
pub(super) fn format_value(out: &mut Output, _: &mut State, value: &Value) -> Result<(), Error> {
    let written = match value.as_str() {
        Some(s) => out.write_str(s),
        None => out.write_str(&to_str(value)),
    };
    written.map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write the output"))
}

/// `x | string`: Python's `str(x)`.
pub(super) fn string_filter(value: &Value) -> Value {
    match value.as_str() {
        Some(_) => value.clone(),
        None => Value::from(to_str(value)),
    }
}

/// jinja2's `iterable` test: whatever Python's `iter()` accepts (an undefined value, strings,
/// lists, dicts), not None or a number. minijinja iterates over none as over nothing.
pub(super) fn is_iterable(value: &Value) -> bool {
    matches!(
        value.kind(),
        ValueKind::Undefined
            | ValueKind::String
            | ValueKind::Seq
            | ValueKind::Map
            | ValueKind::Iterable
    )
}

/// jinja2's `sequence` test: has a length and items (an undefined value, strings, lists, dicts).
pub(super) fn is_sequence(value: &Value) -> bool {
    matches!(
        value.kind(),
        ValueKind::Undefined | ValueKind::String | ValueKind::Seq | ValueKind::Map
    )
}

/// Python's `str(value)`; an undefined value is empty (jinja2's lenient `Undefined`).
pub(super) fn to_str(value: &Value) -> String {
    let mut out = String::new();
    write_py(&mut out, value, false, 0);
    out
}

/// Python's `repr(value)`.
pub(super) fn to_repr(value: &Value) -> String {
    let mut out = String::new();
    write_py(&mut out, value, true, 0);
    out
}

fn write_py(out: &mut String, value: &Value, repr: bool, depth: usize) {
    if depth > MAX_DEPTH {
        out.push_str("...");
        return;
    }
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => write_number(out, value),
        ValueKind::String => match value.as_str() {
            Some(s) if repr => write_repr_str(out, s),
            Some(s) => out.push_str(s),
            None => {}
        },
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_py(out, &item, true, depth + 1);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Some(pairs) = value.as_object().and_then(|o| o.try_iter_pairs()) {
                for (i, (k, v)) in pairs.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_py(out, &k, true, depth + 1);
                    out.push_str(": ");
                    write_py(out, &v, true, depth + 1);
                }
            }
            out.push('}');
        }
        // Functions, macros, namespaces, bytes: minijinja's own rendering.
        _ => {
            let _ = write!(out, "{value}");
        }
    }
}

fn write_number(out: &mut String, value: &Value) {
    if value.is_integer() {
        let _ = write!(out, "{value}");
    } else {
        match f64::try_from(value.clone()) {
            Ok(x) => out.push_str(&float_repr(x)),
            Err(_) => {
                let _ = write!(out, "{value}");
            }
        }
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional notation when the
/// decimal exponent is in -4..16, scientific otherwise (`1e+16`, `1.5e-05`), `.0` on integers.
pub(super) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "d.ddde±x".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // The decimal point sits `point` digits from the left of `digits`.
    let point = exp + 1;
    let n = digits.len() as i32;
    if (-3..=16).contains(&point) {
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{sign}{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (a, b) = digits.split_at(point as usize);
            format!("{sign}{a}.{b}")
        }
    } else {
        let (a, b) = digits.split_at(1);
        let frac = if b.is_empty() {
            String::new()
        } else {
            format!(".{b}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{a}{frac}e{esign}{:02}", exp.abs())
    }
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double quote;
/// escapes for backslash, the quote, `\t\n\r`, and non-printable characters.
fn write_repr_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let cp = c as u32;
                let _ = if cp < 0x100 {
                    write!(out, "\\x{cp:02x}")
                } else if cp < 0x10000 {
                    write!(out, "\\u{cp:04x}")
                } else {
                    write!(out, "\\U{cp:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// `str.isprintable()` for one character, without Unicode tables: not a control character,
/// not a separator other than the space, not one of the common format characters, not private
/// use. (Unassigned code points, which Python also escapes, are printed as they are.)
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xd800..=0xdfff
        | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff)
}

/// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, the arguments positional or by name.
pub(super) fn tojson(
    value: &Value,
    positional: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if positional.len() > NAMES.len() {
        return Err(bad("tojson takes at most 4 arguments"));
    }
    let arg = |i: usize| -> Result<Option<Value>, Error> {
        match kwargs.get::<Option<Value>>(NAMES[i])? {
            Some(v) => Ok(Some(v)),
            None => Ok(positional.get(i).cloned()),
        }
    };
    let ensure_ascii = arg(0)?.is_some_and(|v| v.is_true());
    let sort_keys = arg(3)?.is_some_and(|v| v.is_true());
    // Python: an int indents by that many spaces (none if <= 0, but still one item per line),
    // a string indents by itself; None keeps everything on one line.
    let indent = match arg(1)? {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => Some(match v.as_str() {
            Some(s) => s.to_string(),
            None => {
                let n = v
                    .as_i64()
                    .ok_or_else(|| bad("tojson: indent must be an int or a string"))?;
                // Beyond any real use; the output size is bounded anyway (MAX_JSON).
                " ".repeat(n.clamp(0, 4096) as usize)
            }
        }),
    };
    let (item_sep, key_sep) = match arg(2)? {
        Some(v) if !v.is_none() && !v.is_undefined() => {
            let parts: Vec<Value> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] => match (a.as_str(), b.as_str()) {
                    (Some(a), Some(b)) => (a.to_string(), b.to_string()),
                    _ => return Err(bad("tojson: separators must be two strings")),
                },
                _ => return Err(bad("tojson: separators must be two strings")),
            }
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    kwargs.assert_all_used()?;
    let json = Json {
        ensure_ascii,
        sort_keys,
        indent,
        item_sep,
        key_sep,
    };
    let mut out = String::new();
    json.write(&mut out, value, 0)?;
    Ok(Value::from(out))
}

fn bad(message: &str) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.to_string())
}

/// `json.dumps` settings.
struct Json {
    ensure_ascii: bool,
    sort_keys: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
}

impl Json {
    fn write(&self, out: &mut String, value: &Value, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(bad("tojson: value nested too deeply"));
        }
        // Indentation multiplies the size of the value: stop before the engine's fuel would.
        if out.len() > MAX_JSON {
            return Err(bad("tojson: the result is too long"));
        }
        match value.kind() {
            ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if value.is_integer() {
                    let _ = write!(out, "{value}");
                } else {
                    let x = f64::try_from(value.clone())?;
                    // json.dumps writes the float's repr, and these three as JavaScript does.
                    out.push_str(&match x {
                        x if x.is_nan() => "NaN".to_string(),
                        x if x == f64::INFINITY => "Infinity".to_string(),
                        x if x == f64::NEG_INFINITY => "-Infinity".to_string(),
                        x => float_repr(x),
                    });
                }
            }
            ValueKind::String => self.write_str(out, value.as_str().unwrap_or_default()),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(out, depth + 1);
                    self.write(out, item, depth + 1)?;
                }
                self.newline(out, depth);
                out.push(']');
            }
            ValueKind::Map => {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                if let Some(iter) = value.as_object().and_then(|o| o.try_iter_pairs()) {
                    for (k, v) in iter {
                        pairs.push((json_key(&k)?, v));
                    }
                }
                if pairs.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                if self.sort_keys {
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                }
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.item_sep);
                    }
                    self.newline(out, depth + 1);
                    self.write_str(out, k);
                    out.push_str(&self.key_sep);
                    self.write(out, v, depth + 1)?;
                }
                self.newline(out, depth);
                out.push('}');
            }
            kind => {
                return Err(bad(&format!(
                    "tojson: a value of type {kind} is not JSON serializable"
                )))
            }
        }
        Ok(())
    }

    fn newline(&self, out: &mut String, depth: usize) {
        if let Some(indent) = &self.indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(indent);
            }
        }
    }

    fn write_str(&self, out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if self.ensure_ascii && !c.is_ascii() => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A dict key as `json.dumps` writes it: strings as they are, numbers, booleans and None
/// converted (`1`, `true`, `null`); anything else is a TypeError in Python too.
fn json_key(k: &Value) -> Result<String, Error> {
    match k.kind() {
        ValueKind::String => Ok(k.as_str().unwrap_or_default().to_string()),
        ValueKind::None => Ok("null".into()),
        ValueKind::Bool => Ok(if k.is_true() { "true" } else { "false" }.into()),
        ValueKind::Number => {
            let mut s = String::new();
            write_number(&mut s, k);
            Ok(s)
        }
        kind => Err(bad(&format!(
            "tojson: keys must be str, int, float, bool or None, not {kind}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        let cases = [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e100, "1e+100"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
            (-2.75, "-2.75"),
        ];
        for (x, s) in cases {
            assert_eq!(float_repr(x), s, "{x}");
        }
    }

    #[test]
    fn strings_repr_like_python() {
        let repr = |s: &str| {
            let mut out = String::new();
            write_repr_str(&mut out, s);
            out
        };
        assert_eq!(repr("a"), "'a'");
        assert_eq!(repr("it's"), "\"it's\"");
        assert_eq!(repr("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(repr("\n\t\\\u{1}\u{7f}"), "'\\n\\t\\\\\\x01\\x7f'");
        assert_eq!(
            repr("é\u{a0}\u{2028}\u{200b}日"),
            "'é\\xa0\\u2028\\u200b日'"
        );
    }
}
