//! Q4_0, Q4_1, Q5_0 and Q8_0 weights against Q8_0 / Q8_1 activations (32-value blocks).
//!
//! One generic register-tiled kernel serves both the single dot product and the GEMM tile:
//! every (weight row, activation row) pair owns one 8-lane f32 accumulator that receives the
//! same operations in the same order whatever the tile shape, so `vec_dot` and every tile
//! position give bit-identical results (the GEMM driver relies on this for thread-count
//! independence).
//!
//! Per block the integer dot product is formed with `maddubs` (u8 x i8 -> pairs of i16):
//! nibble weights are kept unsigned (0..15 or 0..31) and the zero-point offset (8 or 16) is
//! removed by subtracting `maddubs(offset, act)`, computed once per activation block; signed
//! Q8_0 weights use |w| x sign(a, w). Sums are exact in i16/i32 for activations in -127..=127
//! (what every Q8 quantizer produces); -128 x -128 pairs could saturate, like in ggml.

use core::arch::x86_64::*;

use super::simd::{bits_to_bytes, f16_at, f16_splat, hsum_ps, load256, nibbles32, sum_pairs_i16};
use crate::dispatch::TileArgs;

/// A weight block format of this family, with its activation block format.
pub(super) trait Legacy {
    /// Bytes per weight block.
    const W_BYTES: usize;
    /// Bytes per activation block (34 for Q8_0, 36 for Q8_1).
    const A_BYTES: usize;
    /// Offset of the activation quants in the activation block.
    const A_QS: usize;
    /// Whether weights carry a minimum `m` (then activations carry `s = d * sum(q)`).
    const HAS_MIN: bool;

    /// The weight block at `p` as (maddubs first operand, auxiliary vector, scale d).
    ///
    /// # Safety
    /// AVX2+FMA+F16C present; `p` valid for `W_BYTES` bytes.
    unsafe fn load_w(p: *const u8) -> (__m256i, __m256i, __m256);

    /// Per-activation-block value reused by every weight row (e.g. `maddubs(offset, a)`).
    ///
    /// # Safety
    /// AVX2+FMA+F16C present.
    unsafe fn prep_act(a: __m256i) -> __m256i;

    /// The 16 i16 pair sums of weight x activation.
    ///
    /// # Safety
    /// AVX2+FMA+F16C present.
    unsafe fn pair16(w: __m256i, aux: __m256i, a: __m256i, prep: __m256i) -> __m256i;

    /// The weight minimum `m` (only called when `HAS_MIN`).
    ///
    /// # Safety
    /// AVX2+FMA+F16C present; `p` valid for `W_BYTES` bytes.
    unsafe fn w_min(_p: *const u8) -> f32 {
        0.0
    }
}

pub(super) struct Q4_0;
pub(super) struct Q4_1;
pub(super) struct Q5_0;
pub(super) struct Q8_0;

impl Legacy for Q4_0 {
    const W_BYTES: usize = 18;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_w(p: *const u8) -> (__m256i, __m256i, __m256) {
        // SAFETY: 18-byte block: d at 0..2, 16 nibble bytes at 2..18.
        unsafe { (nibbles32(p.add(2)), _mm256_setzero_si256(), f16_splat(p)) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn prep_act(a: __m256i) -> __m256i {
        _mm256_maddubs_epi16(_mm256_set1_epi8(8), a)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pair16(w: __m256i, _aux: __m256i, a: __m256i, prep: __m256i) -> __m256i {
        _mm256_sub_epi16(_mm256_maddubs_epi16(w, a), prep)
    }
}

impl Legacy for Q5_0 {
    const W_BYTES: usize = 22;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_w(p: *const u8) -> (__m256i, __m256i, __m256) {
        // SAFETY: 22-byte block: d at 0..2, qh (u32 LE) at 2..6, 16 nibble bytes at 6..22.
        unsafe {
            let qh = p.add(2).cast::<u32>().read_unaligned();
            let high = _mm256_and_si256(bits_to_bytes(u32::from_le(qh)), _mm256_set1_epi8(0x10));
            let q = _mm256_or_si256(nibbles32(p.add(6)), high);
            (q, _mm256_setzero_si256(), f16_splat(p))
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn prep_act(a: __m256i) -> __m256i {
        _mm256_maddubs_epi16(_mm256_set1_epi8(16), a)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pair16(w: __m256i, _aux: __m256i, a: __m256i, prep: __m256i) -> __m256i {
        _mm256_sub_epi16(_mm256_maddubs_epi16(w, a), prep)
    }
}

impl Legacy for Q8_0 {
    const W_BYTES: usize = 34;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_w(p: *const u8) -> (__m256i, __m256i, __m256) {
        // SAFETY: 34-byte block: d at 0..2, 32 i8 quants at 2..34.
        unsafe {
            let w = load256(p.add(2));
            (_mm256_sign_epi8(w, w), w, f16_splat(p))
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn prep_act(a: __m256i) -> __m256i {
        a
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pair16(abs_w: __m256i, w: __m256i, a: __m256i, _prep: __m256i) -> __m256i {
        _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(a, w))
    }
}

impl Legacy for Q4_1 {
    const W_BYTES: usize = 20;
    const A_BYTES: usize = 36;
    const A_QS: usize = 4;
    const HAS_MIN: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_w(p: *const u8) -> (__m256i, __m256i, __m256) {
        // SAFETY: 20-byte block: d at 0..2, m at 2..4, 16 nibble bytes at 4..20.
        unsafe { (nibbles32(p.add(4)), _mm256_setzero_si256(), f16_splat(p)) }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn prep_act(a: __m256i) -> __m256i {
        a
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pair16(w: __m256i, _aux: __m256i, a: __m256i, _prep: __m256i) -> __m256i {
        _mm256_maddubs_epi16(w, a)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn w_min(p: *const u8) -> f32 {
        // SAFETY: m at bytes 2..4 of the block.
        unsafe { f16_at(p.add(2)) }
    }
}

/// `MR` weight rows x `NR` activation rows over `nb` blocks; writes
/// `out[j * out_stride + i]`.
///
/// # Safety
/// AVX2+FMA+F16C present; row `i < MR` of weights holds `nb` blocks at `w + i * w_stride`,
/// row `j < NR` of activations `nb` blocks at `a + j * a_stride`; the `MR x NR` outputs at
/// `out + j * out_stride + i` are writable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro<L: Legacy, const MR: usize, const NR: usize>(
    nb: usize,
    w: *const u8,
    w_stride: usize,
    a: *const u8,
    a_stride: usize,
    out: *mut f32,
    out_stride: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    let mut min_acc = [[0f32; NR]; MR];
    for b in 0..nb {
        let mut wq = [(_mm256_setzero_si256(), _mm256_setzero_si256()); MR];
        let mut dw = [_mm256_setzero_ps(); MR];
        let mut mw = [0f32; MR];
        for i in 0..MR {
            // SAFETY: block b of weight row i is in bounds (function contract).
            let p = unsafe { w.add(i * w_stride + b * L::W_BYTES) };
            // SAFETY: as above; features present.
            let (q, aux, d) = unsafe { L::load_w(p) };
            wq[i] = (q, aux);
            dw[i] = d;
            if L::HAS_MIN {
                // SAFETY: as above.
                mw[i] = unsafe { L::w_min(p) };
            }
        }
        for j in 0..NR {
            // SAFETY: block b of activation row j is in bounds (function contract).
            let q = unsafe { a.add(j * a_stride + b * L::A_BYTES) };
            // SAFETY: d at 0..2 and the 32 quants at A_QS.. lie inside the block.
            let (av, da) = unsafe { (load256(q.add(L::A_QS)), f16_splat(q)) };
            // SAFETY: features present.
            let prep = unsafe { L::prep_act(av) };
            let sa = if L::HAS_MIN {
                // SAFETY: Q8_1's s at bytes 2..4.
                unsafe { f16_at(q.add(2)) }
            } else {
                0.0
            };
            for i in 0..MR {
                // SAFETY: features present.
                let p16 = unsafe { L::pair16(wq[i].0, wq[i].1, av, prep) };
                let sum = _mm256_cvtepi32_ps(sum_pairs_i16(p16));
                acc[i][j] = _mm256_fmadd_ps(sum, _mm256_mul_ps(dw[i], da), acc[i][j]);
                if L::HAS_MIN {
                    min_acc[i][j] += mw[i] * sa;
                }
            }
        }
    }
    for i in 0..MR {
        for j in 0..NR {
            // SAFETY: output (i, j) is writable (function contract).
            unsafe { *out.add(j * out_stride + i) = hsum_ps(acc[i][j]) + min_acc[i][j] };
        }
    }
}

/// The whole tile, in 4x2 register blocks with 1-wide remainders.
///
/// # Safety
/// As [`crate::dispatch::TileFn`] for a weight type of family `L`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile<L: Legacy>(t: &TileArgs<'_>, out: &mut [f32], out_stride: usize) {
    const MR: usize = 4;
    const NR: usize = 2;
    let nb = t.n / 32;
    let (w, a, o) = (t.w.as_ptr(), t.act.as_ptr(), out.as_mut_ptr());
    let (ws, as_) = (t.w_stride, t.act_stride);
    // One activation row (a matvec): rows one at a time through `vec_dot`. Weights then
    // stream from memory as one sequential read; interleaving several distant rows
    // measured 2-4x slower from DRAM here (the prefetchers lose them).
    if t.acts == 1 {
        for r in 0..t.rows {
            // SAFETY: row r lies inside the validated tile, and output r is in bounds; the
            // slice lengths are one row each, as `vec_dot` requires.
            unsafe {
                let row = core::slice::from_raw_parts(w.add(r * ws), ws.min(t.w.len() - r * ws));
                *o.add(r) = vec_dot::<L>(t.n, row, t.act);
            }
        }
        return;
    }
    let row_group = MR;
    let mut r = 0;
    while r < t.rows {
        let mr = if t.rows - r >= row_group {
            row_group
        } else {
            1
        };
        let mut j = 0;
        while j < t.acts {
            let nr = if t.acts - j >= NR { NR } else { 1 };
            // SAFETY: rows r..r+mr and acts j..j+nr are inside the tile, whose bounds the
            // caller validated (TileFn contract); so are their outputs.
            unsafe {
                let (wp, ap, op) = (w.add(r * ws), a.add(j * as_), o.add(j * out_stride + r));
                match (mr, nr) {
                    (MR, NR) => micro::<L, MR, NR>(nb, wp, ws, ap, as_, op, out_stride),
                    (MR, _) => micro::<L, MR, 1>(nb, wp, ws, ap, as_, op, out_stride),
                    (_, NR) => micro::<L, 1, NR>(nb, wp, ws, ap, as_, op, out_stride),
                    _ => micro::<L, 1, 1>(nb, wp, ws, ap, as_, op, out_stride),
                }
            }
            j += nr;
        }
        r += mr;
    }
}

/// One weight row against one activation row.
///
/// # Safety
/// As [`crate::dispatch::VecDotFn`] for a weight type of family `L`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot<L: Legacy>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let mut out = 0f32;
    // SAFETY: one row each, lengths guaranteed by the VecDotFn contract.
    unsafe { micro::<L, 1, 1>(n / 32, w.as_ptr(), 0, act.as_ptr(), 0, &mut out, 0) };
    out
}
