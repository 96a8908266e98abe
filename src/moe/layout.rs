//! Finding a block's experts in a GGUF file, in either layout llama.cpp reads:
//! - merged: `blk.N.ffn_{gate,up,down}_exps.weight`, 3-D (`[n_embd, n_ff, n_expert]` for gate
//!   and up, `[n_ff, n_embd, n_expert]` for down, ggml order); expert `e` is the contiguous
//!   slice of `rows * row_bytes` bytes starting at `e * rows * row_bytes`;
//! - split (older Mixtral conversions): `blk.N.ffn_{gate,up,down}.E.weight`, one 2-D tensor
//!   per expert.
//!
//! Both become the same [`Expert`] list of byte ranges; nothing is copied.

use tramontane_kernels::reference::row_bytes;

use crate::gguf::{GgufFile, TensorInfo};
use crate::model::weights::{f32_tensor, optional, Matrix};
use crate::moe::experts::{Expert, ExpertBiases, MoeWeights};
use crate::{Error, Result};

/// How a block's experts are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpertLayout {
    /// One 3-D tensor per projection.
    Merged,
    /// One 2-D tensor per projection and expert.
    Split,
}

/// The dimensions a block must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeShape {
    /// Model width.
    pub n_embd: usize,
    /// Expert hidden width (`feed_forward_length`).
    pub n_ff: usize,
    /// Experts per block (`expert_count`).
    pub n_expert: usize,
    /// Experts per token (`expert_used_count`).
    pub n_used: usize,
}

fn shape_err(t: &TensorInfo, expected: String) -> Error {
    Error::TensorShape {
        name: t.name.clone(),
        expected,
        found: t.shape_string(),
    }
}

/// Absolute byte offset of a tensor's data, after checking it lies in the file.
fn data_start(f: &GgufFile, t: &TensorInfo) -> Result<usize> {
    f.tensor_of(t)?;
    f.data_offset()
        .checked_add(t.offset)
        .and_then(|s| usize::try_from(s).ok())
        .ok_or_else(|| Error::Overflow {
            what: format!("offset of tensor '{}'", t.name),
        })
}

fn dims_are(t: &TensorInfo, want: &[usize]) -> bool {
    t.dims.len() == want.len() && t.dims.iter().zip(want).all(|(&d, &w)| d == w as u64)
}

/// A 2-D tensor of `rows` rows of `cols` as a [`Matrix`].
fn matrix_2d(f: &GgufFile, name: &str, cols: usize, rows: usize) -> Result<Matrix> {
    let t = f.tensor_info(name).ok_or_else(|| Error::MissingTensor {
        name: name.to_string(),
    })?;
    if !dims_are(t, &[cols, rows]) {
        return Err(shape_err(t, format!("[{cols}, {rows}]")));
    }
    Ok(Matrix {
        name: t.name.clone(),
        ty: t.ty,
        rows,
        cols,
        start: data_start(f, t)?,
        len: usize::try_from(t.n_bytes).map_err(|_| Error::Overflow {
            what: format!("size of tensor '{name}'"),
        })?,
    })
}

/// A 3-D tensor `[cols, rows, n_expert]` cut into one [`Matrix`] per expert.
fn matrices_3d(
    f: &GgufFile,
    name: &str,
    cols: usize,
    rows: usize,
    n_expert: usize,
) -> Result<Vec<Matrix>> {
    let t = f.tensor_info(name).ok_or_else(|| Error::MissingTensor {
        name: name.to_string(),
    })?;
    if !dims_are(t, &[cols, rows, n_expert]) {
        return Err(shape_err(t, format!("[{cols}, {rows}, {n_expert}]")));
    }
    let overflow = || Error::Overflow {
        what: format!("expert slices of tensor '{name}'"),
    };
    let start = data_start(f, t)?;
    let slice = row_bytes(t.ty, cols)?
        .checked_mul(rows)
        .ok_or_else(overflow)?;
    if slice.checked_mul(n_expert).map(|n| n as u64) != Some(t.n_bytes) {
        return Err(shape_err(t, format!("{n_expert} slices of {slice} bytes")));
    }
    (0..n_expert)
        .map(|e| {
            Ok(Matrix {
                name: format!("{name}[expert {e}]"),
                ty: t.ty,
                rows,
                cols,
                start: e
                    .checked_mul(slice)
                    .and_then(|o| o.checked_add(start))
                    .ok_or_else(overflow)?,
                len: slice,
            })
        })
        .collect()
}

/// Which layout block `layer` uses; refuses a block with both or neither.
pub fn detect_layout(f: &GgufFile, layer: usize) -> Result<ExpertLayout> {
    let merged = ["gate", "up", "down"].iter().any(|p| {
        f.tensor_info(&format!("blk.{layer}.ffn_{p}_exps.weight"))
            .is_some()
    });
    let split = ["gate", "up", "down"].iter().any(|p| {
        f.tensor_info(&format!("blk.{layer}.ffn_{p}.0.weight"))
            .is_some()
    });
    match (merged, split) {
        (true, false) => Ok(ExpertLayout::Merged),
        (false, true) => Ok(ExpertLayout::Split),
        (true, true) => Err(Error::InvalidConfig {
            what: format!(
                "block {layer} has both merged (ffn_*_exps) and per-expert (ffn_*.E) expert tensors"
            ),
        }),
        (false, false) => Err(Error::MissingTensor {
            name: format!("blk.{layer}.ffn_gate_exps.weight"),
        }),
    }
}

/// Locates and checks the router and experts of block `layer`, in whichever layout it uses.
pub fn load_moe_block(f: &GgufFile, layer: usize, s: &MoeShape) -> Result<MoeWeights> {
    let router = matrix_2d(
        f,
        &format!("blk.{layer}.ffn_gate_inp.weight"),
        s.n_embd,
        s.n_expert,
    )?;
    let experts = match detect_layout(f, layer)? {
        ExpertLayout::Merged => {
            let n = |p: &str| format!("blk.{layer}.ffn_{p}_exps.weight");
            let gate = matrices_3d(f, &n("gate"), s.n_embd, s.n_ff, s.n_expert)?;
            let up = matrices_3d(f, &n("up"), s.n_embd, s.n_ff, s.n_expert)?;
            let down = matrices_3d(f, &n("down"), s.n_ff, s.n_embd, s.n_expert)?;
            gate.into_iter()
                .zip(up)
                .zip(down)
                .map(|((gate, up), down)| Expert { gate, up, down })
                .collect()
        }
        ExpertLayout::Split => {
            let n = |p: &str, e: usize| format!("blk.{layer}.ffn_{p}.{e}.weight");
            for p in ["gate", "up", "down"] {
                if f.tensor_info(&n(p, s.n_expert)).is_some() {
                    return Err(Error::InvalidConfig {
                        what: format!(
                            "tensor '{}' exists but expert_count is {}",
                            n(p, s.n_expert),
                            s.n_expert
                        ),
                    });
                }
            }
            (0..s.n_expert)
                .map(|e| {
                    Ok(Expert {
                        gate: matrix_2d(f, &n("gate", e), s.n_embd, s.n_ff)?,
                        up: matrix_2d(f, &n("up", e), s.n_embd, s.n_ff)?,
                        down: matrix_2d(f, &n("down", e), s.n_ff, s.n_embd)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    let mut block = MoeWeights::new(router, experts, s.n_used)?;
    // Biases where the file has them (gpt-oss), as llama.cpp reads them.
    let name = |p: &str| format!("blk.{layer}.{p}.bias");
    let router_bias = name("ffn_gate_inp");
    block.router_bias = optional(f, &router_bias, |f| {
        f32_tensor(f, &router_bias, &[s.n_expert])
    })?;
    let (gate, up, down) = (
        name("ffn_gate_exps"),
        name("ffn_up_exps"),
        name("ffn_down_exps"),
    );
    if f.tensor_info(&gate).is_some()
        || f.tensor_info(&up).is_some()
        || f.tensor_info(&down).is_some()
    {
        block.biases = Some(ExpertBiases {
            gate: f32_tensor(f, &gate, &[s.n_ff, s.n_expert])?,
            up: f32_tensor(f, &up, &[s.n_ff, s.n_expert])?,
            down: f32_tensor(f, &down, &[s.n_embd, s.n_expert])?,
        });
    }
    Ok(block)
}
