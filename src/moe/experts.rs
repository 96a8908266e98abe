//! The weights of one sparse mixture-of-experts FFN block, whatever the file layout: every
//! expert matrix is a [`Matrix`] (a byte range of the mapped file plus type and shape), so a
//! merged 3-D tensor cut into per-expert slices and separate per-expert tensors look the same.

use tramontane_kernels::reference::row_bytes;

use crate::model::weights::{Matrix, MATMUL_TYPES};
use crate::{Error, Result};

/// One expert: a SwiGLU FFN `down(silu(gate x) * up x)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expert {
    /// `n_ff` rows of `n_embd`.
    pub gate: Matrix,
    /// `n_ff` rows of `n_embd`.
    pub up: Matrix,
    /// `n_embd` rows of `n_ff`.
    pub down: Matrix,
}

/// A mixture-of-experts FFN block: a router and `n_expert` experts, `n_used` chosen per token.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeWeights {
    /// `ffn_gate_inp`: `n_expert` rows of `n_embd` (router logits).
    pub router: Matrix,
    /// The experts, indexed by the router's output rows.
    pub experts: Vec<Expert>,
    /// Experts per token (`expert_used_count`).
    pub n_used: usize,
    /// Renormalise the chosen weights to sum to 1 (llama.cpp's `norm_w`; true for Mixtral).
    pub normalize_weights: bool,
    /// How router logits become the chosen experts and their weights.
    pub gating: Gating,
    /// The experts' gated activation.
    pub activation: ExpertActivation,
    /// Added to the router logits (`ffn_gate_inp.bias`: gpt-oss), where present.
    pub router_bias: Option<Vec<f32>>,
    /// Per-expert biases of the three projections (`ffn_{gate,up,down}_exps.bias`:
    /// gpt-oss), where present.
    pub biases: Option<ExpertBiases>,
}

/// How a router's logits choose and weigh experts (llama.cpp's gating functions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gating {
    /// Softmax over every expert, then the top k (Mixtral, Qwen, OLMoE).
    #[default]
    Softmax,
    /// The top k logits, then a softmax over those k (gpt-oss: `SOFTMAX_WEIGHT`).
    SoftmaxOfTopK,
}

/// The gated activation inside each expert.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ExpertActivation {
    /// `silu(gate) * up`.
    #[default]
    SwiGlu,
    /// gpt-oss's clamped variant (`ggml_swiglu_oai`): the gate clipped above at `limit`, up
    /// clamped to `[-limit, limit]`, `gate * sigmoid(alpha * gate) * (up + 1)`.
    SwiGluOai {
        /// The sigmoid's slope (1.702).
        alpha: f32,
        /// The clamp (7.0).
        limit: f32,
    },
}

/// Per-expert biases, expert-major: `gate` and `up` hold `n_ff` values per expert, `down`
/// `n_embd`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpertBiases {
    /// Gate projection biases.
    pub gate: Vec<f32>,
    /// Up projection biases.
    pub up: Vec<f32>,
    /// Down projection biases.
    pub down: Vec<f32>,
}

fn shape_error(m: &Matrix, expected: String) -> Error {
    Error::TensorShape {
        name: m.name.clone(),
        expected,
        found: format!("{} rows of {}", m.rows, m.cols),
    }
}

/// Checks a matrix's type and that its byte range holds exactly `rows` rows of `cols`.
pub(crate) fn check_matrix(m: &Matrix, rows: usize, cols: usize) -> Result<()> {
    if m.rows != rows || m.cols != cols {
        return Err(shape_error(m, format!("{rows} rows of {cols}")));
    }
    if !MATMUL_TYPES.contains(&m.ty) {
        return Err(Error::TensorType {
            name: m.name.clone(),
            ty: m.ty,
            reason: "no matmul kernel for this type".into(),
        });
    }
    let expected = row_bytes(m.ty, cols)?
        .checked_mul(rows)
        .ok_or_else(|| Error::Overflow {
            what: format!("byte size of '{}'", m.name),
        })?;
    if m.len != expected {
        return Err(Error::TensorShape {
            name: m.name.clone(),
            expected: format!("{expected} bytes"),
            found: format!("{} bytes", m.len),
        });
    }
    Ok(())
}

impl MoeWeights {
    /// Checks and assembles a block with Mixtral's routing (softmax, weights renormalised).
    ///
    /// Refused: no experts; a router whose row count is not the expert count; `n_used` of 0
    /// or above the expert count; an expert whose shapes disagree with the router's width or
    /// with the first expert's `n_ff`; a type without a matmul kernel; byte ranges of the
    /// wrong size.
    pub fn new(router: Matrix, experts: Vec<Expert>, n_used: usize) -> Result<Self> {
        let n_expert = experts.len();
        let first = experts.first().ok_or_else(|| Error::InvalidConfig {
            what: "a mixture-of-experts block needs at least one expert (expert_count is 0)".into(),
        })?;
        if n_used == 0 || n_used > n_expert {
            return Err(Error::InvalidConfig {
                what: format!(
                    "expert_used_count is {n_used}, must be between 1 and expert_count ({n_expert})"
                ),
            });
        }
        if u32::try_from(n_expert).is_err() {
            return Err(Error::InvalidConfig {
                what: format!("expert_count {n_expert} is too large"),
            });
        }
        let n_embd = router.cols;
        let n_ff = first.gate.rows;
        check_matrix(&router, n_expert, n_embd)?;
        for e in &experts {
            check_matrix(&e.gate, n_ff, n_embd)?;
            check_matrix(&e.up, n_ff, n_embd)?;
            check_matrix(&e.down, n_embd, n_ff)?;
        }
        Ok(MoeWeights {
            router,
            experts,
            n_used,
            normalize_weights: true,
            gating: Gating::Softmax,
            activation: ExpertActivation::SwiGlu,
            router_bias: None,
            biases: None,
        })
    }

    /// Number of experts.
    pub fn n_expert(&self) -> usize {
        self.experts.len()
    }

    /// Model width (the router's input size).
    pub fn n_embd(&self) -> usize {
        self.router.cols
    }

    /// Hidden width of each expert.
    pub fn n_ff(&self) -> usize {
        self.experts.first().map_or(0, |e| e.gate.rows)
    }
}
