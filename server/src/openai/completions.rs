//! `/v1/completions` (the legacy text completion API) request fields and reply shapes.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tramontane::engine::TokenLogprobs;
use tramontane::tokenizer::{DecodeOptions, Tokenizer};

use super::error::ApiError;
use crate::generate::logprob_value;

/// The completion-only fields.
#[derive(Debug, Deserialize)]
pub struct CompletionFields {
    /// A string, a list of strings, a list of token ids, or a list of such lists.
    pub prompt: Value,
    /// Log-probabilities with this many alternatives per token (legacy: an integer).
    pub logprobs: Option<usize>,
    /// Echo the prompt: refused (it would need the prompt's log-probabilities too).
    pub echo: Option<bool>,
    /// Server-side best-of sampling: refused beyond 1.
    pub best_of: Option<usize>,
    /// Text after the insertion point: refused (no fill-in-the-middle).
    pub suffix: Option<String>,
}

impl CompletionFields {
    /// Refuses what this server does not do, rather than silently ignoring it.
    pub fn check(&self) -> Result<(), ApiError> {
        if self.echo == Some(true) {
            return Err(ApiError::bad_request("echo is not supported", Some("echo")));
        }
        if self.best_of.is_some_and(|b| b > 1) {
            return Err(ApiError::bad_request(
                "best_of is not supported (use n and choose on the client)",
                Some("best_of"),
            ));
        }
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::bad_request(
                "suffix is not supported",
                Some("suffix"),
            ));
        }
        if self
            .logprobs
            .is_some_and(|n| n > tramontane::engine::MAX_TOP_LOGPROBS)
        {
            return Err(ApiError::bad_request(
                format!(
                    "logprobs must be between 0 and {}",
                    tramontane::engine::MAX_TOP_LOGPROBS
                ),
                Some("logprobs"),
            ));
        }
        Ok(())
    }
}

/// The legacy `logprobs` object of some tokens: `tokens`, `token_logprobs`, `top_logprobs`
/// (one `{token: logprob}` object per token) and `text_offset` (character offsets into the
/// completion, counted from `offset`). Returns it and the offset after the last token.
pub fn legacy_logprobs(
    tokenizer: &Tokenizer,
    tokens: &[(u32, &TokenLogprobs)],
    mut offset: usize,
) -> (Value, usize) {
    let text = |id: u32| {
        String::from_utf8_lossy(&tokenizer.token_to_piece(id, DecodeOptions::default()))
            .into_owned()
    };
    let mut out_tokens = Vec::new();
    let mut out_logprobs = Vec::new();
    let mut out_top = Vec::new();
    let mut out_offsets = Vec::new();
    for &(id, lp) in tokens {
        let t = text(id);
        out_offsets.push(offset);
        offset += t.chars().count();
        out_tokens.push(t);
        out_logprobs.push(logprob_value(lp.logprob));
        let top: Map<String, Value> = lp
            .top
            .iter()
            .map(|&(id, l)| (text(id), json!(logprob_value(l))))
            .collect();
        out_top.push(Value::Object(top));
    }
    (
        json!({
            "tokens": out_tokens,
            "token_logprobs": out_logprobs,
            "top_logprobs": out_top,
            "text_offset": out_offsets,
        }),
        offset,
    )
}
