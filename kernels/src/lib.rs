//! Quantized block formats, their scalar references and SIMD kernels.
//!
//! Everything that touches quantized bytes lives here; nothing here knows about models.
//!
//! # Kernel selection
//!
//! The SIMD level is picked once per process by runtime CPU detection (see [`dispatch`]):
//! AVX2+FMA+F16C (+AVX-VNNI, +AVX-512) on x86_64, NEON (+dotprod, +i8mm) on aarch64, else the
//! scalar reference. The environment variable
//! `TRAMONTANE_KERNELS=scalar|avx2|avxvnni|avx512|neon|dotprod|i8mm` forces a level; a level
//! this CPU lacks falls back to the best available one. [`active_kernels`] names the choice.

#![warn(missing_debug_implementations)]

#[cfg(target_arch = "aarch64")]
mod aarch64;
pub mod dispatch;
pub mod error;
pub mod formats;
mod kernel_set;
pub mod matmul;
pub mod reference;
pub mod types;
pub mod vecmath;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use dispatch::active_kernels;
pub use error::KernelError;
pub use types::{GgmlType, TypeId};
