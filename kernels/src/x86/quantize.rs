//! Activation quantizers: f32 rows to Q8_0, Q8_1, Q8_K and F16, byte-identical to the
//! reference `quantize_activations` (which mirrors llama.cpp's x86 runtime).
//!
//! Q8_0/Q8_1 as ggml's AVX2 quantize_row_q8_0/q8_1: amax over the block, d = amax / 127
//! stored as f16, q = round-half-even(x * (127 / amax)) (0 when amax is 0); Q8_1 adds
//! s = f16(d * sum q) with d in f32. Q8_K as quantize_row_q8_K_ref: the signed value of
//! largest magnitude `max`, iscale = -127 / max, q = min(127, round-half-even(iscale * x)),
//! d = 1 / iscale, plus i16 sums of each 16 quants.

use core::arch::x86_64::*;

use half::f16;

use super::simd::hsum_epi32;

/// One 32-value block: writes 32 quants at `q`, returns (d, sum of quants).
///
/// # Safety
/// AVX2+FMA+F16C present; `x` readable for 32 f32, `q` writable for 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_block(x: *const f32, q: *mut u8) -> (f32, i32) {
    // SAFETY: 32 readable floats (contract).
    let v = unsafe {
        [
            _mm256_loadu_ps(x),
            _mm256_loadu_ps(x.add(8)),
            _mm256_loadu_ps(x.add(16)),
            _mm256_loadu_ps(x.add(24)),
        ]
    };
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_andnot_ps(sign, v[0]);
    for vk in &v[1..] {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *vk));
    }
    let m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    let m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    let amax = _mm_cvtss_f32(m4);
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mul = _mm256_set1_ps(id);
    let r = |vk: __m256| {
        _mm256_cvtps_epi32(_mm256_round_ps(
            _mm256_mul_ps(vk, mul),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        ))
    };
    let (i0, i1, i2, i3) = (r(v[0]), r(v[1]), r(v[2]), r(v[3]));
    let sum = hsum_epi32(_mm256_add_epi32(
        _mm256_add_epi32(i0, i1),
        _mm256_add_epi32(i2, i3),
    ));
    let p01 = _mm256_packs_epi32(i0, i1);
    let p23 = _mm256_packs_epi32(i2, i3);
    let bytes = _mm256_packs_epi16(p01, p23);
    // The packs work per 128-bit lane; this restores element order.
    let bytes = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: 32 writable bytes (contract).
    unsafe { _mm256_storeu_si256(q.cast(), bytes) };
    (d, sum)
}

/// # Safety
/// As [`crate::kernel_set::QuantizeActFn`] for Q8_0.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(34)) {
        // SAFETY: a 32-float block and its 34-byte output block.
        let (d, _) = unsafe { q8_block(xb.as_ptr(), ob.as_mut_ptr().add(2)) };
        ob[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    }
}

/// # Safety
/// As [`crate::kernel_set::QuantizeActFn`] for Q8_1.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize_q8_1(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(32).zip(out.chunks_exact_mut(36)) {
        // SAFETY: a 32-float block and its 36-byte output block.
        let (d, sum) = unsafe { q8_block(xb.as_ptr(), ob.as_mut_ptr().add(4)) };
        ob[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        ob[2..4].copy_from_slice(&f16::from_f32(d * sum as f32).to_le_bytes());
    }
}

/// # Safety
/// As [`crate::kernel_set::QuantizeActFn`] for Q8_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize_q8_k(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(256).zip(out.chunks_exact_mut(292)) {
        // The value of largest magnitude, first one on ties (as the reference's scan).
        let mut max = 0f32;
        let mut amax = 0f32;
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            ob.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        let mul = _mm256_set1_ps(iscale);
        let cap = _mm256_set1_epi32(127);
        let (d_bytes, rest) = ob.split_at_mut(4);
        let (qs, bsums) = rest.split_at_mut(256);
        for (g, (x16, s)) in xb
            .chunks_exact(16)
            .zip(bsums.chunks_exact_mut(2))
            .enumerate()
        {
            // SAFETY: 16 readable floats in this group.
            let (a, b) = unsafe {
                (
                    _mm256_loadu_ps(x16.as_ptr()),
                    _mm256_loadu_ps(x16.as_ptr().add(8)),
                )
            };
            let r = |v: __m256| {
                let q = _mm256_cvtps_epi32(_mm256_round_ps(
                    _mm256_mul_ps(v, mul),
                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
                ));
                _mm256_min_epi32(q, cap)
            };
            let (qa, qb) = (r(a), r(b));
            let sum = hsum_epi32(_mm256_add_epi32(qa, qb));
            s.copy_from_slice(&(sum as i16).to_le_bytes());
            let p = _mm256_packs_epi32(qa, qb);
            let p = _mm256_permute4x64_epi64(p, 0b11_01_10_00);
            let bytes = _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
            // SAFETY: 16 writable quant bytes of group g.
            unsafe { _mm_storeu_si128(qs.as_mut_ptr().add(16 * g).cast(), bytes) };
        }
        d_bytes.copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

/// # Safety
/// As [`crate::kernel_set::QuantizeActFn`] for F16 (round to nearest even, like ggml).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize_f16(x: &[f32], out: &mut [u8]) {
    let mut chunks = x.chunks_exact(8);
    let mut outs = out.chunks_exact_mut(16);
    for (x8, o16) in (&mut chunks).zip(&mut outs) {
        // SAFETY: 8 readable floats, 16 writable bytes.
        unsafe {
            let h = _mm256_cvtps_ph(_mm256_loadu_ps(x8.as_ptr()), _MM_FROUND_TO_NEAREST_INT);
            _mm_storeu_si128(o16.as_mut_ptr().cast(), h);
        }
    }
    for (v, o) in chunks
        .remainder()
        .iter()
        .zip(outs.into_remainder().chunks_exact_mut(2))
    {
        o.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
    }
}
