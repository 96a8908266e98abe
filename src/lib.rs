//! tramontane: run open-weight LLMs from GGUF files on ordinary CPUs.

pub mod error;
pub mod gguf;
pub mod quantize;
pub mod tokenizer;

pub use error::{Error, Result};
pub use gguf::{Array, GgufFile, Metadata, Tensor, TensorInfo, Value};
pub use tramontane_kernels as kernels;
