//! F16 x F16 dot product (the f16 KV cache's attention path).
//!
//! Summation follows ggml_vec_dot_f16 on AVX2+F16C: four 8-lane f32 accumulators over
//! 32-value steps, reduced as (s0+s2)+(s1+s3), then high+low 128-bit halves and two
//! horizontal adds; the n % 32 leftovers are added in f64, and the f64 total is rounded to
//! f32 once.

use core::arch::x86_64::*;

use half::f16;

/// # Safety
/// As [`crate::dispatch::VecDotFn`] for F16 weights: `w` and `act` hold `n` f16 values each.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_f16(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let (x, y) = (w.as_ptr(), act.as_ptr());
    let np = n & !31;
    let mut sum = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i < np {
        for (k, s) in sum.iter_mut().enumerate() {
            // SAFETY: values i+8k..i+8k+8 < np <= n lie inside both rows (2 bytes each).
            let (ax, ay) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(x.add(2 * (i + 8 * k)).cast())),
                    _mm256_cvtph_ps(_mm_loadu_si128(y.add(2 * (i + 8 * k)).cast())),
                )
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
    let mut total = f64::from(_mm_cvtss_f32(_mm_hadd_ps(t1, t1)));
    let tail_w = w.get(2 * np..2 * n).unwrap_or(&[]);
    let tail_a = act.get(2 * np..2 * n).unwrap_or(&[]);
    for (a, b) in tail_w.chunks_exact(2).zip(tail_a.chunks_exact(2)) {
        let a = f16::from_le_bytes([a[0], a[1]]).to_f32();
        let b = f16::from_le_bytes([b[0], b[1]]).to_f32();
        total += f64::from(a * b);
    }
    total as f32
}
