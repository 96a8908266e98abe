//! tramontane: run open-weight LLMs from GGUF files on ordinary CPUs.
//!
//! ```no_run
//! use tramontane::{ChatMessage, GenerateOptions, Model, RenderOptions, Sampling, SessionOptions};
//!
//! # fn main() -> tramontane::Result<()> {
//! let model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf")?; // mmap + validate
//! println!("{}", model.info());
//! let mut session = model.session(SessionOptions { context: 2048, ..Default::default() })?;
//! let options = GenerateOptions {
//!     sampling: Sampling { temperature: 0.7, seed: 42, ..Sampling::default() },
//!     max_tokens: Some(64), // tokens, not text pieces
//!     ..GenerateOptions::default()
//! };
//! // An instruct model wants its chat template; a base model takes the text as it is.
//! // Rendered with the file's own Jinja template (or a built-in family if it has none).
//! let messages = [ChatMessage::user("Write a haiku about the wind.")];
//! let prompt = model.chat_template().render(&messages, RenderOptions::for_generation())?;
//! let mut reply = session.generate(&prompt.text, &options)?;
//! for piece in &mut reply {
//!     print!("{}", piece?);
//! }
//! println!("\n[{} tokens, {:?}]", reply.tokens().len(), reply.finish_reason());
//! # Ok(())
//! # }
//! ```
//!
//! Layers, bottom up: [`gguf`] reads (memory-mapped, zero copy) and writes GGUF files;
//! [`kernels`] holds the quantized block formats and the SIMD kernels, chosen at run time;
//! [`tokenizer`] implements llama.cpp's SPM and BPE tokenizers; [`model`] loads a model, whose
//! transformer is written once and parameterised by architecture (sparse experts included);
//! a [`session`] holds one conversation's tokens and KV cache, and generates with
//! [`sampling`]; [`chat`] renders conversations with the file's own Jinja chat template
//! (feature `chat-templates`, on by default) or a built-in family, and a [`Conversation`]
//! keeps chat messages over a session; [`quantize`] requantizes whole files like
//! llama-quantize.
//!
//! The modules hidden from these docs (attention, KV cache, norms, RoPE, the forward pass, the
//! MoE dispatcher) are internals, public only for the project's own tests and benchmarks; they
//! may change in any release.

#![warn(missing_debug_implementations)]

#[doc(hidden)]
pub mod attention;
pub mod chat;
pub mod conversation;
pub mod engine;
pub mod error;
pub mod gguf;
#[doc(hidden)]
pub mod kv_cache;
pub mod model;
#[doc(hidden)]
pub mod moe;
#[doc(hidden)]
pub mod norm;
mod output;
pub mod quantize;
#[doc(hidden)]
pub mod rope;
pub mod sampling;
pub mod session;
#[doc(hidden)]
pub mod sums;
pub mod tokenizer;

pub use chat::{
    ChatMessage, ChatTemplate, FallbackReason, Family, RenderOptions, RenderedChat, Role,
    TemplateTokens, TemplateUsed,
};
pub use conversation::{Conversation, Reply};
pub use error::{Error, Result};
pub use gguf::{Array, GgufFile, Metadata, StringArray, Tensor, TensorInfo, Value};
pub use kv_cache::KvCacheType;
pub use model::forward::Tracer;
pub use model::{Model, ModelInfo};
pub use sampling::{Sampler, Sampling};
pub use session::{FinishReason, Generate, GenerateOptions, OwnedSession, Session, SessionOptions};
pub use tramontane_kernels as kernels;
