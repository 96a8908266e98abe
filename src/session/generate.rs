//! The streaming generation iterator: token budgets, stop strings, finish reasons.

use std::time::{Duration, Instant};

use crate::sampling::{Sampler, Sampling};
use crate::session::Session;
use crate::tokenizer::{DecodeOptions, DecoderState};
use crate::Result;

/// How many of the prompt's highest logits [`Generate::prompt_top_logits`] keeps.
const PROMPT_TOP: usize = 10;

/// What to generate: sampling parameters, a token budget and stop strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerateOptions {
    /// How each token is picked.
    pub sampling: Sampling,
    /// The most tokens to generate (`None`: until an end-of-generation token, a stop string
    /// or a full context).
    pub max_tokens: Option<usize>,
    /// Generation ends before the first occurrence of any of these strings (empty ones are
    /// ignored); the text returned stops right before it.
    pub stop: Vec<String>,
}

/// Why a generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// The model produced an end-of-generation token (EOS, end of turn, ...).
    EndOfGeneration,
    /// The text reached one of the stop strings.
    StopString,
    /// The token budget ([`GenerateOptions::max_tokens`]) is spent.
    MaxTokens,
    /// The session's context is full.
    ContextFull,
}

impl FinishReason {
    /// The OpenAI API's name: `"stop"` for an end-of-generation token or a stop string,
    /// `"length"` for the budget or the context.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::EndOfGeneration | FinishReason::StopString => "stop",
            FinishReason::MaxTokens | FinishReason::ContextFull => "length",
        }
    }
}

impl std::fmt::Display for FinishReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FinishReason::EndOfGeneration => "end-of-generation token",
            FinishReason::StopString => "stop string",
            FinishReason::MaxTokens => "token budget spent",
            FinishReason::ContextFull => "context full",
        })
    }
}

/// Streams generated text, one piece (complete UTF-8) per item; made by
/// [`Session::generate`].
///
/// - At most [`GenerateOptions::max_tokens`] tokens are generated, however many pieces they
///   make (a character can take several tokens, a token can end in the middle of one).
/// - The concatenation of the pieces equals the detokenization of [`tokens`](Self::tokens)
///   (llama.cpp's `llama_detokenize`, control tokens not rendered): the last bytes, which
///   space clean-up holds back, come when generation ends.
/// - After a stop string the session holds the prompt and exactly the returned text (the
///   tokens that reached into the stop string are replaced by the tokens of the text before
///   it), so the conversation continues from what the caller saw.
/// - The last generated token and an end-of-generation token are left pending in the session:
///   they are evaluated with whatever comes next, and never when nothing does.
/// - Dropping the iterator early is fine: the session keeps what was generated so far.
pub struct Generate<'s, 'm> {
    session: &'s mut Session<'m>,
    sampler: Sampler,
    decoder: DecoderState,
    stop: Vec<String>,
    max_tokens: Option<usize>,
    /// Tokens the session held before the first generated one.
    start: usize,
    prompt_tokens: Vec<u32>,
    prompt_top: Vec<(u32, f32)>,
    generated: Vec<u32>,
    n_sampled: usize,
    /// The generated text so far: what was returned, then what is held back because it may
    /// be the start of a stop string.
    text: String,
    /// Bytes of `text` returned.
    returned: usize,
    finish: Option<FinishReason>,
    failed: bool,
    prompt_time: Duration,
    decode_time: Duration,
}

impl std::fmt::Debug for Generate<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generate")
            .field("prompt_tokens", &self.prompt_tokens.len())
            .field("generated", &self.generated.len())
            .field("max_tokens", &self.max_tokens)
            .field("finish", &self.finish)
            .finish_non_exhaustive()
    }
}

/// The `k` highest logits as (id, logit), highest first, ties to the lower id: one pass that
/// keeps the best `k` so far (no copy of the vocabulary).
fn top_logits(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &l) in logits.iter().enumerate() {
        if let (true, Some(&(_, worst))) = (top.len() == k, top.last()) {
            if l <= worst {
                continue;
            }
        }
        if k == 0 {
            break;
        }
        // After every entry at least as high: ties keep the lower id first.
        let at = top.partition_point(|&(_, t)| t >= l);
        top.insert(at, (i as u32, l));
        top.truncate(k);
    }
    top
}

impl<'s, 'm> Generate<'s, 'm> {
    pub(crate) fn start(
        session: &'s mut Session<'m>,
        tokens: &[u32],
        options: &GenerateOptions,
    ) -> Result<Self> {
        // Everything that can be refused is checked before the session changes.
        let sampler = Sampler::new(&options.sampling)?;
        session.push_tokens(tokens)?;
        let t0 = Instant::now();
        if let Err(e) = session.ensure_logits() {
            // Nothing was evaluated: leave the session as it was.
            let _ = session.truncate(session.tokens.len() - tokens.len());
            return Err(e);
        }
        let prompt_time = t0.elapsed();
        let decoder = DecoderState::new(session.model().tokenizer(), false);
        Ok(Generate {
            prompt_top: top_logits(session.logits(), PROMPT_TOP),
            start: session.tokens.len(),
            session,
            sampler,
            decoder,
            stop: options
                .stop
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            max_tokens: options.max_tokens,
            prompt_tokens: tokens.to_vec(),
            generated: Vec::new(),
            n_sampled: 0,
            text: String::new(),
            returned: 0,
            finish: None,
            failed: false,
            prompt_time,
            decode_time: Duration::ZERO,
        })
    }

    /// The prompt's token ids (as given to this generation).
    pub fn prompt_tokens(&self) -> &[u32] {
        &self.prompt_tokens
    }

    /// The ten highest logits at the last prompt position, as (id, logit), highest first.
    pub fn prompt_top_logits(&self) -> &[(u32, f32)] {
        &self.prompt_top
    }

    /// The ids generated so far, whose detokenization is the text returned (an
    /// end-of-generation token is not included).
    pub fn tokens(&self) -> &[u32] {
        &self.generated
    }

    /// Tokens sampled so far, including an end-of-generation token and tokens given back at
    /// a stop string (what an API bills as completion tokens).
    pub fn n_sampled(&self) -> usize {
        self.n_sampled
    }

    /// Why generation ended; `None` while it goes on (or after an error).
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    /// Time spent evaluating the prompt.
    pub fn prompt_duration(&self) -> Duration {
        self.prompt_time
    }

    /// Time spent evaluating generated tokens and sampling.
    pub fn decode_duration(&self) -> Duration {
        self.decode_time
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

    /// Samples and appends one token, or ends the generation.
    fn advance(&mut self) -> Result<()> {
        if self.max_tokens.is_some_and(|m| self.generated.len() >= m) {
            return self.finish(FinishReason::MaxTokens);
        }
        if self.session.tokens.len() >= self.session.n_ctx {
            return self.finish(FinishReason::ContextFull);
        }
        self.session.ensure_logits()?;
        let token = self
            .sampler
            .sample(&self.session.logits, &self.session.tokens);
        self.n_sampled += 1;
        // Held (pending) in either case: it belongs to the conversation.
        self.session.tokens.push(token);
        if self.session.model().tokenizer().is_eog(token) {
            return self.finish(FinishReason::EndOfGeneration);
        }
        self.generated.push(token);
        let piece = self.decoder.push(self.session.model.tokenizer(), token)?;
        self.text.push_str(&piece);
        match self.find_stop() {
            Some(pos) => self.stop_at(pos),
            None => Ok(()),
        }
    }

    /// Ends the generation: the decoder's held-back bytes join the text (they may complete a
    /// stop string).
    fn finish(&mut self, reason: FinishReason) -> Result<()> {
        let rest = self.decoder.flush(self.session.model.tokenizer());
        self.text.push_str(&rest);
        if let Some(pos) = self.find_stop() {
            return self.stop_at(pos);
        }
        self.finish = Some(reason);
        Ok(())
    }

    /// Cuts the text at a stop string and makes the session hold exactly the text returned.
    fn stop_at(&mut self, pos: usize) -> Result<()> {
        self.text.truncate(pos);
        self.finish = Some(FinishReason::StopString);
        let tok = self.session.model.tokenizer();
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
        let mut held = self.session.tokens[..self.start].to_vec();
        held.extend_from_slice(&self.generated);
        self.session.set_tokens(&held)?;
        Ok(())
    }

    /// The text that can be returned now.
    fn take_ready(&mut self) -> String {
        let end = match self.finish {
            Some(_) => self.text.len(),
            None => self.text.len() - self.unsafe_tail(),
        };
        let piece = self.text[self.returned..end].to_string();
        self.returned = end;
        piece
    }
}

impl Iterator for Generate<'_, '_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        loop {
            let piece = self.take_ready();
            if !piece.is_empty() {
                return Some(Ok(piece));
            }
            if self.finish.is_some() || self.failed {
                return None;
            }
            let t0 = Instant::now();
            let step = self.advance();
            self.decode_time += t0.elapsed();
            if let Err(e) = step {
                self.failed = true;
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_logits_are_sorted_and_break_ties_low() {
        let l = [0.5, 3.0, -1.0, 3.0, 2.0];
        assert_eq!(top_logits(&l, 3), vec![(1, 3.0), (3, 3.0), (4, 2.0)]);
        assert_eq!(top_logits(&l, 10).len(), 5);
    }

    #[test]
    fn finish_reasons_use_openai_names() {
        assert_eq!(FinishReason::EndOfGeneration.as_str(), "stop");
        assert_eq!(FinishReason::StopString.as_str(), "stop");
        assert_eq!(FinishReason::MaxTokens.as_str(), "length");
        assert_eq!(FinishReason::ContextFull.as_str(), "length");
    }
}
