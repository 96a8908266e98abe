//! tramontane: run open-weight LLMs from GGUF files on ordinary CPUs.

pub mod error;

pub use error::{Error, Result};
pub use tramontane_kernels as kernels;
