//! Architecture descriptions: what differs between model families, as data. The transformer in
//! `forward.rs` reads these flags instead of being copied per family, so adding gemma3 or mixtral
//! means adding a row here (and, for mixtral, an FFN variant), not a new forward pass.

use crate::rope::RopeStyle;

/// The feed-forward block's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnKind {
    /// `down(silu(gate(x)) * up(x))`.
    DenseSwiGlu,
}

/// What is particular to one `general.architecture`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchSpec {
    /// The `general.architecture` value, also the prefix of its metadata keys.
    pub name: &'static str,
    /// Which pairs RoPE rotates.
    pub rope_style: RopeStyle,
    /// The FFN.
    pub ffn: FfnKind,
    /// Whether the token embeddings are multiplied by `sqrt(n_embd)` (gemma).
    pub scale_embeddings: bool,
    /// Default RoPE base when the file has no `rope.freq_base`.
    pub default_rope_base: f32,
}

/// Llama 2/3, Mistral 7B, SmolLM2 and every other model converted as `llama`.
pub const LLAMA: ArchSpec = ArchSpec {
    name: "llama",
    rope_style: RopeStyle::Normal,
    ffn: FfnKind::DenseSwiGlu,
    scale_embeddings: false,
    default_rope_base: 10000.0,
};

/// Every architecture this build can run.
pub const SUPPORTED: &[ArchSpec] = &[LLAMA];

/// The description of `name`, if supported.
pub fn lookup(name: &str) -> Option<&'static ArchSpec> {
    SUPPORTED.iter().find(|a| a.name == name)
}
