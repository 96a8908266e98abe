//! Python's notion of whitespace and `str.strip()`, which chat templates apply to message
//! contents (`message['content'] | trim`, `.strip()`): the built-in families must trim exactly as
//! the real templates do under Python's jinja2.

/// `str.isspace()` for one character: Unicode White_Space (what Rust's `char::is_whitespace`
/// tests) plus U+001C..U+001F, which Python counts as whitespace (bidi class B/S) and Rust does
/// not.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Which end(s) [`strip`] trims. (The built-in families only trim both ends; the one-sided
/// strips serve the Jinja methods `lstrip` / `rstrip`.)
#[cfg_attr(not(feature = "chat-templates"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ends {
    Both,
    Start,
    End,
}

/// `str.strip(chars)`, `lstrip`, `rstrip`: `chars` None trims Python whitespace, otherwise any
/// character of `chars`.
pub(crate) fn strip<'a>(s: &'a str, chars: Option<&str>, ends: Ends) -> &'a str {
    let strip_it = |c: char| match chars {
        None => is_space(c),
        Some(set) => set.contains(c),
    };
    match ends {
        Ends::Both => s.trim_matches(strip_it),
        Ends::Start => s.trim_start_matches(strip_it),
        Ends::End => s.trim_end_matches(strip_it),
    }
}

/// `s.strip()`.
pub(crate) fn trim(s: &str) -> &str {
    strip(s, None, Ends::Both)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_the_information_separators() {
        assert_eq!(trim("\u{1f} a \u{1c}\u{3000}\u{a0}\u{2028}"), "a");
        assert_eq!(trim("\t\n\u{b}\u{c}\r x\u{85}"), "x");
        // Zero-width space is not whitespace for Python either.
        assert_eq!(trim("\u{200b}x"), "\u{200b}x");
        assert_eq!(strip("..a.b..", Some("."), Ends::Start), "a.b..");
        assert_eq!(strip("..a.b..", Some(".b"), Ends::End), "..a");
        assert_eq!(strip("", None, Ends::Both), "");
    }
}
