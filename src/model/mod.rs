//! One transformer, parameterised by an architecture description rather than copied per model.

pub mod arch;
pub mod config;
#[doc(hidden)]
pub mod forward;
mod loaded;
#[doc(hidden)]
pub mod weights;

pub use loaded::{Model, ModelInfo};
