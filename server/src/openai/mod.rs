//! OpenAI's API shapes: request fields, reply JSON, errors. The handlers in `routes` glue them
//! to the engine.

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod inputs;
pub mod params;
