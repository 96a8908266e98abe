//! Q4_K, Q5_K and Q6_K weights against Q8_K activations (256-value super-blocks).
//!
//! Quants are kept unsigned for `maddubs` (u8 x i8 -> i16 pairs); each 32- or 16-value
//! sub-block's integer sum is multiplied by its 6- or 8-bit scale with `madd` (i16 x i16 ->
//! i32), so the whole super-block's scaled sum is exact in i32. Offsets (Q4_K/Q5_K mins,
//! Q6_K's -32) come from the activation block's 16-value sums (`bsums`), exact integers too;
//! floats enter only once per super-block.

use core::arch::x86_64::*;

use super::simd::{f16_at, f32_at, hsum_epi32, hsum_ps, load256};

/// Q8_K block: d (f32) at 0, 256 i8 quants at 4, 16 i16 bsums at 260.
const Q8K_BYTES: usize = 292;
const Q8K_QS: usize = 4;
const Q8K_BSUMS: usize = 260;

/// The 8 (scale, min) pairs of a Q4_K/Q5_K super-block from its 12 packed bytes.
fn scales_mins(s: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    for j in 0..4 {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 6) << 4);
        m[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, m)
}

/// Shuffle controls broadcasting i16 lane `s` (of 8, both 128-bit halves) to all lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn broadcast_i16_lane(v: __m256i, s: usize) -> __m256i {
    let lo = (2 * s) as i8;
    let hi = lo + 1;
    let ctrl = _mm256_setr_epi8(
        lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, //
        lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi, lo, hi,
    );
    _mm256_shuffle_epi8(v, ctrl)
}

/// Sum over sub-blocks of min[s] * (bsums[2s] + bsums[2s+1]).
///
/// # Safety
/// `bsums` valid for 32 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mins_dot(m: &[u8; 8], bsums: *const u8) -> i32 {
    // SAFETY: 32 readable bytes (contract).
    let b = unsafe { load256(bsums) };
    // Pairs of 16-value sums -> 32-value sums (i32), then times the mins.
    let b32 = _mm256_madd_epi16(b, _mm256_set1_epi16(1));
    let mins = _mm256_cvtepu8_epi32(_mm_loadl_epi64(m.as_ptr().cast()));
    hsum_epi32(_mm256_mullo_epi32(b32, mins))
}

/// Shared Q4_K/Q5_K body; `high` adds the fifth bit (Q5_K's qh) when given.
///
/// # Safety
/// AVX2+FMA+F16C; `w` holds `nb` blocks of `w_bytes`, `act` `nb` Q8_K blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q45k(nb: usize, w: *const u8, w_bytes: usize, act: *const u8, five_bit: bool) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_min = 0f32;
    for i in 0..nb {
        // SAFETY: block i of each row is in bounds (contract).
        let (x, y) = unsafe { (w.add(i * w_bytes), act.add(i * Q8K_BYTES)) };
        // SAFETY: the fields read below lie inside their blocks: Q4_K = d 0..2, dmin 2..4,
        // scales 4..16, qs 16..144; Q5_K = d, dmin, scales, qh 16..48, qs 48..176.
        unsafe {
            let dy = f32_at(y);
            let d = dy * f16_at(x);
            let dmin = dy * f16_at(x.add(2));
            let (sc, m) = scales_mins(&*x.add(4).cast::<[u8; 12]>());
            let sc16 =
                _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64(sc.as_ptr().cast())));
            let (qh, qs) = if five_bit {
                (load256(x.add(16)), x.add(48))
            } else {
                (_mm256_setzero_si256(), x.add(16))
            };
            let q8 = y.add(Q8K_QS);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..4 {
                let bits = load256(qs.add(32 * j));
                let mut lo = _mm256_and_si256(bits, m4);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
                if five_bit {
                    // Bit 2j of qh[l] is the fifth bit of value l of sub-block 2j, bit 2j+1
                    // that of sub-block 2j+1.
                    let b0 = _mm256_set1_epi8(1 << (2 * j));
                    let b1 = _mm256_set1_epi8(1 << (2 * j + 1));
                    let h0 = _mm256_and_si256(
                        _mm256_cmpeq_epi8(_mm256_and_si256(qh, b0), b0),
                        _mm256_set1_epi8(16),
                    );
                    let h1 = _mm256_and_si256(
                        _mm256_cmpeq_epi8(_mm256_and_si256(qh, b1), b1),
                        _mm256_set1_epi8(16),
                    );
                    lo = _mm256_or_si256(lo, h0);
                    hi = _mm256_or_si256(hi, h1);
                }
                let plo = _mm256_maddubs_epi16(lo, load256(q8.add(64 * j)));
                let phi = _mm256_maddubs_epi16(hi, load256(q8.add(64 * j + 32)));
                let slo = _mm256_madd_epi16(broadcast_i16_lane(sc16, 2 * j), plo);
                let shi = _mm256_madd_epi16(broadcast_i16_lane(sc16, 2 * j + 1), phi);
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(slo, shi));
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            acc_min += dmin * mins_dot(&m, y.add(Q8K_BSUMS)) as f32;
        }
    }
    hsum_ps(acc) - acc_min
}

/// # Safety
/// As [`crate::dispatch::VecDotFn`] for Q4_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_q4_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: VecDotFn contract: n / 256 blocks in each row.
    unsafe { q45k(n / 256, w.as_ptr(), 144, act.as_ptr(), false) }
}

/// # Safety
/// As [`crate::dispatch::VecDotFn`] for Q5_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_q5_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: VecDotFn contract: n / 256 blocks in each row.
    unsafe { q45k(n / 256, w.as_ptr(), 176, act.as_ptr(), true) }
}

/// Q6_K: ql[128] at 0, qh[64] at 128, scales (i8)[16] at 192, d (f16) at 208.
///
/// # Safety
/// As [`crate::dispatch::VecDotFn`] for Q6_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_q6_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(0x03);
    let mut acc = _mm256_setzero_ps();
    for i in 0..n / 256 {
        // SAFETY: block i of each row is in bounds (VecDotFn contract); the fields read lie
        // inside their blocks (layout above; Q8_K: d 0..4, qs 4..260, bsums 260..292).
        unsafe {
            let x = w.as_ptr().add(i * 210);
            let y = act.as_ptr().add(i * Q8K_BYTES);
            let d = f32_at(y) * f16_at(x.add(208));
            let scales = _mm_loadu_si128(x.add(192).cast());
            // The -32 offset: 32 * sum_g scale[g] * bsums[g].
            let offset = _mm256_madd_epi16(load256(y.add(Q8K_BSUMS)), _mm256_cvtepi8_epi16(scales));
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                let ql = x.add(64 * h);
                let qh = load256(x.add(128 + 32 * h));
                let (ql0, ql1) = (load256(ql), load256(ql.add(32)));
                let q = [
                    _mm256_or_si256(
                        _mm256_and_si256(ql0, m4),
                        _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(ql1, m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4),
                    ),
                ];
                for (k, qk) in q.iter().enumerate() {
                    // Values 128h + 32k + 0..32: 16-value groups g and g+1, g = 8h + 2k.
                    let g = (8 * h + 2 * k) as i8;
                    let ctrl = _mm_setr_epi8(
                        g,
                        g,
                        g,
                        g,
                        g,
                        g,
                        g,
                        g,
                        g + 1,
                        g + 1,
                        g + 1,
                        g + 1,
                        g + 1,
                        g + 1,
                        g + 1,
                        g + 1,
                    );
                    let sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, ctrl));
                    let p = _mm256_maddubs_epi16(*qk, load256(y.add(Q8K_QS + 128 * h + 32 * k)));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p));
                }
            }
            sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offset, 5));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
    }
    hsum_ps(acc)
}
