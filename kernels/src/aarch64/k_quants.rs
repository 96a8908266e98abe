//! vec_dot for the k-quants and IQ4_XS against Q8_K activations: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
//! IQ4_XS (256-value super-blocks, layouts of ggml-common.h).
//!
//! Per super-block the dot product is `d_w * d_a * sum_j(scale_j * dot_j) - dmin_w * d_a *
//! sum_j(min_j * bsum_j)`, with every sum over integers exact; only the final scaling is f32.
//! The Q8_K activations carry `bsums` (sums of 16 consecutive quants), which turn each offset
//! term into 8 or 16 multiplies instead of a pass over the data.

use core::arch::aarch64::*;

use super::block::{Acc, BlockDot};
use super::dot::I8Dot;
use super::legacy::table_codes;
use super::load::{f16_at, f32_at, i16x8, i8x16, nibbles, u8x16};
use crate::formats::IQ4NL_VALUES;

/// Values per super-block.
pub(super) const QK_K: usize = 256;
/// Q8_K: f32 d, 256 i8 quants, 16 i16 bsums.
pub(super) const Q8_K_BYTES: usize = 292;
/// Offset of the quants in a Q8_K block.
pub(super) const Q8_K_QS: usize = 4;
/// Offset of the bsums in a Q8_K block.
const Q8_K_BSUMS: usize = 260;

/// Unpacks the 8 six-bit scales and 8 six-bit mins of a Q4_K/Q5_K super-block (the 12 bytes at
/// offset 4): sub-blocks 0..4 keep theirs in the low 6 bits of bytes 0..8, sub-blocks 4..8 put
/// their low 4 bits in bytes 8..12 and their top 2 bits in the spare top bits of bytes 0..8.
#[inline(always)]
pub(super) fn scales_and_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..4 {
        scales[j] = s[j] & 63;
        mins[j] = s[j + 4] & 63;
        scales[j + 4] = (s[j + 8] & 0x0F) | ((s[j] >> 6) << 4);
        mins[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (scales, mins)
}

/// `sum_j mins[j] * (bsums[2j] + bsums[2j+1])` for the 8 32-value sub-blocks of a Q8_K block.
#[inline(always)]
pub(super) unsafe fn min_terms(mins: &[u8; 8], act: &[u8]) -> i32 {
    // SAFETY: register-only NEON on checked loads; `mins` is 8 bytes.
    unsafe {
        // Pairwise adds of adjacent 16-value sums give the 32-value sums (|.| <= 4064: fits i16).
        let pairs = vpaddq_s16(i16x8(act, Q8_K_BSUMS), i16x8(act, Q8_K_BSUMS + 16));
        let mins = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mins.as_ptr())));
        let lo = vmull_s16(vget_low_s16(pairs), vget_low_s16(mins));
        vaddvq_s32(vmlal_high_s16(lo, pairs, mins))
    }
}

/// Adds a super-block's `d * sum(scale * dot) - dmin * sum(min * bsum)` to `acc`.
#[inline(always)]
fn add_super_block(acc: Acc, d: f32, scaled: i32, dmin: f32, offsets: i32) -> Acc {
    let scalar = acc.scalar + d * scaled as f32 - dmin * offsets as f32;
    Acc { scalar, ..acc }
}

/// Q4_K: f16 d, f16 dmin, 12 bytes of packed 6-bit scales/mins, 128 nibble bytes; eight
/// 32-value sub-blocks with value = d * scale * q - dmin * min.
pub(super) struct Q4K;

impl BlockDot for Q4K {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = 144;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, wb: &[u8], ab: &[u8]) -> Acc {
        // SAFETY: register-only NEON plus loads from fixed-size block slices (see `load`); the
        // caller guarantees the level's features.
        unsafe {
            let zero = vdupq_n_s32(0);
            let (scales, mins) = scales_and_mins(&wb[4..16]);
            let mut isum = zero;
            for k in 0..4 {
                // 32 bytes hold sub-block 2k in their low nibbles and 2k+1 in their high ones.
                let (l0, h0) = nibbles(u8x16(wb, 16 + 32 * k));
                let (l1, h1) = nibbles(u8x16(wb, 32 + 32 * k));
                let a = Q8_K_QS + 64 * k;
                let lo = D::dot(D::dot(zero, l0, i8x16(ab, a)), l1, i8x16(ab, a + 16));
                let hi = D::dot(D::dot(zero, h0, i8x16(ab, a + 32)), h1, i8x16(ab, a + 48));
                isum = vmlaq_n_s32(isum, lo, i32::from(scales[2 * k]));
                isum = vmlaq_n_s32(isum, hi, i32::from(scales[2 * k + 1]));
            }
            let da = f32_at(ab, 0);
            let offsets = min_terms(&mins, ab);
            add_super_block(
                acc,
                f16_at(wb, 0) * da,
                vaddvq_s32(isum),
                f16_at(wb, 2) * da,
                offsets,
            )
        }
    }
}

/// Q5_K: as Q4_K plus 32 bytes of fifth bits (at 16) before the nibbles (at 48).
pub(super) struct Q5K;

impl BlockDot for Q5K {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = 176;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, wb: &[u8], ab: &[u8]) -> Acc {
        // SAFETY: as in `Q4K::step`.
        unsafe {
            let zero = vdupq_n_s32(0);
            let one = vdupq_n_u8(1);
            let two = vdupq_n_u8(2);
            let (scales, mins) = scales_and_mins(&wb[4..16]);
            // Bit 2k of qh[l] is the fifth bit of value l of sub-block 2k, bit 2k+1 that of
            // sub-block 2k+1; shifting right by 2 per step brings the next pair to bits 0, 1.
            let mut qh0 = u8x16(wb, 16);
            let mut qh1 = u8x16(wb, 32);
            let mut isum = zero;
            for k in 0..4 {
                let (l0, h0) = nibbles(u8x16(wb, 48 + 32 * k));
                let (l1, h1) = nibbles(u8x16(wb, 64 + 32 * k));
                let fifth = |qh: uint8x16_t, mask: uint8x16_t| -> int8x16_t {
                    // (qh & mask) moved to 0x10: mask 1 shifts by 4, mask 2 by 3.
                    let bit = vandq_u8(qh, mask);
                    let bit = vceqq_u8(bit, mask);
                    vreinterpretq_s8_u8(vandq_u8(bit, vdupq_n_u8(0x10)))
                };
                let l0 = vorrq_s8(l0, fifth(qh0, one));
                let l1 = vorrq_s8(l1, fifth(qh1, one));
                let h0 = vorrq_s8(h0, fifth(qh0, two));
                let h1 = vorrq_s8(h1, fifth(qh1, two));
                qh0 = vshrq_n_u8::<2>(qh0);
                qh1 = vshrq_n_u8::<2>(qh1);
                let a = Q8_K_QS + 64 * k;
                let lo = D::dot(D::dot(zero, l0, i8x16(ab, a)), l1, i8x16(ab, a + 16));
                let hi = D::dot(D::dot(zero, h0, i8x16(ab, a + 32)), h1, i8x16(ab, a + 48));
                isum = vmlaq_n_s32(isum, lo, i32::from(scales[2 * k]));
                isum = vmlaq_n_s32(isum, hi, i32::from(scales[2 * k + 1]));
            }
            let da = f32_at(ab, 0);
            let offsets = min_terms(&mins, ab);
            add_super_block(
                acc,
                f16_at(wb, 0) * da,
                vaddvq_s32(isum),
                f16_at(wb, 2) * da,
                offsets,
            )
        }
    }
}

/// The unsigned 6-bit codes (0..=63) of half `half` (values `128 * half..128 * half + 128`) of a
/// Q6_K super-block `wb`, in value order: group `g` holds the 16 values under scale
/// `8 * half + g`.
///
/// # Safety
/// NEON present (the caller's features); the loads are checked.
#[inline(always)]
pub(super) unsafe fn q6_k_groups(wb: &[u8], half: usize) -> [int8x16_t; 8] {
    // SAFETY: register-only NEON on checked loads.
    unsafe {
        let three = vdupq_n_u8(3);
        // Two high bits (already at bits 0..2 of `qh`) moved to bits 4..6.
        let high = |qh: uint8x16_t| vshlq_n_u8::<4>(vandq_u8(qh, three));
        let (ql, qh) = (64 * half, 128 + 32 * half);
        let (qh_a, qh_b) = (u8x16(wb, qh), u8x16(wb, qh + 16));
        let (lo_a, hi_a) = nibbles(u8x16(wb, ql));
        let (lo_b, hi_b) = nibbles(u8x16(wb, ql + 16));
        let (lo_c, hi_c) = nibbles(u8x16(wb, ql + 32));
        let (lo_d, hi_d) = nibbles(u8x16(wb, ql + 48));
        let groups = [
            (lo_a, high(qh_a)),
            (lo_b, high(qh_b)),
            (lo_c, high(vshrq_n_u8::<2>(qh_a))),
            (lo_d, high(vshrq_n_u8::<2>(qh_b))),
            (hi_a, high(vshrq_n_u8::<4>(qh_a))),
            (hi_b, high(vshrq_n_u8::<4>(qh_b))),
            (hi_c, high(vshrq_n_u8::<6>(qh_a))),
            (hi_d, high(vshrq_n_u8::<6>(qh_b))),
        ];
        groups.map(|(low4, high2)| vorrq_s8(low4, vreinterpretq_s8_u8(high2)))
    }
}

/// `sum_j scale_j * bsum_j` over the 16 groups of a Q6_K super-block `wb` and its Q8_K block
/// `ab`: the stored values are q - 32, so the block's sum takes 32 times this off.
///
/// # Safety
/// NEON present (the caller's features); the loads are checked.
#[inline(always)]
pub(super) unsafe fn q6_k_offsets(wb: &[u8], ab: &[u8]) -> i32 {
    // SAFETY: register-only NEON on checked loads (the 16 scales at 192..208 of the block).
    unsafe {
        let sc = vld1q_s8(wb[192..208].as_ptr().cast());
        let bs_lo = i16x8(ab, Q8_K_BSUMS);
        let bs_hi = i16x8(ab, Q8_K_BSUMS + 16);
        let offs = vmull_s16(vget_low_s16(bs_lo), vget_low_s16(vmovl_s8(vget_low_s8(sc))));
        let offs = vmlal_high_s16(offs, bs_lo, vmovl_s8(vget_low_s8(sc)));
        let offs = vmlal_s16(offs, vget_low_s16(bs_hi), vget_low_s16(vmovl_high_s8(sc)));
        let offs = vmlal_high_s16(offs, bs_hi, vmovl_high_s8(sc));
        vaddvq_s32(offs)
    }
}

/// Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 i8 scales, f16 d (at 208);
/// sixteen 16-value groups with value = d * scale * (q - 32).
pub(super) struct Q6K;

impl BlockDot for Q6K {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = 210;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, wb: &[u8], ab: &[u8]) -> Acc {
        // SAFETY: as in `Q4K::step`.
        unsafe {
            let zero = vdupq_n_s32(0);
            let scales = &wb[192..208];
            let mut isum = zero;
            for half in 0..2 {
                let (a, sc) = (Q8_K_QS + 128 * half, 8 * half);
                for (g, q) in q6_k_groups(wb, half).into_iter().enumerate() {
                    let dot = D::dot(zero, q, i8x16(ab, a + 16 * g));
                    isum = vmlaq_n_s32(isum, dot, i32::from(scales[sc + g] as i8));
                }
            }
            let d = f16_at(wb, 208) * f32_at(ab, 0);
            // Combined in integers (|.| < 2^29 each): subtracting two large f32 products
            // instead would lose the difference to cancellation.
            let scaled = vaddvq_s32(isum) - 32 * q6_k_offsets(wb, ab);
            add_super_block(acc, d, scaled, 0.0, 0)
        }
    }
}

/// IQ4_XS: f16 d, u16 high scale bits, 4 bytes of low scale nibbles, 128 nibble bytes; eight
/// 32-value sub-blocks (nibbles as in IQ4_NL) with value = d * (ls - 32) * IQ4NL_VALUES[q].
pub(super) struct Iq4Xs;

impl BlockDot for Iq4Xs {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = 136;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, wb: &[u8], ab: &[u8]) -> Acc {
        // SAFETY: as in `Q4K::step`.
        unsafe {
            let zero = vdupq_n_s32(0);
            let high = u16::from_le_bytes([wb[2], wb[3]]);
            let mut isum = zero;
            for ib in 0..8 {
                let (lo, hi) = table_codes(&IQ4NL_VALUES, wb, 8 + 16 * ib);
                let a = Q8_K_QS + 32 * ib;
                let dot = D::dot(D::dot(zero, lo, i8x16(ab, a)), hi, i8x16(ab, a + 16));
                let low = (wb[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F;
                let ls = i32::from(low | ((((high >> (2 * ib)) & 3) as u8) << 4)) - 32;
                isum = vmlaq_n_s32(isum, dot, ls);
            }
            let d = f16_at(wb, 0) * f32_at(ab, 0);
            add_super_block(acc, d, vaddvq_s32(isum), 0.0, 0)
        }
    }
}

/// The 2-bit fields `k` (0..4) of 16 bytes: bits `2k..2k+2` of each.
#[inline(always)]
fn two_bits(v: uint8x16_t, k: usize) -> uint8x16_t {
    // SAFETY: register-only NEON (every aarch64 CPU has it).
    unsafe { vandq_u8(vshlq_u8(v, vdupq_n_s8(-2 * k as i8)), vdupq_n_u8(3)) }
}

/// The sum over the super-block of each 16-value sub-block's scale `sc[g]` times its dot
/// product with the activations, for codes laid out as in Q2_K/Q3_K: value `128j + 32k + p`
/// is field `k` of byte `32j + p` of `qs`, adjusted by `adjust(c, half, codes)` for chunk
/// `c = 4j + k` and half `half` (positions `16 * half..`).
///
/// # Safety
/// The level's features (`D`); `wb` holds `qs` at `qs_at..qs_at + 64`, `ab` a Q8_K block.
#[inline(always)]
unsafe fn sub_block_sums<D: I8Dot>(
    wb: &[u8],
    ab: &[u8],
    qs_at: usize,
    sc: &[i32; 16],
    adjust: impl Fn(usize, usize, uint8x16_t) -> int8x16_t,
) -> i32 {
    // SAFETY: register-only NEON on checked loads; the caller guarantees `D`'s features.
    unsafe {
        let zero = vdupq_n_s32(0);
        let mut isum = zero;
        for j in 0..2 {
            let bytes = [u8x16(wb, qs_at + 32 * j), u8x16(wb, qs_at + 32 * j + 16)];
            for k in 0..4 {
                let c = 4 * j + k;
                for (half, &b) in bytes.iter().enumerate() {
                    let codes = adjust(c, half, two_bits(b, k));
                    let dot = D::dot(zero, codes, i8x16(ab, Q8_K_QS + 32 * c + 16 * half));
                    isum = vmlaq_n_s32(isum, dot, sc[2 * c + half]);
                }
            }
        }
        vaddvq_s32(isum)
    }
}

/// Q2_K: 16 bytes of 4-bit scales (low) and mins (high), 64 bytes of 2-bit codes, f16 d and
/// dmin (at 80); sixteen 16-value groups with value = d * scale * q - dmin * min.
pub(super) struct Q2K;

impl BlockDot for Q2K {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = 84;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, wb: &[u8], ab: &[u8]) -> Acc {
        // SAFETY: as in `Q4K::step`.
        unsafe {
            let sc: [i32; 16] = core::array::from_fn(|g| i32::from(wb[g] & 0x0F));
            let scaled = sub_block_sums::<D>(wb, ab, 16, &sc, |_, _, q| vreinterpretq_s8_u8(q));
            let bsums =
                |g: usize| i32::from(i16::from_le_bytes([ab[260 + 2 * g], ab[261 + 2 * g]]));
            let offsets: i32 = (0..16).map(|g| i32::from(wb[g] >> 4) * bsums(g)).sum();
            let da = f32_at(ab, 0);
            add_super_block(
                acc,
                f16_at(wb, 80) * da,
                scaled,
                f16_at(wb, 82) * da,
                offsets,
            )
        }
    }
}

/// Q3_K: 32 bytes of high bits, 64 bytes of 2-bit codes, 12 bytes of packed 6-bit scales, f16
/// d (at 108); sixteen 16-value groups with value = d * (scale - 32) * (code - 4 * !high).
pub(super) struct Q3K;

impl BlockDot for Q3K {
    const VALUES: usize = QK_K;
    const W_BYTES: usize = 110;
    const A_BYTES: usize = Q8_K_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, wb: &[u8], ab: &[u8]) -> Acc {
        // SAFETY: as in `Q4K::step`.
        unsafe {
            let s = &wb[96..108];
            let sc: [i32; 16] = core::array::from_fn(|g| {
                let low = if g < 8 { s[g] & 0x0F } else { s[g - 8] >> 4 };
                let high = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
                i32::from(low | (high << 4)) - 32
            });
            let high = [u8x16(wb, 0), u8x16(wb, 16)];
            // Chunk c's high bits are bit c of the mask bytes; a clear bit subtracts 4.
            let adjust = |c: usize, half: usize, q: uint8x16_t| {
                let set = vtstq_u8(high[half], vdupq_n_u8(1 << c));
                let q = vorrq_u8(q, vandq_u8(set, vdupq_n_u8(4)));
                vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(4))
            };
            let scaled = sub_block_sums::<D>(wb, ab, 32, &sc, adjust);
            add_super_block(acc, f16_at(wb, 108) * f32_at(ab, 0), scaled, 0.0, 0)
        }
    }
}
