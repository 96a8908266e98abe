//! Finding special tokens written in the text (llama.cpp's `tokenizer_st_partition`).
//!
//! For each special token, longest first, every text fragment not yet claimed is split at the
//! token's occurrences (leftmost first, not overlapping). Control and unknown tokens take part
//! only with `parse_special`; user-defined tokens always do. A token with the lstrip / rstrip
//! attribute also swallows the ASCII whitespace on that side.

use super::hash::FxHashMap;
use super::vocab::{attr, Vocab};

/// A piece of the input: raw text still to tokenize, or a token already decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Bytes `start..end` of the input.
    Text {
        start: usize,
        end: usize,
    },
    Token(u32),
}

/// C `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Splits `text` into raw text and special tokens. Empty text gives no fragment at all.
pub fn partition(vocab: &Vocab, text: &[u8], parse_special: bool) -> Vec<Fragment> {
    let mut frags = Vec::new();
    if text.is_empty() {
        return frags;
    }
    frags.push(Fragment::Text {
        start: 0,
        end: text.len(),
    });

    // Skip the (often thousands of) special tokens that do not occur in the text at all: a
    // token occurs only at a position where its first two bytes do, and those positions are
    // found once per byte pair. This is only a filter; the splitting below decides.
    let mut singles = [false; 256];
    for &b in text {
        singles[usize::from(b)] = true;
    }
    let mut pair_positions: FxHashMap<[u8; 2], Vec<usize>> = FxHashMap::default();

    for st in &vocab.special_cache {
        let (id, a) = (st.id, st.attr);
        if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            continue;
        }
        let [b0, b1] = st.head;
        let occurs = match st.short_len {
            0 => false,
            1 => singles[usize::from(b0)],
            _ if !singles[usize::from(b0)] || !singles[usize::from(b1)] => false,
            _ => {
                let tok = vocab.text_bytes(id);
                let positions = pair_positions
                    .entry([b0, b1])
                    .or_insert_with(|| pair_starts(text, b0, b1));
                positions
                    .iter()
                    .any(|&p| text.get(p..p + tok.len()) == Some(tok))
            }
        };
        if !occurs {
            continue;
        }
        let tok = vocab.text_bytes(id);
        if !frags.iter().any(|f| matches!(f, Fragment::Text { .. })) {
            break;
        }
        frags = split_at_token(&frags, text, tok, id, a);
    }
    frags
}

/// Every position where `b0` is followed by `b1`.
fn pair_starts(text: &[u8], b0: u8, b1: u8) -> Vec<usize> {
    text.windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[b0, b1])
        .map(|(i, _)| i)
        .collect()
}

fn split_at_token(frags: &[Fragment], text: &[u8], tok: &[u8], id: u32, a: u8) -> Vec<Fragment> {
    let mut out = Vec::with_capacity(frags.len() + 2);
    for &f in frags {
        let Fragment::Text { mut start, end } = f else {
            out.push(f);
            continue;
        };
        while start < end {
            let Some(m) = find(text.get(start..end).unwrap_or(&[]), tok).map(|p| p + start) else {
                out.push(Fragment::Text { start, end });
                break;
            };
            let mut left_end = m;
            if a & attr::LSTRIP != 0 {
                while left_end > start && text.get(left_end - 1).is_some_and(|&b| is_c_space(b)) {
                    left_end -= 1;
                }
            }
            if left_end > start {
                out.push(Fragment::Text {
                    start,
                    end: left_end,
                });
            }
            out.push(Fragment::Token(id));
            start = m + tok.len();
            if a & attr::RSTRIP != 0 {
                while start < end && text.get(start).is_some_and(|&b| is_c_space(b)) {
                    start += 1;
                }
            }
        }
    }
    out
}

/// First occurrence of `needle` (non-empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last_start {
        let p = hay.get(i..=last_start)?.iter().position(|&b| b == first)?;
        let s = i + p;
        if hay.get(s + 1..s + needle.len()) == Some(rest) {
            return Some(s);
        }
        i = s + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn find_substrings() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"aaa", b"aa"), Some(0));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"", b"a"), None);
        assert_eq!(find(b"xa", b"a"), Some(1));
    }
}
