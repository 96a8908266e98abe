//! The model's hyperparameters, read from GGUF metadata and checked for consistency.

use crate::gguf::GgufFile;
use crate::model::arch::{self, ArchSpec};
use crate::{Error, Result};

/// How RoPE angles are stretched for long contexts.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// No scaling.
    None,
    /// Positions divided by `factor` (`freq_scale = 1/factor`).
    Linear {
        /// The divisor.
        factor: f32,
    },
    /// YaRN (gpt-oss, Qwen long-context variants): positions interpolated by `factor` with a
    /// ramp between the dimensions that keep extrapolating and those that interpolate, and the
    /// angles' cos/sin scaled, as ggml's `rope_yarn`.
    Yarn {
        /// The stretch (`rope.scaling.factor`).
        factor: f32,
        /// `rope.scaling.original_context_length`.
        original_context: u32,
        /// `rope.scaling.yarn_beta_fast` (default 32).
        beta_fast: f32,
        /// `rope.scaling.yarn_beta_slow` (default 1).
        beta_slow: f32,
        /// `rope.scaling.yarn_ext_factor` (default 1).
        ext_factor: f32,
        /// `rope.scaling.yarn_log_multiplier` (default 0).
        log_mul: f32,
    },
    /// Llama 3.1 frequency-dependent scaling, from metadata.
    Llama3 {
        /// Scaling factor of the low frequencies.
        factor: f32,
        /// `low_freq_factor`.
        low_freq_factor: f32,
        /// `high_freq_factor`.
        high_freq_factor: f32,
        /// `original_context_length`.
        original_context: u32,
    },
}

/// Hyperparameters of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The architecture description.
    pub arch: &'static ArchSpec,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// FFN hidden width.
    pub n_ff: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (GQA when fewer than `n_head`).
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Dimensions rotated by RoPE (`rope.dimension_count`, default `head_dim`).
    pub n_rot: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// RoPE scaling.
    pub rope_scaling: RopeScaling,
    /// Multiplier of RoPE's cos and sin (`rope.scaling.attn_factor`, default 1).
    pub rope_attn_factor: f32,
    /// The context the RoPE frequencies were trained for (`rope.scaling.original_context_length`,
    /// default the training context): a model with LongRoPE factors uses its long ones in
    /// sessions with more context than this.
    pub rope_original_context: usize,
    /// The context length the model was trained for.
    pub context_length: usize,
    /// Vocabulary size (rows of the embedding).
    pub n_vocab: usize,
    /// Experts per mixture-of-experts FFN (`expert_count`); 0 for a dense FFN.
    pub n_expert: usize,
    /// Experts chosen per token (`expert_used_count`); 0 for a dense FFN.
    pub n_expert_used: usize,
    /// Hidden width of each routed expert (`n_ff` unless the architecture reads
    /// `expert_feed_forward_length`).
    pub n_ff_exp: usize,
    /// Hidden width of the shared expert, where the architecture has one
    /// (`expert_shared_feed_forward_length`, default `n_ff`).
    pub n_ff_shexp: usize,
    /// Sliding-window attention span (`attention.sliding_window`; 0: none): in a
    /// sliding-window layer a query at position p sees keys at positions above `p - window`.
    pub sliding_window: usize,
    /// Per layer: whether it attends through the sliding window (all false without one).
    pub swa_layers: Vec<bool>,
    /// RoPE base of the sliding-window layers.
    pub rope_base_swa: f32,
    /// The attention scale (`1/sqrt(head_dim)`; gemma 3 27B: `1/sqrt(n_embd/n_head)`).
    pub attn_scale: f32,
    /// `final_logit_softcapping` (logits become `c * tanh(logits / c)`); `None` when absent
    /// or 0.
    pub final_softcap: Option<f32>,
}

fn key(arch: &ArchSpec, k: &str) -> String {
    format!("{}.{k}", arch.name)
}

fn positive(f: &GgufFile, k: &str) -> Result<usize> {
    let v = f.get_u32(k)?;
    if v == 0 {
        return Err(Error::WrongValueType {
            key: k.to_string(),
            expected: "a positive integer".into(),
            found: "0".into(),
        });
    }
    Ok(v as usize)
}

/// [`positive`] for a key the file may leave out.
fn opt_positive(f: &GgufFile, k: &str) -> Result<Option<usize>> {
    match f.opt_u32(k)? {
        Some(_) => positive(f, k).map(Some),
        None => Ok(None),
    }
}

fn invalid(what: String) -> Error {
    Error::InvalidConfig { what }
}

impl ModelConfig {
    /// Reads and checks the hyperparameters. `n_vocab` comes from the embedding tensor when the
    /// metadata has no `vocab_size` (the caller cross-checks it against the tensor).
    pub fn from_gguf(f: &GgufFile) -> Result<ModelConfig> {
        let arch_name = f.get_str("general.architecture")?;
        let arch = arch::lookup(arch_name).ok_or_else(|| Error::Unsupported {
            what: format!(
                "architecture '{arch_name}' (supported: {})",
                arch::supported_names()
            ),
        })?;
        let n_layer = positive(f, &key(arch, "block_count"))?;
        let n_embd = positive(f, &key(arch, "embedding_length"))?;
        let n_ff = positive(f, &key(arch, "feed_forward_length"))?;
        let n_head = positive(f, &key(arch, "attention.head_count"))?;
        let n_kv_head = match f.opt_u32(&key(arch, "attention.head_count_kv"))? {
            Some(v) => v as usize,
            None => n_head,
        };
        if n_kv_head == 0 || n_head % n_kv_head != 0 {
            return Err(invalid(format!(
                "{} = {n_head} is not a multiple of {} = {n_kv_head}",
                key(arch, "attention.head_count"),
                key(arch, "attention.head_count_kv")
            )));
        }
        let head_dim = match f.opt_u32(&key(arch, "attention.key_length"))? {
            Some(v) => v as usize,
            None => {
                if n_embd % n_head != 0 {
                    return Err(invalid(format!(
                        "embedding_length {n_embd} is not divisible by head_count {n_head}"
                    )));
                }
                n_embd / n_head
            }
        };
        if let Some(vl) = f.opt_u32(&key(arch, "attention.value_length"))? {
            if vl as usize != head_dim {
                return Err(invalid(format!(
                    "attention.value_length {vl} differs from key_length {head_dim}"
                )));
            }
        }
        let n_rot = match f.opt_u32(&key(arch, "rope.dimension_count"))? {
            Some(v) => v as usize,
            None => head_dim,
        };
        if n_rot == 0 || n_rot % 2 != 0 || n_rot > head_dim {
            return Err(invalid(format!(
                "{} = {n_rot} must be even and at most the head size {head_dim}",
                key(arch, "rope.dimension_count")
            )));
        }
        let eps_key = key(arch, "attention.layer_norm_rms_epsilon");
        let rms_eps = f.get_f32(&eps_key)?;
        if !(rms_eps.is_finite() && rms_eps >= 0.0) {
            return Err(invalid(format!("{eps_key} = {rms_eps}")));
        }
        let rope_base = f
            .opt_f32(&key(arch, "rope.freq_base"))?
            .unwrap_or(arch.default_rope_base);
        if !(rope_base.is_finite() && rope_base > 0.0) {
            return Err(invalid(format!("rope.freq_base = {rope_base}")));
        }
        let rope_scaling = read_rope_scaling(f, arch)?;
        let attn_factor_key = key(arch, "rope.scaling.attn_factor");
        let file_attn_factor = f.opt_f32(&attn_factor_key)?.unwrap_or(1.0);
        if !(file_attn_factor.is_finite() && file_attn_factor > 0.0) {
            return Err(invalid(format!("{attn_factor_key} = {file_attn_factor}")));
        }
        let rope_attn_factor = yarn_attn_factor(&rope_scaling) * file_attn_factor;
        let context_length = positive(f, &key(arch, "context_length"))?;
        let n_vocab = match f.opt_u32(&key(arch, "vocab_size"))? {
            Some(v) => v as usize,
            None => f
                .tensor_info("token_embd.weight")
                .map(|t| t.n_rows() as usize)
                .ok_or_else(|| Error::MissingTensor {
                    name: "token_embd.weight".into(),
                })?,
        };
        let rope_original_context =
            opt_positive(f, &key(arch, "rope.scaling.original_context_length"))?
                .unwrap_or(context_length);
        let (n_expert, n_expert_used) = read_experts(f, arch)?;
        let n_ff_exp = match opt_positive(f, &key(arch, "expert_feed_forward_length"))? {
            Some(n) if arch.expert_ff_key => n,
            None if arch.expert_ff_key && n_expert_used > 0 => n_ff / n_expert_used,
            _ => n_ff,
        };
        if n_expert > 0 && n_ff_exp == 0 {
            return Err(invalid(format!(
                "experts of width 0 (feed_forward_length {n_ff} over {n_expert_used} chosen experts)"
            )));
        }
        let n_ff_shexp =
            opt_positive(f, &key(arch, "expert_shared_feed_forward_length"))?.unwrap_or(n_ff);
        let (sliding_window, swa_layers) = read_swa(f, arch, n_layer)?;
        // Without the key: the architecture's own base for plain sliding-window RoPE
        // (Gemma 3), else the model's (gpt-oss: llama.cpp copies `rope_freq_base_train`).
        let rope_base_swa =
            f.opt_f32(&key(arch, "rope.freq_base_swa"))?
                .unwrap_or(if arch.swa_plain_rope {
                    arch.default_rope_base_swa
                } else {
                    rope_base
                });
        if !(rope_base_swa.is_finite() && rope_base_swa > 0.0) {
            return Err(invalid(format!("rope.freq_base_swa = {rope_base_swa}")));
        }
        // As llama.cpp: gemma 3 27B (62 layers) scales by the width per head instead.
        let attn_scale = if arch.name == "gemma3" && n_layer == 62 {
            1.0 / ((n_embd / n_head) as f32).sqrt()
        } else {
            1.0 / (head_dim as f32).sqrt()
        };
        let softcap_key = key(arch, "final_logit_softcapping");
        let final_softcap = match f.opt_f32(&softcap_key)? {
            None => None,
            Some(0.0) => None,
            Some(c) if c.is_finite() && c > 0.0 => Some(c),
            Some(c) => return Err(invalid(format!("{softcap_key} = {c}"))),
        };
        Ok(ModelConfig {
            arch,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_kv_head,
            head_dim,
            n_rot,
            rms_eps,
            rope_base,
            rope_scaling,
            rope_attn_factor,
            rope_original_context,
            context_length,
            n_vocab,
            n_expert,
            n_expert_used,
            n_ff_exp,
            n_ff_shexp,
            sliding_window,
            swa_layers,
            rope_base_swa,
            attn_scale,
            final_softcap,
        })
    }

    /// The attention score scale.
    pub fn attn_scale(&self) -> f32 {
        self.attn_scale
    }

    /// Whether layer `il` attends through the sliding window.
    pub fn is_swa(&self, il: usize) -> bool {
        self.swa_layers.get(il).copied().unwrap_or(false)
    }

    /// RoPE's `freq_scale` (1 unless linear scaling).
    pub fn rope_freq_scale(&self) -> f32 {
        match self.rope_scaling {
            RopeScaling::Linear { factor } | RopeScaling::Yarn { factor, .. } => 1.0 / factor,
            _ => 1.0,
        }
    }
}

/// `(sliding_window, swa_layers)`. Without `attention.sliding_window` (or with 0) no layer is
/// a sliding-window layer. Otherwise `attention.sliding_window_pattern` is either a per-layer
/// bool array or a period `n` (every layer but each `n`-th slides; 0: all), defaulting to the
/// architecture's period, as llama.cpp reads them.
fn read_swa(f: &GgufFile, arch: &ArchSpec, n_layer: usize) -> Result<(usize, Vec<bool>)> {
    let window = f
        .opt_u32(&key(arch, "attention.sliding_window"))?
        .unwrap_or(0) as usize;
    if window == 0 || arch.default_swa_pattern == 0 {
        return Ok((0, vec![false; n_layer]));
    }
    let pattern_key = key(arch, "attention.sliding_window_pattern");
    let layers = match f.metadata().get(&pattern_key) {
        Some(crate::gguf::Value::Array(crate::gguf::Array::Bool(v))) => {
            if v.len() != n_layer {
                return Err(invalid(format!(
                    "{pattern_key} has {} entries for {n_layer} layers",
                    v.len()
                )));
            }
            v.clone()
        }
        _ => {
            let n = f
                .opt_u32(&pattern_key)?
                .unwrap_or(arch.default_swa_pattern as u32) as usize;
            (0..n_layer).map(|il| n == 0 || il % n < n - 1).collect()
        }
    };
    Ok((window, layers))
}

/// llama.cpp's `LLAMA_MAX_EXPERTS`: the most experts a block may have.
const MAX_EXPERTS: u32 = 512;

/// `(expert_count, expert_used_count)`: both 0 for a dense model; otherwise
/// `1 <= used <= count <= 512`, as llama.cpp requires.
fn read_experts(f: &GgufFile, arch: &ArchSpec) -> Result<(usize, usize)> {
    let (count_key, used_key) = (key(arch, "expert_count"), key(arch, "expert_used_count"));
    let count = f.opt_u32(&count_key)?.unwrap_or(0);
    let used = f.opt_u32(&used_key)?.unwrap_or(0);
    if count == 0 {
        if used != 0 {
            return Err(invalid(format!(
                "{used_key} = {used} but {count_key} is 0 or absent"
            )));
        }
        return Ok((0, 0));
    }
    if count > MAX_EXPERTS {
        return Err(invalid(format!(
            "{count_key} = {count} exceeds the maximum of {MAX_EXPERTS}"
        )));
    }
    if used == 0 || used > count {
        return Err(invalid(format!(
            "{used_key} = {used} must be between 1 and {count_key} = {count}"
        )));
    }
    Ok((count as usize, used as usize))
}

/// llama.cpp's `yarn_attn_factor` before the file's `attn_factor` (llama-context.cpp): for
/// YaRN the magnitude correction `0.1 ln(factor) + 1` (over the one for `log_mul` when the
/// file has one), then divided by `1 + 0.1 ln(factor)`, which ggml's rope multiplies back;
/// 1 otherwise. In f32, operation by operation (that file is built without FMA).
fn yarn_attn_factor(scaling: &RopeScaling) -> f32 {
    let RopeScaling::Yarn {
        factor, log_mul, ..
    } = *scaling
    else {
        return 1.0;
    };
    let factor = 1.0 / (1.0 / factor);
    let mscale = |scale: f32, m: f32| {
        if scale <= 1.0 {
            1.0
        } else {
            0.1 * m * scale.ln() + 1.0
        }
    };
    let a = if log_mul != 0.0 {
        mscale(factor, 1.0) / mscale(factor, log_mul)
    } else {
        mscale(factor, 1.0)
    };
    a * (1.0 / (1.0 + 0.1 * factor.ln()))
}

fn read_rope_scaling(f: &GgufFile, arch: &ArchSpec) -> Result<RopeScaling> {
    let ty_key = key(arch, "rope.scaling.type");
    let factor_key = key(arch, "rope.scaling.factor");
    let factor = f.opt_f32(&factor_key)?;
    let check_factor = |v: Option<f32>| -> Result<f32> {
        match v {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x),
            Some(x) => Err(invalid(format!("{factor_key} = {x}"))),
            None => Err(Error::MissingKey {
                key: factor_key.clone(),
            }),
        }
    };
    match f.opt_str(&ty_key)? {
        None | Some("none") => {
            // Older files write only `rope.scale_linear`.
            match f.opt_f32(&key(arch, "rope.scale_linear"))? {
                Some(x) if x != 1.0 => Ok(RopeScaling::Linear {
                    factor: check_factor(Some(x))?,
                }),
                _ => Ok(RopeScaling::None),
            }
        }
        Some("linear") => Ok(RopeScaling::Linear {
            factor: check_factor(factor)?,
        }),
        Some("yarn") => {
            let opt = |k: &str, default: f32| -> Result<f32> {
                let key = key(arch, k);
                match f.opt_f32(&key)?.unwrap_or(default) {
                    v if v.is_finite() => Ok(v),
                    v => Err(invalid(format!("{key} = {v}"))),
                }
            };
            Ok(RopeScaling::Yarn {
                factor: check_factor(factor)?,
                original_context: f.get_u32(&key(arch, "rope.scaling.original_context_length"))?,
                beta_fast: opt("rope.scaling.yarn_beta_fast", 32.0)?,
                beta_slow: opt("rope.scaling.yarn_beta_slow", 1.0)?,
                ext_factor: opt("rope.scaling.yarn_ext_factor", 1.0)?,
                log_mul: opt("rope.scaling.yarn_log_multiplier", 0.0)?,
            })
        }
        Some("llama3") => Ok(RopeScaling::Llama3 {
            factor: check_factor(factor)?,
            low_freq_factor: f
                .opt_f32(&key(arch, "rope.scaling.low_freq_factor"))?
                .unwrap_or(1.0),
            high_freq_factor: f
                .opt_f32(&key(arch, "rope.scaling.high_freq_factor"))?
                .unwrap_or(4.0),
            original_context: f.get_u32(&key(arch, "rope.scaling.original_context_length"))?,
        }),
        Some(other) => Err(Error::Unsupported {
            what: format!("{ty_key} = '{other}' (supported: none, linear, llama3, yarn)"),
        }),
    }
}
