//! GPT-2 byte-level BPE (llama.cpp's `llm_tokenizer_bpe_session`): split the text into words
//! with the pre-tokenizer, map each word's bytes to printable characters, merge adjacent pairs
//! in merge-rank order (ties: leftmost), and emit each piece's token. A piece that is not a
//! token is emitted byte by byte when a one-byte token exists for a byte of its (mapped) text,
//! and silently dropped otherwise, like llama.cpp.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::pretokenize::PreTokenizer;
use super::symbols::{merge, split_chars, Symbol};
use super::unicode::{byte_to_cpt, cpts_from_utf8, push_utf8};
use super::vocab::Vocab;

struct Bigram {
    rank: u32,
    left: usize,
    right: usize,
    left_len: usize,
    right_len: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: lower rank first, then the lower left index.
        other
            .rank
            .cmp(&self.rank)
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

/// Appends the tokens of `text` to `out`.
pub fn tokenize(vocab: &Vocab, pre: PreTokenizer, text: &[u8], out: &mut Vec<u32>) {
    let cpts = cpts_from_utf8(text);
    let mut word = Vec::new();
    let mut utf8 = Vec::with_capacity(4);
    let mut pos = 0;
    for len in pre.split(&cpts) {
        // The word's UTF-8 bytes, each replaced by its printable stand-in.
        word.clear();
        for &c in cpts.get(pos..pos + len).unwrap_or(&[]) {
            utf8.clear();
            push_utf8(c, &mut utf8);
            for &b in &utf8 {
                push_utf8(byte_to_cpt(b), &mut word);
            }
        }
        pos += len;
        tokenize_word(vocab, &word, out);
    }
}

fn tokenize_word(vocab: &Vocab, word: &[u8], out: &mut Vec<u32>) {
    if vocab.ignore_merges {
        if let Some(id) = vocab.id_of_bytes(word) {
            out.push(id);
            return;
        }
    }

    let mut symbols = split_chars(word);

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
        let (Some(lt), Some(rt)) = (
            word.get(ls.start..ls.start + ls.len),
            word.get(rs.start..rs.start + rs.len),
        ) else {
            return;
        };
        if let Some(rank) = vocab.merge_rank(lt, rt) {
            queue.push(Bigram {
                rank,
                left: l,
                right: r,
                left_len: ls.len,
                right_len: rs.len,
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
        // Stale when either side has changed since it was queued (llama.cpp compares texts;
        // symbols only grow and keep their start, so comparing lengths is the same test).
        if l.len == 0 || r.len == 0 || l.len != bg.left_len || r.len != bg.right_len {
            continue;
        }
        let merged = merge(&mut symbols, bg.left, l, bg.right, r);
        try_add(&symbols, &mut queue, merged.prev, Some(bg.left));
        try_add(&symbols, &mut queue, Some(bg.left), merged.next);
    }

    let mut i = if symbols.is_empty() { None } else { Some(0) };
    while let Some(s) = i.and_then(|k| symbols.get(k)) {
        let piece = word.get(s.start..s.start + s.len).unwrap_or(&[]);
        if let Some(id) = vocab.id_of_bytes(piece) {
            out.push(id);
        } else {
            // llama.cpp looks up each byte of the mapped text as a one-byte token.
            for &b in piece {
                out.extend(vocab.id_of_bytes(&[b]));
            }
        }
        i = s.next;
    }
}
