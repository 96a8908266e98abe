//! POST `/v1/embeddings`: mean-pooled, normalised final hidden states ([`Engine::embed`]).
//! Each input runs on the engine thread between two generation steps, so a long list of
//! inputs delays the streams by one input at a time, never by the whole list.
//!
//! [`Engine::embed`]: tramontane::engine::Engine::embed

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::off_the_workers;
use crate::generate::check_prompt;
use crate::openai::embeddings::{self as shapes, EmbeddingFields, Encoding, MAX_INPUTS};
use crate::openai::error::{fields, parse_body, ApiError};
use crate::openai::inputs::{inputs, tokens};
use crate::request_log::RequestLog;
use crate::state::AppState;

/// The handler.
pub async fn embeddings(
    State(state): State<AppState>,
    Extension(log): Extension<Arc<RequestLog>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = parse_body(body)?;
    let request: EmbeddingFields = fields(&body)?;
    let encoding = request.check(state.engine.n_embd)?;
    let inputs = inputs(&request.input, "input", MAX_INPUTS, "inputs")?;
    let model = Arc::clone(&state.model);
    let token_lists = off_the_workers("tokenizing", move || {
        tokens(inputs, model.tokenizer(), "input")
    })
    .await?;
    // Check every input before computing any: a bad last input should not cost the others.
    for tokens in &token_lists {
        // The whole input is one forward pass, so it must fit the context (no reply follows:
        // as long as the context itself is fine).
        if tokens.len() > state.engine.n_ctx {
            return Err(ApiError::too_long(
                tokens.len(),
                state.engine.n_ctx,
                "input",
            ));
        }
        check_prompt(tokens, usize::MAX, "input")?;
    }
    let mut data = Vec::with_capacity(token_lists.len());
    let mut total = 0;
    for (index, tokens) in token_lists.into_iter().enumerate() {
        let n = tokens.len();
        let vector = state
            .engine
            .embed(tokens)
            .await?
            .map_err(|e| ApiError::bad_request(e.to_string(), Some("input")))?;
        total += n;
        log.tokens(n, 0);
        let embedding = match encoding {
            Encoding::Float => json!(vector),
            Encoding::Base64 => json!(shapes::base64_f32(&vector)),
        };
        data.push(json!({"object": "embedding", "index": index, "embedding": embedding}));
    }
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": &*state.model_id,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    })))
}
