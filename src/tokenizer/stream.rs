//! Streaming detokenization: text out as ids come in, never a broken UTF-8 sequence.

use super::decode::{clean_spaces, plan, push_piece};
use super::Tokenizer;
use crate::Result;

/// Bytes of cleaned text held back while more tokens may still change them: each of
/// llama.cpp's clean-up passes decides from at most two following characters, so text this far
/// from the end is final.
const CLEAN_HOLDBACK: usize = 8;

/// Turns ids into text one at a time. The concatenation of everything [`push`](Self::push) and
/// [`flush`](Self::flush) return equals [`Tokenizer::decode`]`(ids, render_special)` (lossy
/// UTF-8): a character split over several byte tokens (emoji, CJK) comes out whole once its
/// last byte arrives. Call `flush` at the end: with space clean-up, the last few bytes wait
/// for it.
pub struct StreamDecoder<'a> {
    tok: &'a Tokenizer,
    state: DecoderState,
}

impl std::fmt::Debug for StreamDecoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamDecoder")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<'a> StreamDecoder<'a> {
    pub(crate) fn new(tok: &'a Tokenizer, render_special: bool) -> Self {
        StreamDecoder {
            tok,
            state: DecoderState::new(tok, render_special),
        }
    }

    /// Adds one id; returns the text that is now complete (often empty mid-character).
    /// An id outside the vocabulary is an error and changes nothing.
    pub fn push(&mut self, id: u32) -> Result<String> {
        self.state.push(self.tok, id)
    }

    /// Ends the stream: returns what is left, with U+FFFD for an unfinished character.
    pub fn flush(&mut self) -> String {
        self.state.flush(self.tok)
    }
}

/// A [`StreamDecoder`] that does not hold its tokenizer (each call takes it): what a generation
/// keeps while it also holds its session mutably.
#[derive(Clone, Debug)]
pub(crate) struct DecoderState {
    render_special: bool,
    /// Strip one leading space from the next piece (the first one, when the vocab adds a
    /// space prefix).
    strip_next: bool,
    /// Bytes decoded but not yet returned (an incomplete UTF-8 sequence at the end).
    pending: Vec<u8>,
    /// With clean-up: every byte so far, before clean-up, and how much of the cleaned text has
    /// moved to `pending`.
    raw: Vec<u8>,
    cleaned_out: usize,
}

impl DecoderState {
    pub(crate) fn new(tok: &Tokenizer, render_special: bool) -> Self {
        let (_, strip) = plan(&tok.vocab, &[], false);
        DecoderState {
            render_special,
            strip_next: strip,
            pending: Vec::new(),
            raw: Vec::new(),
            cleaned_out: 0,
        }
    }

    /// See [`StreamDecoder::push`]; `tok` must be the tokenizer this state was made for.
    pub(crate) fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String> {
        let vocab = &tok.vocab;
        if vocab.clean_spaces {
            push_piece(
                vocab,
                id,
                self.render_special,
                self.strip_next,
                &mut self.raw,
            )?;
            self.strip_next = false;
            let mut cleaned = self.raw.clone();
            clean_spaces(&mut cleaned);
            let stable = cleaned.len().saturating_sub(CLEAN_HOLDBACK);
            if stable > self.cleaned_out {
                self.pending
                    .extend_from_slice(cleaned.get(self.cleaned_out..stable).unwrap_or(&[]));
                self.cleaned_out = stable;
            }
        } else {
            push_piece(
                vocab,
                id,
                self.render_special,
                self.strip_next,
                &mut self.pending,
            )?;
            self.strip_next = false;
        }
        Ok(self.take_complete())
    }

    /// See [`StreamDecoder::flush`].
    pub(crate) fn flush(&mut self, tok: &Tokenizer) -> String {
        if tok.vocab.clean_spaces {
            let mut cleaned = std::mem::take(&mut self.raw);
            clean_spaces(&mut cleaned);
            self.pending
                .extend_from_slice(cleaned.get(self.cleaned_out..).unwrap_or(&[]));
            self.cleaned_out = 0;
        }
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }

    /// Moves the complete UTF-8 prefix of `pending` out; invalid bytes become U+FFFD (as
    /// `from_utf8_lossy` would), an incomplete sequence at the end stays.
    fn take_complete(&mut self) -> String {
        let mut out = String::new();
        let mut used = 0;
        while let Some(rest) = self.pending.get(used..) {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    used = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(rest.get(..valid).unwrap_or(&[])));
                    used += valid;
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            used += n;
                        }
                        None => break,
                    }
                }
            }
        }
        self.pending.drain(..used.min(self.pending.len()));
        out
    }
}
