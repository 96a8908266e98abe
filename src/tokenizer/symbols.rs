//! The linked list of text runs that both merge-based tokenizers (SPM and BPE) work on: start
//! with one symbol per character, then repeatedly merge a symbol with its right neighbour.

use super::unicode::utf8_len;

/// A run of the text; merged-away symbols have `len == 0` and are unlinked.
#[derive(Clone, Copy)]
pub(super) struct Symbol {
    pub start: usize,
    pub len: usize,
    pub prev: Option<usize>,
    pub next: Option<usize>,
}

/// One symbol per UTF-8 character of `text` (a truncated sequence at the end is one symbol),
/// linked in order.
pub(super) fn split_chars(text: &[u8]) -> Vec<Symbol> {
    let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
    let mut offs = 0;
    while let Some(&b) = text.get(offs) {
        let len = utf8_len(b).min(text.len() - offs);
        let index = symbols.len();
        symbols.push(Symbol {
            start: offs,
            len,
            prev: index.checked_sub(1),
            next: if offs + len == text.len() {
                None
            } else {
                Some(index + 1)
            },
        });
        offs += len;
    }
    symbols
}

/// Merges symbol `right` (`r`) into its left neighbour `left` (`l`) and unlinks it; returns
/// the merged symbol, now stored at `left`.
pub(super) fn merge(
    symbols: &mut [Symbol],
    left: usize,
    l: Symbol,
    right: usize,
    r: Symbol,
) -> Symbol {
    let merged = Symbol {
        len: l.len + r.len,
        next: r.next,
        ..l
    };
    if let Some(s) = symbols.get_mut(left) {
        *s = merged;
    }
    if let Some(s) = symbols.get_mut(right) {
        s.len = 0;
    }
    if let Some(s) = r.next.and_then(|n| symbols.get_mut(n)) {
        s.prev = Some(left);
    }
    merged
}
