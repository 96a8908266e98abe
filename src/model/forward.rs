//! The transformer forward pass, written once for every architecture in `arch.rs`.
//!
//! A batch of tokens goes through every matmul as one GEMM (`n_tokens` rows); a single decode
//! step is the same code with one row. Activations are quantized by the kernels the way
//! llama.cpp does; inputs shared by several projections (Q/K/V, gate/up) are quantized once.

use rayon::prelude::*;
use tramontane_kernels::matmul::{
    matmul_many, GgmlOp, MatmulTask, Parallelism, QuantizedActivations,
};
use tramontane_kernels::reference::{dequantize_row, row_bytes, vec_dot_type};
use tramontane_kernels::vecmath::{geglu, swiglu};

use crate::attention::{attend, AttnShape};
use crate::kv_cache::KvCache;
use crate::model::arch::FfnKind;
use crate::model::config::ModelConfig;
use crate::model::weights::{FfnWeights, Matrix, ModelWeights, QkvWeights, SharedExpert};
use crate::moe::{DispatchOptions, MoeFfn};
use crate::norm::{rms_norm_rows, rms_norm_rows_in_place};
use crate::sums::BatchSums;
use crate::{Error, Result};

/// Receives intermediate tensors of a forward pass, like llama.cpp's `cb_eval`: a name (the
/// one llama.cpp's graph gives the same tensor; `_rope` marks Q/K after RoPE), the layer (none
/// for the output head) and the values, token-major (`n_tokens` rows). Called in graph order
/// from the thread that runs the pass; for debugging and comparing with llama.cpp (see
/// `examples/trace.rs` and `scripts/dump-llama-tensors.py`).
pub type Tracer<'t> = &'t (dyn Fn(&str, Option<usize>, &[f32]) + Sync);

/// Which rows of logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitRows {
    /// Only the last token's (`n_vocab` values).
    Last,
    /// Every token's (`n_tokens * n_vocab` values, token-major).
    All,
    /// None: the pass only fills the KV cache (a piece of a longer input).
    None,
}

/// Everything a forward pass reads: config, weight index and the mapped file bytes. It runs on
/// the current rayon pool (the session's).
#[derive(Clone, Copy)]
pub struct Forward<'a> {
    /// Hyperparameters.
    pub config: &'a ModelConfig,
    /// Weight index.
    pub weights: &'a ModelWeights,
    /// The whole mapped file.
    pub bytes: &'a [u8],
    /// Receives intermediate tensors when set (over every row of the batch).
    pub trace: Option<Tracer<'a>>,
    /// How batches sum: llama.cpp's orders, or every row as if alone.
    pub sums: BatchSums,
    /// The context of the sequences (tokens each may hold): it picks LongRoPE's factors.
    pub n_ctx: usize,
}

/// One sequence's part of a batch: its tokens, where they go in its cache, and what it wants
/// back.
#[derive(Debug)]
pub struct Segment<'s> {
    /// The sequence's KV cache (room reserved for the new positions).
    pub cache: &'s mut KvCache,
    /// The tokens to evaluate.
    pub tokens: &'s [u32],
    /// Position of the first one.
    pub first_pos: usize,
    /// What to write back.
    pub output: Output<'s>,
}

/// What a [`Segment`] wants from a pass; the vector's content is replaced.
#[derive(Debug)]
pub enum Output<'s> {
    /// Nothing: the pass only fills the cache.
    None,
    /// The last token's logits.
    LastLogits(&'s mut Vec<f32>),
    /// Every token's logits, token-major.
    AllLogits(&'s mut Vec<f32>),
    /// The mean of the tokens' final hidden states (after the output norm): an embedding.
    MeanHidden(&'s mut Vec<f32>),
}

impl Output<'_> {
    fn takes_logits(&self) -> bool {
        matches!(self, Output::LastLogits(_) | Output::AllLogits(_))
    }
}

/// `n` zeros, or [`Error::OutOfMemory`] instead of an abort: batch sizes come from the caller.
fn zeros(n: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    resize_zeroed(&mut v, n)?;
    Ok(v)
}

/// Clears `v` and makes it `n` zeros, growing it fallibly.
fn resize_zeroed(v: &mut Vec<f32>, n: usize) -> Result<()> {
    v.clear();
    v.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
        what: format!("activations of {n} values"),
    })?;
    v.resize(n, 0.0);
    Ok(())
}

impl std::fmt::Debug for Forward<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("arch", &self.config.arch.name)
            .field("bytes", &self.bytes.len())
            .field("traced", &self.trace.is_some())
            .finish_non_exhaustive()
    }
}

/// Row-wise work (activation quantization, the gated activation) is split over the pool only
/// for at least this many rows: for fewer, waking the pool costs more than the work.
const PARALLEL_MIN_ROWS: usize = 16;

/// Input activations quantized for one weight type, reused across projections of that type.
struct Acts<'x> {
    x: &'x [f32],
    cols: usize,
    n_tokens: usize,
    quantized: Vec<QuantizedActivations>,
}

impl<'x> Acts<'x> {
    fn new(x: &'x [f32], cols: usize, n_tokens: usize) -> Self {
        Acts {
            x,
            cols,
            n_tokens,
            quantized: Vec::new(),
        }
    }

    fn for_type(&mut self, m: &Matrix) -> Result<&QuantizedActivations> {
        let ty = vec_dot_type(m.ty);
        let idx = match self.quantized.iter().position(|q| q.ty() == ty) {
            Some(i) => i,
            None => {
                // Large batches quantize their rows in parallel (the caller's pool); a few
                // rows (decoding several sequences) cost less than waking the pool.
                let q = if self.n_tokens >= PARALLEL_MIN_ROWS {
                    QuantizedActivations::new_parallel(ty, self.x, self.cols, self.n_tokens)?
                } else {
                    QuantizedActivations::new(ty, self.x, self.cols, self.n_tokens)?
                };
                self.quantized.push(q);
                self.quantized.len() - 1
            }
        };
        self.quantized.get(idx).ok_or(Error::InvalidArgument {
            what: "activation cache".into(),
        })
    }
}

impl<'a> Forward<'a> {
    /// A forward pass over `model`'s mapped weights for sequences of `n_ctx` tokens of
    /// context, summing batches as `sums` says, traced by nothing.
    pub fn new(model: &'a crate::model::Model, sums: BatchSums, n_ctx: usize) -> Forward<'a> {
        Forward {
            config: model.config(),
            weights: model.weights(),
            bytes: model.file().bytes(),
            trace: None,
            sums,
            n_ctx,
        }
    }
}

impl Forward<'_> {
    fn emit(&self, name: &str, layer: Option<usize>, values: &[f32]) {
        if let Some(t) = self.trace {
            t(name, layer, values);
        }
    }

    /// `out = m · acts` for every token row.
    fn project(&self, m: &Matrix, acts: &mut Acts<'_>, out: &mut Vec<f32>) -> Result<()> {
        self.project_many(&mut [(m, out)], acts)
    }

    /// `out = m · acts` for each pair, as one parallel loop per activation type (Q, K and V
    /// or gate and up together: one fork-join, and small matrices do not leave threads idle).
    fn project_many(
        &self,
        products: &mut [(&Matrix, &mut Vec<f32>)],
        acts: &mut Acts<'_>,
    ) -> Result<()> {
        for (m, out) in products.iter_mut() {
            resize_zeroed(out, m.rows * acts.n_tokens)?;
        }
        let mut done = 0;
        while let Some(first) = products.get(done).map(|(m, _)| *m) {
            // Products whose weights share `first`'s activation type: moved to the front.
            let ty = vec_dot_type(first.ty);
            let mut end = done;
            for i in done..products.len() {
                if vec_dot_type(products[i].0.ty) == ty {
                    products.swap(i, end);
                    end += 1;
                }
            }
            let q = acts.for_type(first)?;
            let mut tasks = Vec::with_capacity(end - done);
            for (m, out) in products[done..end].iter_mut() {
                let op = GgmlOp::MulMat {
                    matrix_rows: m.rows,
                };
                tasks.push(MatmulTask {
                    op: self.sums.matmul_op(op),
                    w: m.bytes(self.bytes)?,
                    ty: m.ty,
                    rows: m.rows,
                    y: out.as_mut_slice(),
                });
            }
            matmul_many(&mut tasks, q, Parallelism::CurrentPool)?;
            done = end;
        }
        Ok(())
    }

    /// Dequantizes the embedding rows of `tokens`.
    fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        let c = self.config;
        let e = &self.weights.token_embd;
        let rb = row_bytes(e.ty, c.n_embd)?;
        let table = e.bytes(self.bytes)?;
        let mut x = zeros(tokens.len() * c.n_embd)?;
        for (&tok, dst) in tokens.iter().zip(x.chunks_exact_mut(c.n_embd)) {
            let t = tok as usize;
            let src = table
                .get(t * rb..(t + 1) * rb)
                .filter(|_| t < c.n_vocab)
                .ok_or_else(|| Error::InvalidArgument {
                    what: format!("token id {tok} is outside the vocabulary of {}", c.n_vocab),
                })?;
            dequantize_row(e.ty, src, dst)?;
        }
        if c.arch.scale_embeddings {
            let s = (c.n_embd as f32).sqrt();
            x.iter_mut().for_each(|v| *v *= s);
        }
        Ok(x)
    }

    /// Runs `tokens` (at positions `first_pos..`) through the model, storing their K/V in
    /// `cache`, and writes the requested logits to `logits` (replacing what it held, reusing
    /// its memory). The caller has reserved the cache's room for the positions.
    pub fn run(
        &self,
        cache: &mut KvCache,
        tokens: &[u32],
        first_pos: usize,
        rows: LogitRows,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let output = match rows {
            LogitRows::Last => Output::LastLogits(logits),
            LogitRows::All => Output::AllLogits(logits),
            LogitRows::None => {
                logits.clear();
                Output::None
            }
        };
        self.run_segments(&mut [Segment {
            cache,
            tokens,
            first_pos,
            output,
        }])
    }

    /// Runs the tokens of several sequences as one batch: every matmul reads its weights once
    /// for all of them, while each sequence stores its K/V in its own cache at its own
    /// positions and attends to its own keys. With [`BatchSums::PerRow`] no sequence's
    /// results depend on the others. The caller has reserved every cache's room.
    pub fn run_segments(&self, segments: &mut [Segment<'_>]) -> Result<()> {
        let c = self.config;
        let w = self.weights;
        let n: usize = segments.iter().map(|s| s.tokens.len()).sum();
        if n == 0 || segments.iter().any(|s| s.tokens.is_empty()) {
            return Err(Error::InvalidArgument {
                what: "no tokens to evaluate".into(),
            });
        }
        let (e, q_width, kv_width) = (c.n_embd, c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        let shape_of = |il: usize| AttnShape {
            n_head: c.n_head,
            n_kv_head: c.n_kv_head,
            head_dim: c.head_dim,
            // Gemma scales Q before the product instead (below).
            scale: if c.arch.scale_q { 1.0 } else { c.attn_scale() },
            window: c.is_swa(il).then_some(c.sliding_window),
            sums: self.sums,
            sinks: w.layers.get(il).and_then(|l| l.sinks.as_deref()),
        };
        // Every row's position, in segment order.
        let positions: Vec<usize> = segments
            .iter()
            .flat_map(|s| s.first_pos..s.first_pos + s.tokens.len())
            .collect();
        let angles_of = |rope: &crate::rope::Rope| -> Vec<Vec<(f32, f32)>> {
            positions.iter().map(|&p| rope.angles(p)).collect()
        };
        let rope_full = w.rope_for(self.n_ctx, c);
        let angles = angles_of(rope_full);
        let angles_swa = w.rope_swa.as_ref().map(angles_of);

        let tokens: Vec<u32> = segments
            .iter()
            .flat_map(|s| s.tokens.iter().copied())
            .collect();
        let mut x = self.embed(&tokens)?;
        let mut cur = zeros(n * e)?;
        let (mut q, mut k, mut v) = (Vec::new(), Vec::new(), Vec::new());
        let mut attn = zeros(n * q_width)?;
        let mut proj = Vec::new();
        let mut fused = Vec::new();
        let mut ffn_bufs = FfnBuffers::default();

        for (il, layer) in w.layers.iter().enumerate() {
            rms_norm_rows(&x, &layer.attn_norm, c.rms_eps, &mut cur);
            let mut acts = Acts::new(&cur, e, n);
            match &layer.qkv {
                QkvWeights::Separate {
                    q: wq,
                    k: wk,
                    v: wv,
                } => {
                    let mut qkv = [(wq, &mut q), (wk, &mut k), (wv, &mut v)];
                    self.project_many(&mut qkv, &mut acts)?;
                }
                QkvWeights::Fused(wqkv) => {
                    self.project(wqkv, &mut acts, &mut fused)?;
                    split_rows(
                        &fused,
                        [(&mut q, q_width), (&mut k, kv_width), (&mut v, kv_width)],
                    )?;
                }
            }
            for (out, bias) in [&mut q, &mut k, &mut v].into_iter().zip(&layer.qkv_bias) {
                if let Some(b) = bias {
                    add_to_rows(out, b);
                }
            }
            let l = Some(il);
            self.emit("attn_norm", l, &cur);
            self.emit("Qcur", l, &q);
            self.emit("Kcur", l, &k);
            self.emit("Vcur", l, &v);
            if let Some((q_norm, k_norm)) = &layer.qk_norm {
                // Per head (each head row is normalised on its own).
                rms_norm_rows_in_place(&mut q, q_norm, c.rms_eps);
                rms_norm_rows_in_place(&mut k, k_norm, c.rms_eps);
                self.emit("Qcur_normed", l, &q);
                self.emit("Kcur_normed", l, &k);
            }
            let (rope, layer_angles) = match (&w.rope_swa, &angles_swa) {
                (Some(r), Some(a)) if c.is_swa(il) => (r, a),
                _ => (rope_full, &angles),
            };
            q.par_chunks_mut(q_width)
                .zip(k.par_chunks_mut(kv_width))
                .zip(layer_angles.par_iter())
                .with_min_len(8)
                .for_each(|((qt, kt), a)| {
                    rope.rotate_heads(a, qt, c.head_dim);
                    rope.rotate_heads(a, kt, c.head_dim);
                });
            self.emit("Qcur_rope", l, &q);
            self.emit("Kcur_rope", l, &k);
            if c.arch.scale_q {
                let s = c.attn_scale();
                q.iter_mut().for_each(|v| *v *= s);
            }
            self.attend_segments(segments, il, &shape_of(il), (&q, &k, &v), &mut attn)?;
            self.emit("kqv_out", l, &attn);
            let mut acts = Acts::new(&attn, q_width, n);
            self.project(&layer.wo, &mut acts, &mut proj)?;
            if let Some(b) = &layer.wo_bias {
                add_to_rows(&mut proj, b);
            }
            self.emit("attn_out", l, &proj);
            if let Some((post_attn, _)) = &layer.post_norms {
                rms_norm_rows_in_place(&mut proj, post_attn, c.rms_eps);
                self.emit("attn_post_norm", l, &proj);
            }
            x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);
            self.emit("ffn_inp", l, &x);

            rms_norm_rows(&x, &layer.ffn_norm, c.rms_eps, &mut cur);
            self.emit("ffn_norm", l, &cur);
            match &layer.ffn {
                FfnWeights::Dense {
                    gate: wg,
                    up: wu,
                    down: wd,
                    kind,
                } => {
                    let gelu = *kind == FfnKind::DenseGeGlu;
                    self.dense_ffn((wg, wu, wd), gelu, &cur, n, l, &mut ffn_bufs, &mut proj)?;
                }
                FfnWeights::DenseFused {
                    gate_up,
                    down,
                    kind,
                } => {
                    let gelu = *kind == FfnKind::DenseGeGlu;
                    let mut acts = Acts::new(&cur, e, n);
                    self.project(gate_up, &mut acts, &mut fused)?;
                    let n_ff = down.cols;
                    let b = &mut ffn_bufs;
                    split_rows(&fused, [(&mut b.gate, n_ff), (&mut b.up, n_ff)])?;
                    self.gated_down(down, gelu, n, l, b, &mut proj)?;
                }
                FfnWeights::Moe(moe) => {
                    let ffn = MoeFfn {
                        weights: moe,
                        source: self.bytes,
                        options: DispatchOptions {
                            sums: self.sums,
                            ..DispatchOptions::default()
                        },
                    };
                    resize_zeroed(&mut proj, n * e)?;
                    ffn.forward(&cur, n, &mut proj)?;
                    if let Some(shared) = &layer.shared_expert {
                        self.shared_expert(shared, &cur, n, l, &mut ffn_bufs, &mut proj)?;
                    }
                }
            }
            // llama.cpp names the MoE sum ffn_moe_out.
            self.emit("ffn_out", l, &proj);
            if let Some((_, post_ffn)) = &layer.post_norms {
                rms_norm_rows_in_place(&mut proj, post_ffn, c.rms_eps);
                self.emit("ffn_post_norm", l, &proj);
            }
            x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);
            self.emit("l_out", l, &x);
        }
        self.outputs(segments, &x)
    }

    /// `out = down(act(gate · x) * (up · x))` for the `n` rows of `x` (act: SiLU, or GELU
    /// with `gelu`), in the buffers `b`.
    #[allow(clippy::too_many_arguments)]
    fn dense_ffn(
        &self,
        (wg, wu, wd): (&Matrix, &Matrix, &Matrix),
        gelu: bool,
        x: &[f32],
        n: usize,
        l: Option<usize>,
        b: &mut FfnBuffers,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let mut acts = Acts::new(x, wg.cols, n);
        self.project_many(&mut [(wg, &mut b.gate), (wu, &mut b.up)], &mut acts)?;
        self.gated_down(wd, gelu, n, l, b, out)
    }

    /// The rest of a dense FFN once `b.gate` and `b.up` hold the `n` rows' projections:
    /// `out = down(act(gate) * up)`.
    fn gated_down(
        &self,
        wd: &Matrix,
        gelu: bool,
        n: usize,
        l: Option<usize>,
        b: &mut FfnBuffers,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        resize_zeroed(&mut b.hidden, b.gate.len())?;
        self.emit("ffn_gate", l, &b.gate);
        self.emit("ffn_up", l, &b.up);
        // Elementwise, in row-sized pieces over the caller's pool.
        let width = wd.cols;
        b.hidden
            .par_chunks_mut(width)
            .zip(b.gate.par_chunks(width).zip(b.up.par_chunks(width)))
            .with_min_len(PARALLEL_MIN_ROWS)
            .try_for_each(|(h, (g, u))| {
                if gelu {
                    geglu(g, u, h)
                } else {
                    swiglu(g, u, h)
                }
            })?;
        self.emit(if gelu { "ffn_geglu" } else { "ffn_swiglu" }, l, &b.hidden);
        let mut acts = Acts::new(&b.hidden, width, n);
        self.project(wd, &mut acts, out)
    }

    /// Adds the shared expert's output to `out`, as llama.cpp's qwen2moe graph: the dense
    /// SwiGLU FFN of the `n` rows of `x`, each row times its gate `silu(g) / g`, where
    /// `g = gate_inp · x` (a one-value row, so ggml's SiLU takes its scalar path with libm's
    /// `expf`: `g / (1 + expf(-g))`).
    fn shared_expert(
        &self,
        shared: &SharedExpert,
        x: &[f32],
        n: usize,
        l: Option<usize>,
        b: &mut FfnBuffers,
        out: &mut [f32],
    ) -> Result<()> {
        let mut gate_in = Vec::new();
        let mut acts = Acts::new(x, shared.gate_inp.cols, n);
        self.project(&shared.gate_inp, &mut acts, &mut gate_in)?;
        let mut ffn = Vec::new();
        let experts = (&shared.gate, &shared.up, &shared.down);
        self.dense_ffn(experts, false, x, n, l, b, &mut ffn)?;
        let width = shared.down.rows;
        for ((row, &g), dst) in ffn
            .chunks_exact_mut(width)
            .zip(&gate_in)
            .zip(out.chunks_exact_mut(width))
        {
            let scale = g / (1.0 + (-g).exp()) / g;
            row.iter_mut().for_each(|v| *v *= scale);
            dst.iter_mut().zip(row.iter()).for_each(|(d, v)| *d += v);
        }
        self.emit("ffn_shexp_out", l, &ffn);
        Ok(())
    }

    /// Stores each segment's K/V rows in its cache and attends its queries to its keys,
    /// writing its rows of `attn`. Segments run side by side.
    fn attend_segments(
        &self,
        segments: &mut [Segment<'_>],
        il: usize,
        shape: &AttnShape<'_>,
        (q, k, v): (&[f32], &[f32], &[f32]),
        attn: &mut [f32],
    ) -> Result<()> {
        let c = self.config;
        let (q_width, kv_width) = (c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        let mut work = Vec::with_capacity(segments.len());
        let (mut q, mut k, mut v, mut attn) = (q, k, v, attn);
        for s in segments.iter_mut() {
            let n = s.tokens.len();
            let (sq, rq) = q.split_at(n * q_width);
            let (sk, rk) = k.split_at(n * kv_width);
            let (sv, rv) = v.split_at(n * kv_width);
            let (sa, ra) = std::mem::take(&mut attn).split_at_mut(n * q_width);
            (q, k, v, attn) = (rq, rk, rv, ra);
            work.push(SegmentRows {
                cache: &mut *s.cache,
                first: s.first_pos,
                q: sq,
                k: sk,
                v: sv,
                out: sa,
            });
        }
        let one = |r: SegmentRows<'_>| {
            r.cache.store(il, r.first, r.k, r.v);
            attend(r.cache, il, r.q, r.first, shape, r.out)
        };
        if work.len() == 1 {
            work.into_iter().try_for_each(one)
        } else {
            work.into_par_iter().try_for_each(one)
        }
    }

    /// The final norm and what each segment asked for: logits (one GEMM over every row that
    /// needs them) or the mean of its normed hidden states.
    fn outputs(&self, segments: &mut [Segment<'_>], x: &[f32]) -> Result<()> {
        let c = self.config;
        let w = self.weights;
        let e = c.n_embd;
        // (segment, first row in x, rows) of the rows to normalise.
        let mut wanted = Vec::new();
        let mut offset = 0;
        for (i, s) in segments.iter().enumerate() {
            let n = s.tokens.len();
            match s.output {
                Output::None => {}
                Output::LastLogits(_) => wanted.push((i, offset + n - 1, 1)),
                Output::AllLogits(_) | Output::MeanHidden(_) => wanted.push((i, offset, n)),
            }
            offset += n;
        }
        let n_rows: usize = wanted.iter().map(|w| w.2).sum();
        if n_rows == 0 {
            return Ok(());
        }
        let mut normed = zeros(n_rows * e)?;
        let mut at = 0;
        for &(_, first, rows) in &wanted {
            rms_norm_rows(
                &x[first * e..(first + rows) * e],
                &w.output_norm,
                c.rms_eps,
                &mut normed[at * e..(at + rows) * e],
            );
            at += rows;
        }
        self.emit("result_norm", None, &normed);
        // Hidden states are taken before the output head; the logits rows go through it
        // together.
        let mut logit_rows = Vec::new();
        let mut at = 0;
        for &(i, _, rows) in &wanted {
            let part = &normed[at * e..(at + rows) * e];
            match &mut segments[i].output {
                Output::MeanHidden(out) => mean_rows(part, e, out)?,
                _ => logit_rows.extend_from_slice(part),
            }
            at += rows;
        }
        if logit_rows.is_empty() {
            return Ok(());
        }
        let n_logit_rows = logit_rows.len() / e;
        let mut acts = Acts::new(&logit_rows, e, n_logit_rows);
        let takers: Vec<usize> = wanted
            .iter()
            .filter(|&&(i, _, _)| segments[i].output.takes_logits())
            .map(|&(i, _, _)| i)
            .collect();
        if let [only] = takers[..] {
            // One sequence: straight into its buffer (reused from token to token).
            if let Output::LastLogits(out) | Output::AllLogits(out) = &mut segments[only].output {
                self.project(&w.output, &mut acts, out)?;
                self.output_bias(out);
                self.soft_cap(out);
                self.emit("result_output", None, out);
            }
            return Ok(());
        }
        let mut logits = Vec::new();
        self.project(&w.output, &mut acts, &mut logits)?;
        self.output_bias(&mut logits);
        self.soft_cap(&mut logits);
        self.emit("result_output", None, &logits);
        let mut rows_left = &logits[..];
        for &(i, _, rows) in &wanted {
            if let Output::LastLogits(out) | Output::AllLogits(out) = &mut segments[i].output {
                let (mine, rest) = rows_left.split_at(rows * c.n_vocab);
                out.clear();
                out.extend_from_slice(mine);
                rows_left = rest;
            }
        }
        Ok(())
    }

    /// `output.bias`, when the model has it, added to every row of logits.
    fn output_bias(&self, logits: &mut [f32]) {
        if let Some(b) = &self.weights.output_bias {
            add_to_rows(logits, b);
        }
    }

    /// Gemma 2's final logit soft-capping, when the model has it.
    fn soft_cap(&self, logits: &mut [f32]) {
        if let Some(cap) = self.config.final_softcap {
            // ggml_scale, ggml_tanh, ggml_scale.
            let inv = 1.0 / cap;
            logits.iter_mut().for_each(|v| *v = (*v * inv).tanh() * cap);
        }
    }
}

/// Scratch of the dense FFN, reused from layer to layer.
#[derive(Default)]
struct FfnBuffers {
    gate: Vec<f32>,
    up: Vec<f32>,
    hidden: Vec<f32>,
}

/// One segment's share of a layer's attention: its cache, its rows of Q, K, V and of the output.
struct SegmentRows<'a> {
    cache: &'a mut KvCache,
    first: usize,
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    out: &'a mut [f32],
}

/// Splits each row of `fused` (the parts' widths side by side) into the parts, replacing their
/// contents (a fused projection's output into its Q, K, V or gate, up rows).
fn split_rows<const N: usize>(fused: &[f32], mut parts: [(&mut Vec<f32>, usize); N]) -> Result<()> {
    let width: usize = parts.iter().map(|p| p.1).sum();
    let n = fused.len().checked_div(width).unwrap_or(0);
    for (part, w) in parts.iter_mut() {
        part.clear();
        part.try_reserve_exact(n * *w)
            .map_err(|_| Error::OutOfMemory {
                what: format!("activations of {} values", n * *w),
            })?;
    }
    for row in fused.chunks_exact(width.max(1)) {
        let mut at = 0;
        for (part, w) in parts.iter_mut() {
            part.extend_from_slice(&row[at..at + *w]);
            at += *w;
        }
    }
    Ok(())
}

/// Adds `bias` to every `bias.len()`-wide row of `rows` (ggml_add broadcasting a vector).
fn add_to_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len().max(1)) {
        row.iter_mut().zip(bias).for_each(|(x, b)| *x += b);
    }
}

/// `out` = the mean of the `width`-wide rows of `rows` (summed in f64, in row order).
fn mean_rows(rows: &[f32], width: usize, out: &mut Vec<f32>) -> Result<()> {
    let n = rows.len() / width.max(1);
    let mut sum = vec![0.0f64; width];
    for row in rows.chunks_exact(width) {
        sum.iter_mut()
            .zip(row)
            .for_each(|(s, &v)| *s += f64::from(v));
    }
    resize_zeroed(out, width)?;
    out.iter_mut()
        .zip(&sum)
        .for_each(|(o, s)| *o = (s / n.max(1) as f64) as f32);
    Ok(())
}
