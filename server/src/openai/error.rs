//! Errors as OpenAI sends them: `{"error": {"message", "type", "code", "param"}}` with the
//! matching HTTP status, so that clients raise their usual exception types (`BadRequestError`
//! for 400, `AuthenticationError` for 401, ...).

use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::engine_thread::SubmitError;

/// An error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, `server_error`.
    pub kind: &'static str,
    /// A machine-readable code, when there is one.
    pub code: Option<&'static str>,
    /// The request field at fault, when known.
    pub param: Option<String>,
}

impl ApiError {
    /// A 400 about the request.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            code: None,
            param: param.map(str::to_string),
        }
    }

    /// A 400 for a prompt that does not fit the context.
    pub fn too_long(tokens: usize, n_ctx: usize, param: &str) -> ApiError {
        ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::bad_request(
                format!(
                    "the prompt has {tokens} tokens; this server's context holds {n_ctx} \
                     tokens for the prompt and the reply together"
                ),
                Some(param),
            )
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>, code: &'static str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            code: Some(code),
            param: None,
        }
    }

    /// A 401 for a missing or wrong API key.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or incorrect API key: send 'Authorization: Bearer KEY'".into(),
            kind: "authentication_error",
            code: Some("invalid_api_key"),
            param: None,
        }
    }

    /// A 500 or 503: the server's fault or state, not the request's.
    pub fn server(status: StatusCode, message: impl Into<String>, code: &'static str) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind: "server_error",
            code: Some(code),
            param: None,
        }
    }

    /// 503 when every slot is busy and the queue is full.
    pub fn busy() -> ApiError {
        ApiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy: every slot is taken and the queue is full; retry later",
            "server_busy",
        )
    }

    /// The error body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "param": self.param,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::QueueFull => ApiError::busy(),
            // The handlers check each field first (naming it); what the engine still refuses
            // is said in its message.
            SubmitError::Invalid(message) => ApiError::bad_request(message, None),
            SubmitError::Stopped => ApiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "the engine is not running (the server is shutting down or failed)",
                "engine_stopped",
            ),
        }
    }
}

/// The JSON body of a request: a body that is too large or not JSON is a 4xx in OpenAI's
/// shape (axum's own rejections are plain text). Read its fields with [`fields`].
pub fn parse_body(body: Result<axum::body::Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "the request body is too large".to_string()
        } else {
            format!("cannot read the request body: {}", rejection.body_text())
        };
        ApiError {
            status,
            ..ApiError::bad_request(message, None)
        }
    })?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}"), None))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body must be a JSON object",
            None,
        ));
    }
    Ok(value)
}

/// The fields of `body` that `T` knows; a field of the wrong type is a 400 naming it. Unknown
/// fields are ignored: clients send many that do not apply here. Each endpoint reads its own
/// fields and the shared sampling ones from the same body.
pub fn fields<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let param = (path != ".").then_some(path);
        let message = match &param {
            Some(p) => format!("'{p}': {}", e.inner()),
            None => format!("bad request body: {}", e.inner()),
        };
        ApiError::bad_request(message, param.as_deref())
    })
}
