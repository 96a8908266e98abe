//! What every handler shares.

use std::sync::Arc;

use tramontane::Model;

use crate::engine_thread::EngineHandle;
use crate::metrics::Metrics;

/// The server's state, cloned into each handler (all of it behind `Arc`s).
#[derive(Clone, Debug)]
pub struct AppState {
    /// The model, for tokenizing and rendering chat templates on the HTTP side (the engine
    /// thread only computes).
    pub model: Arc<Model>,
    /// The engine thread.
    pub engine: EngineHandle,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The model's id in the API.
    pub model_id: Arc<str>,
    /// When the model was loaded (Unix seconds), the `created` of `/v1/models`.
    pub created: u64,
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A response id such as `chatcmpl-5f0c...`: random, so ids from replicas do not collide.
pub fn response_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}", crate::openai::params::random_seed())
}
