//! Quantized block formats, their scalar references and SIMD kernels.
//!
//! Everything that touches quantized bytes lives here; nothing here knows about models.

pub mod error;
pub mod formats;
pub mod reference;
pub mod types;

pub use error::KernelError;
pub use types::{GgmlType, TypeId};
