//! Q4_K, Q5_K and Q6_K weights against Q8_K activations (256-value super-blocks).
//!
//! Quants are kept unsigned for `maddubs` (u8 x i8 -> i16 pairs); each 32- or 16-value
//! sub-block's integer sum is multiplied by its 6- or 8-bit scale with `madd` (i16 x i16 ->
//! i32), so the whole super-block's scaled sum is exact in i32. Offsets (Q4_K/Q5_K mins,
//! Q6_K's -32) come from the activation block's 16-value sums (`bsums`), exact integers too;
//! floats enter only once per super-block.
//!
//! # The summation order (shared with the GEMM tiles of `kquant_tile`)
//!
//! Per super-block `b` the kernels form exact i32 totals: `s_b` (the scaled code sum; Q6_K
//! with its `-32 * sum(scale * bsum)` already subtracted) and, for Q4_K/Q5_K, `m_b` (the
//! mins times the activation sums). The result is the sequential f32 chain
//! `acc = fma(f32(s_b), dw_b * da_b, acc)` over `b = 0, 1, ...` (the scale product rounded
//! first), minus, for Q4_K/Q5_K, the chain `macc = fma(f32(m_b), dmin_b * da_b, macc)`,
//! subtracted once at the end. One f32 lane per (weight row, activation row) pair is all
//! this needs, so the tiles keep eight weight rows in the lanes of a register and still
//! produce exactly the bits of these functions.

use core::arch::x86_64::*;

use super::simd::{f16_at, f32_at, hsum_epi32, load256};

/// Q8_K block: d (f32) at 0, 256 i8 quants at 4, 16 i16 bsums at 260.
const Q8K_BYTES: usize = 292;
const Q8K_QS: usize = 4;
const Q8K_BSUMS: usize = 260;

/// The 8 six-bit scales (low 8 bytes) and 8 six-bit mins (high 8 bytes) of a Q4_K/Q5_K
/// super-block, unpacked from its 12 bytes with word-wide bit operations:
/// bytes 0..4 hold scales 0..3 (low 6 bits), 4..8 mins 0..3, 8..12 the low nibbles of
/// scales 4..7 and (high nibbles) mins 4..7, whose top 2 bits are the top bits of bytes 0..8.
pub(super) fn scales_mins(s: &[u8; 12]) -> u128 {
    let w = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (w0, w1, w2) = (w(0), w(1), w(2));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let scales_lo = w0 & LOW6;
    let scales_hi = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let mins_lo = w1 & LOW6;
    let mins_hi = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    u128::from(scales_lo)
        | u128::from(scales_hi) << 32
        | u128::from(mins_lo) << 64
        | u128::from(mins_hi) << 96
}

/// `vpshufb` controls that broadcast i16 lane `s` (of 8, in each 128-bit half) everywhere.
static LANE_BROADCAST: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    let mut s = 0;
    while s < 8 {
        let mut k = 0;
        while k < 32 {
            t[s][k] = (2 * s + (k & 1)) as u8;
            k += 1;
        }
        s += 1;
    }
    t
};

/// i16 lane `s` of each 128-bit half of `v`, in every lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn broadcast_i16_lane(v: __m256i, s: usize) -> __m256i {
    let ctrl = &LANE_BROADCAST[s & 7];
    // SAFETY: a 32-byte array; loadu has no alignment requirement.
    _mm256_shuffle_epi8(v, unsafe { _mm256_loadu_si256(ctrl.as_ptr().cast()) })
}

/// Shared Q4_K/Q5_K body; `high` adds the fifth bit (Q5_K's qh) when given.
///
/// # Safety
/// AVX2+FMA+F16C; `w` holds `nb` blocks of `w_bytes`, `act` `nb` Q8_K blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q45k(nb: usize, w: *const u8, w_bytes: usize, act: *const u8, five_bit: bool) -> f32 {
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = _mm_setzero_ps();
    let mut acc_min = _mm_setzero_ps();
    for i in 0..nb {
        // SAFETY: block i of each row is in bounds (contract).
        let (x, y) = unsafe { (w.add(i * w_bytes), act.add(i * Q8K_BYTES)) };
        // SAFETY: the fields read below lie inside their blocks: Q4_K = d 0..2, dmin 2..4,
        // scales 4..16, qs 16..144; Q5_K = d, dmin, scales, qh 16..48, qs 48..176.
        unsafe {
            let dy = _mm_set_ss(f32_at(y));
            let d = _mm_mul_ss(_mm_set_ss(f16_at(x)), dy);
            let dmin = _mm_mul_ss(_mm_set_ss(f16_at(x.add(2))), dy);
            let packed = scales_mins(&*x.add(4).cast::<[u8; 12]>());
            let sm = _mm256_cvtepu8_epi16(_mm_set_epi64x((packed >> 64) as i64, packed as i64));
            let sc16 = _mm256_permute2x128_si256(sm, sm, 0x00);
            // Mins times the 32-value activation sums (pairs of the 16-value bsums).
            let bsums = load256(y.add(Q8K_BSUMS));
            let sums32 = _mm_hadd_epi16(
                _mm256_castsi256_si128(bsums),
                _mm256_extracti128_si256(bsums, 1),
            );
            let mins = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), sums32);
            let m = hsum_epi32(_mm256_inserti128_si256(_mm256_setzero_si256(), mins, 0));
            acc_min = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), m), dmin, acc_min);
            let (mut qh, qs) = if five_bit {
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
                    // Bits 2j and 2j+1 of qh[l] are the fifth bits of value l of sub-blocks
                    // 2j and 2j+1; `qh` is shifted right by 2 per step, so they are bits 0, 1.
                    let one = _mm256_set1_epi8(1);
                    let two = _mm256_set1_epi8(2);
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(qh, two), 3));
                    qh = _mm256_srli_epi16(qh, 2);
                }
                let plo = _mm256_maddubs_epi16(lo, load256(q8.add(64 * j)));
                let phi = _mm256_maddubs_epi16(hi, load256(q8.add(64 * j + 32)));
                let slo = _mm256_madd_epi16(broadcast_i16_lane(sc16, 2 * j), plo);
                let shi = _mm256_madd_epi16(broadcast_i16_lane(sc16, 2 * j + 1), phi);
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(slo, shi));
            }
            let s = _mm_cvtsi32_ss(_mm_setzero_ps(), hsum_epi32(sumi));
            acc = _mm_fmadd_ss(s, d, acc);
        }
    }
    _mm_cvtss_f32(_mm_sub_ss(acc, acc_min))
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
    let mut acc = _mm_setzero_ps();
    for i in 0..n / 256 {
        // SAFETY: block i of each row is in bounds (VecDotFn contract); the fields read lie
        // inside their blocks (layout above; Q8_K: d 0..4, qs 4..260, bsums 260..292).
        unsafe {
            let x = w.as_ptr().add(i * 210);
            let y = act.as_ptr().add(i * Q8K_BYTES);
            let d = _mm_mul_ss(_mm_set_ss(f16_at(x.add(208))), _mm_set_ss(f32_at(y)));
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
            let s = _mm_cvtsi32_ss(_mm_setzero_ps(), hsum_epi32(sumi));
            acc = _mm_fmadd_ss(s, d, acc);
        }
    }
    _mm_cvtss_f32(acc)
}
