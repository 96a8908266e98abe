//! The router: every endpoint, the layers around them, and OpenAI-shaped 404 / 405 answers.

mod chat;
mod completions;
mod embeddings;
mod health;
mod models;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::openai::error::ApiError;
use crate::state::AppState;
use crate::{auth, request_log};

/// The largest request body: long prompts fit, a runaway upload does not (413).
pub const BODY_LIMIT: usize = 16 << 20;

/// The application.
pub fn router(state: AppState, api_key: Option<Arc<str>>) -> Router {
    let v1 = Router::new()
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::get))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/completions", post(completions::completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route_layer(middleware::from_fn_with_state(api_key, auth::require_key));
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .merge(v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            request_log::middleware,
        ))
        .with_state(state)
}

/// Runs CPU work of a request (rendering a chat, tokenizing up to 16 MiB of text) off the
/// async workers; `what` names it in the 500 if it panics.
async fn off_the_workers<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| {
        ApiError::server(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} failed"),
            "internal_error",
        )
    })?
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint", "not_found")
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        ..ApiError::bad_request("this endpoint does not take that method", None)
    }
}
