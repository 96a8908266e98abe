//! One log line and one metrics count per request, and a last defence against panics.
//!
//! The line is written when the request is really over: a streamed reply ends long after its
//! handler returned, so the handler's stream holds the same [`RequestLog`] and the line comes
//! when the last holder drops it, with the final token counts and duration.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::metrics::Metrics;
use crate::openai::error::ApiError;

/// What is known of a request so far; logged when dropped.
#[derive(Debug)]
pub struct RequestLog {
    method: String,
    path: String,
    started: Instant,
    status: AtomicU16,
    prompt_tokens: AtomicUsize,
    completion_tokens: AtomicUsize,
}

impl RequestLog {
    /// Adds token counts (called once per finished choice or embedding input).
    pub fn tokens(&self, prompt: usize, completion: usize) {
        self.prompt_tokens.fetch_add(prompt, Relaxed);
        self.completion_tokens.fetch_add(completion, Relaxed);
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        tracing::info!(
            method = %self.method,
            path = %self.path,
            status = self.status.load(Relaxed),
            ms = self.started.elapsed().as_millis() as u64,
            tokens_in = self.prompt_tokens.load(Relaxed),
            tokens_out = self.completion_tokens.load(Relaxed),
            "request"
        );
    }
}

/// The middleware: makes the request's [`RequestLog`] (an extension handlers can take),
/// catches a panic in the handler as a 500, counts the request by route and status.
pub async fn middleware(
    State(metrics): State<Arc<Metrics>>,
    mut req: Request,
    next: Next,
) -> Response {
    // Route patterns, not raw paths, so that the metrics' label set stays bounded.
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_string();
    let log = Arc::new(RequestLog {
        method: req.method().to_string(),
        path: req.uri().path().chars().take(200).collect(),
        started: Instant::now(),
        status: AtomicU16::new(0),
        prompt_tokens: AtomicUsize::new(0),
        completion_tokens: AtomicUsize::new(0),
    });
    req.extensions_mut().insert(Arc::clone(&log));
    let response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(path = %log.path, "a handler panicked");
            ApiError::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while handling the request",
                "internal_error",
            )
            .into_response()
        }
    };
    let status = response.status().as_u16();
    log.status.store(status, Relaxed);
    metrics.request(&endpoint, status);
    response
}
