//! The state of one reply being generated, independent of how its tokens are evaluated: the
//! sampler, the token budget, the stream decoder, stop strings and the finish reason. A
//! [`Generate`](super::Generate) drives it one session at a time; the batch engine drives many
//! at once.

use crate::sampling::Sampler;
use crate::session::{FinishReason, GenerateOptions, Session};
use crate::tokenizer::{DecodeOptions, DecoderState};
use crate::Result;

/// One reply in progress over a session whose first `start` tokens precede it.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) sampler: Sampler,
    decoder: DecoderState,
    stop: Vec<String>,
    max_tokens: Option<usize>,
    /// Tokens the session held before the first generated one.
    start: usize,
    pub(crate) generated: Vec<u32>,
    pub(crate) n_sampled: usize,
    /// The generated text so far: what was returned, then what is held back because it may
    /// be the start of a stop string.
    text: String,
    /// Bytes of `text` returned.
    returned: usize,
    pub(crate) finish: Option<FinishReason>,
}

impl Completion {
    /// A reply that starts after everything `session` holds now. Checks the options.
    pub(crate) fn new(session: &Session<'_>, options: &GenerateOptions) -> Result<Completion> {
        Ok(Completion {
            sampler: Sampler::new(&options.sampling)?,
            decoder: DecoderState::new(session.model().tokenizer(), false),
            stop: options
                .stop
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            max_tokens: options.max_tokens,
            start: session.tokens.len(),
            generated: Vec::new(),
            n_sampled: 0,
            text: String::new(),
            returned: 0,
            finish: None,
        })
    }

    /// Whether the reply has ended or will end without sampling again (its token budget is
    /// spent), so that its session evaluates nothing more. Changes nothing.
    pub(crate) fn budget_spent(&self) -> bool {
        self.finish.is_some() || self.max_tokens.is_some_and(|m| self.generated.len() >= m)
    }

    /// Ends the reply when its budget is spent or the session's context is full; true when it
    /// has ended (now or before). Otherwise the next token can be sampled once the session's
    /// logits are known.
    pub(crate) fn limit_reached(&mut self, session: &mut Session<'_>) -> Result<bool> {
        if self.finish.is_some() {
            return Ok(true);
        }
        if self.max_tokens.is_some_and(|m| self.generated.len() >= m) {
            self.finish(session, FinishReason::MaxTokens)?;
        } else if session.tokens.len() >= session.n_ctx {
            self.finish(session, FinishReason::ContextFull)?;
        }
        Ok(self.finish.is_some())
    }

    /// Takes `token` (sampled from the session's logits) into the reply: appended to the
    /// session as pending, decoded, checked against the stop strings. Ends the reply at an
    /// end-of-generation token or a stop string.
    pub(crate) fn accept(&mut self, session: &mut Session<'_>, token: u32) -> Result<()> {
        self.n_sampled += 1;
        // Held (pending) in either case: it belongs to the conversation.
        session.tokens.push(token);
        if session.model().tokenizer().is_eog(token) {
            return self.finish(session, FinishReason::EndOfGeneration);
        }
        self.generated.push(token);
        let piece = self.decoder.push(session.model.tokenizer(), token)?;
        self.text.push_str(&piece);
        match self.find_stop() {
            Some(pos) => self.stop_at(session, pos),
            None => Ok(()),
        }
    }

    /// The longest tail of the unreturned text that is a proper start of some stop string.
    fn unsafe_tail(&self) -> usize {
        let held = &self.text[self.returned..];
        let mut keep = 0;
        for s in &self.stop {
            for (i, _) in s.char_indices().skip(1) {
                if i > keep && held.ends_with(&s[..i]) {
                    keep = i;
                }
            }
        }
        keep
    }

    /// Where the first stop string starts in the text. None can start inside the text already
    /// returned: a possible start is always held back.
    fn find_stop(&self) -> Option<usize> {
        let held = &self.text[self.returned..];
        self.stop
            .iter()
            .filter_map(|s| held.find(s.as_str()))
            .min()
            .map(|pos| self.returned + pos)
    }

    /// Ends the generation: the decoder's held-back bytes join the text (they may complete a
    /// stop string).
    fn finish(&mut self, session: &mut Session<'_>, reason: FinishReason) -> Result<()> {
        let rest = self.decoder.flush(session.model.tokenizer());
        self.text.push_str(&rest);
        if let Some(pos) = self.find_stop() {
            return self.stop_at(session, pos);
        }
        self.finish = Some(reason);
        Ok(())
    }

    /// Cuts the text at a stop string and makes the session hold exactly the text returned.
    fn stop_at(&mut self, session: &mut Session<'_>, pos: usize) -> Result<()> {
        self.text.truncate(pos);
        self.finish = Some(FinishReason::StopString);
        let tok = session.model.tokenizer();
        // The most generated tokens whose text lies wholly in what is returned...
        let mut k = self.generated.len();
        let kept_len = loop {
            let d = tok.decode(&self.generated[..k], DecodeOptions::default())?;
            if self.text.starts_with(&d) || k == 0 {
                break d.len();
            }
            k -= 1;
        };
        // ... then the rest of the returned text as tokens of its own.
        let mut tail = self.text[kept_len.min(self.text.len())..].to_string();
        if k == 0 && tok.strips_leading_space() && !tail.is_empty() {
            // The decoder dropped the first piece's leading space (a SentencePiece space
            // prefix); the tokens must keep it.
            let first = self.generated.first().copied();
            if first.is_some_and(|t| {
                tok.token_to_piece(t, DecodeOptions::default()).first() == Some(&b' ')
            }) {
                tail.insert(0, ' ');
            }
        }
        let tail_ids = if tail.is_empty() {
            Vec::new()
        } else {
            tok.encode_continuation(&tail)?
        };
        self.generated.truncate(k);
        self.generated.extend_from_slice(&tail_ids);
        let mut held = session.tokens[..self.start].to_vec();
        held.extend_from_slice(&self.generated);
        session.set_tokens(&held)?;
        Ok(())
    }

    /// The text that can be returned now.
    pub(crate) fn take_ready(&mut self) -> String {
        let end = match self.finish {
            Some(_) => self.text.len(),
            None => self.text.len() - self.unsafe_tail(),
        };
        let piece = self.text[self.returned..end].to_string();
        self.returned = end;
        piece
    }
}
