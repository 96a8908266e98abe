//! MXFP4 and IQ4_NL in ggml's own `vec_dot` order (`ggml_vec_dot_mxfp4_q8_0`,
//! `ggml_vec_dot_iq4_nl_q8_0`: the same loop), which llama.cpp's AVX2 build runs for the
//! matrices of these types it does not repack (rows not a multiple of 8); the repacked ones
//! sum in the order of [`super::legacy`], whose tiles serve these types ordinarily.
//!
//! # The summation order (`reference::vec_dot_batch_order` for MXFP4 and IQ4_NL)
//!
//! Per block, lane `i` of an 8-lane i32 register holds the exact sum of the products
//! `4i..4i+4` (ggml: `maddubs(|w|, sign(a, w))` then `madd` with ones; here the codes of the
//! type's [`Legacy`] impl: the same exact integers). Blocks are taken in pairs: the first of
//! each pair accumulates into one f32 register, the second into another, as
//! `acc = fma(dw * da, f32(lanes), acc)` (the scale product rounded first). The two registers
//! are added and reduced as `hsum_float_8` does; an unpaired last block is added as
//! `fma(dw * da, f32(isum), total)` (the C loop's `sumf += d * (sumi1 + sumi2)`, which the
//! compiler contracts).

use core::arch::x86_64::*;

use super::legacy::{block_partials, offset_pairs, Legacy};
use super::simd::{f16_at, hsum_epi32, hsum_ps, load256};
use crate::kernel_set::TileArgs;

/// One weight row against one activation row, in the order above.
///
/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for a weight type of family `L`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_ggml<L: Legacy>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let nb = n / 32;
    let (w, act) = (w.as_ptr(), act.as_ptr());
    // Block b's exact lane sums and its scale `da * dw` (called for b < nb only).
    let block = |b: usize| {
        // SAFETY: block b < nb of both rows is in bounds (VecDotFn contract); the fields read
        // lie inside their blocks (`Legacy`); the features are this function's.
        unsafe {
            let (x, y) = (w.add(b * L::W_BYTES), act.add(b * L::A_BYTES));
            let a = load256(y.add(L::A_QS));
            let lanes = block_partials::<L>(L::codes(x), a, offset_pairs::<L>(a));
            (lanes, f16_at(y) * L::d(x))
        }
    };
    let mut acc = [_mm256_setzero_ps(); 2];
    let paired = nb - nb % 2;
    for b in 0..paired {
        let (lanes, d) = block(b);
        let a = &mut acc[b % 2];
        *a = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), *a);
    }
    let mut total = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
    if paired < nb {
        let (lanes, d) = block(paired);
        total = d.mul_add(hsum_epi32(lanes) as f32, total);
    }
    total
}

/// The tile, every pair in the order above (a loop over [`vec_dot_ggml`]: unrepacked matrices
/// of these types are rare; gpt-oss has none).
///
/// # Safety
/// As [`crate::kernel_set::TileFn`] for a weight type of family `L`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn batch_tile<L: Legacy>(t: &TileArgs<'_>, out: &mut [f32], out_stride: usize) {
    let w_row = t.n / 32 * L::W_BYTES;
    let a_row = t.n / 32 * L::A_BYTES;
    for a in 0..t.acts {
        let act = &t.act[a * t.act_stride..a * t.act_stride + a_row];
        for r in 0..t.rows {
            let w = &t.w[r * t.w_stride..r * t.w_stride + w_row];
            // SAFETY: exact rows of `t.n` values (the TileFn contract sized the slices above);
            // the features are those of this function.
            out[a * out_stride + r] = unsafe { vec_dot_ggml::<L>(t.n, w, act) };
        }
    }
}
