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
    let AttnShape {
        n_head,
        n_kv_head,
        head_dim,
        ..
    } = *shape;
    let width = n_head * head_dim;
    if width == 0 || n_kv_head == 0 {
        return Ok(());
    }
    let n_tokens = q.len() / width;
    let group = (n_head / n_kv_head).max(1);
    let order = match shape.sums {
        BatchSums::LlamaCpp if n_tokens >= 2 => DotOrder::Tiny,
        _ => DotOrder::Vec,
    };
    let cells = cache.cells(layer, first_pos + n_tokens);
    let padded = cells.n_cells.div_ceil(KV_WINDOW_PAD) * KV_WINDOW_PAD;
    let v_stride = cache.v_stride(layer);
    let kv_width = cache.shape().kv_width();
    // The query heads of one KV head go together (grouped-query attention): each key and
    // value row is read once for all of them. Per KV head, scratch is token-major, then
    // query head, so each (KV head, token block) item writes one contiguous chunk.
    let group_width = group * head_dim;
    let block = TOKEN_BLOCK * group_width;
    let mut by_kv = Vec::new();
    by_kv
        .try_reserve_exact(n_kv_head * n_tokens * group_width)
        .map_err(|_| crate::Error::OutOfMemory {
            what: format!("attention output of {n_tokens} tokens"),
        })?;
    by_kv.resize(n_kv_head * n_tokens * group_width, 0.0f32);
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
            let k_rows = cache.k_rows(layer, kv_head);
            let v_rows = cache.v_rows(layer, kv_head);
            for (j, o) in dst.chunks_exact_mut(group_width).enumerate() {
                let t = t0 + j;
                let pos = first_pos + t;
                // This token's query heads of the group, side by side.
                let first_head = t * width + kv_head * group_width;
                E::fill_from_f32(&mut s.q, &q[first_head..first_head + group_width]);
                // In position order every cell up to the query's own is a key; in a wrapped
                // ring every cell is, and the mask below hides what the query must not see.
                let n_keys = if cells.wrapped {
                    cells.n_cells
                } else {
                    pos + 1
                };
                s.scores.clear();
                s.scores.resize(group * n_keys, 0.0);
                dots_multi(
                    order,
                    head_dim,
                    k_rows,
                    kv_width,
                    &s.q,
                    head_dim,
                    &mut s.scores,
                )?;
                for (g, scores) in s.scores.chunks_exact_mut(n_keys).enumerate() {
                    // Masked keys stay in the row as -inf (weight 0), as in llama.cpp's KQ
                    // mask, so every other key keeps its lane in the sums.
                    if cells.wrapped {
                        for (c, score) in scores.iter_mut().enumerate() {
                            let key = cells.position(c);
                            let outside =
                                shape.window.is_some_and(|w| pos.saturating_sub(key) >= w);
                            if key > pos || outside {
                                *score = f32::NEG_INFINITY;
                            }
                        }
                    } else if let Some(w) = shape.window {
                        let masked = n_keys.saturating_sub(w);
                        scores[..masked].fill(f32::NEG_INFINITY);
                    }
                    let sink = shape
                        .sinks
                        .and_then(|k| k.get(kv_head * group + g))
                        .copied();
                    vecmath::soft_max_sink(scores, shape.scale, sink);
                }
                E::fill_from_f32(&mut s.weights, &s.scores);
                dots_multi(order, padded, v_rows, v_stride, &s.weights, n_keys, o)?;
            }
            Ok::<(), crate::Error>(())
        })?;
    for (kv_head, chunk) in by_kv.chunks_exact(n_tokens * group_width).enumerate() {
        for (t, src) in chunk.chunks_exact(group_width).enumerate() {
            let at = t * width + kv_head * group_width;
            out[at..at + group_width].copy_from_slice(src);
        }
    }
    Ok(())
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
        DotOrder::Tiny if padded_len % 8 == 0 => Some(F16DotOrder::TinyBlas),
        _ if padded_len % 32 == 0 && padded_len >= len => Some(F16DotOrder::GgmlVec),
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
        DotOrder::Tiny if padded_len % 8 == 0 => Some(F16DotOrder::TinyBlas),
        // All elements fall in ggml's 32-wide steps: no f64 leftovers.
        _ if padded_len % 32 == 0 && padded_len >= y.len() => Some(F16DotOrder::GgmlVec),
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
    if order == DotOrder::Tiny && padded_len % 8 == 0 {
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
