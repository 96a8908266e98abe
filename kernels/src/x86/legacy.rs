//! Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL and MXFP4 weights against Q8_0 / Q8_1 activations
//! (32-value blocks): the block formats and the single-row dot product.
//!
//! # The summation order (shared with the matvec and GEMM kernels of `legacy_tile`)
//!
//! The dispatch table uses this order, and `legacy_tile`, for Q4_0, IQ4_NL and MXFP4: it is
//! the order of llama.cpp's repacked Q4_0, IQ4_NL and MXFP4 kernels on AVX2
//! (`gemv_q4_b32_8x8_q8_0_lut_avx` and its gemm, one template for the three; MXFP4's weight
//! scale is the E8M0 half-scale; IQ4_NL and MXFP4 take their codes from a table). Q4_1, Q5_0,
//! Q5_1 and Q8_0 are dispatched to [`super::legacy_lanes`], which keeps ggml's 8-lane order;
//! the `Legacy` impls of those types here serve both modules. For batches whose rows must not
//! depend on each other (the row tiles of the dispatch table), they use this order too: it is
//! the fastest.
//!
//! For every (weight row, activation row) pair and every block `b`, the integer dot product
//! `s_b = sum_k w_k a_k` (true signed weights: `q - 8`, `q - 16`, `q`, the i8 code, or
//! the table value of IQ4_NL and MXFP4) is exact in i32. The result is the sequential chain
//! `acc = fma(f32(s_b), dw_b * da_b, acc)` over `b = 0, 1, ...` (the scale product rounded
//! to f32 first; for MXFP4 `dw_b` is the E8M0 half-scale, as in llama.cpp), and for Q4_1 and
//! Q5_1 after each block `acc = fma(mw_b, sa_b, acc)` (the weight minimum times Q8_1's
//! `s = d * sum(q)`). One f32 lane per pair is all this needs, so the GEMM can hold eight
//! weight rows in the eight lanes of a register and still produce exactly the bits of this
//! function; the integer part can be formed in any order (it is exact).
//!
//! Integer products use `maddubs` (u8 x i8 -> pairs of i16): nibble weights stay unsigned
//! (0..15 or 0..31) and the zero point is removed exactly (`- 8 * sum(a)`); signed Q8_0 and
//! IQ4_NL weights use `|w| x sign(a, w)`, whose pair sums lie in -32768..=32512 for every byte
//! pattern, so they never saturate either. MXFP4's table values (-12..=12) are shifted to
//! unsigned codes 0..=24 with zero point 12, like Q4_0's nibbles (ggml's kernels use the sign
//! trick instead; both are exact on every activation the Q8_0 quantizers write, which never
//! hold -128).

use core::arch::x86_64::*;

use crate::formats::{e8m0_to_f32_half, IQ4NL_VALUES, MXFP4_VALUES};

use super::simd::{bits_to_bytes, f16_at, hsum_epi32, load256, nibbles32, sum_pairs_i16};

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
    /// Whether a block is `d: f16, m: f16, qs: [u8; 16]` (Q4_1): one 32-byte load at its
    /// start then holds `d | m << 16` as i32 word 0 and the nibble bytes as words 1..5, so
    /// eight rows can be packed for the GEMM with one transpose and no per-row extraction.
    const DM_THEN_NIBBLES: bool = false;
    /// Zero point subtracted from the unsigned codes (0: none).
    const OFFSET: i8;
    /// Whether the codes are signed i8 (Q8_0, MXFP4) rather than unsigned.
    const SIGNED: bool;
    /// Whether the block scale is an E8M0 exponent byte at offset 0 (MXFP4, read by
    /// [`Legacy::d`]) rather than an f16 there.
    const E8M0: bool = false;
    /// The zero point of the codes as the `vpdpbusd` routes take them ([`vnni_codes`], in
    /// `legacy_tile` and `legacy_lanes`): the unsigned codes' own, and 128 for signed ones,
    /// which are flipped to `w + 128`. The products then need no sign trick, and `vpdpbusd`
    /// sums them exactly in i32 (where `maddubs` would saturate its i16 pairs at
    /// 255 x 127 x 2).
    const VNNI_OFFSET: u8 = if Self::SIGNED {
        0x80
    } else {
        Self::OFFSET as u8
    };
    /// How many 4-value groups of `maddubs` pairs may be summed in i16 without overflow
    /// (per pair at most 2 * max|code| * 128).
    const I16_GROUPS: usize;

    /// The 32 codes of the block at `p`, in element order (u8, or i8 when `SIGNED`).
    ///
    /// # Safety
    /// AVX2+FMA+F16C present; `p` valid for `W_BYTES` bytes.
    unsafe fn codes(p: *const u8) -> __m256i;

    /// The block scale d.
    ///
    /// # Safety
    /// AVX2+FMA+F16C present; `p` valid for `W_BYTES` bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn d(p: *const u8) -> f32 {
        // SAFETY: d is the f16 at bytes 0..2 of every block of this family.
        unsafe { f16_at(p) }
    }

    /// The weight minimum `m` (only called when `HAS_MIN`): the f16 at bytes 2..4, right after
    /// `d`, in every format of the family that has one (Q4_1, Q5_1).
    ///
    /// # Safety
    /// AVX2+FMA+F16C present; `p` valid for `W_BYTES` bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn m(p: *const u8) -> f32 {
        // SAFETY: every block of the family is at least 17 bytes long.
        unsafe { f16_at(p.add(2)) }
    }
}

pub(super) struct Q4_0;
pub(super) struct Q4_1;
pub(super) struct Q5_0;
pub(super) struct Q5_1;
pub(super) struct Q8_0;
pub(super) struct Iq4Nl;
pub(super) struct Mxfp4;

impl Legacy for Q4_0 {
    const W_BYTES: usize = 18;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;
    const OFFSET: i8 = 8;
    const SIGNED: bool = false;
    const I16_GROUPS: usize = 8; // 8 * 2 * 15 * 128 = 30720

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> __m256i {
        // SAFETY: 18-byte block: d at 0..2, 16 nibble bytes at 2..18.
        unsafe { nibbles32(p.add(2)) }
    }
}

impl Legacy for Q4_1 {
    const W_BYTES: usize = 20;
    const A_BYTES: usize = 36;
    const A_QS: usize = 4;
    const HAS_MIN: bool = true;
    const DM_THEN_NIBBLES: bool = true;
    const OFFSET: i8 = 0;
    const SIGNED: bool = false;
    const I16_GROUPS: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> __m256i {
        // SAFETY: 20-byte block: d at 0..2, m at 2..4, 16 nibble bytes at 4..20.
        unsafe { nibbles32(p.add(4)) }
    }
}

/// The 32 five-bit codes of a Q5_0/Q5_1 block whose fifth bits (u32 LE, bit j for value j)
/// are at `qh` and whose 16 nibble bytes follow them.
///
/// # Safety
/// AVX2+FMA+F16C present; `qh` valid for 20 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn five_bit_codes(qh: *const u8) -> __m256i {
    // SAFETY: 4 bytes of fifth bits, then 16 nibble bytes (contract).
    unsafe {
        let bits = qh.cast::<u32>().read_unaligned();
        let high = _mm256_and_si256(bits_to_bytes(u32::from_le(bits)), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles32(qh.add(4)), high)
    }
}

impl Legacy for Q5_0 {
    const W_BYTES: usize = 22;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;
    const OFFSET: i8 = 16;
    const SIGNED: bool = false;
    const I16_GROUPS: usize = 4; // 4 * 2 * 31 * 128 = 31744

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> __m256i {
        // SAFETY: 22-byte block: d at 0..2, qh (u32 LE) at 2..6, 16 nibble bytes at 6..22.
        unsafe { five_bit_codes(p.add(2)) }
    }
}

impl Legacy for Q5_1 {
    const W_BYTES: usize = 24;
    const A_BYTES: usize = 36;
    const A_QS: usize = 4;
    const HAS_MIN: bool = true;
    const OFFSET: i8 = 0;
    const SIGNED: bool = false;
    const I16_GROUPS: usize = 4; // 4 * 2 * 31 * 128 = 31744

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> __m256i {
        // SAFETY: 24-byte block: d at 0..2, m at 2..4, qh (u32 LE) at 4..8, 16 nibble bytes
        // at 8..24.
        unsafe { five_bit_codes(p.add(4)) }
    }
}

impl Legacy for Q8_0 {
    const W_BYTES: usize = 34;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;
    const OFFSET: i8 = 0;
    const SIGNED: bool = true;
    const I16_GROUPS: usize = 1;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> __m256i {
        // SAFETY: 34-byte block: d at 0..2, 32 i8 quants at 2..34.
        unsafe { load256(p.add(2)) }
    }
}

/// IQ4_NL: the signed table values (-127..=113) of its nibbles, through the sign trick like
/// Q8_0 (as unsigned codes with a zero point, `maddubs` pairs could saturate).
impl Legacy for Iq4Nl {
    const W_BYTES: usize = 18;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;
    const OFFSET: i8 = 0;
    const SIGNED: bool = true;
    const I16_GROUPS: usize = 1;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> __m256i {
        // SAFETY: 18-byte block: d at 0..2, 16 nibble bytes at 2..18; the table is 16 bytes.
        unsafe {
            let table = _mm_loadu_si128(IQ4NL_VALUES.as_ptr().cast());
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(table), nibbles32(p.add(2)))
        }
    }
}

/// MXFP4's table values plus 12: unsigned codes 0..=24, with 12 as the zero point.
static MXFP4_PLUS_12: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        t[i] = (MXFP4_VALUES[i] + 12) as u8;
        i += 1;
    }
    t
};

/// MXFP4 as unsigned codes `value + 12` with zero point 12 (exact, like Q4_0's `q` and 8): the
/// unsigned `maddubs`/`vpdpbusd` route of Q4_0, faster than the sign trick.
impl Legacy for Mxfp4 {
    const W_BYTES: usize = 17;
    const A_BYTES: usize = 34;
    const A_QS: usize = 2;
    const HAS_MIN: bool = false;
    const OFFSET: i8 = 12;
    const SIGNED: bool = false;
    const E8M0: bool = true;
    const I16_GROUPS: usize = 4; // 4 * 2 * 24 * 128 = 24576

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn codes(p: *const u8) -> __m256i {
        // SAFETY: 17-byte block: the exponent at 0, 16 nibble bytes at 1..17; the table is 16
        // bytes.
        unsafe {
            let table = _mm_loadu_si128(MXFP4_PLUS_12.as_ptr().cast());
            _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(table), nibbles32(p.add(1)))
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn d(p: *const u8) -> f32 {
        // SAFETY: the exponent byte is byte 0 of the block.
        e8m0_to_f32_half(unsafe { *p })
    }
}

/// `maddubs(OFFSET, a)`: the zero point's i16 pair sums, shared by every weight row.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn offset_pairs<L: Legacy>(a: __m256i) -> __m256i {
    _mm256_maddubs_epi16(_mm256_set1_epi8(L::OFFSET), a)
}

/// The block's codes as the `vpdpbusd` routes take them: unsigned, with zero point
/// [`Legacy::VNNI_OFFSET`] (signed codes `w` become the bytes `w + 128`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn vnni_codes<L: Legacy>(codes: __m256i) -> __m256i {
    if L::SIGNED {
        _mm256_xor_si256(codes, _mm256_set1_epi8(i8::MIN))
    } else {
        codes
    }
}

/// Eight i32 partial sums of one block's `sum_k w_k a_k` (their total is exact).
/// `off` is [`offset_pairs`] of `a`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn block_partials<L: Legacy>(codes: __m256i, a: __m256i, off: __m256i) -> __m256i {
    let pairs = if L::SIGNED {
        _mm256_maddubs_epi16(_mm256_abs_epi8(codes), _mm256_sign_epi8(a, codes))
    } else if L::OFFSET != 0 {
        _mm256_sub_epi16(_mm256_maddubs_epi16(codes, a), off)
    } else {
        _mm256_maddubs_epi16(codes, a)
    };
    sum_pairs_i16(pairs)
}

/// One weight row against one activation row, in the order the module docs define.
///
/// # Safety
/// As [`crate::kernel_set::VecDotFn`] for a weight type of family `L`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn vec_dot<L: Legacy>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let (w, act) = (w.as_ptr(), act.as_ptr());
    let mut acc = _mm_setzero_ps();
    for b in 0..n / 32 {
        // SAFETY: block b of both rows is in bounds (VecDotFn contract); the fields read lie
        // inside their blocks (d at 0..2; quants at A_QS..A_QS + 32).
        unsafe {
            let (x, y) = (w.add(b * L::W_BYTES), act.add(b * L::A_BYTES));
            let a = load256(y.add(L::A_QS));
            let s = hsum_epi32(block_partials::<L>(L::codes(x), a, offset_pairs::<L>(a)));
            let scale = _mm_mul_ss(_mm_set_ss(L::d(x)), _mm_set_ss(f16_at(y)));
            acc = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), s), scale, acc);
            if L::HAS_MIN {
                // Q8_1's s at bytes 2..4 of the activation block.
                acc = _mm_fmadd_ss(_mm_set_ss(L::m(x)), _mm_set_ss(f16_at(y.add(2))), acc);
            }
        }
    }
    _mm_cvtss_f32(acc)
}
