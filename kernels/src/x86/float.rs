//! F16 x F16 and F32 x F32 dot products (F16/F32 weights and the f16 KV cache), in the
//! orders of `reference::vec_dot_ggml_order` (`vec_dot`: ggml_vec_dot_f16/_f32 on AVX2 -- four
//! 8-lane f32 accumulators over 32-value steps, reduced as (s0+s2)+(s1+s3), then high+low
//! 128-bit halves and two horizontal adds; the n % 32 leftovers added in f64 for F16 and fused
//! into the f32 total for F32) and `reference::vec_dot_batch_order` (the batch tiles:
//! tinyBLAS's single 8-lane accumulator and its horizontal sum).

use core::arch::x86_64::*;

use half::f16;

use crate::kernel_set::TileArgs;

/// The first `n & !31` products of two float rows summed as ggml's `vec_dot` sums them: four
/// 8-lane fma accumulators over 32-value steps, reduced as (s0+s2)+(s1+s3), then high + low
/// 128-bit halves and two horizontal adds.
///
/// # Safety
/// AVX2+FMA+F16C present; `x` and `y` valid for `n` values of `E`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn steps32<E: FloatElem>(n: usize, x: *const u8, y: *const u8) -> f32 {
    let np = n & !31;
    let mut sum = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < np {
        for (k, s) in sum.iter_mut().enumerate() {
            // SAFETY: values i+8k..i+8k+8 < np <= n lie inside both rows.
            let (ax, ay) = unsafe {
                let off = (i + 8 * k) * E::BYTES;
                (E::load8(x.add(off)), E::load8(y.add(off)))
            };
            *s = _mm256_fmadd_ps(ax, ay, *s);
        }
        i += 32;
    }
    let s02 = _mm256_add_ps(sum[0], sum[2]);
    let s13 = _mm256_add_ps(sum[1], sum[3]);
    let s = _mm256_add_ps(s02, s13);
    let t0 = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let t1 = _mm_hadd_ps(t0, t0);
    _mm_cvtss_f32(_mm_hadd_ps(t1, t1))
}

/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for F16 weights: `w` and `act` hold `n` f16 values each.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_f16(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let np = n & !31;
    // SAFETY: forwarded contract.
    let mut total = f64::from(unsafe { steps32::<F16>(n, w.as_ptr(), act.as_ptr()) });
    let tail_w = w.get(2 * np..2 * n).unwrap_or(&[]);
    let tail_a = act.get(2 * np..2 * n).unwrap_or(&[]);
    for (a, b) in tail_w.chunks_exact(2).zip(tail_a.chunks_exact(2)) {
        let a = f16::from_le_bytes([a[0], a[1]]).to_f32();
        let b = f16::from_le_bytes([b[0], b[1]]).to_f32();
        total += f64::from(a * b);
    }
    total as f32
}

/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for F32 weights: `w` and `act` hold `n` f32 values each.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_f32(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let np = n & !31;
    // SAFETY: forwarded contract.
    let mut total = unsafe { steps32::<F32>(n, w.as_ptr(), act.as_ptr()) };
    let tail_w = w.get(4 * np..4 * n).unwrap_or(&[]);
    let tail_a = act.get(4 * np..4 * n).unwrap_or(&[]);
    for (a, b) in tail_w.chunks_exact(4).zip(tail_a.chunks_exact(4)) {
        let a = f32::from_le_bytes([a[0], a[1], a[2], a[3]]);
        let b = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        total = a.mul_add(b, total);
    }
    total
}

/// An element type of the float batch tiles.
pub(super) trait FloatElem {
    /// Bytes per value.
    const BYTES: usize;
    /// Eight values at `p` as f32.
    ///
    /// # Safety
    /// AVX2+F16C present; `p` valid for `8 * BYTES` bytes.
    unsafe fn load8(p: *const u8) -> __m256;
    /// The `vec_dot` of this type (for lengths tinyBLAS declines).
    ///
    /// # Safety
    /// As [`crate::kernel_set::VecDotFn`].
    unsafe fn vec_dot(n: usize, w: &[u8], act: &[u8]) -> f32;
}

pub(super) struct F32;
pub(super) struct F16;

impl FloatElem for F32 {
    const BYTES: usize = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u8) -> __m256 {
        // SAFETY: forwarded contract.
        unsafe { _mm256_loadu_ps(p.cast()) }
    }
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn vec_dot(n: usize, w: &[u8], act: &[u8]) -> f32 {
        // SAFETY: forwarded contract.
        unsafe { vec_dot_f32(n, w, act) }
    }
}

impl FloatElem for F16 {
    const BYTES: usize = 2;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u8) -> __m256 {
        // SAFETY: forwarded contract.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn vec_dot(n: usize, w: &[u8], act: &[u8]) -> f32 {
        // SAFETY: forwarded contract.
        unsafe { vec_dot_f16(n, w, act) }
    }
}

/// The batch tile of F32 or F16 weights in tinyBLAS's order: per output one 8-lane
/// accumulator of fused multiply-adds, then `_mm256` high + low halves and two adds (the
/// order of `scalar::hsum8`); lengths that are not a multiple of 8 use `vec_dot` (tinyBLAS
/// declines them).
///
/// # Safety
/// As [`crate::kernel_set::TileFn`] for the weight type of `E`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn batch_tile<E: FloatElem>(
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) {
    let row = t.n * E::BYTES;
    for a in 0..t.acts {
        let act = &t.act[a * t.act_stride..a * t.act_stride + row];
        for r in 0..t.rows {
            let w = &t.w[r * t.w_stride..r * t.w_stride + row];
            let v = if !t.n.is_multiple_of(8) {
                // SAFETY: `w` and `act` are exact rows of `n` values (TileFn contract).
                unsafe { E::vec_dot(t.n, w, act) }
            } else {
                let mut acc = _mm256_setzero_ps();
                for k in (0..t.n).step_by(8) {
                    // SAFETY: values k..k+8 <= n lie inside both rows.
                    let (x, y) = unsafe {
                        (
                            E::load8(w.as_ptr().add(k * E::BYTES)),
                            E::load8(act.as_ptr().add(k * E::BYTES)),
                        )
                    };
                    acc = _mm256_fmadd_ps(x, y, acc);
                }
                let h = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
                let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))
            };
            out[a * out_stride + r] = v;
        }
    }
}
