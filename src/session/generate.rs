//! The streaming generation iterator.

use std::time::{Duration, Instant};

use crate::sampling::{Sampler, Sampling};
use crate::session::Session;
use crate::tokenizer::StreamDecoder;
use crate::{Error, Result};

/// Streams generated text, one piece (complete UTF-8) per item. Dropping it early is fine: the
/// last sampled token is kept as the session's pending token.
pub struct Generate<'s, 'm> {
    session: &'s mut Session<'m>,
    sampler: Sampler,
    decoder: StreamDecoder<'m>,
    stop: Vec<String>,
    /// Decoded text held back because it could be the start of a stop string.
    held: String,
    /// The last sampled token, to evaluate before sampling the next.
    to_feed: Option<u32>,
    prompt_tokens: Vec<u32>,
    prompt_logits: Vec<f32>,
    generated: Vec<u32>,
    prompt_time: Duration,
    decode_time: Duration,
    done: bool,
}

impl<'s, 'm> Generate<'s, 'm> {
    pub(crate) fn start(
        session: &'s mut Session<'m>,
        tokens: &[u32],
        sampling: &Sampling,
    ) -> Result<Self> {
        let t0 = Instant::now();
        if !tokens.is_empty() || session.pending.is_some() {
            session.eval(tokens)?;
        }
        if session.logits.is_empty() {
            return Err(Error::InvalidArgument {
                what: "empty prompt on an empty session: nothing to continue from".into(),
            });
        }
        let prompt_time = t0.elapsed();
        let model = session.model;
        Ok(Generate {
            prompt_logits: session.logits.clone(),
            session,
            sampler: Sampler::new(sampling),
            decoder: model.tokenizer().stream_decoder(),
            stop: sampling
                .stop
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            held: String::new(),
            to_feed: None,
            prompt_tokens: tokens.to_vec(),
            generated: Vec::new(),
            prompt_time,
            decode_time: Duration::ZERO,
            done: false,
        })
    }

    /// The prompt's token ids.
    pub fn prompt_tokens(&self) -> &[u32] {
        &self.prompt_tokens
    }

    /// The logits at the last prompt position.
    pub fn prompt_logits(&self) -> &[f32] {
        &self.prompt_logits
    }

    /// The ids generated so far (an end-of-generation token is not included).
    pub fn tokens(&self) -> &[u32] {
        &self.generated
    }

    /// Time spent evaluating the prompt.
    pub fn prompt_duration(&self) -> Duration {
        self.prompt_time
    }

    /// Time spent evaluating generated tokens and sampling.
    pub fn decode_duration(&self) -> Duration {
        self.decode_time
    }

    /// The longest tail of `held` that is a proper start of some stop string.
    fn unsafe_tail(&self) -> usize {
        let mut keep = 0;
        for s in &self.stop {
            for (i, _) in s.char_indices().skip(1) {
                if i > keep && self.held.ends_with(&s[..i]) {
                    keep = i;
                }
            }
        }
        keep
    }

    fn finish(&mut self) -> Option<Result<String>> {
        self.done = true;
        let rest = std::mem::take(&mut self.held);
        (!rest.is_empty()).then_some(Ok(rest))
    }

    fn step(&mut self) -> Result<Option<String>> {
        if let Some(t) = self.to_feed.take() {
            self.session.eval(&[t])?;
        }
        let token = self
            .sampler
            .sample(&self.session.logits, &self.session.tokens);
        let model = self.session.model;
        if model.tokenizer().is_eog(token) {
            self.session.pending = Some(token);
            self.done = true;
            return Ok(None);
        }
        self.generated.push(token);
        self.to_feed = Some(token);
        self.held.push_str(&self.decoder.push(token)?);
        if let Some(pos) = self
            .stop
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.held.truncate(pos);
            self.done = true;
            return Ok(None);
        }
        let emit = self.held.len() - self.unsafe_tail();
        Ok(Some(self.held.drain(..emit).collect()))
    }
}

impl Iterator for Generate<'_, '_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        while !self.done {
            let t0 = Instant::now();
            let r = self.step();
            self.decode_time += t0.elapsed();
            match r {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(Some(text)) if !text.is_empty() => return Some(Ok(text)),
                Ok(_) => {}
            }
        }
        self.finish()
    }
}

impl Drop for Generate<'_, '_> {
    fn drop(&mut self) {
        if let Some(t) = self.to_feed.take() {
            self.session.pending = Some(t);
        }
    }
}
