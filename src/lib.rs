//! tramontane: run open-weight LLMs from GGUF files on ordinary CPUs.
//!
//! ```no_run
//! use tramontane::{ChatMessage, Model, RenderOptions, Sampling, SessionOptions};
//!
//! # fn main() -> tramontane::Result<()> {
//! let model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf")?; // mmap + validate
//! println!("{}", model.info());
//! let mut session = model.session(SessionOptions { context: 2048, ..Default::default() })?;
//! let params = Sampling { temperature: 0.7, seed: 42, ..Sampling::default() };
//! // An instruct model wants its chat template; a base model takes the text as it is.
//! // Rendered with the file's own Jinja template (or a built-in family if it has none).
//! let messages = [ChatMessage::user("Write a haiku about the wind.")];
//! let prompt = model.chat_template().render(&messages, RenderOptions::for_generation())?;
//! for piece in session.generate(&prompt.text, &params)?.take(64) {
//!     print!("{}", piece?);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Layers, bottom up: [`gguf`] reads (memory-mapped, zero copy) and writes GGUF files;
//! [`kernels`] holds the quantized block formats and the SIMD kernels, chosen at run time;
//! [`tokenizer`] implements llama.cpp's SPM and BPE tokenizers; [`model`] is the transformer,
//! written once and parameterised by architecture, with [`moe`] for sparse experts;
//! [`session`] drives prompt ingestion, decoding and [`sampling`]; [`quantize`] requantizes
//! whole files like llama-quantize; [`chat`] renders conversations with the file's own Jinja
//! chat template (feature `chat-templates`, on by default) or a built-in family.

pub mod attention;
pub mod chat;
pub mod error;
pub mod gguf;
pub mod kv_cache;
pub mod model;
pub mod moe;
pub mod norm;
pub mod quantize;
pub mod rope;
pub mod sampling;
pub mod session;
pub mod tokenizer;

pub use chat::{
    ChatMessage, ChatTemplate, FallbackReason, Family, RenderOptions, RenderedChat, Role,
    TemplateTokens, TemplateUsed,
};
pub use error::{Error, Result};
pub use gguf::{Array, GgufFile, Metadata, Tensor, TensorInfo, Value};
pub use kv_cache::KvCacheType;
pub use model::forward::Tracer;
pub use model::{Model, ModelInfo};
pub use sampling::{Sampler, Sampling};
pub use session::{Session, SessionOptions};
pub use tramontane_kernels as kernels;
