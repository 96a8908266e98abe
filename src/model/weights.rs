//! The model's tensors, located and checked at load time. Matrices stay in the file's memory
//! map: a [`Matrix`] is a byte range plus type and shape, resolved to a slice on every use (one
//! bounds-checked `get`). Only the tiny 1-D norm vectors and RoPE factors are decoded to f32.

use tramontane_kernels::GgmlType;

use crate::gguf::{GgufFile, TensorInfo};
use crate::model::arch::{FfnKind, QkNorm};
use crate::model::config::{ModelConfig, RopeScaling};
use crate::moe::{load_moe_block, MoeShape, MoeWeights};
use crate::rope::{llama3_freq_factors, Rope};
use crate::{Error, Result};

/// Weight types the matmul kernels accept.
pub(crate) const MATMUL_TYPES: &[GgmlType] = &[
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::MXFP4,
];

/// A 2-D weight in the map: `rows` output features of `cols` inputs each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    /// Tensor name, for error messages.
    pub name: String,
    /// Element type.
    pub ty: GgmlType,
    /// Output features (ne1).
    pub rows: usize,
    /// Input features (ne0).
    pub cols: usize,
    /// Byte range within the whole file.
    pub start: usize,
    /// Length of that range.
    pub len: usize,
}

impl Matrix {
    /// The weight bytes within `file_bytes` (the bytes of the file this matrix came from).
    pub fn bytes<'a>(&self, file_bytes: &'a [u8]) -> Result<&'a [u8]> {
        file_bytes
            .get(self.start..self.start + self.len)
            .ok_or_else(|| Error::TensorShape {
                name: self.name.clone(),
                expected: format!("{} bytes inside the file", self.len),
                found: "a range past the end".into(),
            })
    }
}

/// The feed-forward weights of one block. New kinds (mixture of experts) become variants.
#[derive(Clone, Debug, PartialEq)]
pub enum FfnWeights {
    /// Dense gated FFN: `down(act(gate(x)) * up(x))`.
    Dense {
        /// `ffn_gate`.
        gate: Matrix,
        /// `ffn_up`.
        up: Matrix,
        /// `ffn_down`.
        down: Matrix,
        /// The gate's activation: SiLU (`DenseSwiGlu`) or GELU (`DenseGeGlu`).
        kind: FfnKind,
    },
    /// Dense gated FFN whose gate and up projections are one matrix (Phi-3's `ffn_up` of
    /// `2 * n_ff` rows: the gate's rows, then the up rows).
    DenseFused {
        /// `ffn_up`: gate rows, then up rows.
        gate_up: Matrix,
        /// `ffn_down`.
        down: Matrix,
        /// The gate's activation.
        kind: FfnKind,
    },
    /// Sparse mixture of SwiGLU experts (Mixtral), either GGUF layout.
    Moe(MoeWeights),
}

/// The query, key and value projections of a block.
#[derive(Clone, Debug, PartialEq)]
pub enum QkvWeights {
    /// `attn_q`, `attn_k`, `attn_v`.
    Separate {
        /// Query projection.
        q: Matrix,
        /// Key projection.
        k: Matrix,
        /// Value projection.
        v: Matrix,
    },
    /// One `attn_qkv` matrix (Phi-3): the query rows, then the key rows, then the value rows.
    Fused(Matrix),
}

/// A shared expert (Qwen 2 MoE): a dense SwiGLU FFN run on every token beside the routed
/// experts, its output scaled by `sigmoid(gate_inp · x)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedExpert {
    /// The gate's input projection (`ffn_gate_inp_shexp`: one row of `n_embd`).
    pub gate_inp: Matrix,
    /// Gate projection.
    pub gate: Matrix,
    /// Up projection.
    pub up: Matrix,
    /// Down projection.
    pub down: Matrix,
}

/// One transformer block.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerWeights {
    /// Pre-attention RMSNorm weight.
    pub attn_norm: Vec<f32>,
    /// Query, key and value projections.
    pub qkv: QkvWeights,
    /// Attention output projection.
    pub wo: Matrix,
    /// Bias added to the attention output projection (`attn_output.bias`), where present.
    pub wo_bias: Option<Vec<f32>>,
    /// Attention sinks, one logit per query head (`attn_sinks`), where the architecture has
    /// them.
    pub sinks: Option<Vec<f32>>,
    /// Biases added to the query, key and value projections (`attn_{q,k,v}.bias`: Qwen 2,
    /// and any file that has them), each where present; with a fused projection, its
    /// `attn_qkv.bias` split the same way.
    pub qkv_bias: [Option<Vec<f32>>; 3],
    /// Pre-FFN RMSNorm weight.
    pub ffn_norm: Vec<f32>,
    /// The FFN.
    pub ffn: FfnWeights,
    /// RMSNorm weights of queries and keys, where the architecture has them: `head_dim`
    /// each (per head) or the projections' full widths (see [`QkNorm`]).
    pub qk_norm: Option<(Vec<f32>, Vec<f32>)>,
    /// The shared expert beside a mixture of experts, where the architecture has one.
    pub shared_expert: Option<SharedExpert>,
    /// RMSNorm weights of the attention and FFN outputs (`post_attention_norm`,
    /// `post_ffw_norm`), where the architecture has them.
    pub post_norms: Option<(Vec<f32>, Vec<f32>)>,
}

/// Every weight of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelWeights {
    /// Token embeddings (`n_vocab` rows of `n_embd`).
    pub token_embd: Matrix,
    /// The blocks.
    pub layers: Vec<LayerWeights>,
    /// Final RMSNorm weight.
    pub output_norm: Vec<f32>,
    /// Output projection; the token embedding when the model ties them.
    pub output: Matrix,
    /// Whether `output` is the tied embedding.
    pub tied_output: bool,
    /// Bias added to the logits (`output.bias`), where present.
    pub output_bias: Option<Vec<f32>>,
    /// RoPE parameters (with frequency factors when the model has them; LongRoPE's short
    /// ones).
    pub rope: Rope,
    /// LongRoPE's long factors (`rope_factors_long.weight`), used instead of `rope` in
    /// sessions with more context than [`ModelConfig::rope_original_context`].
    pub rope_long: Option<Rope>,
    /// RoPE of the sliding-window layers, when the model has any.
    pub rope_swa: Option<Rope>,
}

fn info<'a>(f: &'a GgufFile, name: &str) -> Result<&'a TensorInfo> {
    f.tensor_info(name).ok_or_else(|| Error::MissingTensor {
        name: name.to_string(),
    })
}

fn shape_err(t: &TensorInfo, expected: String) -> Error {
    Error::TensorShape {
        name: t.name.clone(),
        expected,
        found: t.shape_string(),
    }
}

/// A matrix of exactly `cols x rows` (ggml order) in a matmul type.
fn matrix(f: &GgufFile, name: &str, cols: usize, rows: usize) -> Result<Matrix> {
    let t = info(f, name)?;
    if t.dims.len() != 2 || t.dims[0] as usize != cols || t.dims[1] as usize != rows {
        return Err(shape_err(t, format!("[{cols}, {rows}]")));
    }
    matrix_of(f, t, name, cols, rows)
}

/// A 1-D tensor of `cols` values as a one-row matrix (llama.cpp multiplies such vectors, e.g.
/// `ffn_gate_inp_shexp`, as `[cols, 1]` matrices).
fn row_matrix(f: &GgufFile, name: &str, cols: usize) -> Result<Matrix> {
    let t = info(f, name)?;
    let one_row = match t.dims[..] {
        [c] | [c, 1] => c as usize == cols,
        _ => false,
    };
    if !one_row {
        return Err(shape_err(t, format!("[{cols}]")));
    }
    matrix_of(f, t, name, cols, 1)
}

/// The matrix view of tensor `t` (shape already checked).
fn matrix_of(f: &GgufFile, t: &TensorInfo, name: &str, cols: usize, rows: usize) -> Result<Matrix> {
    if !MATMUL_TYPES.contains(&t.ty) {
        return Err(Error::TensorType {
            name: t.name.clone(),
            ty: t.ty,
            reason: "no matmul kernel for this type".into(),
        });
    }
    // `tensor_of` checks that the bytes lie inside the file; we keep only their range.
    let len = f.tensor_of(t)?.data.len();
    let start = usize::try_from(f.data_offset() + t.offset).map_err(|_| Error::Overflow {
        what: format!("offset of tensor '{name}'"),
    })?;
    Ok(Matrix {
        name: t.name.clone(),
        ty: t.ty,
        rows,
        cols,
        start,
        len,
    })
}

/// `load(f)` when the file has tensor `name`, `None` when it has not.
pub(crate) fn optional<T>(
    f: &GgufFile,
    name: &str,
    load: impl FnOnce(&GgufFile) -> Result<T>,
) -> Result<Option<T>> {
    match f.tensor_info(name) {
        Some(_) => load(f).map(Some),
        None => Ok(None),
    }
}

/// A 1-D F32 vector of length `n`, decoded.
fn vector(f: &GgufFile, name: &str, n: usize) -> Result<Vec<f32>> {
    f32_tensor(f, name, &[n])
}

/// An F32 tensor of exactly `dims` (ggml order), decoded (biases, norms, sinks).
pub(crate) fn f32_tensor(f: &GgufFile, name: &str, dims: &[usize]) -> Result<Vec<f32>> {
    let t = info(f, name)?;
    if t.dims.len() != dims.len() || t.dims.iter().zip(dims).any(|(&a, &b)| a as usize != b) {
        return Err(shape_err(t, format!("{dims:?}")));
    }
    if t.ty != GgmlType::F32 {
        return Err(Error::TensorType {
            name: t.name.clone(),
            ty: t.ty,
            reason: "norms, biases and sinks must be F32".into(),
        });
    }
    let data = f.tensor_of(t)?.data;
    Ok(data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

impl ModelWeights {
    /// The RoPE of a session with `n_ctx` tokens of context: LongRoPE's long factors past the
    /// original context (llama.cpp's choice, by the context size, not the position).
    pub fn rope_for(&self, n_ctx: usize, c: &ModelConfig) -> &Rope {
        match &self.rope_long {
            Some(long) if n_ctx > c.rope_original_context => long,
            _ => &self.rope,
        }
    }

    /// Locates and checks every tensor the config calls for.
    pub fn from_gguf(f: &GgufFile, c: &ModelConfig) -> Result<ModelWeights> {
        let q_width = c.n_head * c.head_dim;
        let kv_width = c.n_kv_head * c.head_dim;
        let token_embd = matrix(f, "token_embd.weight", c.n_embd, c.n_vocab)?;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let ffn = match c.arch.ffn {
                // As llama.cpp: a `llama` file with experts is Mixtral.
                FfnKind::DenseSwiGlu if c.n_expert > 0 => {
                    let shape = MoeShape {
                        n_embd: c.n_embd,
                        n_ff: c.n_ff_exp,
                        n_expert: c.n_expert,
                        n_used: c.n_expert_used,
                    };
                    let mut moe = load_moe_block(f, i, &shape)?;
                    moe.normalize_weights = c.arch.moe_normalize_weights;
                    moe.gating = c.arch.moe_gating;
                    moe.activation = c.arch.expert_activation;
                    FfnWeights::Moe(moe)
                }
                // Without `ffn_gate`, `ffn_up` holds both (Phi-3).
                kind if f.tensor_info(&n("ffn_gate")).is_none() => FfnWeights::DenseFused {
                    gate_up: matrix(f, &n("ffn_up"), c.n_embd, 2 * c.n_ff)?,
                    down: matrix(f, &n("ffn_down"), c.n_ff, c.n_embd)?,
                    kind,
                },
                kind => FfnWeights::Dense {
                    gate: matrix(f, &n("ffn_gate"), c.n_embd, c.n_ff)?,
                    up: matrix(f, &n("ffn_up"), c.n_embd, c.n_ff)?,
                    down: matrix(f, &n("ffn_down"), c.n_ff, c.n_embd)?,
                    kind,
                },
            };
            let qk_norm = match c.arch.qk_norm {
                QkNorm::None => None,
                QkNorm::PerHead => Some((
                    vector(f, &n("attn_q_norm"), c.head_dim)?,
                    vector(f, &n("attn_k_norm"), c.head_dim)?,
                )),
                QkNorm::FullWidth => Some((
                    vector(f, &n("attn_q_norm"), q_width)?,
                    vector(f, &n("attn_k_norm"), kv_width)?,
                )),
            };
            // Read where present (llama.cpp requires it of qwen2moe; its absence is no harm).
            let has_shared = f.tensor_info(&n("ffn_gate_inp_shexp")).is_some();
            let shared_expert = if c.arch.shared_expert && c.n_expert > 0 && has_shared {
                Some(SharedExpert {
                    gate_inp: row_matrix(f, &n("ffn_gate_inp_shexp"), c.n_embd)?,
                    gate: matrix(f, &n("ffn_gate_shexp"), c.n_embd, c.n_ff_shexp)?,
                    up: matrix(f, &n("ffn_up_shexp"), c.n_embd, c.n_ff_shexp)?,
                    down: matrix(f, &n("ffn_down_shexp"), c.n_ff_shexp, c.n_embd)?,
                })
            } else {
                None
            };
            let post_norms = if c.arch.post_norms {
                Some((
                    vector(f, &n("post_attention_norm"), c.n_embd)?,
                    vector(f, &n("post_ffw_norm"), c.n_embd)?,
                ))
            } else {
                None
            };
            let bias = |proj: &str, len: usize| -> Result<Option<Vec<f32>>> {
                let name = format!("blk.{i}.{proj}.bias");
                optional(f, &name, |f| vector(f, &name, len))
            };
            // A fused `attn_qkv` where the file has one (llama.cpp prefers it, for every family).
            let fused = f.tensor_info(&n("attn_qkv")).is_some();
            let (qkv, qkv_bias) = if fused {
                let rows = q_width + 2 * kv_width;
                let fused_bias = bias("attn_qkv", rows)?;
                let split =
                    |at: usize, len: usize| fused_bias.as_ref().map(|b| b[at..at + len].to_vec());
                let biases = match fused_bias {
                    Some(_) => [
                        split(0, q_width),
                        split(q_width, kv_width),
                        split(q_width + kv_width, kv_width),
                    ],
                    None => [
                        bias("attn_q", q_width)?,
                        bias("attn_k", kv_width)?,
                        bias("attn_v", kv_width)?,
                    ],
                };
                let m = matrix(f, &n("attn_qkv"), c.n_embd, rows)?;
                (QkvWeights::Fused(m), biases)
            } else {
                let qkv = QkvWeights::Separate {
                    q: matrix(f, &n("attn_q"), c.n_embd, q_width)?,
                    k: matrix(f, &n("attn_k"), c.n_embd, kv_width)?,
                    v: matrix(f, &n("attn_v"), c.n_embd, kv_width)?,
                };
                let biases = [
                    bias("attn_q", q_width)?,
                    bias("attn_k", kv_width)?,
                    bias("attn_v", kv_width)?,
                ];
                (qkv, biases)
            };
            layers.push(LayerWeights {
                attn_norm: vector(f, &n("attn_norm"), c.n_embd)?,
                qkv,
                wo_bias: bias("attn_output", c.n_embd)?,
                sinks: if c.arch.attention_sinks {
                    Some(vector(f, &n("attn_sinks"), c.n_head)?)
                } else {
                    None
                },
                wo: matrix(f, &n("attn_output"), q_width, c.n_embd)?,
                qkv_bias,
                ffn_norm: vector(f, &n(c.arch.ffn_norm), c.n_embd)?,
                ffn,
                qk_norm,
                shared_expert,
                post_norms,
            });
        }
        let output_norm = vector(f, "output_norm.weight", c.n_embd)?;
        let (output, tied_output) = if f.tensor_info("output.weight").is_some() {
            (matrix(f, "output.weight", c.n_embd, c.n_vocab)?, false)
        } else {
            (token_embd.clone(), true)
        };
        let output_bias = optional(f, "output.bias", |f| vector(f, "output.bias", c.n_vocab))?;
        let rope = build_rope(f, c, "rope_factors_short.weight")?;
        // llama.cpp: `rope_freqs` wins over LongRoPE's pair when a file has both.
        let rope_long = if f.tensor_info("rope_factors_long.weight").is_some()
            && f.tensor_info("rope_freqs.weight").is_none()
        {
            Some(build_rope(f, c, "rope_factors_long.weight")?)
        } else {
            None
        };
        // The sliding-window layers rotate with their own base and no scaling (llama.cpp's
        // `rope_freq_base_train_swa`, `rope_freq_scale_train_swa = 1`).
        let rope_swa = c
            .swa_layers
            .iter()
            .any(|&s| s)
            .then(|| match c.arch.swa_plain_rope {
                true => Ok(Rope::new(
                    c.n_rot,
                    c.rope_base_swa,
                    1.0,
                    None,
                    c.arch.rope_style,
                )),
                false => build_rope(
                    f,
                    &ModelConfig {
                        rope_base: c.rope_base_swa,
                        ..c.clone()
                    },
                    "rope_factors_short.weight",
                ),
            })
            .transpose()?;
        Ok(ModelWeights {
            token_embd,
            layers,
            output_norm,
            output,
            tied_output,
            output_bias,
            rope,
            rope_long,
            rope_swa,
        })
    }
}

/// The model's RoPE: frequency factors from `rope_freqs.weight`, else from `longrope` (a
/// LongRoPE factor tensor, when the file has it), else from llama3 scaling metadata; and the
/// `rope.scaling.attn_factor` multiplier.
fn build_rope(f: &GgufFile, c: &ModelConfig, longrope: &str) -> Result<Rope> {
    let half = c.n_rot / 2;
    let factors = if f.tensor_info("rope_freqs.weight").is_some() {
        Some(vector(f, "rope_freqs.weight", half)?)
    } else if f.tensor_info(longrope).is_some() {
        Some(vector(f, longrope, half)?)
    } else if let RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_context,
    } = c.rope_scaling
    {
        Some(llama3_freq_factors(
            c.n_rot,
            c.rope_base,
            factor,
            low_freq_factor,
            high_freq_factor,
            original_context as f32,
        ))
    } else {
        None
    };
    let rope = Rope::new(
        c.n_rot,
        c.rope_base,
        c.rope_freq_scale(),
        factors,
        c.arch.rope_style,
    )
    .with_mscale(c.rope_attn_factor);
    Ok(match c.rope_scaling {
        RopeScaling::Yarn {
            original_context,
            beta_fast,
            beta_slow,
            ext_factor,
            ..
        } => rope.with_yarn(
            ext_factor,
            original_context,
            c.rope_base,
            beta_fast,
            beta_slow,
        ),
        _ => rope,
    })
}
