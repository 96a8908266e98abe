//! GET `/health` and `/metrics`: open even with `--api-key` (see `auth`).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::AppState;

/// 200 `{"status":"ok"}` while the engine runs (the model is loaded before the server binds,
/// so a server that answers has its model); 503 if the engine thread died.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    if state.engine.alive() {
        (StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "message": "the engine thread stopped"})),
        )
    }
}

/// Prometheus' text exposition format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
