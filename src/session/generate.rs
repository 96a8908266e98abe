//! The streaming generation iterator: token budgets, stop strings, finish reasons.

use std::time::{Duration, Instant};

use super::completion::Completion;
use crate::sampling::Sampling;
use crate::session::Session;
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
    completion: Completion,
    prompt_tokens: Vec<u32>,
    prompt_top: Vec<(u32, f32)>,
    failed: bool,
    prompt_time: Duration,
    decode_time: Duration,
}

impl std::fmt::Debug for Generate<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generate")
            .field("prompt_tokens", &self.prompt_tokens.len())
            .field("completion", &self.completion)
            .finish_non_exhaustive()
    }
}

/// The `k` highest logits as (id, logit), highest first, ties to the lower id: one pass that
/// keeps the best `k` so far (no copy of the vocabulary).
pub(crate) fn top_logits(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
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
        crate::sampling::Sampler::new(&options.sampling)?;
        session.push_tokens(tokens)?;
        let t0 = Instant::now();
        if let Err(e) = session.ensure_logits() {
            // Nothing was evaluated: leave the session as it was.
            let _ = session.truncate(session.tokens.len() - tokens.len());
            return Err(e);
        }
        let prompt_time = t0.elapsed();
        Ok(Generate {
            prompt_top: top_logits(session.logits(), PROMPT_TOP),
            completion: Completion::new(session, options)?,
            session,
            prompt_tokens: tokens.to_vec(),
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
        &self.completion.generated
    }

    /// Tokens sampled so far, including an end-of-generation token and tokens given back at
    /// a stop string (what an API bills as completion tokens).
    pub fn n_sampled(&self) -> usize {
        self.completion.n_sampled
    }

    /// Why generation ended; `None` while it goes on (or after an error).
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.completion.finish
    }

    /// Time spent evaluating the prompt.
    pub fn prompt_duration(&self) -> Duration {
        self.prompt_time
    }

    /// Time spent evaluating generated tokens and sampling.
    pub fn decode_duration(&self) -> Duration {
        self.decode_time
    }

    /// Samples and appends one token, or ends the generation.
    fn advance(&mut self) -> Result<()> {
        let c = &mut self.completion;
        if c.limit_reached(self.session)? {
            return Ok(());
        }
        self.session.ensure_logits()?;
        let token = c.sampler.sample(&self.session.logits, &self.session.tokens);
        c.accept(self.session, token)
    }
}

impl Iterator for Generate<'_, '_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        loop {
            let piece = self.completion.take_ready();
            if !piece.is_empty() {
                return Some(Ok(piece));
            }
            if self.completion.finish.is_some() || self.failed {
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
