//! One transformer, parameterised by an architecture description rather than copied per model.

pub mod arch;
pub mod config;
pub mod forward;
mod loaded;
pub mod weights;

pub use loaded::{Model, ModelInfo};
