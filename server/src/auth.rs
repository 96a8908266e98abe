//! `--api-key`: every `/v1/*` request must carry `Authorization: Bearer KEY`. `/health` and
//! `/metrics` stay open so that load balancers and Prometheus need no secret (they reveal no
//! request content).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::openai::error::ApiError;

/// The middleware; `key` is `None` when the server has no key (everything passes).
pub async fn require_key(
    State(key): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(key) = key {
        let given = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same(g.as_bytes(), key.as_bytes())) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how much of a guessed key was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_whole_keys() {
        assert!(super::same(b"secret", b"secret"));
        assert!(!super::same(b"secret", b"secreT"));
        assert!(!super::same(b"secre", b"secret"));
        assert!(!super::same(b"secrets", b"secret"));
        assert!(!super::same(b"", b"secret"));
    }
}
