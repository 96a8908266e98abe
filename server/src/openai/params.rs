//! The generation fields that chat and text completions share: sampling, budget, stop strings,
//! the number of choices. OpenAI's defaults hold (temperature 1, top_p 1, no top-k or min-p,
//! no penalties); `top_k`, `min_p` and `repeat_penalty` are accepted as extensions, as
//! llama.cpp's and vLLM's servers do.

use serde::Deserialize;
use tramontane::{GenerateOptions, Sampling};

use super::error::ApiError;

/// The most choices one request may ask for (`n`).
pub const MAX_N: usize = 16;
/// The most stop strings (OpenAI's limit).
pub const MAX_STOP: usize = 4;

/// `stop`: one string or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Up to [`MAX_STOP`].
    Many(Vec<String>),
}

/// The shared fields, read from any generation request body.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GenerationParams {
    /// Sampling temperature (OpenAI default 1; 0 is greedy).
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Extension: keep the k most likely tokens (0: off, the default).
    pub top_k: Option<usize>,
    /// Extension: min-p (0: off, the default).
    pub min_p: Option<f32>,
    /// Extension: llama.cpp's repetition penalty (1: off).
    pub repeat_penalty: Option<f32>,
    /// OpenAI's presence penalty.
    pub presence_penalty: Option<f32>,
    /// OpenAI's frequency penalty.
    pub frequency_penalty: Option<f32>,
    /// PRNG seed: any JSON integer (negative ones are taken modulo 2^64).
    pub seed: Option<serde_json::Number>,
    /// Stop strings.
    pub stop: Option<Stop>,
    /// Independent choices.
    pub n: Option<usize>,
    /// Token budget of each choice.
    pub max_tokens: Option<usize>,
    /// Whether to stream the reply as server-sent events.
    pub stream: Option<bool>,
    /// Streaming options.
    pub stream_options: Option<StreamOptions>,
}

/// `stream_options`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage.
    pub include_usage: Option<bool>,
}

/// What the shared fields ask for, checked.
#[derive(Clone, Debug)]
pub struct Generation {
    /// Options of choice 0; choice `i` uses seed `seed + i`.
    pub options: GenerateOptions,
    /// Choices per prompt.
    pub n: usize,
    /// Stream or not.
    pub stream: bool,
    /// Usage chunk at the end of a stream.
    pub include_usage: bool,
}

impl Generation {
    /// The options of choice `i`: a distinct seed each, so `n` choices differ when sampling.
    pub fn choice(&self, i: usize) -> GenerateOptions {
        let mut options = self.options.clone();
        options.sampling.seed = options.sampling.seed.wrapping_add(i as u64);
        options
    }
}

impl GenerationParams {
    /// The checked options. `max_tokens` is the budget the endpoint settled on (chat takes
    /// `max_completion_tokens` too); a budget past the context just ends with "length".
    pub fn check(&self, max_tokens: Option<usize>) -> Result<Generation, ApiError> {
        let seed = match &self.seed {
            None => random_seed(),
            Some(n) => n
                .as_u64()
                .or_else(|| n.as_i64().map(|v| v as u64))
                .ok_or_else(|| ApiError::bad_request("seed must be an integer", Some("seed")))?,
        };
        let sampling = Sampling {
            temperature: self.temperature.unwrap_or(1.0),
            top_k: self.top_k.unwrap_or(0),
            top_p: self.top_p.unwrap_or(1.0),
            min_p: self.min_p.unwrap_or(0.0),
            repeat_penalty: self.repeat_penalty.unwrap_or(1.0),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            seed,
            ..Sampling::default()
        };
        if let Err(e) = sampling.validate() {
            let message = e.to_string();
            return Err(ApiError::bad_request(
                message.clone(),
                sampling_field(&message),
            ));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > MAX_STOP {
            return Err(ApiError::bad_request(
                format!("at most {MAX_STOP} stop strings, not {}", stop.len()),
                Some("stop"),
            ));
        }
        let n = self.n.unwrap_or(1);
        if !(1..=MAX_N).contains(&n) {
            return Err(ApiError::bad_request(
                format!("n must be between 1 and {MAX_N}, not {n}"),
                Some("n"),
            ));
        }
        if max_tokens == Some(0) {
            return Err(ApiError::bad_request(
                "max_tokens must be at least 1",
                Some("max_tokens"),
            ));
        }
        let stream = self.stream.unwrap_or(false);
        Ok(Generation {
            options: GenerateOptions {
                sampling,
                max_tokens,
                stop,
            },
            n,
            stream,
            include_usage: stream
                && self
                    .stream_options
                    .and_then(|o| o.include_usage)
                    .unwrap_or(false),
        })
    }
}

/// The field a [`Sampling::validate`] message names ("sampling top_p = 2: must be ...").
fn sampling_field(message: &str) -> Option<&'static str> {
    const FIELDS: [&str; 6] = [
        "temperature",
        "top_p",
        "min_p",
        "repeat_penalty",
        "frequency_penalty",
        "presence_penalty",
    ];
    let rest = message.split("sampling ").nth(1)?;
    let name = rest.split_whitespace().next()?;
    FIELDS.into_iter().find(|f| *f == name)
}

/// A seed for a request that gave none (OpenAI samples differently each time then): the
/// standard library's per-process random hash keys, mixed with a counter.
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: serde_json::Value) -> Result<Generation, ApiError> {
        let p: GenerationParams = serde_json::from_value(body).unwrap();
        p.check(p.max_tokens)
    }

    #[test]
    fn openai_defaults_and_distinct_seeds() {
        let g = check(serde_json::json!({"seed": 7, "n": 3, "stop": "x"})).unwrap();
        let s = &g.options.sampling;
        assert_eq!(
            (s.temperature, s.top_k, s.top_p, s.min_p),
            (1.0, 0, 1.0, 0.0)
        );
        assert_eq!(g.options.stop, vec!["x".to_string()]);
        let seeds: Vec<u64> = (0..3).map(|i| g.choice(i).sampling.seed).collect();
        assert_eq!(seeds, vec![7, 8, 9]);
        assert_eq!(
            check(serde_json::json!({"seed": -1}))
                .unwrap()
                .options
                .sampling
                .seed,
            u64::MAX
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        for (body, param) in [
            (serde_json::json!({"top_p": 1.5}), "top_p"),
            (serde_json::json!({"temperature": -1}), "temperature"),
            (serde_json::json!({"min_p": 2}), "min_p"),
            (serde_json::json!({"n": 0}), "n"),
            (serde_json::json!({"n": 17}), "n"),
            (
                serde_json::json!({"stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (serde_json::json!({"max_tokens": 0}), "max_tokens"),
            (serde_json::json!({"seed": 1.5}), "seed"),
        ] {
            let e = check(body.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {e:?}");
            assert_eq!(e.status, 400);
        }
    }
}
