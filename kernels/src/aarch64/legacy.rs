//! vec_dot for the legacy 32-value block types against 8-bit activations:
//! Q4_0 x Q8_0, Q4_1 x Q8_1, Q5_0 x Q8_0, Q5_1 x Q8_1, Q8_0 x Q8_0, IQ4_NL x Q8_0, MXFP4 x
//! Q8_0 (layouts of ggml-common.h).
//!
//! Each type says once how to read a block ([`LegacyCodes`]: its 32 signed codes, its scale and
//! its offset), and every level builds its products on that: the neon and dotprod levels through
//! the [`BlockDot`] step below, the i8mm level through `super::i8mm`.
//!
//! In the [`BlockDot`] step, each block's integer dot product is exact; it is scaled by
//! `d_w * d_a` into four f32 lanes that are summed once at the end.

use core::arch::aarch64::*;

use super::block::{Acc, BlockDot};
use super::dot::I8Dot;
use super::load::{f16_at, i8x16, nibbles, u8x16};
use crate::formats::{e8m0_to_f32_half, IQ4NL_VALUES, MXFP4_VALUES};

/// Values per block of every type in this file.
pub(super) const QK: usize = 32;
/// Bytes per Q8_0 block: f16 d + 32 i8.
const Q8_0_BYTES: usize = 34;
/// Bytes per Q8_1 block: f16 d + f16 s (= d * sum of quants) + 32 i8.
const Q8_1_BYTES: usize = 36;

/// A legacy weight type as every level's products read it: per block, 32 signed codes whose
/// integer dot product with the activation quants is exact, the weight scale `d` that multiplies
/// it (times the activation's `d`), and for Q4_1/Q5_1 the offset `m` that multiplies Q8_1's `s`.
///
/// The activation type follows from [`Self::HAS_MIN`]: Q8_1 (d, s, 32 quants) with an offset,
/// Q8_0 (d, 32 quants) without, so that `s` is always read where Q8_1 keeps it.
pub(super) trait LegacyCodes {
    /// Bytes per weight block.
    const W_BYTES: usize;
    /// Whether the type has an offset `m` (value = d * q + m) and takes Q8_1 activations.
    const HAS_MIN: bool;
    /// Bytes per activation block (Q8_1 or Q8_0).
    const A_BYTES: usize = if Self::HAS_MIN {
        Q8_1_BYTES
    } else {
        Q8_0_BYTES
    };
    /// Offset of the 32 quants in an activation block: after `d` (and `s` for Q8_1).
    const A_QS: usize = if Self::HAS_MIN { 4 } else { 2 };

    /// The 32 codes of weight block `w` (`W_BYTES` long) as (values 0..16, values 16..32), signed
    /// as the integer product takes them (Q4_0: q - 8, Q5_0: q - 16, IQ4_NL/MXFP4: table values;
    /// Q4_1/Q5_1: q, their offset apart).
    ///
    /// # Safety
    /// NEON present (the caller's features); the loads are checked.
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t);

    /// The weight scale of block `w` as f32 (MXFP4: the E8M0 half-scale, as ggml takes it).
    fn scale(w: &[u8]) -> f32;

    /// The offset `m` of block `w` (only read where [`Self::HAS_MIN`]).
    fn min(_w: &[u8]) -> f32 {
        0.0
    }
}

/// The two 16-value halves of a 32-value weight block against the activation quants at
/// `a[off..off + 32]`.
#[inline(always)]
unsafe fn dot32<D: I8Dot>(lo: int8x16_t, hi: int8x16_t, a: &[u8], off: usize) -> int32x4_t {
    // SAFETY: the caller guarantees `D`'s features; loads are checked.
    unsafe {
        D::dot(
            D::dot(vdupq_n_s32(0), lo, i8x16(a, off)),
            hi,
            i8x16(a, off + 16),
        )
    }
}

/// The neon and dotprod levels' step, the same for every legacy type: the exact block sum in
/// four i32 lanes, scaled by `d_w * d_a` into the accumulator's lanes; the offset term
/// `m_w * s_a` of Q4_1/Q5_1 goes into its scalar.
impl<K: LegacyCodes> BlockDot for K {
    const VALUES: usize = QK;
    const W_BYTES: usize = K::W_BYTES;
    const A_BYTES: usize = K::A_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: register-only NEON on checked loads; the caller guarantees `D`'s features.
        unsafe {
            let (lo, hi) = K::codes(w);
            let sum = dot32::<D>(lo, hi, a, K::A_QS);
            let acc = acc.add_scaled(sum, K::scale(w) * f16_at(a, 0));
            if K::HAS_MIN {
                // The offset term m_w * s_a, where s_a is d_a times the block's quant sum.
                let scalar = acc.scalar + K::min(w) * f16_at(a, 2);
                Acc { scalar, ..acc }
            } else {
                acc
            }
        }
    }
}

/// Q4_0: f16 d + 16 bytes of nibbles (value j low, value j + 16 high), value = d * (q - 8).
pub(super) struct Q4_0;

impl LegacyCodes for Q4_0 {
    const W_BYTES: usize = 18;
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t) {
        // SAFETY: register-only NEON on a checked load.
        unsafe {
            let (lo, hi) = nibbles(u8x16(w, 2));
            let eight = vdupq_n_s8(8);
            (vsubq_s8(lo, eight), vsubq_s8(hi, eight))
        }
    }

    #[inline(always)]
    fn scale(w: &[u8]) -> f32 {
        f16_at(w, 0)
    }
}

/// Q4_1: f16 d + f16 m + 16 bytes of nibbles, value = d * q + m.
pub(super) struct Q4_1;

impl LegacyCodes for Q4_1 {
    const W_BYTES: usize = 20;
    const HAS_MIN: bool = true;

    #[inline(always)]
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t) {
        nibbles(u8x16(w, 4))
    }

    #[inline(always)]
    fn scale(w: &[u8]) -> f32 {
        f16_at(w, 0)
    }

    #[inline(always)]
    fn min(w: &[u8]) -> f32 {
        f16_at(w, 2)
    }
}

/// Table indices that broadcast byte 0 of the high-bit word to lanes 0..8 and byte 1 to 8..16.
static QH_LOW_BYTES: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
/// The same for bytes 2 and 3 (values 16..32 of the block).
static QH_HIGH_BYTES: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
/// Lane i tests bit i % 8 of its byte.
static BIT_OF_LANE: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];

/// The 32 five-bit codes (0..32) of a Q5_0/Q5_1 block whose fifth bits (a u32, bit j for value
/// j) start at `w[qh]` and whose nibbles (value j low, value j + 16 high) at `w[qh + 4]`.
///
/// # Safety
/// NEON present (the caller's features); the loads are checked.
#[inline(always)]
unsafe fn five_bit_codes(w: &[u8], qh: usize) -> (int8x16_t, int8x16_t) {
    // SAFETY: register-only NEON on checked loads; the constant tables are 16 bytes each.
    unsafe {
        let bit = vld1q_u8(BIT_OF_LANE.as_ptr());
        let fifth = vdupq_n_u8(0x10);
        let bits = u32::from_le_bytes([w[qh], w[qh + 1], w[qh + 2], w[qh + 3]]);
        let bits = vreinterpretq_u8_u32(vdupq_n_u32(bits));
        // 0x10 in lane j where bit j (resp. j + 16) is set.
        let spread = |idx: &[u8; 16]| {
            let bytes = vqtbl1q_u8(bits, vld1q_u8(idx.as_ptr()));
            vreinterpretq_s8_u8(vandq_u8(vtstq_u8(bytes, bit), fifth))
        };
        let (lo, hi) = nibbles(u8x16(w, qh + 4));
        (
            vorrq_s8(lo, spread(&QH_LOW_BYTES)),
            vorrq_s8(hi, spread(&QH_HIGH_BYTES)),
        )
    }
}

/// Q5_0: f16 d + u32 fifth bits (bit j for value j) + 16 bytes of nibbles,
/// value = d * (q - 16).
pub(super) struct Q5_0;

impl LegacyCodes for Q5_0 {
    const W_BYTES: usize = 22;
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t) {
        // SAFETY: register-only NEON on checked loads; the caller guarantees NEON.
        unsafe {
            let (lo, hi) = five_bit_codes(w, 2);
            let sixteen = vdupq_n_s8(16);
            (vsubq_s8(lo, sixteen), vsubq_s8(hi, sixteen))
        }
    }

    #[inline(always)]
    fn scale(w: &[u8]) -> f32 {
        f16_at(w, 0)
    }
}

/// Q5_1: f16 d + f16 m + u32 fifth bits + 16 bytes of nibbles, value = d * q + m.
pub(super) struct Q5_1;

impl LegacyCodes for Q5_1 {
    const W_BYTES: usize = 24;
    const HAS_MIN: bool = true;

    #[inline(always)]
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t) {
        // SAFETY: the caller guarantees NEON; the loads are checked.
        unsafe { five_bit_codes(w, 4) }
    }

    #[inline(always)]
    fn scale(w: &[u8]) -> f32 {
        f16_at(w, 0)
    }

    #[inline(always)]
    fn min(w: &[u8]) -> f32 {
        f16_at(w, 2)
    }
}

/// Q8_0: f16 d + 32 i8, value = d * q.
pub(super) struct Q8_0;

impl LegacyCodes for Q8_0 {
    const W_BYTES: usize = Q8_0_BYTES;
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t) {
        (i8x16(w, 2), i8x16(w, 18))
    }

    #[inline(always)]
    fn scale(w: &[u8]) -> f32 {
        f16_at(w, 0)
    }
}

/// The table values of the 32 nibbles at `w[at..at + 16]` (value j low, value j + 16 high), as
/// (values 0..16, values 16..32).
///
/// # Safety
/// NEON present (the caller's features); the load is checked.
#[inline(always)]
pub(super) unsafe fn table_codes(table: &[i8; 16], w: &[u8], at: usize) -> (int8x16_t, int8x16_t) {
    // SAFETY: register-only NEON on a checked load; the table is 16 bytes and every index is
    // below 16.
    unsafe {
        let table = vld1q_s8(table.as_ptr());
        let (lo, hi) = nibbles(u8x16(w, at));
        (
            vqtbl1q_s8(table, vreinterpretq_u8_s8(lo)),
            vqtbl1q_s8(table, vreinterpretq_u8_s8(hi)),
        )
    }
}

/// MXFP4: E8M0 exponent + 16 bytes of nibbles (value j low, value j + 16 high) indexing the
/// doubled E2M1 table, value = 2^(e - 128) * MXFP4_VALUES[q].
pub(super) struct Mxfp4;

impl LegacyCodes for Mxfp4 {
    const W_BYTES: usize = 17;
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t) {
        // SAFETY: the caller guarantees NEON; the load is checked.
        unsafe { table_codes(&MXFP4_VALUES, w, 1) }
    }

    #[inline(always)]
    fn scale(w: &[u8]) -> f32 {
        e8m0_to_f32_half(w[0])
    }
}

/// IQ4_NL: f16 d + 16 bytes of nibbles (value j low, value j + 16 high) indexing the
/// non-linear table, value = d * IQ4NL_VALUES[q].
pub(super) struct Iq4Nl;

impl LegacyCodes for Iq4Nl {
    const W_BYTES: usize = 18;
    const HAS_MIN: bool = false;

    #[inline(always)]
    unsafe fn codes(w: &[u8]) -> (int8x16_t, int8x16_t) {
        // SAFETY: the caller guarantees NEON; the load is checked.
        unsafe { table_codes(&IQ4NL_VALUES, w, 2) }
    }

    #[inline(always)]
    fn scale(w: &[u8]) -> f32 {
        f16_at(w, 0)
    }
}
