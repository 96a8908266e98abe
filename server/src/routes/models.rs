//! GET `/v1/models` and `/v1/models/{id}`: the one model this server runs.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::openai::error::ApiError;
use crate::state::AppState;

fn model_object(state: &AppState) -> Value {
    json!({
        "id": &*state.model_id,
        "object": "model",
        "created": state.created,
        "owned_by": "tramontane",
    })
}

/// The list.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"object": "list", "data": [model_object(&state)]}))
}

/// One model by id; 404 for any other id.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if id == *state.model_id {
        Ok(Json(model_object(&state)))
    } else {
        Err(ApiError::not_found(
            format!(
                "the model '{id}' does not exist (this server runs '{}')",
                state.model_id
            ),
            "model_not_found",
        ))
    }
}
