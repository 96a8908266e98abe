//! Q4_K, Q5_K, Q6_K and IQ4_XS weights against Q8_K activations (256-value super-blocks).
//!
//! Quants are kept unsigned for `maddubs` (u8 x i8 -> i16 pairs); each 32- or 16-value
//! sub-block's integer sum is multiplied by its 6- or 8-bit scale with `madd` (i16 x i16 ->
//! i32), so the whole super-block's scaled sum is exact in i32. Offsets (Q4_K/Q5_K mins,
//! Q6_K's -32) come from the activation block's 16-value sums (`bsums`), exact integers too;
//! floats enter only once per super-block.
//!
//! # The summation orders (shared with the GEMM tiles of `kquant_tile`)
//!
//! Q4_K (which llama.cpp repacks on AVX2 and sums one f32 lane per row): per super-block `b`
//! the kernel forms exact i32 totals `s_b` (the scaled code sum) and `m_b` (the mins times
//! the activation sums). The result is the sequential f32 chain
//! `acc = fma(f32(s_b), dw_b * da_b, acc)` over `b = 0, 1, ...` (the scale product rounded
//! first), minus the chain `macc = fma(f32(m_b), dmin_b * da_b, macc)`, subtracted once at
//! the end. One f32 lane per (weight row, activation row) pair is all this needs.
//!
//! Q5_K, Q6_K and IQ4_XS: the order of ggml's AVX2 `ggml_vec_dot_q5_K_q8_K` /
//! `..._q6_K_q8_K` / `ggml_vec_dot_iq4_xs_q8_K` (which llama.cpp runs for them, unrepacked),
//! checked bit for bit against that library by `scripts/check-ggml-vec-dot.py`. Each pair owns
//! eight f32 lanes; i32 lane `L` of a super-block holds the exact sum, over its eight 32-value
//! chunks, of the chunk's (Q6_K: the 16-value group's; IQ4_XS: `ls - 32`) scale times the
//! products at positions `4L..4L+4` of the chunk (IQ4_XS's weights are its table values); Q6_K
//! subtracts `32 * (sc[2L] * bsum[2L] + sc[2L+1] * bsum[2L+1])` from lane `L`. Then
//! `acc_L = fma(f32(lane_L), da_b * dw_b, acc_L)` per super-block, the lanes are reduced as
//! `hsum_float_8` does, and Q5_K adds its mins term last: the scalar chain
//! `summs = fma(-(da_b * dmin_b), f32(m_b), summs)` (ggml's `summs += dmin * m`, contracted
//! to an fma by the compiler; the unfused form misses the library on a third of the rows).

use core::arch::x86_64::*;

use super::simd::{
    f16_at, f32_at, hsum_epi32, hsum_ps, load256, nibbles32, prefetch_ahead, reduce8,
};
use crate::formats::IQ4NL_VALUES;
use crate::kernel_set::TileArgs;

/// Q8_K block: d (f32) at 0, 256 i8 quants at 4, 16 i16 bsums at 260.
pub(super) const Q8K_BYTES: usize = 292;
pub(super) const Q8K_QS: usize = 4;
pub(super) const Q8K_BSUMS: usize = 260;

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

/// `vpshufb` controls that broadcast i16 lane `2j` of the low 128-bit half over the low
/// half and lane `2j + 1` of the high half over the high half.
static PAIR_BROADCAST: [[u8; 32]; 4] = {
    let mut t = [[0u8; 32]; 4];
    let mut j = 0;
    while j < 4 {
        let mut k = 0;
        while k < 32 {
            let lane = 2 * j + k / 16;
            t[j][k] = (2 * lane + (k & 1)) as u8;
            k += 1;
        }
        j += 1;
    }
    t
};

/// Scale `2j` (in i16 lanes `2j` of both halves of `v`) over the low half, scale `2j + 1`
/// over the high half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_pair(v: __m256i, j: usize) -> __m256i {
    let ctrl = &PAIR_BROADCAST[j & 3];
    // SAFETY: a 32-byte array; loadu has no alignment requirement.
    _mm256_shuffle_epi8(v, unsafe { _mm256_loadu_si256(ctrl.as_ptr().cast()) })
}

/// The exact integer parts of one Q4_K super-block at `x` against the Q8_K block at `y`:
/// lanes summing to `s_b`, and lanes summing to `m_b` (see the module docs).
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for one block (144 bytes), `y` for one Q8_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4k_ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
    let m4 = _mm256_set1_epi8(0x0F);
    // SAFETY: the fields read below lie inside their blocks: Q4_K = d 0..2, dmin 2..4,
    // scales 4..16, qs 16..144.
    unsafe {
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
        let (qs, q8) = (x.add(16), y.add(Q8K_QS));
        let mut sumi = _mm256_setzero_si256();
        for j in 0..4 {
            let bits = load256(qs.add(32 * j));
            let lo = _mm256_and_si256(bits, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            let plo = _mm256_maddubs_epi16(lo, load256(q8.add(64 * j)));
            let phi = _mm256_maddubs_epi16(hi, load256(q8.add(64 * j + 32)));
            // Sub-block 2j's pair sums in the low half, 2j+1's in the high half (i16: at
            // most 2 * 2 * 15 * 128), so one `madd` applies both scales.
            let both = _mm256_add_epi16(
                _mm256_permute2x128_si256(plo, phi, 0x20),
                _mm256_permute2x128_si256(plo, phi, 0x31),
            );
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale_pair(sc16, j), both));
        }
        (
            sumi,
            _mm256_inserti128_si256(_mm256_setzero_si256(), mins, 0),
        )
    }
}

/// Q5_K's integer parts in ggml's lane layout (module docs): i32 lane `L` of the first
/// result sums, over sub-blocks `s`, `scale_s` times the products at positions `4L..4L+4` of
/// sub-block `s`; the second holds lanes summing to `m_b` (mins times activation sums).
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for one Q5_K block (176 bytes), `y` for one Q8_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5k_lane_ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
    let m4 = _mm256_set1_epi8(0x0F);
    let one = _mm256_set1_epi8(1);
    let two = _mm256_set1_epi8(2);
    // SAFETY: the fields read lie inside their blocks: Q5_K = d 0..2, dmin 2..4,
    // scales 4..16, qh 16..48, qs 48..176; Q8_K = d 0..4, qs 4..260, bsums 260..292.
    unsafe {
        let packed = scales_mins(&*x.add(4).cast::<[u8; 12]>());
        let sm = _mm256_cvtepu8_epi16(_mm_set_epi64x((packed >> 64) as i64, packed as i64));
        let bsums = load256(y.add(Q8K_BSUMS));
        let sums32 = _mm_hadd_epi16(
            _mm256_castsi256_si128(bsums),
            _mm256_extracti128_si256(bsums, 1),
        );
        let mins = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), sums32);
        let mut qh = load256(x.add(16));
        let (qs, q8) = (x.add(48), y.add(Q8K_QS));
        let scale = |s: usize| _mm256_set1_epi16(((packed >> (8 * s)) & 0xFF) as i16);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..4 {
            let bits = load256(qs.add(32 * j));
            // Bits 2j and 2j+1 of qh[l] are the fifth bits of value l of sub-blocks 2j and
            // 2j+1; `qh` is shifted right by 2 per step, so they are bits 0 and 1.
            let lo = _mm256_or_si256(
                _mm256_and_si256(bits, m4),
                _mm256_slli_epi16(_mm256_and_si256(qh, one), 4),
            );
            let hi = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(qh, two), 3),
            );
            qh = _mm256_srli_epi16(qh, 2);
            // maddubs: i16 lane i = positions 2i, 2i+1; madd: i32 lane L = 4L..4L+4.
            let plo = _mm256_maddubs_epi16(lo, load256(q8.add(64 * j)));
            let phi = _mm256_maddubs_epi16(hi, load256(q8.add(64 * j + 32)));
            sumi = _mm256_add_epi32(
                sumi,
                _mm256_add_epi32(
                    _mm256_madd_epi16(scale(2 * j), plo),
                    _mm256_madd_epi16(scale(2 * j + 1), phi),
                ),
            );
        }
        (
            sumi,
            _mm256_inserti128_si256(_mm256_setzero_si256(), mins, 0),
        )
    }
}

/// The exact integer part of one Q6_K super-block at `x` (ql[128] at 0, qh[64] at 128,
/// scales (i8)[16] at 192, d (f16) at 208) against the Q8_K block at `y`: lanes summing to
/// `s_b`, the -32 offset included.
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for 210 bytes, `y` for one Q8_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6k_ints(x: *const u8, y: *const u8) -> __m256i {
    let m4 = _mm256_set1_epi8(0x0F);
    let m2 = _mm256_set1_epi8(0x03);
    // SAFETY: the fields read lie inside their blocks (layout above; Q8_K: d 0..4,
    // qs 4..260, bsums 260..292).
    unsafe {
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
        sumi
    }
}

/// IQ4_XS's ggml lanes (`ggml_vec_dot_iq4_xs_q8_K`): lane `L` = the sum over the eight
/// 32-value sub-blocks of `(ls - 32)` times the products at positions `4L..4L+4` of the
/// sub-block, the weights being the table values of the codes (`|w| x sign(a, w)` pairs:
/// exact, as Q8_K activations lie in -127..=127).
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for 136 bytes, `y` for one Q8_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn iq4xs_lane_ints(x: *const u8, y: *const u8) -> __m256i {
    // SAFETY: d at 0..2, scales_h at 2..4, scales_l at 4..8, qs at 8..136 (16 bytes per
    // sub-block); Q8_K quants at 4..260; the table is 16 bytes.
    unsafe {
        let table = _mm256_broadcastsi128_si256(_mm_loadu_si128(IQ4NL_VALUES.as_ptr().cast()));
        let high = u16::from_le_bytes([*x.add(2), *x.add(3)]);
        let mut sumi = _mm256_setzero_si256();
        for ib in 0..8 {
            // Codes: low nibbles are values 0..16 of the sub-block, high nibbles 16..32.
            let w = _mm256_shuffle_epi8(table, nibbles32(x.add(8 + 16 * ib)));
            let a = load256(y.add(Q8K_QS + 32 * ib));
            let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
            let low = (*x.add(4 + ib / 2) >> (4 * (ib % 2))) & 0x0F;
            let ls = i16::from(low | ((((high >> (2 * ib)) & 3) as u8) << 4)) - 32;
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pairs, _mm256_set1_epi16(ls)));
        }
        sumi
    }
}

/// Byte controls for `vpshufb` that give, for 32-value chunk `k` of a 128-value half, the i16
/// scale of its first 16 values (sub-block `2k` of the half) in the low 128-bit lane and of
/// the next 16 (sub-block `2k + 1`) in the high lane (ggml's `get_scale_shuffle_q3k`).
static CHUNK_SCALES: [[u8; 32]; 4] = {
    let mut t = [[0u8; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let mut i = 0;
        while i < 16 {
            t[k][i] = (4 * k + i % 2) as u8;
            t[k][16 + i] = (4 * k + 2 + i % 2) as u8;
            i += 1;
        }
        k += 1;
    }
    t
};

/// The 16 i16 scales of a super-block (`sc`, i8) as two registers, each holding one 128-value
/// half's eight scales in both 128-bit lanes, ready for [`CHUNK_SCALES`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn half_scales(sc: __m128i) -> [__m256i; 2] {
    let all = _mm256_cvtepi8_epi16(sc);
    let (lo, hi) = (
        _mm256_castsi256_si128(all),
        _mm256_extracti128_si256::<1>(all),
    );
    [_mm256_set_m128i(lo, lo), _mm256_set_m128i(hi, hi)]
}

/// Q2_K's ggml lanes (`ggml_vec_dot_q2_K_q8_K`): `s` lane `L` = the sum over the eight 32-value
/// chunks `(j, k)` of the scale of the chunk's 16-value sub-block holding positions `4L..4L+4`
/// times their products; `m` lane `L` = `min[2L] * bsum[2L] + min[2L+1] * bsum[2L+1]`.
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for 84 bytes, `y` for one Q8_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q2k_lane_ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
    // SAFETY: scales at 0..16, qs at 16..80 (32 bytes per 128 values); Q8_K quants at
    // 4..260, bsums at 260..292; the shuffle tables are 32 bytes each.
    unsafe {
        let m4 = _mm_set1_epi8(0x0F);
        let packed = _mm_loadu_si128(x.cast());
        let mins = _mm256_cvtepi8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), m4));
        let m = _mm256_madd_epi16(mins, load256(y.add(Q8K_BSUMS)));
        let scales = half_scales(_mm_and_si128(packed, m4));
        let codes = q2k_codes(x);
        let mut sumi = _mm256_setzero_si256();
        for (c, &code) in codes.iter().enumerate() {
            let p = _mm256_maddubs_epi16(code, load256(y.add(Q8K_QS + 32 * c)));
            let sc = _mm256_shuffle_epi8(scales[c / 4], load256(CHUNK_SCALES[c % 4].as_ptr()));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p));
        }
        (sumi, m)
    }
}

/// The 256 codes of a Q2_K super-block (0..4) in element order, 32 per register: value
/// `128j + 32k + p` is bits `2k..2k+2` of byte `32j + p` of `qs` (at 16..80).
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for 84 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q2k_codes(x: *const u8) -> [__m256i; 8] {
    // SAFETY: qs at 16..80 (contract).
    unsafe { two_bit_codes(x.add(16)) }
}

/// The 2-bit fields of 64 bytes at `qs` in element order (see [`q2k_codes`]).
///
/// # Safety
/// AVX2+FMA+F16C; `qs` valid for 64 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn two_bit_codes(qs: *const u8) -> [__m256i; 8] {
    let m3 = _mm256_set1_epi8(3);
    // SAFETY: 64 readable bytes (contract).
    let bits = unsafe { [load256(qs), load256(qs.add(32))] };
    core::array::from_fn(|c| {
        let v = bits[c / 4];
        let v = match c % 4 {
            0 => v,
            1 => _mm256_srli_epi16(v, 2),
            2 => _mm256_srli_epi16(v, 4),
            _ => _mm256_srli_epi16(v, 6),
        };
        _mm256_and_si256(v, m3)
    })
}

/// The 256 codes of a Q3_K super-block stored +4 (0..8: the low two bits from `qs` as in
/// Q2_K, plus 4 where the value's bit of `hmask` is set; the value is the code minus 4), in
/// element order, 32 per register.
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for 110 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q3k_codes(x: *const u8) -> [__m256i; 8] {
    let one = _mm256_set1_epi8(1);
    // SAFETY: hmask at 0..32 (bit c of byte p: value 32c + p), qs at 32..96 (contract).
    let (hmask, low) = unsafe { (load256(x), two_bit_codes(x.add(32))) };
    let shift = |v: __m256i, n: usize| match n {
        0 => v,
        1 => _mm256_srli_epi16(v, 1),
        2 => _mm256_srli_epi16(v, 2),
        3 => _mm256_srli_epi16(v, 3),
        4 => _mm256_srli_epi16(v, 4),
        5 => _mm256_srli_epi16(v, 5),
        6 => _mm256_srli_epi16(v, 6),
        _ => _mm256_srli_epi16(v, 7),
    };
    core::array::from_fn(|c| {
        let high = _mm256_slli_epi16(_mm256_and_si256(shift(hmask, c), one), 2);
        _mm256_or_si256(low[c], high)
    })
}

/// Q3_K's ggml lanes (`ggml_vec_dot_q3_K_q8_K`): lane `L` = the sum over the eight 32-value
/// chunks of the chunk's sub-block scale (`sc - 32`) times the products at positions
/// `4L..4L+4`, a weight being its code minus 4 (ggml forms each i16 pair as
/// `maddubs(low2, a) - maddubs(4 * !high, a)`; `maddubs(code, a) - maddubs(4, a)` is the same
/// integer, pair by pair).
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for 110 bytes, `y` for one Q8_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3k_lane_ints(x: *const u8, y: *const u8) -> __m256i {
    // SAFETY: the codes at 0..96, scales at 96..108; Q8_K quants at 4..260; the shuffle
    // tables are 32 bytes each.
    unsafe {
        let scales = half_scales(_mm_sub_epi8(q3k_scales(x), _mm_set1_epi8(32)));
        let codes = q3k_codes(x);
        let four = _mm256_set1_epi8(4);
        let mut sumi = _mm256_setzero_si256();
        for (c, &code) in codes.iter().enumerate() {
            let a = load256(y.add(Q8K_QS + 32 * c));
            let p = _mm256_sub_epi16(_mm256_maddubs_epi16(code, a), _mm256_maddubs_epi16(four, a));
            let sc = _mm256_shuffle_epi8(scales[c / 4], load256(CHUNK_SCALES[c % 4].as_ptr()));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p));
        }
        sumi
    }
}

/// The sixteen 6-bit scales of a Q3_K super-block (12 bytes at 96), unsigned (0..64), as
/// bytes in sub-block order.
///
/// # Safety
/// `x` valid for 108 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q3k_scales(x: *const u8) -> __m128i {
    // SAFETY: 12 bytes at 96..108 (contract).
    let word = |i: usize| unsafe { x.add(96 + 4 * i).cast::<u32>().read_unaligned() };
    let (a0, a1, a2) = (word(0), word(1), word(2));
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    _mm_setr_epi32(
        ((a0 & LOW4) | ((a2 & LOW2) << 4)) as i32,
        ((a1 & LOW4) | (((a2 >> 2) & LOW2) << 4)) as i32,
        (((a0 >> 4) & LOW4) | (((a2 >> 4) & LOW2) << 4)) as i32,
        (((a1 >> 4) & LOW4) | (((a2 >> 6) & LOW2) << 4)) as i32,
    )
}

/// A k-quant super-block format, as the single-row and eight-row kernels see it.
pub(super) trait KBlock {
    /// Bytes per super-block.
    const W_BYTES: usize;
    /// Whether the format has mins (Q4_K/Q5_K: the `m_b` chain).
    const HAS_MIN: bool;
    /// Offset of the f16 `d` (then `dmin` right after it, when `HAS_MIN`).
    const D_AT: usize;
    /// Whether the format sums in ggml's eight-lane order (Q2_K, Q3_K, Q5_K, Q6_K, IQ4_XS;
    /// module docs), with `ints` giving ggml's i32 lanes; otherwise one f32 chain per pair
    /// (Q4_K).
    const GGML_LANES: bool;
    /// Whether, in ggml's lanes, the mins meet the lanes too (Q2_K: each super-block first
    /// adds `-(da * dmin) * m_L` to lane `L`, then `da * d * s_L`) rather than a scalar chain
    /// added at the end (Q5_K).
    const MINS_IN_LANES: bool = false;

    /// The exact integer parts of the super-block at `x` against the Q8_K block at `y`:
    /// lanes summing to `s_b` and (only meaningful when `HAS_MIN`) to `m_b`.
    ///
    /// # Safety
    /// AVX2+FMA+F16C; `x` valid for `W_BYTES` bytes, `y` for one Q8_K block.
    unsafe fn ints(x: *const u8, y: *const u8) -> (__m256i, __m256i);
}

pub(super) struct Q4K;
pub(super) struct Q5K;
pub(super) struct Q6K;
pub(super) struct Iq4Xs;
pub(super) struct Q2K;
pub(super) struct Q3K;

impl KBlock for Q2K {
    const W_BYTES: usize = 84;
    const HAS_MIN: bool = true;
    const D_AT: usize = 80;
    const GGML_LANES: bool = true;
    const MINS_IN_LANES: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
        // SAFETY: forwarded contract.
        unsafe { q2k_lane_ints(x, y) }
    }
}

impl KBlock for Q3K {
    const W_BYTES: usize = 110;
    const HAS_MIN: bool = false;
    const D_AT: usize = 108;
    const GGML_LANES: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
        // SAFETY: forwarded contract.
        (unsafe { q3k_lane_ints(x, y) }, _mm256_setzero_si256())
    }
}

impl KBlock for Q4K {
    const W_BYTES: usize = 144;
    const HAS_MIN: bool = true;
    const D_AT: usize = 0;
    const GGML_LANES: bool = false;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
        // SAFETY: forwarded contract.
        unsafe { q4k_ints(x, y) }
    }
}

impl KBlock for Q5K {
    const W_BYTES: usize = 176;
    const HAS_MIN: bool = true;
    const D_AT: usize = 0;
    const GGML_LANES: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
        // SAFETY: forwarded contract.
        unsafe { q5k_lane_ints(x, y) }
    }
}

impl KBlock for Q6K {
    const W_BYTES: usize = 210;
    const HAS_MIN: bool = false;
    const D_AT: usize = 208;
    const GGML_LANES: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
        // SAFETY: forwarded contract.
        (unsafe { q6k_ints(x, y) }, _mm256_setzero_si256())
    }
}

impl KBlock for Iq4Xs {
    const W_BYTES: usize = 136;
    const HAS_MIN: bool = false;
    const D_AT: usize = 0;
    const GGML_LANES: bool = true;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn ints(x: *const u8, y: *const u8) -> (__m256i, __m256i) {
        // SAFETY: forwarded contract.
        (unsafe { iq4xs_lane_ints(x, y) }, _mm256_setzero_si256())
    }
}

/// One weight row against one activation row, in the order of the module docs.
///
/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for the weight type of `K`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot<K: KBlock>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    if K::GGML_LANES {
        // SAFETY: forwarded contract.
        return unsafe { vec_dot_lanes::<K>(n, w, act) };
    }
    let (w, act) = (w.as_ptr(), act.as_ptr());
    let mut acc = _mm_setzero_ps();
    let mut macc = _mm_setzero_ps();
    for b in 0..n / 256 {
        // SAFETY: block b of both rows is in bounds (VecDotFn contract); d (and dmin) lie
        // inside the weight block at D_AT, the Q8_K d at 0..4.
        unsafe {
            let (x, y) = (w.add(b * K::W_BYTES), act.add(b * Q8K_BYTES));
            let (s, m) = K::ints(x, y);
            let da = _mm_set_ss(f32_at(y));
            let d = _mm_mul_ss(_mm_set_ss(f16_at(x.add(K::D_AT))), da);
            acc = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), hsum_epi32(s)), d, acc);
            if K::HAS_MIN {
                let dmin = _mm_mul_ss(_mm_set_ss(f16_at(x.add(K::D_AT + 2))), da);
                let m = _mm_cvtsi32_ss(_mm_setzero_ps(), hsum_epi32(m));
                macc = _mm_fmadd_ss(m, dmin, macc);
            }
        }
    }
    _mm_cvtss_f32(_mm_sub_ss(acc, macc))
}

/// The float part of ggml's eight-lane order for one super-block (module docs): the lanes
/// `s` meet `da * dw` in `acc`; with mins, `summs = fma(-(da * dmin), f32(sum of m), summs)`.
///
/// # Safety
/// AVX2+FMA+F16C; `x` valid for `K::W_BYTES` bytes, `y` for one Q8_K block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn lanes_step<K: KBlock>(
    x: *const u8,
    y: *const u8,
    s: __m256i,
    m: __m256i,
    acc: &mut __m256,
    summs: &mut f32,
) {
    // SAFETY: d (and dmin) lie inside the weight block at D_AT, the Q8_K d at 0..4.
    unsafe {
        let da = f32_at(y);
        let d = _mm256_set1_ps(da * f16_at(x.add(K::D_AT)));
        if K::MINS_IN_LANES {
            let dmin = _mm256_set1_ps(-(da * f16_at(x.add(K::D_AT + 2))));
            *acc = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(m), *acc);
            *acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), *acc);
            return;
        }
        *acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), *acc);
        if K::HAS_MIN {
            let dmin = -(da * f16_at(x.add(K::D_AT + 2)));
            *summs = dmin.mul_add(hsum_epi32(m) as f32, *summs);
        }
    }
}

/// [`vec_dot`] in ggml's eight-lane order (Q5_K, Q6_K).
///
/// # Safety
/// As [`vec_dot`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_lanes<K: KBlock>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let (w, act) = (w.as_ptr(), act.as_ptr());
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0f32;
    for b in 0..n / 256 {
        // SAFETY: block b of both rows is in bounds (VecDotFn contract).
        unsafe {
            let (x, y) = (w.add(b * K::W_BYTES), act.add(b * Q8K_BYTES));
            let (s, m) = K::ints(x, y);
            lanes_step::<K>(x, y, s, m, &mut acc, &mut summs);
        }
    }
    hsum_ps(acc) + summs
}

/// Eight f16 at `p + r * stride` (r < 8) as f32 lanes.
///
/// # Safety
/// Those eight 2-byte fields are readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn halves8(p: *const u8, stride: usize) -> __m256 {
    let mut h = [0i16; 8];
    for (r, v) in h.iter_mut().enumerate() {
        // SAFETY: forwarded contract; unaligned read.
        *v = i16::from_le(unsafe { p.add(r * stride).cast::<i16>().read_unaligned() });
    }
    // SAFETY: a 16-byte array; loadu has no alignment requirement.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(h.as_ptr().cast()) })
}

/// Eight consecutive weight rows (at `w + r * ws`) against one activation row; writes
/// `out[0..8]`, each bit-identical to [`vec_dot`]: the eight rows' integer lanes are reduced
/// to one register (lane = row) and the float part runs once per eight rows. Later rows (whole
/// passes of eight, at least `prefetch_ahead`'s distance on) are prefetched linearly into L2
/// while these run, as in `legacy_tile`: read as eight streams, the rows defeat the hardware
/// prefetchers.
///
/// # Safety
/// AVX2+FMA+F16C; eight rows of `nb` blocks at `w + r * ws`, `nb` Q8_K blocks at `act`,
/// eight writable f32 at `out`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn matvec8<K: KBlock>(
    nb: usize,
    w: *const u8,
    ws: usize,
    act: *const u8,
    out: *mut f32,
) {
    let mut acc = _mm256_setzero_ps();
    let mut macc = _mm256_setzero_ps();
    // ggml's order (GGML_LANES): eight f32 lanes and a mins chain per row.
    let mut lane_acc = [_mm256_setzero_ps(); 8];
    let mut summs = [0f32; 8];
    let next = w.wrapping_add(prefetch_ahead(8 * ws));
    let lines_per_block = (8 * ws).div_ceil(64 * nb.max(1));
    for b in 0..nb {
        for l in 0..lines_per_block {
            let p = next.wrapping_add(64 * (b * lines_per_block + l));
            // A hint: it never faults, whatever the address.
            _mm_prefetch::<_MM_HINT_T1>(p.cast());
        }
        // SAFETY: block b of each of the eight rows and of the activation row is in bounds
        // (contract); d/dmin at D_AT inside each weight block.
        unsafe {
            let x = w.add(b * K::W_BYTES);
            let y = act.add(b * Q8K_BYTES);
            let mut s = [_mm256_setzero_si256(); 8];
            let mut m = [_mm256_setzero_si256(); 8];
            for r in 0..8 {
                (s[r], m[r]) = K::ints(x.add(r * ws), y);
            }
            if K::GGML_LANES {
                for r in 0..8 {
                    let xr = x.add(r * ws);
                    lanes_step::<K>(xr, y, s[r], m[r], &mut lane_acc[r], &mut summs[r]);
                }
                continue;
            }
            let da = _mm256_set1_ps(f32_at(y));
            let d = _mm256_mul_ps(halves8(x.add(K::D_AT), ws), da);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(&s)), d, acc);
            if K::HAS_MIN {
                let dmin = _mm256_mul_ps(halves8(x.add(K::D_AT + 2), ws), da);
                macc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(&m)), dmin, macc);
            }
        }
    }
    if K::GGML_LANES {
        for r in 0..8 {
            // SAFETY: eight writable f32 (contract).
            unsafe { *out.add(r) = hsum_ps(lane_acc[r]) + summs[r] };
        }
        return;
    }
    // SAFETY: eight writable f32 (contract).
    unsafe { _mm256_storeu_ps(out, _mm256_sub_ps(acc, macc)) };
}

/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for Q4_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_q4_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { vec_dot::<Q4K>(n, w, act) }
}

/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for Q5_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_q5_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { vec_dot::<Q5K>(n, w, act) }
}

/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for Q6_K.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot_q6_k(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { vec_dot::<Q6K>(n, w, act) }
}

/// A tile for a format without a packed GEMM (Q2_K, Q3_K, IQ4_XS): each activation row against
/// the rows eight at a time through [`matvec8`], the last `rows % 8` through [`vec_dot`];
/// every value is [`vec_dot`]'s.
///
/// # Safety
/// As [`crate::kernel_set::TileFn`] for the weight type of `K`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn rows_tile<K: KBlock>(t: &TileArgs<'_>, out: &mut [f32], out_stride: usize) {
    let (w, ws, nb) = (t.w.as_ptr(), t.w_stride, t.n / 256);
    for j in 0..t.acts {
        // SAFETY: activation row j and its outputs lie inside the validated tile (TileFn
        // contract).
        let (a, o) = unsafe {
            (
                t.act.as_ptr().add(j * t.act_stride),
                out.as_mut_ptr().add(j * out_stride),
            )
        };
        let mut r = 0;
        while r + 8 <= t.rows {
            // SAFETY: rows r..r+8 and outputs r..r+8 lie inside the validated tile.
            unsafe { matvec8::<K>(nb, w.add(r * ws), ws, a, o.add(r)) };
            r += 8;
        }
        for r in r..t.rows {
            // SAFETY: row r, activation row j and output (j, r) are inside the validated tile;
            // `vec_dot` reads only the first `n` values of each.
            unsafe {
                let row = core::slice::from_raw_parts(w.add(r * ws), t.w.len() - r * ws);
                let act = core::slice::from_raw_parts(a, t.act.len() - j * t.act_stride);
                *o.add(r) = vec_dot::<K>(t.n, row, act);
            }
        }
    }
}

/// The tile in `reference::vec_dot_batch_order`'s order for a format without mins and without
/// a packed GEMM (IQ4_XS): llama.cpp's tiled GEMM, which per pair and super-block rounds
/// `t = dw * f32(s_b)` and accumulates `acc = fma(t, da, acc)`.
///
/// # Safety
/// As [`crate::kernel_set::TileFn`] for the weight type of `K`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tiled_order_tile<K: KBlock>(
    t: &TileArgs<'_>,
    out: &mut [f32],
    out_stride: usize,
) {
    debug_assert!(!K::HAS_MIN, "the tiled order with mins is kquant_tile's");
    let (w, a) = (t.w.as_ptr(), t.act.as_ptr());
    for j in 0..t.acts {
        for r in 0..t.rows {
            let mut acc = 0f32;
            for b in 0..t.n / 256 {
                // SAFETY: block b of weight row r and of activation row j lie inside the
                // validated tile; d at D_AT inside the weight block, the Q8_K d at 0..4.
                unsafe {
                    let x = w.add(r * t.w_stride + b * K::W_BYTES);
                    let y = a.add(j * t.act_stride + b * Q8K_BYTES);
                    let term = f16_at(x.add(K::D_AT)) * hsum_epi32(K::ints(x, y).0) as f32;
                    acc = term.mul_add(f32_at(y), acc);
                }
            }
            out[j * out_stride + r] = acc;
        }
    }
}
