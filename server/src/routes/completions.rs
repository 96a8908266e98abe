//! POST `/v1/completions`: text in, text out, no template.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use tramontane::engine::TokenLogprobs;
use tramontane::{FinishReason, Model};

use super::off_the_workers;
use crate::generate::{self, check_prompt, ChunkHead, Chunks, Job, Totals};
use crate::openai::completions::{self as shapes, CompletionFields};
use crate::openai::error::{fields, parse_body, ApiError};
use crate::openai::inputs::{inputs, tokens};
use crate::openai::params::{GenerationParams, MAX_N};
use crate::request_log::RequestLog;
use crate::state::{response_id, unix_now, AppState};

/// The handler.
pub async fn completions(
    State(state): State<AppState>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let body = parse_body(body)?;
    let completion: CompletionFields = fields(&body)?;
    completion.check()?;
    let params: GenerationParams = fields(&body)?;
    let generation = params.check(params.max_tokens)?;
    let model = Arc::clone(&state.model);
    let prompts = inputs(&completion.prompt, "prompt", MAX_N, "prompts")?;
    let prompts = off_the_workers("tokenizing", move || {
        tokens(prompts, model.tokenizer(), "prompt")
    })
    .await?;
    for p in &prompts {
        check_prompt(p, state.engine.n_ctx, "prompt")?;
        log.tokens(p.len(), 0);
    }
    if prompts.len() * generation.n > MAX_N {
        return Err(ApiError::bad_request(
            format!("at most {MAX_N} choices per request (prompts x n)"),
            Some("n"),
        ));
    }
    let job = Job {
        prompts,
        generation,
        logprobs: completion.logprobs,
    };
    let submitted = generate::submit(&state, &job, arrived).await?;
    let id = response_id("cmpl");
    let created = unix_now();
    if job.generation.stream {
        let chunks = TextChunks {
            head: ChunkHead {
                id,
                object: "text_completion",
                created,
                model: state.model_id.to_string(),
                include_usage: job.generation.include_usage,
            },
            model: Arc::clone(&state.model),
            offsets: vec![0; job.n_choices()],
        };
        return Ok(generate::stream(submitted, chunks, &job, log).into_response());
    }
    let (choices, totals) = generate::collect(submitted, &job, &log).await?;
    let tokenizer = state.model.tokenizer();
    let choices: Vec<Value> = choices
        .into_iter()
        .enumerate()
        .map(|(index, c)| {
            let logprobs = job.logprobs.map(|_| {
                let tokens: Vec<(u32, &TokenLogprobs)> = c
                    .tokens
                    .iter()
                    .filter_map(|(t, lp)| lp.as_ref().map(|lp| (*t, lp)))
                    .collect();
                shapes::legacy_logprobs(tokenizer, &tokens, 0).0
            });
            json!({
                "index": index,
                "text": c.text,
                "logprobs": logprobs,
                "finish_reason": c.finish.map(FinishReason::as_str),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": &*state.model_id,
        "system_fingerprint": null,
        "choices": choices,
        "usage": totals.json(),
    }))
    .into_response())
}

/// `text_completion` chunks.
struct TextChunks {
    head: ChunkHead,
    model: Arc<Model>,
    /// Characters streamed so far per choice, for `text_offset`.
    offsets: Vec<usize>,
}

impl Chunks for TextChunks {
    fn opening(&mut self, _n_choices: usize) -> Vec<Value> {
        Vec::new()
    }

    fn token(
        &mut self,
        index: usize,
        token: u32,
        text: &str,
        logprobs: Option<&TokenLogprobs>,
    ) -> Vec<Value> {
        if text.is_empty() && logprobs.is_none() {
            return Vec::new();
        }
        let logprobs = match (logprobs, self.offsets.get_mut(index)) {
            (Some(lp), Some(offset)) => {
                let (value, next) =
                    shapes::legacy_logprobs(self.model.tokenizer(), &[(token, lp)], *offset);
                *offset = next;
                value
            }
            _ => Value::Null,
        };
        vec![self.head.chunk(json!([{
            "index": index,
            "text": text,
            "logprobs": logprobs,
            "finish_reason": null,
        }]))]
    }

    fn finished(&mut self, index: usize, text: &str, reason: FinishReason) -> Vec<Value> {
        vec![self.head.chunk(json!([{
            "index": index,
            "text": text,
            "logprobs": null,
            "finish_reason": reason.as_str(),
        }]))]
    }

    fn usage(&mut self, totals: &Totals) -> Value {
        let mut chunk = self.head.chunk(json!([]));
        chunk["usage"] = totals.json();
        chunk
    }
}
