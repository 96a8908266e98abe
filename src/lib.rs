//! tramontane: run open-weight LLMs from GGUF files on ordinary CPUs.

pub mod error;
pub mod gguf;
pub mod quantize;
pub mod tokenizer;

pub use error::{Error, Result};
pub use gguf::{Array, GgufFile, Metadata, Tensor, TensorInfo, Value};
pub use tramontane_kernels as kernels;
pub mod attention;
pub mod chat;
pub mod kv_cache;
pub mod model;
pub mod moe;
pub mod norm;
pub mod rope;
pub mod sampling;
pub mod session;

pub use chat::{ChatMessage, ChatTemplate};
pub use kv_cache::KvCacheType;
pub use model::{Model, ModelInfo};
pub use sampling::{Sampler, Sampling};
pub use session::{Session, SessionOptions};
