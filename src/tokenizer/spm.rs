//! SentencePiece BPE (llama.cpp's `llm_tokenizer_spm_session`): start from single characters,
//! repeatedly merge the adjacent pair whose merged text is the token with the highest score
//! (ties: the leftmost pair), then emit each piece's token, or its bytes as `<0xNN>` tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::symbols::{merge, split_chars, Symbol};
use super::vocab::{byte_token_text, Vocab};

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    /// Byte length of the merged text when queued; a mismatch later means it is stale.
    size: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: higher score first, then the lower left index.
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}

/// Appends the tokens of `text` (already space-escaped) to `out`.
pub fn tokenize(vocab: &Vocab, text: &[u8], out: &mut Vec<u32>) {
    let mut symbols = split_chars(text);

    let mut queue = BinaryHeap::new();
    let try_add = |symbols: &[Symbol],
                   queue: &mut BinaryHeap<Bigram>,
                   left: Option<usize>,
                   right: Option<usize>| {
        let (Some(l), Some(r)) = (left, right) else {
            return;
        };
        let (Some(ls), Some(rs)) = (symbols.get(l), symbols.get(r)) else {
            return;
        };
        let size = ls.len + rs.len;
        let Some(merged) = text.get(ls.start..ls.start + size) else {
            return;
        };
        if let Some(id) = vocab.id_of_bytes(merged) {
            queue.push(Bigram {
                score: vocab.score(id),
                left: l,
                right: r,
                size,
            });
        }
    };
    for i in 1..symbols.len() {
        try_add(&symbols, &mut queue, Some(i - 1), Some(i));
    }

    while let Some(bg) = queue.pop() {
        let (Some(&l), Some(&r)) = (symbols.get(bg.left), symbols.get(bg.right)) else {
            continue;
        };
        if l.len == 0 || r.len == 0 || l.len + r.len != bg.size {
            continue;
        }
        let merged = merge(&mut symbols, bg.left, l, bg.right, r);
        try_add(&symbols, &mut queue, merged.prev, Some(bg.left));
        try_add(&symbols, &mut queue, Some(bg.left), merged.next);
    }

    // Every merged symbol is a token (merges need one); a single character that is not one
    // falls back to its bytes. A byte without a `<0xNN>` token tries the raw byte as a token and
    // is dropped when that is missing too (llama.cpp throws there).
    let mut i = if symbols.is_empty() { None } else { Some(0) };
    while let Some(s) = i.and_then(|k| symbols.get(k)) {
        let piece = text.get(s.start..s.start + s.len).unwrap_or(&[]);
        if let Some(id) = vocab.id_of_bytes(piece) {
            out.push(id);
        } else {
            for &b in piece {
                let id = vocab
                    .id_of_bytes(&byte_token_text(b))
                    .or_else(|| vocab.id_of_bytes(&[b]));
                out.extend(id);
            }
        }
        i = s.next;
    }
}
