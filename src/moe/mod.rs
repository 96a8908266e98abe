//! The sparse mixture-of-experts FFN (Mixtral, Qwen MoE, OLMoE, gpt-oss): routing exactly as
//! llama.cpp's `build_moe_ffn` (its gating functions, biases and activations), experts found in
//! either GGUF layout, and a dispatcher that reads only the chosen experts' weights.
//!
//! ```no_run
//! # use tramontane::moe::{load_moe_block, MoeFfn, MoeShape, DispatchOptions};
//! # fn main() -> tramontane::Result<()> {
//! let f = tramontane::GgufFile::open("models/moe-s202-q8_0.gguf")?;
//! let shape = MoeShape { n_embd: 256, n_ff: 512, n_expert: 8, n_used: 2 };
//! let block = load_moe_block(&f, 0, &shape)?;
//! let ffn = MoeFfn { weights: &block, source: f.bytes(), options: DispatchOptions::default() };
//! let x = vec![0.1f32; 256 * 3]; // three normalised token rows
//! let mut out = vec![0.0f32; 256 * 3];
//! let routing = ffn.forward(&x, 3, &mut out)?;
//! assert_eq!(routing.experts.len(), 3 * 2);
//! # Ok(()) }
//! ```

mod dispatch;
mod experts;
mod layout;
mod routing;

pub use dispatch::{DispatchOptions, MoeFfn, WeightSource};
pub use experts::{Expert, ExpertActivation, ExpertBiases, Gating, MoeWeights};
pub use layout::{detect_layout, load_moe_block, ExpertLayout, MoeShape};
pub use routing::{route_token, route_token_gated, softmax, Routing};
