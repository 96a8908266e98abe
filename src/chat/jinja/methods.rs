//! Python methods that chat templates call on strings and dicts (`content.strip()`,
//! `message.get('tool_calls')`, `tool.items()`, ...), served through minijinja's unknown-method
//! callback with Python's semantics. Methods that mutate (`append`, `update`, ...) are left out:
//! transformers' immutable sandbox refuses them too.

use minijinja::value::{from_args, Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::python;
use crate::chat::pystr::{self, is_space, Ends};

/// The largest string a method may build (`replace` and `join` can multiply their input).
const MAX_STRING: usize = 64 << 20;

/// The unknown-method callback: Python's `str` and `dict` methods.
pub(super) fn call_method(
    state: &mut State,
    value: &Value,
    name: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if value.kind() == ValueKind::String && name == "format" {
        let (positional, kwargs): (Rest<Value>, Kwargs) = from_args(args)?;
        return str_format(value.as_str().unwrap_or_default(), &positional, &kwargs)
            .map(Value::from);
    }
    if args.iter().any(Value::is_kwargs) {
        return Err(invalid(format!(
            "keyword arguments are not supported by the method {name}()"
        )));
    }
    match value.kind() {
        ValueKind::String => {
            string_method(state, value, value.as_str().unwrap_or_default(), name, args)
        }
        ValueKind::Map => dict_method(value, name, args),
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}

/// The `trim` filter as jinja2 defines it: `str(value).strip(chars)`.
pub(super) fn trim_filter(value: &Value, chars: Option<Value>) -> Result<Value, Error> {
    let s = python::to_str(value);
    let chars = optional_str(chars.as_ref(), "trim")?;
    Ok(Value::from(pystr::strip(&s, chars, Ends::Both)))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// Checks the number of positional arguments.
fn arity(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), Error> {
    if args.len() < min || args.len() > max {
        let expected = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(invalid(format!(
            "{name}() takes {expected} arguments ({} given)",
            args.len()
        )));
    }
    Ok(())
}

/// An optional string argument (None / absent gives `None`).
fn optional_str<'a>(arg: Option<&'a Value>, name: &str) -> Result<Option<&'a str>, Error> {
    match arg {
        None => Ok(None),
        Some(v) if v.is_none() || v.is_undefined() => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| invalid(format!("{name}(): the argument must be a string or None"))),
    }
}

fn required_str<'a>(arg: Option<&'a Value>, name: &str) -> Result<&'a str, Error> {
    arg.and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{name}(): the argument must be a string")))
}

/// Python's `maxsplit` / `count`: absent or negative means no limit.
fn optional_limit(arg: Option<&Value>, name: &str) -> Result<Option<usize>, Error> {
    match arg {
        None => Ok(None),
        Some(v) => {
            let n = v
                .as_i64()
                .ok_or_else(|| invalid(format!("{name}(): the count must be an integer")))?;
            Ok(usize::try_from(n).ok())
        }
    }
}

fn strings(parts: impl IntoIterator<Item = impl Into<Value>>) -> Value {
    Value::from(parts.into_iter().map(Into::into).collect::<Vec<Value>>())
}

/// Index in characters (Python's) of a byte offset.
fn char_index(s: &str, byte: usize) -> i64 {
    s.get(..byte).map_or(0, |p| p.chars().count() as i64)
}

fn string_method(
    state: &mut State,
    value: &Value,
    s: &str,
    name: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let a0 = args.first();
    let a1 = args.get(1);
    let all = |pred: fn(char) -> bool| !s.is_empty() && s.chars().all(pred);
    Ok(match name {
        "strip" | "lstrip" | "rstrip" => {
            arity(name, args, 0, 1)?;
            let ends = match name {
                "strip" => Ends::Both,
                "lstrip" => Ends::Start,
                _ => Ends::End,
            };
            Value::from(pystr::strip(s, optional_str(a0, name)?, ends))
        }
        "split" | "rsplit" => {
            arity(name, args, 0, 2)?;
            let sep = optional_str(a0, name)?;
            let limit = optional_limit(a1, name)?;
            strings(split(s, sep, limit, name == "rsplit")?)
        }
        "splitlines" => {
            arity(name, args, 0, 1)?;
            let keepends = a0.is_some_and(Value::is_true);
            strings(splitlines(s, keepends))
        }
        "startswith" | "endswith" => {
            arity(name, args, 1, 1)?;
            let arg = a0.ok_or_else(|| invalid(format!("{name}() needs an argument")))?;
            let test = |p: &str| {
                if name == "startswith" {
                    s.starts_with(p)
                } else {
                    s.ends_with(p)
                }
            };
            // A string, or a tuple (here: any sequence) of strings.
            let hit = match arg.as_str() {
                Some(p) => test(p),
                None => {
                    let mut hit = false;
                    for p in arg.try_iter()? {
                        hit |= test(required_str(Some(&p), name)?);
                    }
                    hit
                }
            };
            Value::from(hit)
        }
        "upper" => {
            arity(name, args, 0, 0)?;
            Value::from(s.to_uppercase())
        }
        "lower" => {
            arity(name, args, 0, 0)?;
            Value::from(s.to_lowercase())
        }
        "title" => {
            arity(name, args, 0, 0)?;
            Value::from(title(s))
        }
        // jinja2's `capitalize` filter is Python's `str.capitalize`, and minijinja's mirrors it.
        "capitalize" => {
            arity(name, args, 0, 0)?;
            state.apply_filter("capitalize", std::slice::from_ref(value))?
        }
        "replace" => {
            arity(name, args, 2, 3)?;
            let old = required_str(a0, name)?;
            let new = required_str(a1, name)?;
            let limit = optional_limit(args.get(2), name)?;
            // Python counts the empty string between every two characters and at both ends.
            let found = if old.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(old).count()
            };
            let n = limit.map_or(found, |l| l.min(found));
            let len = (s.len() - n * old.len()).saturating_add(n.saturating_mul(new.len()));
            if len > MAX_STRING {
                return Err(invalid(format!(
                    "replace(): the result would be {len} bytes"
                )));
            }
            Value::from(s.replacen(old, new, n))
        }
        "find" | "rfind" | "index" | "rindex" => {
            arity(name, args, 1, 1)?;
            let sub = required_str(a0, name)?;
            let at = if name.starts_with('r') {
                s.rfind(sub)
            } else {
                s.find(sub)
            };
            match at {
                Some(byte) => Value::from(char_index(s, byte)),
                None if name.ends_with("find") => Value::from(-1),
                None => return Err(invalid(format!("{name}(): substring not found"))),
            }
        }
        "count" => {
            arity(name, args, 1, 1)?;
            let sub = required_str(a0, name)?;
            let n = if sub.is_empty() {
                s.chars().count() + 1
            } else {
                s.matches(sub).count()
            };
            Value::from(n)
        }
        "join" => {
            arity(name, args, 1, 1)?;
            let items = a0.ok_or_else(|| invalid("join() needs an argument".into()))?;
            let mut parts = Vec::new();
            let mut len = 0usize;
            for item in items.try_iter()? {
                let p = item
                    .as_str()
                    .ok_or_else(|| invalid("join(): the items must be strings".into()))?
                    .to_string();
                len = len.saturating_add(p.len()).saturating_add(s.len());
                if len > MAX_STRING {
                    return Err(invalid("join(): the result is too long".into()));
                }
                parts.push(p);
            }
            Value::from(parts.join(s))
        }
        "removeprefix" => {
            arity(name, args, 1, 1)?;
            let p = required_str(a0, name)?;
            Value::from(s.strip_prefix(p).unwrap_or(s))
        }
        "removesuffix" => {
            arity(name, args, 1, 1)?;
            let p = required_str(a0, name)?;
            Value::from(s.strip_suffix(p).unwrap_or(s))
        }
        // Character classes: Unicode's where Python's need tables we do not carry (isdigit and
        // isnumeric both test Rust's `is_numeric`).
        "isspace" => Value::from(all(is_space)),
        "isalpha" => Value::from(all(char::is_alphabetic)),
        "isalnum" => Value::from(all(char::is_alphanumeric)),
        "isdigit" | "isnumeric" | "isdecimal" => Value::from(all(char::is_numeric)),
        "islower" | "isupper" => {
            arity(name, args, 0, 0)?;
            let mut cased = false;
            let mut ok = true;
            for c in s.chars().filter(|&c| is_cased(c)) {
                cased = true;
                ok &= if name == "islower" {
                    c.is_lowercase()
                } else {
                    c.is_uppercase()
                };
            }
            Value::from(cased && ok)
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

/// `str.format(*args, **kwargs)` for the replacement fields templates use: `{}`, `{0}`,
/// `{name}`, with `!s` / `!r`; a format spec (`{:>8}`) is refused rather than ignored.
fn str_format(s: &str, positional: &[Value], kwargs: &Kwargs) -> Result<String, Error> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut auto = 0usize;
    // Whether positional fields are numbered automatically (`{}`) or by hand (`{0}`): Python
    // refuses a mix.
    let mut numbering: Option<bool> = None;
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err(invalid("format(): single '}' encountered".into())),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => {
                            return Err(invalid(
                                "format(): unmatched '{' in the format string".into(),
                            ))
                        }
                        Some(c) => field.push(c),
                    }
                }
                let (field, spec) = field.split_once(':').unwrap_or((&field, ""));
                let (name, conversion) = field.split_once('!').unwrap_or((field, "s"));
                if !spec.is_empty() {
                    return Err(invalid(format!(
                        "format(): format spec ':{spec}' not supported"
                    )));
                }
                let numbered = name.parse::<usize>().ok();
                if name.is_empty() || numbered.is_some() {
                    let auto_now = name.is_empty();
                    if *numbering.get_or_insert(auto_now) != auto_now {
                        return Err(invalid(
                            "format(): cannot mix automatic and manual field numbering".into(),
                        ));
                    }
                }
                let value = if name.is_empty() {
                    auto += 1;
                    positional.get(auto - 1).cloned()
                } else if let Some(i) = numbered {
                    positional.get(i).cloned()
                } else {
                    kwargs.get::<Option<Value>>(name)?
                };
                let value = value.ok_or_else(|| {
                    invalid(format!("format(): no argument for the field '{{{name}}}'"))
                })?;
                match conversion {
                    "s" => out.push_str(&python::to_str(&value)),
                    "r" => out.push_str(&python::to_repr(&value)),
                    other => {
                        return Err(invalid(format!("format(): unknown conversion '!{other}'")))
                    }
                }
            }
            c => out.push(c),
        }
        if out.len() > MAX_STRING {
            return Err(invalid("format(): the result is too long".into()));
        }
    }
    Ok(out)
}

/// `str.split(sep, maxsplit)` / `str.rsplit`: without `sep`, runs of whitespace separate and
/// leading / trailing whitespace makes no empty items.
fn split<'a>(
    s: &'a str,
    sep: Option<&str>,
    limit: Option<usize>,
    from_right: bool,
) -> Result<Vec<&'a str>, Error> {
    match sep {
        Some("") => Err(invalid("split(): empty separator".into())),
        Some(sep) => Ok(match (limit, from_right) {
            (None, _) => s.split(sep).collect(),
            (Some(n), false) => s.splitn(n.saturating_add(1), sep).collect(),
            (Some(n), true) => {
                let mut v: Vec<&str> = s.rsplitn(n.saturating_add(1), sep).collect();
                v.reverse();
                v
            }
        }),
        None if !from_right => {
            let mut out = Vec::new();
            let mut rest = s.trim_start_matches(is_space);
            while !rest.is_empty() {
                if limit == Some(out.len()) {
                    out.push(rest);
                    break;
                }
                let end = rest.find(is_space).unwrap_or(rest.len());
                out.push(&rest[..end]);
                rest = rest[end..].trim_start_matches(is_space);
            }
            Ok(out)
        }
        None => {
            let mut out = Vec::new();
            let mut rest = s.trim_end_matches(is_space);
            while !rest.is_empty() {
                if limit == Some(out.len()) {
                    out.push(rest);
                    break;
                }
                let start = rest
                    .char_indices()
                    .rev()
                    .find(|&(_, c)| is_space(c))
                    .map_or(0, |(i, c)| i + c.len_utf8());
                out.push(&rest[start..]);
                rest = rest[..start].trim_end_matches(is_space);
            }
            out.reverse();
            Ok(out)
        }
    }
}

/// `str.splitlines(keepends)`: Python's line boundaries (`\n`, `\r`, `\r\n`, `\v`, `\f`,
/// U+001C..U+001E, U+0085, U+2028, U+2029).
fn splitlines(s: &str, keepends: bool) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{b}'
                | '\u{c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !is_break {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r' && it.peek().is_some_and(|&(_, n)| n == '\n') {
            it.next();
            end += 1;
        }
        out.push(&s[start..if keepends { end } else { i }]);
        start = end;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Unicode "Cased": lowercase, uppercase or titlecase letter.
fn is_cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase() || is_titlecase_letter(c)
}

/// General category Lt.
fn is_titlecase_letter(c: char) -> bool {
    matches!(c as u32,
        0x1c5 | 0x1c8 | 0x1cb | 0x1f2 | 0x1f88..=0x1f8f | 0x1f98..=0x1f9f | 0x1fa8..=0x1faf
        | 0x1fbc | 0x1fcc | 0x1ffc)
}

/// The titlecase mapping of `c` (UnicodeData and SpecialCasing), which differs from the
/// uppercase one for digraphs, ligatures, `ß`, Georgian and the Greek iota subscripts.
fn push_titlecase(out: &mut String, c: char) {
    let cp = c as u32;
    let single = match cp {
        0x1c4..=0x1cc => Some(cp - (cp - 0x1c4) % 3 + 1),
        0x1f1..=0x1f3 => Some(0x1f2),
        0x10d0..=0x10fa | 0x10fd..=0x10ff => Some(cp),
        0x1f80..=0x1faf => Some(cp | 0x08),
        0x1fb3 | 0x1fbc => Some(0x1fbc),
        0x1fc3 | 0x1fcc => Some(0x1fcc),
        0x1ff3 | 0x1ffc => Some(0x1ffc),
        _ => None,
    };
    if let Some(t) = single.and_then(char::from_u32) {
        out.push(t);
        return;
    }
    let special = match c {
        '\u{df}' => "Ss",
        '\u{fb00}' => "Ff",
        '\u{fb01}' => "Fi",
        '\u{fb02}' => "Fl",
        '\u{fb03}' => "Ffi",
        '\u{fb04}' => "Ffl",
        '\u{fb05}' | '\u{fb06}' => "St",
        '\u{587}' => "\u{535}\u{582}",
        '\u{fb13}' => "\u{544}\u{576}",
        '\u{fb14}' => "\u{544}\u{565}",
        '\u{fb15}' => "\u{544}\u{56b}",
        '\u{fb16}' => "\u{54e}\u{576}",
        '\u{fb17}' => "\u{544}\u{56d}",
        '\u{1fb2}' => "\u{1fba}\u{345}",
        '\u{1fb4}' => "\u{386}\u{345}",
        '\u{1fb7}' => "\u{391}\u{342}\u{345}",
        '\u{1fc2}' => "\u{1fca}\u{345}",
        '\u{1fc4}' => "\u{389}\u{345}",
        '\u{1fc7}' => "\u{397}\u{342}\u{345}",
        '\u{1ff2}' => "\u{1ffa}\u{345}",
        '\u{1ff4}' => "\u{38f}\u{345}",
        '\u{1ff7}' => "\u{3a9}\u{342}\u{345}",
        _ => "",
    };
    if special.is_empty() {
        out.extend(c.to_uppercase());
    } else {
        out.push_str(special);
    }
}

/// `str.title()`: a character after a cased one is lowercased, any other titlecased (so
/// "they're" gives "They'Re", unlike jinja2's `title` filter).
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_is_cased = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if previous_is_cased {
            if c == '\u{3a3}' {
                // Capital sigma lowercases to the final form at the end of a word.
                let final_form = !chars.peek().is_some_and(|&n| is_cased(n));
                out.push(if final_form { '\u{3c2}' } else { '\u{3c3}' });
            } else {
                out.extend(c.to_lowercase());
            }
        } else {
            push_titlecase(&mut out, c);
        }
        previous_is_cased = is_cased(c);
    }
    out
}

fn dict_method(value: &Value, name: &str, args: &[Value]) -> Result<Value, Error> {
    let pairs = || {
        value
            .as_object()
            .and_then(|o| o.try_iter_pairs())
            .into_iter()
            .flatten()
    };
    Ok(match name {
        "items" => {
            arity(name, args, 0, 0)?;
            Value::from(
                pairs()
                    .map(|(k, v)| Value::from(vec![k, v]))
                    .collect::<Vec<Value>>(),
            )
        }
        "keys" => {
            arity(name, args, 0, 0)?;
            Value::from(pairs().map(|(k, _)| k).collect::<Vec<Value>>())
        }
        "values" => {
            arity(name, args, 0, 0)?;
            Value::from(pairs().map(|(_, v)| v).collect::<Vec<Value>>())
        }
        "get" => {
            arity(name, args, 1, 2)?;
            let key = args.first().cloned().unwrap_or_default();
            let default = args.get(1).cloned().unwrap_or(Value::from(()));
            match value.get_item(&key) {
                Ok(v) if !v.is_undefined() => v,
                _ => default,
            }
        }
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_python() {
        let sp = |s, sep, limit, right| split(s, sep, limit, right).unwrap();
        assert_eq!(sp("  a b  c ", None, None, false), ["a", "b", "c"]);
        assert_eq!(sp("a b  c ", None, Some(1), false), ["a", "b  c "]);
        assert_eq!(sp(" a b  c", None, Some(1), true), [" a b", "c"]);
        assert_eq!(sp("   ", None, None, false), Vec::<&str>::new());
        assert_eq!(sp("a,b,,c", Some(","), None, false), ["a", "b", "", "c"]);
        assert_eq!(sp("a,b,c", Some(","), Some(1), true), ["a,b", "c"]);
        assert!(split("a", Some(""), None, false).is_err());
    }

    #[test]
    fn splitlines_like_python() {
        assert_eq!(
            splitlines("a\r\nb\rc\n\nd\u{2028}", false),
            ["a", "b", "c", "", "d"]
        );
        assert_eq!(splitlines("a\r\nb", true), ["a\r\n", "b"]);
        assert!(splitlines("", false).is_empty());
    }

    #[test]
    fn format_like_python() {
        let kwargs = Kwargs::from_iter([("x", Value::from("X"))]);
        let args = [Value::from("a"), Value::from(1)];
        let f = |s: &str| str_format(s, &args, &kwargs).map_err(|e| e.to_string());
        assert_eq!(f("{}-{}-{x}-{{}}").unwrap(), "a-1-X-{}");
        assert_eq!(f("{1}{0}{1!r}{x!r}").unwrap(), "1a1'X'");
        for bad in ["{}{0}", "{0}{}", "{", "}", "{:>4}", "{2}", "{y}", "{!z}"] {
            assert!(f(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn title_like_python() {
        assert_eq!(title("they're bill's friends"), "They'Re Bill'S Friends");
        assert_eq!(title("ǆungla ﬁx straße ΣΑΣ"), "ǅungla Fix Straße Σας");
        assert_eq!(title("hello wORLD 3rd"), "Hello World 3Rd");
    }
}
