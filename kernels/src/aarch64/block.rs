//! The shape every quantized kernel shares: a per-block step that folds one weight block and
//! one activation block into an accumulator, driven over a row (`row`) or over a tile of four
//! weight rows at once (`tile`). Both drivers run the same steps in the same order for a given
//! (weight row, activation row) pair, so a tile's results are bit-identical to `row`'s.

use core::arch::aarch64::*;

use super::dot::I8Dot;
use crate::kernel_set::TileArgs;

/// A running dot product: four f32 lanes of scaled block sums plus a scalar for terms that
/// arrive one per block (Q4_1's offsets, the k-quants' super-block totals).
#[derive(Clone, Copy)]
pub(super) struct Acc {
    pub(super) lanes: float32x4_t,
    pub(super) scalar: f32,
}

impl Acc {
    #[inline(always)]
    pub(super) fn zero() -> Acc {
        // SAFETY: register-only NEON; NEON is baseline on aarch64.
        let lanes = unsafe { vdupq_n_f32(0.0) };
        Acc { lanes, scalar: 0.0 }
    }

    /// Adds `d` times the integer lanes `sum` (each exact in f32: far below 2^24).
    #[inline(always)]
    pub(super) fn add_scaled(self, sum: int32x4_t, d: f32) -> Acc {
        // SAFETY: register-only NEON.
        let lanes = unsafe { vmlaq_n_f32(self.lanes, vcvtq_f32_s32(sum), d) };
        Acc { lanes, ..self }
    }

    #[inline(always)]
    pub(super) fn total(self) -> f32 {
        // SAFETY: register-only NEON.
        unsafe { vaddvq_f32(self.lanes) + self.scalar }
    }
}

/// One weight type against its activation type, one block at a time.
pub(super) trait BlockDot {
    /// Values per block.
    const VALUES: usize;
    /// Bytes per weight block.
    const W_BYTES: usize;
    /// Bytes per activation block.
    const A_BYTES: usize;

    /// Folds the dot product of weight block `w` (`W_BYTES` long) and activation block `a`
    /// (`A_BYTES` long) into `acc`.
    ///
    /// # Safety
    /// The CPU must support `D`'s instructions.
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc;
}

/// Dot product of `n / K::VALUES` blocks (fewer if either slice runs out).
#[inline(always)]
pub(super) unsafe fn row<K: BlockDot, D: I8Dot>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let blocks = w.chunks_exact(K::W_BYTES).zip(act.chunks_exact(K::A_BYTES));
    let mut acc = Acc::zero();
    for (wb, ab) in blocks.take(n / K::VALUES) {
        // SAFETY: the caller guarantees `D`'s features.
        acc = unsafe { K::step::<D>(acc, wb, ab) };
    }
    acc.total()
}

/// Weight rows handled together by `tile`: each activation block is loaded once for all of
/// them, and their four independent accumulator chains keep the pipeline busy.
const TILE_ROWS: usize = 4;

/// `out[a * out_stride + r] = row(weight row r, activation row a)` over the tile. Rows or
/// outputs that fall outside the slices are skipped (the dispatcher has checked them).
#[inline(always)]
pub(super) unsafe fn tile<K: BlockDot, D: I8Dot>(t: &TileArgs<'_>, out: &mut [f32], stride: usize) {
    let blocks = t.n / K::VALUES;
    let (w_row, a_row) = (blocks * K::W_BYTES, blocks * K::A_BYTES);
    let weight = |r: usize| t.w.get(r * t.w_stride..).and_then(|s| s.get(..w_row));
    for a in 0..t.acts {
        let act = t.act.get(a * t.act_stride..).and_then(|s| s.get(..a_row));
        let out = out.get_mut(a * stride..).and_then(|s| s.get_mut(..t.rows));
        let (Some(act), Some(out)) = (act, out) else {
            continue;
        };
        let mut r = 0;
        while r + TILE_ROWS <= t.rows {
            let rows: [Option<&[u8]>; TILE_ROWS] = core::array::from_fn(|i| weight(r + i));
            if let [Some(w0), Some(w1), Some(w2), Some(w3)] = rows {
                let mut acc = [Acc::zero(); TILE_ROWS];
                let blocks = act
                    .chunks_exact(K::A_BYTES)
                    .zip(w0.chunks_exact(K::W_BYTES))
                    .zip(w1.chunks_exact(K::W_BYTES))
                    .zip(w2.chunks_exact(K::W_BYTES))
                    .zip(w3.chunks_exact(K::W_BYTES));
                for ((((ab, b0), b1), b2), b3) in blocks {
                    // SAFETY: the caller guarantees `D`'s features; every block slice has
                    // its exact size.
                    unsafe {
                        acc[0] = K::step::<D>(acc[0], b0, ab);
                        acc[1] = K::step::<D>(acc[1], b1, ab);
                        acc[2] = K::step::<D>(acc[2], b2, ab);
                        acc[3] = K::step::<D>(acc[3], b3, ab);
                    }
                }
                if let Some(out) = out.get_mut(r..r + TILE_ROWS) {
                    for (o, acc) in out.iter_mut().zip(acc) {
                        *o = acc.total();
                    }
                }
            }
            r += TILE_ROWS;
        }
        for (r, o) in out.iter_mut().enumerate().skip(r) {
            if let Some(w) = weight(r) {
                // SAFETY: the caller guarantees `D`'s features.
                *o = unsafe { row::<K, D>(t.n, w, act) };
            }
        }
    }
}
