//! Architecture descriptions: what differs between model families, as data. The transformer in
//! `forward.rs` reads these flags instead of being copied per family, so adding gemma3 or mixtral
//! means adding a row here (and, for mixtral, an FFN variant), not a new forward pass.

use crate::moe::{ExpertActivation, Gating};
use crate::rope::RopeStyle;

/// The feed-forward block's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnKind {
    /// `down(silu(gate(x)) * up(x))`.
    DenseSwiGlu,
    /// `down(gelu(gate(x)) * up(x))`, GELU with the tanh approximation (gemma).
    DenseGeGlu,
}

/// Where the RMS norms of queries and keys (`attn_q_norm`, `attn_k_norm`) apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QkNorm {
    /// None.
    None,
    /// Each head on its own (`head_dim` weights): Gemma 3, Qwen 3.
    PerHead,
    /// The whole projection of a token at once (its full width of weights): OLMoE.
    FullWidth,
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
    /// RMSNorm of queries and keys before RoPE.
    pub qk_norm: QkNorm,
    /// RMSNorm of the attention and FFN outputs before their residual adds
    /// (`post_attention_norm`, `post_ffw_norm`).
    pub post_norms: bool,
    /// The attention scale multiplies Q (as gemma does) rather than the scores.
    pub scale_q: bool,
    /// Sliding-window layers: every layer but each `n`-th when the file sets
    /// `attention.sliding_window` (overridden by `attention.sliding_window_pattern`).
    pub default_swa_pattern: usize,
    /// RoPE base of the sliding-window layers when the file has no `rope.freq_base_swa`.
    pub default_rope_base_swa: f32,
    /// Sliding-window layers rotate with a plain RoPE of their own base (Gemma 3: no scaling,
    /// no factors); otherwise with the model's RoPE, scaling included (gpt-oss).
    pub swa_plain_rope: bool,
    /// The name of the pre-FFN norm (`ffn_norm`; gpt-oss: `post_attention_norm`).
    pub ffn_norm: &'static str,
    /// Per-head attention sinks (`attn_sinks`: gpt-oss).
    pub attention_sinks: bool,
    /// Mixture-of-experts models: how the router chooses and weighs experts.
    pub moe_gating: Gating,
    /// Mixture-of-experts models: the experts' gated activation.
    pub expert_activation: ExpertActivation,
    /// Mixture-of-experts models: the chosen experts' softmax weights are divided by their sum
    /// (llama.cpp's `norm_w`).
    pub moe_normalize_weights: bool,
    /// Mixture-of-experts models: each routed expert is `expert_feed_forward_length` wide
    /// (default `feed_forward_length / expert_used_count`), as llama.cpp reads Qwen's MoE
    /// files; otherwise `feed_forward_length` wide (Mixtral, OLMoE).
    pub expert_ff_key: bool,
    /// Mixture-of-experts models: a shared expert (`ffn_{gate,up,down}_shexp`) runs on every
    /// token beside the routed ones, scaled by a sigmoid gate (`ffn_gate_inp_shexp`).
    pub shared_expert: bool,
}

/// Llama 2/3, Mistral 7B, SmolLM2 and every other model converted as `llama`.
pub const LLAMA: ArchSpec = ArchSpec {
    name: "llama",
    rope_style: RopeStyle::Normal,
    ffn: FfnKind::DenseSwiGlu,
    scale_embeddings: false,
    default_rope_base: 10000.0,
    qk_norm: QkNorm::None,
    post_norms: false,
    scale_q: false,
    default_swa_pattern: 0,
    default_rope_base_swa: 10000.0,
    swa_plain_rope: true,
    ffn_norm: "ffn_norm",
    attention_sinks: false,
    moe_gating: Gating::Softmax,
    expert_activation: ExpertActivation::SwiGlu,
    moe_normalize_weights: true,
    expert_ff_key: false,
    shared_expert: false,
};

/// Gemma 3 (text): GeGLU, sandwich norms, Q/K norms, NeoX RoPE, scaled embeddings, and five
/// sliding-window layers (with their own RoPE base) to each global one.
pub const GEMMA3: ArchSpec = ArchSpec {
    name: "gemma3",
    rope_style: RopeStyle::Neox,
    ffn: FfnKind::DenseGeGlu,
    scale_embeddings: true,
    default_rope_base: 10000.0,
    qk_norm: QkNorm::PerHead,
    post_norms: true,
    scale_q: true,
    default_swa_pattern: 6,
    default_rope_base_swa: 10000.0,
    ..LLAMA
};

/// Qwen 2 and 2.5: llama's block with NeoX RoPE; the Q/K/V biases it carries are read for
/// every family (llama.cpp loads them wherever a file has them).
pub const QWEN2: ArchSpec = ArchSpec {
    name: "qwen2",
    rope_style: RopeStyle::Neox,
    ..LLAMA
};

/// Qwen 3 (dense): NeoX RoPE and per-head Q/K RMS norms before it; its head size
/// (`attention.key_length`) may make the attention wider than the residual stream.
pub const QWEN3: ArchSpec = ArchSpec {
    name: "qwen3",
    rope_style: RopeStyle::Neox,
    qk_norm: QkNorm::PerHead,
    ..LLAMA
};

/// Qwen 3 MoE (30B-A3B: 128 experts, 8 chosen): Qwen 3's attention, experts of
/// `expert_feed_forward_length`, the chosen weights normalised to sum 1.
pub const QWEN3MOE: ArchSpec = ArchSpec {
    name: "qwen3moe",
    expert_ff_key: true,
    ..QWEN3
};

/// Qwen 2 MoE (57B-A14B, 1.5-MoE-A2.7B): Qwen 2's attention, routed experts whose softmax
/// weights are not renormalised, and a shared expert with a sigmoid gate.
pub const QWEN2MOE: ArchSpec = ArchSpec {
    name: "qwen2moe",
    moe_normalize_weights: false,
    expert_ff_key: true,
    shared_expert: true,
    ..QWEN2
};

/// OLMoE: NeoX RoPE, Q/K norms over the whole projection, routed experts whose softmax weights
/// are not renormalised.
pub const OLMOE: ArchSpec = ArchSpec {
    name: "olmoe",
    rope_style: RopeStyle::Neox,
    qk_norm: QkNorm::FullWidth,
    moe_normalize_weights: false,
    ..LLAMA
};

/// Phi-3 / Phi-3.5 / Phi-4 mini: NeoX RoPE (with LongRoPE's short and long factors where the
/// file has them), Q scaled before the product, and fused `attn_qkv` and gate+up matrices
/// (read wherever a file has them). llama.cpp ignores Phi's sliding window, and so do we.
pub const PHI3: ArchSpec = ArchSpec {
    name: "phi3",
    rope_style: RopeStyle::Neox,
    scale_q: true,
    ..LLAMA
};

/// gpt-oss: NeoX RoPE with YaRN scaling (the sliding-window layers too), Q/K/V and output
/// biases, per-head attention sinks, a sliding window on every other layer (the even ones),
/// and experts with biases behind a router that takes the top-k logits and a softmax over
/// them, gated by the clamped SwiGLU (`alpha` 1.702, `limit` 7).
pub const GPT_OSS: ArchSpec = ArchSpec {
    name: "gpt-oss",
    rope_style: RopeStyle::Neox,
    default_swa_pattern: 2,
    swa_plain_rope: false,
    ffn_norm: "post_attention_norm",
    attention_sinks: true,
    moe_gating: Gating::SoftmaxOfTopK,
    expert_activation: ExpertActivation::SwiGluOai {
        alpha: 1.702,
        limit: 7.0,
    },
    moe_normalize_weights: false,
    expert_ff_key: true,
    ..LLAMA
};

/// Every architecture this build can run.
pub const SUPPORTED: &[ArchSpec] = &[
    LLAMA, GEMMA3, QWEN2, QWEN3, QWEN3MOE, QWEN2MOE, OLMOE, PHI3, GPT_OSS,
];

/// Their names, comma-separated (for error messages).
pub fn supported_names() -> String {
    SUPPORTED
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The description of `name`, if supported.
pub fn lookup(name: &str) -> Option<&'static ArchSpec> {
    SUPPORTED.iter().find(|a| a.name == name)
}
