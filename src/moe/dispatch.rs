//! The sparse dispatcher: route every token, then run each *active* expert once over just the
//! token rows routed to it, and sum the weighted outputs per token.
//!
//! Only the chosen experts' weight bytes are read: a decode step touches `n_used` experts.
//! Work is a flat list of `(expert, weight-row chunk)` items handed to rayon, so threads move
//! freely from one expert to the next (like llama.cpp's `mul_mat_id` chunk counter) with no
//! barrier per expert; there is one barrier between the gate/up phase and the down phase.
//! Every output value is computed by the same kernel call whatever the thread count and
//! whatever other tokens share the expert, so results are bit-identical across thread counts
//! and between a batch and token-by-token evaluation (as llama.cpp's are on the MoE fixtures).

use std::borrow::Cow;

use rayon::prelude::*;
use tramontane_kernels::matmul::{matmul_quantized_as, GgmlOp, Parallelism, QuantizedActivations};
use tramontane_kernels::reference::vec_dot_type;
use tramontane_kernels::GgmlType;

use crate::model::weights::Matrix;
use crate::moe::experts::{ExpertActivation, MoeWeights};
use crate::moe::routing::Routing;
use crate::sums::BatchSums;
use crate::{Error, Result};
use tramontane_kernels::vecmath::{swiglu, swiglu_oai};

/// Weight rows per work item: the item's weight bytes stay in L2 while its tokens pass.
const ROWS_PER_ITEM: usize = 64;

/// Weight rows per work item when only a few tokens pass (decoding): each item is then a
/// matvec, and longer runs keep the weight stream sequential and the per-item overhead small.
const ROWS_PER_ITEM_FEW_TOKENS: usize = 256;

/// How many weight rows one work item covers for a pass over `n_tokens` tokens. The chunking
/// only decides who computes an output row, never its bits.
fn rows_per_item(n_tokens: usize) -> usize {
    if n_tokens <= 4 {
        ROWS_PER_ITEM_FEW_TOKENS
    } else {
        ROWS_PER_ITEM
    }
}

/// Where the weight bytes of a [`Matrix`] come from: normally the mapped file (`[u8]`). Tests
/// wrap it to record which byte ranges a forward pass asked for.
pub trait WeightSource: Sync {
    /// The bytes of `m`.
    fn matrix_bytes(&self, m: &Matrix) -> Result<&[u8]>;
}

impl WeightSource for [u8] {
    fn matrix_bytes(&self, m: &Matrix) -> Result<&[u8]> {
        m.bytes(self)
    }
}

/// Knobs of the dispatcher (default: gate and up in separate passes). Work runs on the
/// current rayon pool, like the matmul drivers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchOptions {
    /// Compute an expert's gate and up rows in the same work item and apply SwiGLU there
    /// (one pass over the activations per row chunk), instead of all gate chunks, then all up
    /// chunks, then SwiGLU. Off by default: measured on a Mixtral-shaped block (dim 1024, FFN
    /// 3584, Q4_0, AVX2) the fused order was never faster and up to 15% slower for one
    /// token, as alternating between two weight streams in 36 KB pieces defeats the
    /// sequential DRAM prefetch the matvec kernel is tuned for (`tests/moe_perf.rs`).
    pub fuse_gate_up: bool,
    /// How batches sum (llama.cpp's orders, or every token as if alone).
    pub sums: BatchSums,
}

/// One MoE FFN block ready to run: its weights, where their bytes are, and the options.
pub struct MoeFfn<'a, S: WeightSource + ?Sized> {
    /// Router and experts.
    pub weights: &'a MoeWeights,
    /// The bytes behind the weights' byte ranges.
    pub source: &'a S,
    /// Fusion.
    pub options: DispatchOptions,
}

impl<S: WeightSource + ?Sized> std::fmt::Debug for MoeFfn<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoeFfn")
            .field("n_expert", &self.weights.n_expert())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// An expert with at least one token routed to it.
struct Active<'a> {
    /// Index of the expert.
    expert: usize,
    /// Routed token indices, ascending.
    tokens: Vec<usize>,
    gate: &'a [u8],
    up: &'a [u8],
    down: &'a [u8],
}

/// Which projection a work item computes.
#[derive(Clone, Copy)]
enum Proj {
    Gate,
    Up,
    Down,
}

impl<S: WeightSource + ?Sized> MoeFfn<'_, S> {
    /// Router logits and the chosen experts for `n_tokens` rows of `x` (each `n_embd` wide).
    pub fn route(&self, x: &[f32], n_tokens: usize) -> Result<Routing> {
        let w = self.weights;
        let (n_expert, n_embd) = (w.n_expert(), w.n_embd());
        check_len("MoE input", x.len(), n_tokens, n_embd)?;
        let mut logits = vec![0.0f32; n_tokens * n_expert];
        let router = self.source.matrix_bytes(&w.router)?;
        let acts = QuantizedActivations::new(vec_dot_type(w.router.ty), x, n_embd, n_tokens)?;
        let op = GgmlOp::MulMat {
            matrix_rows: n_expert,
        };
        matmul_quantized_as(
            self.options.sums.matmul_op(op),
            router,
            w.router.ty,
            n_expert,
            n_embd,
            &acts,
            &mut logits,
            Parallelism::CurrentPool,
        )?;
        if let Some(bias) = &w.router_bias {
            for row in logits.chunks_exact_mut(n_expert.max(1)) {
                row.iter_mut().zip(bias).for_each(|(l, b)| *l += b);
            }
        }
        Ok(Routing::from_logits_gated(
            &logits,
            n_expert,
            w.n_used,
            w.gating,
            w.normalize_weights,
        ))
    }

    /// `out[t] = sum_j weight[t][j] * expert[t][j](x[t])` for `n_tokens` rows of `x`, summed
    /// in the router's order (highest probability first) as llama.cpp does. Returns the
    /// routing it used.
    pub fn forward(&self, x: &[f32], n_tokens: usize, out: &mut [f32]) -> Result<Routing> {
        let n_embd = self.weights.n_embd();
        check_len("MoE output", out.len(), n_tokens, n_embd)?;
        let routing = self.route(x, n_tokens)?;
        if n_tokens == 0 {
            return Ok(routing);
        }
        let parallel = rayon::current_num_threads() > 1;
        self.run_experts(x, n_tokens, &routing, out, parallel)?;
        Ok(routing)
    }

    /// Adds `expert`'s bias of `proj` (where the block has biases) to a piece of its output:
    /// rows `r0..r0 + count` of a `width`-row projection, `[token][count]` (ggml's `add_id`).
    fn add_bias(
        &self,
        proj: Proj,
        expert: usize,
        (r0, count): (usize, usize),
        piece: &mut [f32],
        width: usize,
    ) {
        let Some(b) = &self.weights.biases else {
            return;
        };
        let all = match proj {
            Proj::Gate => &b.gate,
            Proj::Up => &b.up,
            Proj::Down => &b.down,
        };
        let Some(bias) = all.get(expert * width + r0..expert * width + r0 + count) else {
            return;
        };
        for row in piece.chunks_exact_mut(count.max(1)) {
            row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
        }
    }

    /// The experts' gated activation of one piece: `out = act(gate) * up`.
    fn activate(&self, gate: &[f32], up: &[f32], out: &mut [f32]) -> Result<()> {
        match self.weights.activation {
            ExpertActivation::SwiGlu => swiglu(gate, up, out)?,
            ExpertActivation::SwiGluOai { alpha, limit } => {
                swiglu_oai(gate, up, out, alpha, limit)?
            }
        }
        Ok(())
    }

    /// The active experts, with their routed tokens and weight bytes (the only expert bytes
    /// this pass reads).
    fn active_experts(&self, routing: &Routing) -> Result<Vec<Active<'_>>> {
        let mut tokens: Vec<Vec<usize>> = vec![Vec::new(); self.weights.n_expert()];
        for (t, chosen) in routing.experts.chunks_exact(routing.n_used).enumerate() {
            for &e in chosen {
                let list = tokens
                    .get_mut(e as usize)
                    .ok_or_else(|| Error::InvalidArgument {
                        what: format!("router chose expert {e}, which does not exist"),
                    })?;
                list.push(t);
            }
        }
        let mut active = Vec::new();
        for (expert, tokens) in tokens.into_iter().enumerate() {
            if tokens.is_empty() {
                continue;
            }
            let ex = self
                .weights
                .experts
                .get(expert)
                .ok_or_else(|| Error::InvalidArgument {
                    what: format!("expert {expert} does not exist"),
                })?;
            active.push(Active {
                expert,
                tokens,
                gate: self.source.matrix_bytes(&ex.gate)?,
                up: self.source.matrix_bytes(&ex.up)?,
                down: self.source.matrix_bytes(&ex.down)?,
            });
        }
        Ok(active)
    }

    fn run_experts(
        &self,
        x: &[f32],
        n_tokens: usize,
        routing: &Routing,
        out: &mut [f32],
        parallel: bool,
    ) -> Result<()> {
        let w = self.weights;
        let (n_embd, n_ff) = (w.n_embd(), w.n_ff());
        let sums = self.options.sums;
        let active = self.active_experts(routing)?;

        // Each input row quantized once per activation type, then gathered per expert.
        let mut quantized: Vec<QuantizedActivations> = Vec::new();
        for a in &active {
            let ex = &w.experts[a.expert];
            for ty in [vec_dot_type(ex.gate.ty), vec_dot_type(ex.up.ty)] {
                if !quantized.iter().any(|q| q.ty() == ty) {
                    quantized.push(QuantizedActivations::new(ty, x, n_embd, n_tokens)?);
                }
            }
        }
        let gathered = map(parallel, active.len(), |i| {
            let a = &active[i];
            let ex = &w.experts[a.expert];
            let g = gather(&quantized, vec_dot_type(ex.gate.ty), &a.tokens, n_tokens)?;
            let u = gather(&quantized, vec_dot_type(ex.up.ty), &a.tokens, n_tokens)?;
            Ok((g, u))
        })?;

        // Phase 1: hidden = silu(gate x) * up x, per (expert, row chunk of n_ff).
        let rpi = rows_per_item(n_tokens);
        let chunks_ff = n_ff.div_ceil(rpi);
        let hidden_pieces = if self.options.fuse_gate_up {
            map(parallel, active.len() * chunks_ff, |item| {
                let (i, c) = (item / chunks_ff, item % chunks_ff);
                let ex = &w.experts[active[i].expert];
                let (g_acts, u_acts) = &gathered[i];
                let mut gate = rows_times(&ex.gate, active[i].gate, c, rpi, g_acts, sums)?;
                let mut up = rows_times(&ex.up, active[i].up, c, rpi, u_acts, sums)?;
                let rows = (c * rpi, rpi.min(n_ff - c * rpi));
                self.add_bias(Proj::Gate, active[i].expert, rows, &mut gate, n_ff);
                self.add_bias(Proj::Up, active[i].expert, rows, &mut up, n_ff);
                let mut h = vec![0.0f32; gate.len()];
                self.activate(&gate, &up, &mut h)?;
                Ok(h)
            })?
        } else {
            let per_proj = active.len() * chunks_ff;
            let mut both = map(parallel, 2 * per_proj, |item| {
                let proj = if item < per_proj {
                    Proj::Gate
                } else {
                    Proj::Up
                };
                let item = item % per_proj;
                let (i, c) = (item / chunks_ff, item % chunks_ff);
                let ex = &w.experts[active[i].expert];
                let (g_acts, u_acts) = &gathered[i];
                let mut y = match proj {
                    Proj::Gate => rows_times(&ex.gate, active[i].gate, c, rpi, g_acts, sums)?,
                    _ => rows_times(&ex.up, active[i].up, c, rpi, u_acts, sums)?,
                };
                let rows = (c * rpi, rpi.min(n_ff - c * rpi));
                self.add_bias(proj, active[i].expert, rows, &mut y, n_ff);
                Ok(y)
            })?;
            let ups = both.split_off(per_proj);
            let mut gates = both;
            let swiglu_piece = |(g, u): (&mut Vec<f32>, &Vec<f32>)| -> Result<()> {
                let gate = std::mem::take(g);
                g.resize(gate.len(), 0.0);
                self.activate(&gate, u, g)
            };
            if parallel {
                gates.par_iter_mut().zip(&ups).try_for_each(swiglu_piece)?;
            } else {
                gates.iter_mut().zip(&ups).try_for_each(swiglu_piece)?;
            }
            gates
        };
        let hidden: Vec<Vec<f32>> = active
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let pieces = hidden_pieces.get(i * chunks_ff..(i + 1) * chunks_ff);
                assemble(pieces.unwrap_or(&[]), a.tokens.len(), n_ff, rpi)
            })
            .collect();

        // Phase 2: y = down hidden, per (expert, row chunk of n_embd).
        let hidden_q = map(parallel, active.len(), |i| {
            let down = &w.experts[active[i].expert].down;
            let n = active[i].tokens.len();
            Ok(QuantizedActivations::new(
                vec_dot_type(down.ty),
                &hidden[i],
                n_ff,
                n,
            )?)
        })?;
        drop(hidden);
        let chunks_embd = n_embd.div_ceil(rpi);
        let down_pieces = map(parallel, active.len() * chunks_embd, |item| {
            let (i, c) = (item / chunks_embd, item % chunks_embd);
            let ex = &w.experts[active[i].expert];
            let mut y = rows_times(&ex.down, active[i].down, c, rpi, &hidden_q[i], sums)?;
            let rows = (c * rpi, rpi.min(n_embd - c * rpi));
            self.add_bias(Proj::Down, active[i].expert, rows, &mut y, n_embd);
            Ok(y)
        })?;
        let ys: Vec<Vec<f32>> = active
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let pieces = down_pieces.get(i * chunks_embd..(i + 1) * chunks_embd);
                assemble(pieces.unwrap_or(&[]), a.tokens.len(), n_embd, rpi)
            })
            .collect();

        // Combine: out[t] = (y_0 * w_0) + (y_1 * w_1) + ... in the router's order (the
        // products rounded first, as ggml multiplies then adds views one at a time).
        // Slot (t, j) reads row r of active expert i. Each expert's token list ascends and a
        // token picks an expert at most once, so a cursor per expert, advanced in slot
        // order, finds the rows.
        let mut row_of = vec![(0usize, 0usize); self.weights.n_expert()];
        for (i, a) in active.iter().enumerate() {
            row_of[a.expert] = (i, 0);
        }
        let mut slot_rows = vec![(0usize, 0usize); routing.experts.len()];
        for (slot, &e) in routing.experts.iter().enumerate() {
            let cursor = &mut row_of[e as usize];
            slot_rows[slot] = *cursor;
            cursor.1 += 1;
        }
        let combine = |(t, dst): (usize, &mut [f32])| {
            let n_used = routing.n_used;
            for j in 0..n_used {
                let (i, r) = slot_rows[t * n_used + j];
                let wt = routing.weights[t * n_used + j];
                let y = &ys[i][r * n_embd..(r + 1) * n_embd];
                if j == 0 {
                    dst.iter_mut().zip(y).for_each(|(o, &v)| *o = v * wt);
                } else {
                    dst.iter_mut().zip(y).for_each(|(o, &v)| *o += v * wt);
                }
            }
        };
        if parallel {
            out.par_chunks_mut(n_embd).enumerate().for_each(combine);
        } else {
            out.chunks_mut(n_embd).enumerate().for_each(combine);
        }
        Ok(())
    }
}

/// `W[c*rpi .. c*rpi+count] · acts` for every activation row: `[token][row]`, `count` per token.
fn rows_times(
    m: &Matrix,
    bytes: &[u8],
    chunk: usize,
    rpi: usize,
    acts: &QuantizedActivations,
    sums: BatchSums,
) -> Result<Vec<f32>> {
    let r0 = chunk * rpi;
    let count = rpi.min(m.rows.saturating_sub(r0));
    let row_len = bytes.len() / m.rows.max(1);
    let w = bytes
        .get(r0 * row_len..(r0 + count) * row_len)
        .ok_or_else(|| Error::InvalidArgument {
            what: format!("row chunk {chunk} of '{}'", m.name),
        })?;
    let mut y = vec![0.0f32; count * acts.n_tokens()];
    // One expert of llama.cpp's mul_mat_id (its k-quant batch order depends on that).
    let op = sums.matmul_op(GgmlOp::MulMatId {
        matrix_rows: m.rows,
    });
    matmul_quantized_as(
        op,
        w,
        m.ty,
        count,
        m.cols,
        acts,
        &mut y,
        Parallelism::Inline,
    )?;
    Ok(y)
}

/// Joins row-chunk pieces (`[token][chunk rows]` each) into `[token][width]`.
fn assemble(pieces: &[Vec<f32>], n_tok: usize, width: usize, rpi: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n_tok * width];
    for (c, piece) in pieces.iter().enumerate() {
        let r0 = c * rpi;
        let count = rpi.min(width.saturating_sub(r0));
        if count == 0 {
            continue;
        }
        for (t, src) in piece.chunks_exact(count).enumerate() {
            if let Some(dst) = out.get_mut(t * width + r0..t * width + r0 + count) {
                dst.copy_from_slice(src);
            }
        }
    }
    out
}

/// The rows `tokens` of the quantized input of type `ty` (borrowed when that is every row).
fn gather<'q>(
    quantized: &'q [QuantizedActivations],
    ty: GgmlType,
    tokens: &[usize],
    n_tokens: usize,
) -> Result<Cow<'q, QuantizedActivations>> {
    let q = quantized
        .iter()
        .find(|q| q.ty() == ty)
        .ok_or_else(|| Error::InvalidArgument {
            what: format!("no {ty} activations quantized"),
        })?;
    if tokens.len() == n_tokens {
        // Token lists ascend without repeats, so this is every row in order.
        Ok(Cow::Borrowed(q))
    } else {
        Ok(Cow::Owned(q.gather(tokens)?))
    }
}

/// `f(0..n)` collected in order, on the current rayon pool when `parallel`.
fn map<T: Send>(
    parallel: bool,
    n: usize,
    f: impl Fn(usize) -> Result<T> + Sync + Send,
) -> Result<Vec<T>> {
    if parallel {
        (0..n).into_par_iter().map(f).collect()
    } else {
        (0..n).map(f).collect()
    }
}

fn check_len(what: &str, len: usize, n_tokens: usize, width: usize) -> Result<()> {
    let expected = n_tokens.checked_mul(width).ok_or_else(|| Error::Overflow {
        what: format!("{what} size"),
    })?;
    if len != expected {
        return Err(Error::InvalidArgument {
            what: format!("{what} has {len} values, expected {n_tokens} rows of {width}"),
        });
    }
    Ok(())
}
