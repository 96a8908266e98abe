//! POST `/v1/chat/completions`: the conversation is rendered with the model's own chat
//! template, tokenized, and generated from like a text completion.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use tramontane::engine::TokenLogprobs;
use tramontane::tokenizer::EncodeOptions;
use tramontane::{FinishReason, Model, RenderOptions};

use super::off_the_workers;
use crate::generate::{self, check_prompt, ChunkHead, Chunks, Job, Totals};
use crate::openai::chat::{self as shapes, ChatFields};
use crate::openai::error::{fields, parse_body, ApiError};
use crate::openai::params::GenerationParams;
use crate::request_log::RequestLog;
use crate::state::{response_id, unix_now, AppState};

/// The handler.
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let body = parse_body(body)?;
    let chat: ChatFields = fields(&body)?;
    let params: GenerationParams = fields(&body)?;
    let generation = params.check(chat.max_completion_tokens.or(params.max_tokens))?;
    let logprobs = shapes::logprobs(&chat)?;
    let messages = shapes::messages(chat.messages)?;
    // Rendering and tokenizing a long conversation is CPU work: off the async workers.
    let model = Arc::clone(&state.model);
    let prompt = off_the_workers("rendering the chat", move || render(&model, &messages)).await?;
    check_prompt(&prompt, state.engine.n_ctx, "messages")?;
    log.tokens(prompt.len(), 0);
    let job = Job {
        prompts: vec![prompt],
        generation,
        logprobs,
    };
    let submitted = generate::submit(&state, &job, arrived).await?;
    let id = response_id("chatcmpl");
    let created = unix_now();
    let tokenizer_model = Arc::clone(&state.model);
    if job.generation.stream {
        let chunks = ChatChunks {
            head: ChunkHead {
                id,
                object: "chat.completion.chunk",
                created,
                model: state.model_id.to_string(),
                include_usage: job.generation.include_usage,
            },
            model: tokenizer_model,
        };
        return Ok(generate::stream(submitted, chunks, &job, log).into_response());
    }
    let (choices, totals) = generate::collect(submitted, &job, &log).await?;
    let tokenizer = tokenizer_model.tokenizer();
    let choices: Vec<Value> = choices
        .into_iter()
        .enumerate()
        .map(|(index, c)| {
            let logprobs = job.logprobs.map(|_| {
                shapes::logprobs_object(
                    c.tokens
                        .iter()
                        .filter_map(|(t, lp)| {
                            lp.as_ref()
                                .map(|lp| shapes::logprob_entry(tokenizer, *t, lp))
                        })
                        .collect(),
                )
            });
            json!({
                "index": index,
                "message": {"role": "assistant", "content": c.text, "refusal": null},
                "logprobs": logprobs,
                "finish_reason": c.finish.map(FinishReason::as_str),
            })
        })
        .collect();
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": &*state.model_id,
        "system_fingerprint": null,
        "choices": choices,
        "usage": totals.json(),
    }))
    .into_response())
}

/// The prompt's tokens: the conversation in the model's template, control tokens parsed (the
/// template writes them as text), BOS as the model wants.
fn render(model: &Model, messages: &[tramontane::ChatMessage]) -> Result<Vec<u32>, ApiError> {
    let rendered = model
        .chat_template()
        .render(messages, RenderOptions::for_generation())
        .map_err(|e| ApiError::bad_request(e.to_string(), Some("messages")))?;
    model
        .tokenizer()
        .encode(&rendered.text, EncodeOptions::PROMPT)
        .map_err(|e| ApiError::bad_request(e.to_string(), Some("messages")))
}

/// `chat.completion.chunk`s.
struct ChatChunks {
    head: ChunkHead,
    model: Arc<Model>,
}

impl Chunks for ChatChunks {
    fn opening(&mut self, n_choices: usize) -> Vec<Value> {
        (0..n_choices)
            .map(|index| {
                self.head.chunk(json!([{
                    "index": index,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": null,
                    "finish_reason": null,
                }]))
            })
            .collect()
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
        let logprobs = logprobs.map(|lp| {
            shapes::logprobs_object(vec![shapes::logprob_entry(
                self.model.tokenizer(),
                token,
                lp,
            )])
        });
        vec![self.head.chunk(json!([{
            "index": index,
            "delta": {"content": text},
            "logprobs": logprobs,
            "finish_reason": null,
        }]))]
    }

    fn finished(&mut self, index: usize, text: &str, reason: FinishReason) -> Vec<Value> {
        let mut out = Vec::new();
        if !text.is_empty() {
            out.push(self.head.chunk(json!([{
                "index": index,
                "delta": {"content": text},
                "logprobs": null,
                "finish_reason": null,
            }])));
        }
        out.push(self.head.chunk(json!([{
            "index": index,
            "delta": {},
            "logprobs": null,
            "finish_reason": reason.as_str(),
        }])));
        out
    }

    fn usage(&mut self, totals: &Totals) -> Value {
        let mut chunk = self.head.chunk(json!([]));
        chunk["usage"] = totals.json();
        chunk
    }
}
