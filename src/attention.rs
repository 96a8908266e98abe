//! Causal grouped-query attention over the KV cache, rounding like llama.cpp with flash
//! attention off: Q is rounded to the cache type before `K·Q` (f32 accumulation), scores are
//! scaled and soft-maxed in f32 with ggml's polynomial exp and an f64 sum, and the softmax
//! weights are rounded to the cache type before the product with V.
//!
//! The dot products also follow ggml's summation orders: a single token goes through
//! `ggml_vec_dot_f16` (four 8-lane accumulators over steps of 32, leftovers in f64), a batch
//! through llamafile's tinyBLAS (one 8-lane accumulator). llama.cpp pads the attention window to
//! 256 cells with zero weights; zeros leave the sums unchanged, so only the padded length (which
//! decides what counts as a leftover) is modelled, not the padding itself.

use rayon::prelude::*;
use tramontane_kernels::vecmath::scalar::{ggml_vec_sum, tinyblas_sum};
use tramontane_kernels::vecmath::{self, F16DotOrder};

use crate::kv_cache::{KvCache, KvElem, TypedKvCache};
pub use crate::sums::BatchSums;
use crate::Result;

/// llama.cpp pads the number of attended cells to a multiple of this.
const KV_WINDOW_PAD: usize = 256;

/// Query tokens per parallel work item: small enough that (head, token block) items balance
/// over threads despite the causal mask, large enough that each item's scratch is reused.
const TOKEN_BLOCK: usize = 8;

/// Head geometry and score scale of one attention layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnShape<'s> {
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (divides `n_head`).
    pub n_kv_head: usize,
    /// Dimensions per head.
    pub head_dim: usize,
    /// Multiplier of `K·Q` before the softmax (usually `1/sqrt(head_dim)`; 1 where the
    /// model scales Q instead).
    pub scale: f32,
    /// Sliding window: a query at position p sees only keys above `p - window` (llama.cpp's
    /// standard SWA mask, `p - p_key >= window` masked). `None`: every earlier key.
    pub window: Option<usize>,
    /// How the dot products of a batch are summed.
    pub sums: BatchSums,
    /// Attention sinks (gpt-oss): one logit per query head that joins each softmax's max and
    /// denominator without a value of its own. `None`: none.
    pub sinks: Option<&'s [f32]>,
}

/// Which of ggml's dot-product kernels a product imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DotOrder {
    /// `ggml_vec_dot_f16`/`_f32`: one token.
    Vec,
    /// llamafile tinyBLAS: two or more tokens.
    Tiny,
}

/// Attends `q` (one row of `n_head * head_dim` per token, RoPE applied; token `t` at position
/// `first_pos + t`, whose K/V are already in the cache) to the keys of positions `0..=position`
/// of `layer` (those of its window, for a sliding-window layer), and writes one row per token
/// to `out` (same layout as `q`). Parallel over (head, block of query tokens) in the current
/// rayon pool. The caller guarantees that the cache holds the positions and matching lengths.
///
/// # Errors
/// Only when those guarantees are broken (a kernel refuses a length).
pub fn attend(
    cache: &KvCache,
    layer: usize,
    q: &[f32],
    first_pos: usize,
    shape: &AttnShape<'_>,
    out: &mut [f32],
) -> Result<()> {
    match cache {
        KvCache::F16(c) => attend_typed(c, layer, q, first_pos, shape, out),
        KvCache::F32(c) => attend_typed(c, layer, q, first_pos, shape, out),
    }
}

/// Per-work-item buffers, reused across the item's tokens.
struct Scratch<E> {
    q: Vec<E>,
    scores: Vec<f32>,
    weights: Vec<E>,
}

impl<E> Default for Scratch<E> {
    fn default() -> Self {
        Scratch {
            q: Vec::new(),
            scores: Vec::new(),
            weights: Vec::new(),
        }
    }
}

fn attend_typed<E: KvElem>(
    cache: &TypedKvCache<E>,
    layer: usize,
    q: &[f32],
    first_pos: usize,
    shape: &AttnShape<'_>,
    out: &mut [f32],
) -> Result<()> {
    let Some(pass) = Pass::new(cache, layer, q, first_pos, shape) else {
        return Ok(());
    };
    let items = pass.n_tokens.div_ceil(TOKEN_BLOCK) * shape.n_kv_head;
    let longest = pass.n_keys(pass.n_tokens - 1);
    let threads = rayon::current_num_threads();
    if threads > 1 && items < 4 * threads && longest >= SPLIT_MIN_KEYS {
        pass.split(out)
    } else {
        pass.blocked(out)
    }
}

/// From this many keys on, a pass with few (KV head, token block) items for the threads
/// (decoding) splits each item's keys and value dimensions over the threads instead.
const SPLIT_MIN_KEYS: usize = 256;
/// Keys per work item of a split pass's `K·Q`.
const SPLIT_KEYS: usize = 256;
/// Value dimensions per work item of a split pass's product with V (each item widens the
/// softmax weights to f32 once, so not too few).
const SPLIT_DIMS: usize = 16;

/// One layer's attention for a run of query tokens: the operands and the geometry.
struct Pass<'a, E: KvElem> {
    cache: &'a TypedKvCache<E>,
    layer: usize,
    q: &'a [f32],
    first_pos: usize,
    shape: &'a AttnShape<'a>,
    n_tokens: usize,
    /// Query heads per KV head.
    group: usize,
    order: DotOrder,
    cells: crate::kv_cache::CellMap,
    /// The attention window as llama.cpp pads it (the V products' length).
    padded: usize,
}

impl<'a, E: KvElem> Pass<'a, E> {
    /// None when there is nothing to attend (no heads).
    fn new(
        cache: &'a TypedKvCache<E>,
        layer: usize,
        q: &'a [f32],
        first_pos: usize,
        shape: &'a AttnShape<'a>,
    ) -> Option<Self> {
        let width = shape.n_head * shape.head_dim;
        if width == 0 || shape.n_kv_head == 0 || q.len() < width {
            return None;
        }
        let n_tokens = q.len() / width;
        let order = match shape.sums {
            BatchSums::LlamaCpp if n_tokens >= 2 => DotOrder::Tiny,
            _ => DotOrder::Vec,
        };
        let cells = cache.cells(layer, first_pos + n_tokens);
        Some(Pass {
            cache,
            layer,
            q,
            first_pos,
            shape,
            n_tokens,
            group: (shape.n_head / shape.n_kv_head).max(1),
            order,
            padded: cells.n_cells.div_ceil(KV_WINDOW_PAD) * KV_WINDOW_PAD,
            cells,
        })
    }

    fn width(&self) -> usize {
        self.shape.n_head * self.shape.head_dim
    }

    fn group_width(&self) -> usize {
        self.group * self.shape.head_dim
    }

    /// Cells that are keys of token `t`: in position order every cell up to the query's own;
    /// in a wrapped ring every cell (the mask hides what the query must not see).
    fn n_keys(&self, t: usize) -> usize {
        if self.cells.wrapped {
            self.cells.n_cells
        } else {
            self.first_pos + t + 1
        }
    }

    /// Token `t`'s query heads of `kv_head`'s group, side by side, rounded to the cache type.
    fn queries(&self, t: usize, kv_head: usize, dst: &mut Vec<E>) {
        let first = t * self.width() + kv_head * self.group_width();
        E::fill_from_f32(dst, &self.q[first..first + self.group_width()]);
    }

    /// Masks and soft-maxes token `t`'s scores (one row of `n_keys(t)` per query head of
    /// `kv_head`'s group).
    fn soft_max(&self, t: usize, kv_head: usize, scores: &mut [f32]) {
        let pos = self.first_pos + t;
        let (cells, shape) = (&self.cells, self.shape);
        for (g, scores) in scores.chunks_exact_mut(self.n_keys(t)).enumerate() {
            // Masked keys stay in the row as -inf (weight 0), as in llama.cpp's KQ mask, so
            // every other key keeps its lane in the sums.
            if cells.wrapped {
                for (c, score) in scores.iter_mut().enumerate() {
                    let key = cells.position(c);
                    let outside = shape.window.is_some_and(|w| pos.saturating_sub(key) >= w);
                    if key > pos || outside {
                        *score = f32::NEG_INFINITY;
                    }
                }
            } else if let Some(w) = shape.window {
                let masked = scores.len().saturating_sub(w);
                scores[..masked].fill(f32::NEG_INFINITY);
            }
            let sink = shape
                .sinks
                .and_then(|k| k.get(kv_head * self.group + g))
                .copied();
            vecmath::soft_max_sink(scores, shape.scale, sink);
        }
    }

    /// `K·Q` of `queries` (one per head of the group) with the keys `c0..c0 + n` of
    /// `kv_head`: `out[g * n + c]`.
    fn key_dots(&self, kv_head: usize, queries: &[E], c0: usize, out: &mut [f32]) -> Result<()> {
        let head_dim = self.shape.head_dim;
        let rows = self.cache.k_rows(self.layer, kv_head);
        let rows = rows.get(c0 * head_dim..).unwrap_or(&[]);
        dots_multi(self.order, head_dim, rows, head_dim, queries, head_dim, out)
    }

    /// The softmax `weights` (one row of `n_keys` per head of the group) times the value
    /// dimensions `d0..d0 + n` of `kv_head`: `out[g * n + d]`.
    fn value_dots(
        &self,
        kv_head: usize,
        weights: &[E],
        n_keys: usize,
        d0: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let v_stride = self.cache.v_stride(self.layer);
        let rows = self.cache.v_rows(self.layer, kv_head);
        let rows = rows.get(d0 * v_stride..).unwrap_or(&[]);
        dots_multi(
            self.order,
            self.padded,
            rows,
            v_stride,
            weights,
            n_keys,
            out,
        )
    }

    /// Parallel over (KV head, block of query tokens) items: the query heads of one KV head
    /// go together (grouped-query attention), so each key and value row is read once for
    /// all of them. Per KV head, scratch is token-major, then query head, so each item
    /// writes one contiguous chunk.
    fn blocked(&self, out: &mut [f32]) -> Result<()> {
        let (n_tokens, group_width) = (self.n_tokens, self.group_width());
        let n_kv_head = self.shape.n_kv_head;
        let block = TOKEN_BLOCK * group_width;
        let mut by_kv = zeroed(n_kv_head * n_tokens * group_width, || {
            format!("attention output of {n_tokens} tokens")
        })?;
        by_kv
            .par_chunks_mut(n_tokens * group_width)
            .enumerate()
            .flat_map(|(kv_head, per_kv)| {
                per_kv
                    .par_chunks_mut(block)
                    .enumerate()
                    .map(move |(b, dst)| (kv_head, b * TOKEN_BLOCK, dst))
            })
            .try_for_each_init(Scratch::<E>::default, |s, (kv_head, t0, dst)| {
                for (j, o) in dst.chunks_exact_mut(group_width).enumerate() {
                    let t = t0 + j;
                    self.queries(t, kv_head, &mut s.q);
                    let n_keys = self.n_keys(t);
                    s.scores.clear();
                    s.scores.resize(self.group * n_keys, 0.0);
                    self.key_dots(kv_head, &s.q, 0, &mut s.scores)?;
                    self.soft_max(t, kv_head, &mut s.scores);
                    E::fill_from_f32(&mut s.weights, &s.scores);
                    self.value_dots(kv_head, &s.weights, n_keys, 0, o)?;
                }
                Ok::<(), crate::Error>(())
            })?;
        self.scatter(&by_kv, out);
        Ok(())
    }

    /// For a few items with many keys (decoding at depth): each item's `K·Q` is split over
    /// the threads by keys, and its product with V by value dimensions. Every score and
    /// every output value is still one dot product in the same order (each row's result
    /// does not depend on the rows beside it), so this gives the bits of [`Self::blocked`].
    fn split(&self, out: &mut [f32]) -> Result<()> {
        let (group, head_dim) = (self.group, self.shape.head_dim);
        let items: Vec<(usize, usize)> = (0..self.shape.n_kv_head)
            .flat_map(|h| (0..self.n_tokens).map(move |t| (h, t)))
            .collect();
        let key_jobs: Vec<(usize, usize, usize)> = items
            .iter()
            .enumerate()
            .flat_map(|(i, &(_, t))| {
                let n = self.n_keys(t);
                (0..n)
                    .step_by(SPLIT_KEYS)
                    .map(move |c0| (i, c0, SPLIT_KEYS.min(n - c0)))
            })
            .collect();
        let pieces = key_jobs
            .par_iter()
            .map_init(Vec::new, |q, &(i, c0, n)| {
                let (kv_head, t) = items[i];
                self.queries(t, kv_head, q);
                let mut piece = zeroed(group * n, || format!("attention scores of {n} keys"))?;
                self.key_dots(kv_head, q, c0, &mut piece)?;
                Ok(piece)
            })
            .collect::<Result<Vec<Vec<f32>>>>()?;
        let mut weights: Vec<Vec<E>> = Vec::with_capacity(items.len());
        let mut scores = Vec::new();
        let mut job = key_jobs.iter().zip(&pieces).peekable();
        for (i, &(kv_head, t)) in items.iter().enumerate() {
            let n_keys = self.n_keys(t);
            scores.clear();
            scores.resize(group * n_keys, 0.0);
            while let Some(((_, c0, n), piece)) = job.next_if(|((j, _, _), _)| *j == i) {
                for (g, part) in piece.chunks_exact(*n).enumerate() {
                    scores[g * n_keys + c0..][..*n].copy_from_slice(part);
                }
            }
            self.soft_max(t, kv_head, &mut scores);
            let mut w = Vec::new();
            E::fill_from_f32(&mut w, &scores);
            weights.push(w);
        }
        let value_jobs: Vec<(usize, usize)> = (0..items.len())
            .flat_map(|i| (0..head_dim).step_by(SPLIT_DIMS).map(move |d0| (i, d0)))
            .collect();
        let pieces = value_jobs
            .par_iter()
            .map(|&(i, d0)| {
                let (kv_head, t) = items[i];
                let n = SPLIT_DIMS.min(head_dim - d0);
                let mut piece = zeroed(group * n, || format!("attention output of {n} dims"))?;
                self.value_dots(kv_head, &weights[i], self.n_keys(t), d0, &mut piece)?;
                Ok(piece)
            })
            .collect::<Result<Vec<Vec<f32>>>>()?;
        for (&(i, d0), piece) in value_jobs.iter().zip(&pieces) {
            let (kv_head, t) = items[i];
            let n = SPLIT_DIMS.min(head_dim - d0);
            let row = t * self.width() + kv_head * self.group_width();
            for (g, part) in piece.chunks_exact(n).enumerate() {
                out[row + g * head_dim + d0..][..n].copy_from_slice(part);
            }
        }
        Ok(())
    }

    /// Copies the per-KV-head scratch of [`Self::blocked`] to the token-major output.
    fn scatter(&self, by_kv: &[f32], out: &mut [f32]) {
        let (width, group_width) = (self.width(), self.group_width());
        for (kv_head, chunk) in by_kv.chunks_exact(self.n_tokens * group_width).enumerate() {
            for (t, src) in chunk.chunks_exact(group_width).enumerate() {
                let at = t * width + kv_head * group_width;
                out[at..at + group_width].copy_from_slice(src);
            }
        }
    }
}

/// `n` zeros, or an out-of-memory error naming `what` they were for.
fn zeroed(n: usize, what: impl FnOnce() -> String) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| crate::Error::OutOfMemory { what: what() })?;
    v.resize(n, 0.0f32);
    Ok(v)
}

/// [`dots`] for several `y` vectors of `len` values each (`ys` holds them end to end):
/// `out[g * n_rows + r]` (`n_rows = out.len() / n_ys`), each value [`dots`]'s; f16 rows
/// whose order the kernels implement are read once for all the vectors.
fn dots_multi<E: KvElem>(
    order: DotOrder,
    padded_len: usize,
    rows: &[E],
    stride: usize,
    ys: &[E],
    len: usize,
    out: &mut [f32],
) -> Result<()> {
    let n_ys = ys.len() / len.max(1);
    let n_rows = out.len() / n_ys.max(1);
    let kernel_order = match order {
        DotOrder::Tiny if padded_len.is_multiple_of(8) => Some(F16DotOrder::TinyBlas),
        _ if padded_len.is_multiple_of(32) && padded_len >= len => Some(F16DotOrder::GgmlVec),
        _ => None,
    };
    if let (Some(ko), Some(rows16), Some(ys16)) = (kernel_order, E::as_f16(rows), E::as_f16(ys)) {
        vecmath::dot_f16_rows_multi(ko, rows16, stride, ys16, len, out)?;
        return Ok(());
    }
    for (y, o) in ys
        .chunks_exact(len.max(1))
        .zip(out.chunks_exact_mut(n_rows.max(1)))
    {
        dots(order, padded_len, rows, stride, y, o)?;
    }
    Ok(())
}

/// `out[r] = dot(rows[r*stride..][..y.len()], y)` summed like the ggml kernel that would
/// compute it over `padded_len` elements (see [`dot`]); the dispatched f16 kernels where
/// their order is that one, the scalar emulation otherwise (f32 cache, odd lengths).
fn dots<E: KvElem>(
    order: DotOrder,
    padded_len: usize,
    rows: &[E],
    stride: usize,
    y: &[E],
    out: &mut [f32],
) -> Result<()> {
    let kernel_order = match order {
        DotOrder::Tiny if padded_len.is_multiple_of(8) => Some(F16DotOrder::TinyBlas),
        // All elements fall in ggml's 32-wide steps: no f64 leftovers.
        _ if padded_len.is_multiple_of(32) && padded_len >= y.len() => Some(F16DotOrder::GgmlVec),
        _ => None,
    };
    if let (Some(ko), Some(rows16), Some(y16)) = (kernel_order, E::as_f16(rows), E::as_f16(y)) {
        vecmath::dot_f16_rows(ko, rows16, stride, y16, out)?;
        return Ok(());
    }
    for (r, o) in out.iter_mut().enumerate() {
        let x =
            rows.get(r * stride..r * stride + y.len())
                .ok_or(crate::Error::InvalidArgument {
                    what: "attention rows outside the cache".into(),
                })?;
        *o = dot(order, x, y, padded_len);
    }
    Ok(())
}

/// `sum x[i]*y[i]` over the given elements, summed in the order of the ggml kernel that would
/// compute it over `padded_len` elements (the elements past `x.len()` being zero products).
fn dot<E: KvElem>(order: DotOrder, x: &[E], y: &[E], padded_len: usize) -> f32 {
    let pairs = x.iter().zip(y).map(|(a, b)| (a.to_f32(), b.to_f32()));
    if order == DotOrder::Tiny && padded_len.is_multiple_of(8) {
        return tinyblas_sum(pairs);
    }
    // ggml_vec_dot_f16: the 32-wide steps, then the leftovers in f64.
    let simd_len = padded_len & !31;
    let simd = ggml_vec_sum(pairs.clone().take(simd_len));
    let tail = pairs
        .skip(simd_len)
        .fold(0.0f64, |t, (a, b)| t + f64::from(a * b));
    (f64::from(simd) + tail) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv_cache::{KvCacheType, KvShape};

    fn cache_with(k: &[f32], v: &[f32], shape: KvShape) -> KvCache {
        let mut c = KvCache::new(shape, KvCacheType::F32);
        c.reserve(k.len() / c.shape().kv_width()).unwrap();
        c.store(0, 0, k, v);
        c
    }

    fn shape(n_ctx: usize, n_kv_head: usize, head_dim: usize) -> KvShape {
        KvShape {
            n_kv_head,
            head_dim,
            layer_cells: vec![n_ctx],
        }
    }

    #[test]
    fn one_cell_returns_its_value() {
        // With a single visible cell the softmax weight is exactly 1, so out = V.
        let shape = shape(4, 1, 2);
        let c = cache_with(&[0.3, -0.2], &[5.0, -7.0], shape);
        let attn = AttnShape {
            n_head: 1,
            n_kv_head: 1,
            head_dim: 2,
            scale: 1.0,
            window: None,
            sums: BatchSums::LlamaCpp,
            sinks: None,
        };
        let mut out = [0.0f32; 2];
        attend(&c, 0, &[1.0, 2.0], 0, &attn, &mut out).unwrap();
        assert_eq!(out, [5.0, -7.0]);
    }

    #[test]
    fn equal_scores_average_and_causality_holds() {
        // K = 0 everywhere: all scores equal, so token t averages V over cells 0..=t.
        let shape = shape(4, 1, 1);
        let c = cache_with(&[0.0, 0.0, 0.0], &[2.0, 4.0, 9.0], shape);
        let attn = AttnShape {
            n_head: 2,
            n_kv_head: 1,
            head_dim: 1,
            scale: 1.0,
            window: None,
            sums: BatchSums::LlamaCpp,
            sinks: None,
        };
        let mut out = [0.0f32; 6];
        attend(&c, 0, &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 0, &attn, &mut out).unwrap();
        let want = [2.0, 2.0, 3.0, 3.0, 5.0, 5.0];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn sliding_window_hides_keys_that_are_window_or_more_behind() {
        // K = 0: equal scores, so token t averages V over the cells it sees. Window 2: t sees
        // t-1 and t (t - p >= 2 is masked).
        let shape = shape(4, 1, 1);
        let c = cache_with(&[0.0; 4], &[2.0, 4.0, 8.0, 16.0], shape);
        let attn = AttnShape {
            n_head: 1,
            n_kv_head: 1,
            head_dim: 1,
            scale: 1.0,
            window: Some(2),
            sums: BatchSums::LlamaCpp,
            sinks: None,
        };
        let mut out = [0.0f32; 4];
        attend(&c, 0, &[1.0; 4], 0, &attn, &mut out).unwrap();
        assert_eq!(out, [2.0, 3.0, 6.0, 12.0]);
        // One token at position 3 (decoding): the same.
        let mut one = [0.0f32; 1];
        attend(&c, 0, &[1.0], 3, &attn, &mut one).unwrap();
        assert_eq!(one, [12.0]);
    }

    /// Random K/V for `n_pos` positions in a cache of `ty` whose ring holds `cells`.
    fn random_cache(ty: KvCacheType, cells: usize, n_pos: usize, n_kv_head: usize) -> KvCache {
        let mut c = KvCache::new(shape(cells, n_kv_head, 64), ty);
        c.reserve(n_pos).unwrap();
        let w = c.shape().kv_width();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        };
        for p in 0..n_pos {
            let k: Vec<f32> = (0..w).map(|_| next()).collect();
            let v: Vec<f32> = (0..w).map(|_| next()).collect();
            c.store(0, p, &k, &v);
        }
        c
    }

    #[test]
    fn splitting_keys_and_dimensions_over_threads_keeps_every_bit() {
        let q: Vec<f32> = (0..3 * 6 * 64)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        // (cache type, ring cells, positions held, window, query tokens)
        let cases = [
            (KvCacheType::F16, 1024, 700, None, 1),
            (KvCacheType::F16, 1024, 700, None, 3),
            (KvCacheType::F32, 1024, 613, None, 1),
            (KvCacheType::F16, 1024, 700, Some(300), 1),
            (KvCacheType::F16, 512, 900, Some(512), 1),
        ];
        for (ty, cells, n_pos, window, n_tokens) in cases {
            let cache = random_cache(ty, cells, n_pos, 2);
            let attn = AttnShape {
                n_head: 6,
                n_kv_head: 2,
                head_dim: 64,
                scale: 0.125,
                window,
                sums: BatchSums::LlamaCpp,
                sinks: None,
            };
            let q = &q[..n_tokens * 6 * 64];
            let first = n_pos - n_tokens;
            let (blocked, split) = match &cache {
                KvCache::F16(c) => blocked_and_split(c, q, first, &attn),
                KvCache::F32(c) => blocked_and_split(c, q, first, &attn),
            };
            assert!(blocked.iter().all(|x| x.is_finite() && *x != 0.0));
            assert_eq!(bits(&blocked), bits(&split), "{ty:?} {n_pos} {window:?}");
        }
    }

    /// Both paths of one pass, after checking that the pass is long enough to split.
    fn blocked_and_split<E: KvElem>(
        c: &TypedKvCache<E>,
        q: &[f32],
        first: usize,
        attn: &AttnShape<'_>,
    ) -> (Vec<f32>, Vec<f32>) {
        let pass = Pass::new(c, 0, q, first, attn).unwrap();
        assert!(pass.n_keys(pass.n_tokens - 1) >= SPLIT_MIN_KEYS);
        let (mut blocked, mut split) = (vec![0f32; q.len()], vec![1f32; q.len()]);
        pass.blocked(&mut blocked).unwrap();
        pass.split(&mut split).unwrap();
        (blocked, split)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn dot_orders_agree_with_plain_sum_on_exact_values() {
        // Small integers: every order sums exactly, so all must give the plain total.
        let x: Vec<f32> = (0..70).map(|i| (i % 7) as f32).collect();
        let y: Vec<f32> = (0..70).map(|i| (i % 5) as f32 - 2.0).collect();
        let want: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert_eq!(dot(DotOrder::Vec, &x, &y, 70), want);
        assert_eq!(dot(DotOrder::Vec, &x, &y, 256), want);
        assert_eq!(dot(DotOrder::Tiny, &x, &y, 256), want);
    }
}
