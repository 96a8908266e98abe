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
    /// The context length the model was trained for.
    pub context_length: usize,
    /// Vocabulary size (rows of the embedding).
    pub n_vocab: usize,
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

fn invalid(what: String) -> Error {
    Error::InvalidConfig { what }
}

impl ModelConfig {
    /// Reads and checks the hyperparameters. `n_vocab` comes from the embedding tensor when the
    /// metadata has no `vocab_size` (the caller cross-checks it against the tensor).
    pub fn from_gguf(f: &GgufFile) -> Result<ModelConfig> {
        let arch_name = f.get_str("general.architecture")?;
        let arch = arch::lookup(arch_name).ok_or_else(|| Error::Unsupported {
            what: format!("architecture '{arch_name}' (supported: llama)"),
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
            context_length,
            n_vocab,
        })
    }

    /// `1/sqrt(head_dim)`, the attention score scale.
    pub fn attn_scale(&self) -> f32 {
        1.0 / (self.head_dim as f32).sqrt()
    }

    /// RoPE's `freq_scale` (1 unless linear scaling).
    pub fn rope_freq_scale(&self) -> f32 {
        match self.rope_scaling {
            RopeScaling::Linear { factor } => 1.0 / factor,
            _ => 1.0,
        }
    }
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
            what: format!("{ty_key} = '{other}' (supported: none, linear, llama3)"),
        }),
    }
}
