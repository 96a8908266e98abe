//! Matrix-vector and matrix-matrix drivers over quantized weights.
//!
//! `y[t * rows + r] = sum_c W[r, c] * x[t * cols + c]`: `W` is `rows` rows of `cols` values
//! of a ggml type (row-major bytes, e.g. a mapped GGUF tensor), `x` holds `n_tokens` rows of
//! `cols` f32 activations. Activations are quantized once per call (to the weight type's
//! `vec_dot_type`, as llama.cpp does) or supplied already quantized
//! ([`QuantizedActivations`], reusable across Q/K/V or gate/up and gatherable for MoE).
//!
//! The summation order follows llama.cpp's x86 CPU backend, which picks its kernel by the
//! operation ([`GgmlOp`]), the weight type and the shape: some activation rows go through a
//! batch kernel with an order of its own ([`batch_order_rows`]: tiled k-quant GEMM, repacked
//! Q4_K gemm, tinyBLAS for F32/F16), the rest through `vec_dot`, and our tiles reproduce
//! whichever order applies.
//!
//! Work is cut into chunks whose geometry depends only on the shape, never on the thread
//! count, and every output value is computed by one tile-kernel call whose result does not
//! depend on its position: so any thread count gives bit-identical results.
//!
//! The drivers own no threads: with [`Parallelism::CurrentPool`] they split their work over
//! the rayon pool they are called in (run them inside `pool.install(..)` of a pool of the size
//! you want; outside any pool that is rayon's global pool), and run inline where that pool
//! has one thread.

use rayon::prelude::*;

use crate::dispatch::{self, TileArgs};
use crate::{reference, GgmlType, KernelError};

/// Weight rows per work item of a matvec (one activation row).
const MATVEC_CHUNK_ROWS: usize = 64;
/// Weight rows per work item of a GEMM: their bytes stay in L2 while a token block passes.
const GEMM_CHUNK_ROWS: usize = 64;
/// Activation rows per work item of a GEMM.
const GEMM_TOKEN_BLOCK: usize = 64;

/// Where a driver runs its work items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parallelism {
    /// Split over the current rayon pool (inline when it has a single thread).
    #[default]
    CurrentPool,
    /// On the calling thread: for callers that are already one work item of a parallel loop.
    Inline,
}

/// Activation rows quantized once to an activation type, reusable across several matmuls.
#[derive(Clone, Debug)]
pub struct QuantizedActivations {
    ty: GgmlType,
    cols: usize,
    row_bytes: usize,
    n_tokens: usize,
    data: Vec<u8>,
}

impl QuantizedActivations {
    /// Quantizes `n_tokens` rows of `cols` values from `x` (`x.len() == cols * n_tokens`) to
    /// `act_ty` (normally `reference::vec_dot_type(weight type)`).
    pub fn new(
        act_ty: GgmlType,
        x: &[f32],
        cols: usize,
        n_tokens: usize,
    ) -> Result<Self, KernelError> {
        Self::quantize(act_ty, x, cols, n_tokens, false)
    }

    /// [`new`](Self::new), the rows split over the current rayon pool (run it inside a pool
    /// of the size you want; the bytes are the same either way).
    pub fn new_parallel(
        act_ty: GgmlType,
        x: &[f32],
        cols: usize,
        n_tokens: usize,
    ) -> Result<Self, KernelError> {
        Self::quantize(act_ty, x, cols, n_tokens, true)
    }

    fn quantize(
        act_ty: GgmlType,
        x: &[f32],
        cols: usize,
        n_tokens: usize,
        parallel: bool,
    ) -> Result<Self, KernelError> {
        let row_bytes = reference::row_bytes(act_ty, cols)?;
        let expected = checked_mul("activations", cols, n_tokens)?;
        if x.len() != expected {
            return Err(KernelError::LengthMismatch {
                what: "activations",
                expected,
                got: x.len(),
            });
        }
        let mut data = vec![0u8; checked_mul("quantized activations", row_bytes, n_tokens)?];
        if cols > 0 && row_bytes > 0 {
            let one =
                |(src, dst): (&[f32], &mut [u8])| dispatch::quantize_activations(act_ty, src, dst);
            if parallel {
                x.par_chunks_exact(cols)
                    .zip(data.par_chunks_exact_mut(row_bytes))
                    .with_min_len(4)
                    .try_for_each(one)?;
            } else {
                x.chunks_exact(cols)
                    .zip(data.chunks_exact_mut(row_bytes))
                    .try_for_each(one)?;
            }
        }
        Ok(Self {
            ty: act_ty,
            cols,
            row_bytes,
            n_tokens,
            data,
        })
    }

    /// The activation type.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Values per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Number of rows (tokens).
    pub fn n_tokens(&self) -> usize {
        self.n_tokens
    }

    /// Bytes per quantized row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// The quantized bytes of row `t`, if it exists.
    pub fn row(&self, t: usize) -> Option<&[u8]> {
        let start = t.checked_mul(self.row_bytes)?;
        self.data.get(start..start.checked_add(self.row_bytes)?)
    }

    /// All rows, back to back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// A new set holding rows `tokens[0], tokens[1], ...` of this one (a byte copy, no
    /// requantization): e.g. the tokens routed to one MoE expert.
    pub fn gather(&self, tokens: &[usize]) -> Result<Self, KernelError> {
        let mut data = Vec::with_capacity(checked_mul("gather", self.row_bytes, tokens.len())?);
        for &t in tokens {
            let row = self.row(t).ok_or(KernelError::LengthMismatch {
                what: "gather token index",
                expected: self.n_tokens,
                got: t,
            })?;
            data.extend_from_slice(row);
        }
        Ok(Self {
            ty: self.ty,
            cols: self.cols,
            row_bytes: self.row_bytes,
            n_tokens: tokens.len(),
            data,
        })
    }
}

fn checked_mul(what: &'static str, a: usize, b: usize) -> Result<usize, KernelError> {
    a.checked_mul(b).ok_or(KernelError::LengthMismatch {
        what,
        expected: usize::MAX,
        got: a,
    })
}

/// `y[t*rows + r] = sum_c W[r,c] * x[t*cols + c]`; `W` is `rows` rows of `cols` values of
/// type `ty`, row-major bytes. Activations are quantized once to `vec_dot_type(ty)`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    w: &[u8],
    ty: GgmlType,
    rows: usize,
    cols: usize,
    x: &[f32],
    n_tokens: usize,
    y: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    let acts = QuantizedActivations::new(reference::vec_dot_type(ty), x, cols, n_tokens)?;
    matmul_quantized(w, ty, rows, cols, &acts, y, par)
}

/// [`matmul`] with activations already quantized (`acts.ty()` must be `vec_dot_type(ty)`).
pub fn matmul_quantized(
    w: &[u8],
    ty: GgmlType,
    rows: usize,
    cols: usize,
    acts: &QuantizedActivations,
    y: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    let op = GgmlOp::MulMat { matrix_rows: rows };
    matmul_quantized_as(op, w, ty, rows, cols, acts, y, par)
}

/// The llama.cpp operation a matmul stands for. It decides which kernel llama.cpp's x86
/// backend would sum a k-quant batch with ([`batch_order_rows`]), so it matters only for
/// matching llama.cpp's bits; or, with [`GgmlOp::RowIndependent`], no batch order at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlOp {
    /// `ggml_mul_mat` by a weight matrix of `matrix_rows` rows (the call may cover a slice).
    MulMat { matrix_rows: usize },
    /// One expert of `ggml_mul_mat_id` (experts of `matrix_rows` rows each), the activation
    /// rows being those routed to it.
    MulMatId { matrix_rows: usize },
    /// Every activation row summed as if it were alone, in the level's fastest such order
    /// (its row tiles, `dispatch::vec_dot_tile_rows`): a row's result never depends on the
    /// other rows of the batch (batches of several sequences).
    RowIndependent,
}

/// [`matmul_quantized`] for a slice of the weight rows of `op`'s matrix.
#[allow(clippy::too_many_arguments)]
pub fn matmul_quantized_as(
    op: GgmlOp,
    w: &[u8],
    ty: GgmlType,
    rows: usize,
    cols: usize,
    acts: &QuantizedActivations,
    y: &mut [f32],
    par: Parallelism,
) -> Result<(), KernelError> {
    if acts.cols != cols {
        return Err(KernelError::LengthMismatch {
            what: "activation columns",
            expected: cols,
            got: acts.cols,
        });
    }
    let mut task = [MatmulTask { op, w, ty, rows, y }];
    matmul_many(&mut task, acts, par)
}

/// One product of a [`matmul_many`] call: `y = W · acts` for `rows` rows of weights `w` of
/// type `ty` (as many columns as the activations), `op` as in [`matmul_quantized_as`].
#[derive(Debug)]
pub struct MatmulTask<'a> {
    /// The llama.cpp operation this product stands for.
    pub op: GgmlOp,
    /// The weight rows.
    pub w: &'a [u8],
    /// Their type; the activations must be of its `vec_dot_type`.
    pub ty: GgmlType,
    /// How many weight rows.
    pub rows: usize,
    /// The output, `y[t * rows + r]`.
    pub y: &'a mut [f32],
}

/// Several products of the same activations (Q, K and V; gate and up) as one parallel loop:
/// one fork-join instead of one per product, and the work items of all of them balanced
/// over the threads together (a small matrix alone leaves threads idle). Each output value is
/// computed as [`matmul_quantized_as`] computes it, so results are bit-identical to calling it
/// once per task.
pub fn matmul_many(
    tasks: &mut [MatmulTask<'_>],
    acts: &QuantizedActivations,
    par: Parallelism,
) -> Result<(), KernelError> {
    let mut jobs = Vec::with_capacity(tasks.len());
    for t in tasks.iter() {
        jobs.push(Job::new(t.op, t.w, t.ty, t.rows, acts, t.y.len())?);
    }
    let parallel = par == Parallelism::CurrentPool && rayon::current_num_threads() > 1;
    let ys = tasks.iter_mut().map(|t| &mut *t.y);
    if acts.n_tokens == 1 {
        // Matvec chunks write disjoint slices of their outputs: hand those out directly.
        let mut chunks: Vec<(&Job<'_>, usize, &mut [f32])> = Vec::new();
        for (job, y) in jobs.iter().zip(ys) {
            for (i, out) in y.chunks_mut(MATVEC_CHUNK_ROWS).enumerate() {
                chunks.push((job, i, out));
            }
        }
        let run = |(job, i, out): &mut (&Job<'_>, usize, &mut [f32])| job.matvec_chunk(*i, out);
        if parallel {
            chunks.par_iter_mut().try_for_each(run)
        } else {
            chunks.iter_mut().try_for_each(run)
        }
    } else {
        // A GEMM item covers a block of rows by a block of tokens, which is not contiguous in
        // `y`: each item gets the pieces of `y` it covers (one per token: that token's row
        // cut at the row chunk), computes into a per-thread buffer and copies its rows there,
        // all inside the parallel loop. Row-chunk-major order: consecutive items share one
        // chunk of weight rows, which stays in L2 while every token block passes over it
        // (weights are read from memory once; the activations, much smaller, come from the
        // caches).
        let n_tokens = acts.n_tokens;
        let mut items: Vec<(&Job<'_>, usize, &mut [&mut [f32]])> = Vec::new();
        let mut cells: Vec<Vec<&mut [f32]>> = Vec::with_capacity(jobs.len());
        for (job, y) in jobs.iter().zip(ys) {
            // cells[rc * n_tokens + t]: token t's outputs for row chunk rc.
            let mut rows: Vec<_> = y
                .chunks_mut(job.rows.max(1))
                .map(|row| row.chunks_mut(GEMM_CHUNK_ROWS))
                .collect();
            let mut job_cells = Vec::with_capacity(job.rows.div_ceil(GEMM_CHUNK_ROWS) * n_tokens);
            for _ in 0..job.rows.div_ceil(GEMM_CHUNK_ROWS) {
                job_cells.extend(rows.iter_mut().filter_map(Iterator::next));
            }
            cells.push(job_cells);
        }
        for (job, job_cells) in jobs.iter().zip(cells.iter_mut()) {
            let per_chunk = job_cells.chunks_mut(n_tokens.max(1));
            let blocks = per_chunk.flat_map(|c| c.chunks_mut(GEMM_TOKEN_BLOCK));
            items.extend(blocks.enumerate().map(|(i, out)| (job, i, out)));
        }
        let run =
            |(job, item, out): &mut (&Job<'_>, usize, &mut [&mut [f32]])| job.gemm_item(*item, out);
        if parallel {
            items.par_iter_mut().try_for_each(run)
        } else {
            items.iter_mut().try_for_each(run)
        }
    }
}

/// How many leading activation rows of `op` (weights of `ty`, `n_tokens` activation rows) are
/// summed in [`reference::vec_dot_batch_order`]'s order, the rest in `vec_dot`'s, as
/// llama.cpp's x86 backend picks its kernels (none for [`GgmlOp::RowIndependent`]):
/// - F32, F16 in `mul_mat`: all rows from two on (llamafile's tinyBLAS);
/// - Q2_K, Q3_K, Q5_K, Q6_K, IQ4_XS: all rows from [`reference::BATCH_ORDER_MIN_ROWS`] on (its
///   tiled GEMM; for `mul_mat_id`, counting the rows routed to the expert);
/// - Q4_K in a matrix of a multiple of 8 rows (repacked): for `mul_mat`, the rows in full
///   groups of four (its repacked gemm; the last `n_tokens % 4` go through the gemv); for
///   `mul_mat_id`, none (the repacked experts run the gemv row by row). Other Q4_K matrices
///   go to the tiled GEMM there; we keep the gemv order for them.
/// - MXFP4 and IQ4_NL in a matrix (`mul_mat`) or experts (`mul_mat_id`) of rows not a
///   multiple of 8: all rows, a single one included (llama.cpp does not repack those and runs
///   `ggml_vec_dot_mxfp4_q8_0` / `ggml_vec_dot_iq4_nl_q8_0`; for IQ4_NL batches of two or more
///   rows in `mul_mat` it runs llamafile's tinyBLAS instead, whose order is not kept). Repacked
///   ones (rows a multiple of 8: the gemv and gemm, for `mul_mat_id` the gemv) sum in the
///   ordinary order of our tiles for these types.
pub fn batch_order_rows(ty: GgmlType, op: GgmlOp, n_tokens: usize) -> usize {
    match (ty, op) {
        (_, GgmlOp::RowIndependent) => 0,
        (GgmlType::F32 | GgmlType::F16, GgmlOp::MulMat { .. }) if n_tokens >= 2 => n_tokens,
        (GgmlType::F32 | GgmlType::F16, _) => 0,
        (GgmlType::Q4_K, GgmlOp::MulMat { matrix_rows }) if matrix_rows % 8 == 0 => {
            n_tokens - n_tokens % 4
        }
        (GgmlType::Q4_K, _) => 0,
        (
            GgmlType::MXFP4 | GgmlType::IQ4_NL,
            GgmlOp::MulMat { matrix_rows } | GgmlOp::MulMatId { matrix_rows },
        ) if matrix_rows % 8 != 0 => n_tokens,
        (GgmlType::MXFP4 | GgmlType::IQ4_NL, _) => 0,
        _ if reference::has_batch_order(ty) && n_tokens >= reference::BATCH_ORDER_MIN_ROWS => {
            n_tokens
        }
        _ => 0,
    }
}

/// One validated matmul.
struct Job<'a> {
    ty: GgmlType,
    /// Every row as if alone: the level's row tiles ([`dispatch::vec_dot_tile_rows`]).
    rows_alone: bool,
    /// Leading activation rows summed in the batch order ([`batch_order_rows`]).
    batch_rows: usize,
    cols: usize,
    rows: usize,
    w: &'a [u8],
    w_row: usize,
    acts: &'a QuantizedActivations,
}

impl<'a> Job<'a> {
    /// Checks one product's operands.
    fn new(
        op: GgmlOp,
        w: &'a [u8],
        ty: GgmlType,
        rows: usize,
        acts: &'a QuantizedActivations,
        y_len: usize,
    ) -> Result<Job<'a>, KernelError> {
        let act_ty = reference::vec_dot_type(ty);
        if acts.ty != act_ty {
            return Err(KernelError::Unsupported {
                op: "matmul with activations of another type than vec_dot_type(weights), for",
                ty: acts.ty,
            });
        }
        let cols = acts.cols;
        let w_row = reference::row_bytes(ty, cols)?;
        let expected_w = checked_mul("weights", w_row, rows)?;
        if w.len() != expected_w {
            return Err(KernelError::LengthMismatch {
                what: "weights",
                expected: expected_w,
                got: w.len(),
            });
        }
        let n_tokens = acts.n_tokens;
        let expected_y = checked_mul("output", rows, n_tokens)?;
        if y_len != expected_y {
            return Err(KernelError::LengthMismatch {
                what: "output",
                expected: expected_y,
                got: y_len,
            });
        }
        Ok(Job {
            ty,
            rows_alone: op == GgmlOp::RowIndependent,
            batch_rows: batch_order_rows(ty, op, n_tokens),
            cols,
            rows,
            w,
            w_row,
            acts,
        })
    }

    /// The weight rows `r0..r0+count` as tile operands against activation rows `t0..t0+acts`.
    fn tile(&self, r0: usize, count: usize, t0: usize, acts: usize) -> TileArgs<'_> {
        let a_row = self.acts.row_bytes;
        TileArgs {
            n: self.cols,
            w: self.w.get(r0 * self.w_row..).unwrap_or(&[]),
            w_stride: self.w_row,
            rows: count,
            act: self.acts.data.get(t0 * a_row..).unwrap_or(&[]),
            act_stride: a_row,
            acts,
        }
    }

    fn matvec_chunk(&self, i: usize, out: &mut [f32]) -> Result<(), KernelError> {
        let t = self.tile(i * MATVEC_CHUNK_ROWS, out.len(), 0, 1);
        let stride = out.len();
        if self.batch_rows > 0 {
            // A single row with a batch order of its own (MXFP4 that llama.cpp leaves
            // unrepacked).
            return dispatch::vec_dot_tile_batch(self.ty, &t, out, stride);
        }
        self.plain_tile(&t, out, stride)
    }

    /// A tile outside the batch order: the ordinary tile kernel, or the row tile when every
    /// row must be as if alone.
    fn plain_tile(
        &self,
        t: &TileArgs<'_>,
        out: &mut [f32],
        stride: usize,
    ) -> Result<(), KernelError> {
        if self.rows_alone {
            dispatch::vec_dot_tile_rows(self.ty, t, out, stride)
        } else {
            dispatch::vec_dot_tile(self.ty, t, out, stride)
        }
    }

    /// Work item `item` of the GEMM grid (row chunk `item / token_blocks`, token block
    /// `item % token_blocks`), written to `out`: one slice per token of the block, holding
    /// that token's outputs for the chunk's rows.
    fn gemm_item(&self, item: usize, out: &mut [&mut [f32]]) -> Result<(), KernelError> {
        let n_tokens = self.acts.n_tokens;
        let token_blocks = n_tokens.div_ceil(GEMM_TOKEN_BLOCK);
        let (rc, tb) = (item / token_blocks, item % token_blocks);
        let r0 = rc * GEMM_CHUNK_ROWS;
        let count = GEMM_CHUNK_ROWS.min(self.rows - r0);
        let t0 = tb * GEMM_TOKEN_BLOCK;
        let acts = GEMM_TOKEN_BLOCK.min(n_tokens - t0);
        // The tiles write `[token][row]` with a stride of `count`: into a per-thread buffer
        // (a fresh one per item cost an allocation, a memset and a serial copy afterwards).
        thread_local! {
            static PIECE: core::cell::RefCell<Vec<f32>> = const { core::cell::RefCell::new(Vec::new()) };
        }
        PIECE.with(|cell| {
            let mut buf = cell.borrow_mut();
            // At most GEMM_CHUNK_ROWS x GEMM_TOKEN_BLOCK values (16 KB).
            let len = count * acts;
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            let piece = &mut buf[..len];
            // Activation rows t0..split in the batch order, split.. in vec_dot's.
            let split = self.batch_rows.clamp(t0, t0 + acts);
            if split > t0 {
                let tile = self.tile(r0, count, t0, split - t0);
                dispatch::vec_dot_tile_batch(self.ty, &tile, piece, count)?;
            }
            if split < t0 + acts {
                let tile = self.tile(r0, count, split, t0 + acts - split);
                let rest = piece.get_mut((split - t0) * count..).unwrap_or(&mut []);
                self.plain_tile(&tile, rest, count)?;
            }
            for (dst, src) in out.iter_mut().zip(piece.chunks_exact(count)) {
                dst.copy_from_slice(src);
            }
            Ok(())
        })
    }
}
