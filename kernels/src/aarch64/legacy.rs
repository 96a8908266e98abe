//! vec_dot for the legacy 32-value block types against 8-bit activations:
//! Q4_0 x Q8_0, Q4_1 x Q8_1, Q5_0 x Q8_0, Q5_1 x Q8_1, Q8_0 x Q8_0, IQ4_NL x Q8_0, MXFP4 x
//! Q8_0 (layouts of ggml-common.h).
//!
//! Each block's integer dot product is exact; it is scaled by `d_w * d_a` into four f32 lanes
//! that are summed once at the end.

use core::arch::aarch64::*;

use super::block::{Acc, BlockDot};
use super::dot::I8Dot;
use super::load::{f16_at, i8x16, nibbles, u8x16};
use crate::formats::{e8m0_to_f32_half, IQ4NL_VALUES, MXFP4_VALUES};

/// Values per block of every type in this file.
const QK: usize = 32;
/// Bytes per Q8_0 block: f16 d + 32 i8.
const Q8_0_BYTES: usize = 34;
/// Bytes per Q8_1 block: f16 d + f16 s (= d * sum of quants) + 32 i8.
const Q8_1_BYTES: usize = 36;

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

/// Q4_0: f16 d + 16 bytes of nibbles (value j low, value j + 16 high), value = d * (q - 8).
pub(super) struct Q4_0;

impl BlockDot for Q4_0 {
    const VALUES: usize = QK;
    const W_BYTES: usize = 18;
    const A_BYTES: usize = Q8_0_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: register-only NEON on checked loads; the caller guarantees `D`'s features.
        unsafe {
            let (lo, hi) = nibbles(u8x16(w, 2));
            let eight = vdupq_n_s8(8);
            let sum = dot32::<D>(vsubq_s8(lo, eight), vsubq_s8(hi, eight), a, 2);
            acc.add_scaled(sum, f16_at(w, 0) * f16_at(a, 0))
        }
    }
}

/// Q4_1: f16 d + f16 m + 16 bytes of nibbles, value = d * q + m.
pub(super) struct Q4_1;

impl BlockDot for Q4_1 {
    const VALUES: usize = QK;
    const W_BYTES: usize = 20;
    const A_BYTES: usize = Q8_1_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: as in `Q4_0::step`.
        unsafe {
            let (lo, hi) = nibbles(u8x16(w, 4));
            let sum = dot32::<D>(lo, hi, a, 4);
            let acc = acc.add_scaled(sum, f16_at(w, 0) * f16_at(a, 0));
            // The offset term m_w * s_a, where s_a is d_a times the block's quant sum.
            let scalar = acc.scalar + f16_at(w, 2) * f16_at(a, 2);
            Acc { scalar, ..acc }
        }
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

impl BlockDot for Q5_0 {
    const VALUES: usize = QK;
    const W_BYTES: usize = 22;
    const A_BYTES: usize = Q8_0_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: as in `Q4_0::step`.
        unsafe {
            let (lo, hi) = five_bit_codes(w, 2);
            let sixteen = vdupq_n_s8(16);
            let sum = dot32::<D>(vsubq_s8(lo, sixteen), vsubq_s8(hi, sixteen), a, 2);
            acc.add_scaled(sum, f16_at(w, 0) * f16_at(a, 0))
        }
    }
}

/// Q5_1: f16 d + f16 m + u32 fifth bits + 16 bytes of nibbles, value = d * q + m.
pub(super) struct Q5_1;

impl BlockDot for Q5_1 {
    const VALUES: usize = QK;
    const W_BYTES: usize = 24;
    const A_BYTES: usize = Q8_1_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: as in `Q4_0::step`.
        unsafe {
            let (lo, hi) = five_bit_codes(w, 4);
            let sum = dot32::<D>(lo, hi, a, 4);
            let acc = acc.add_scaled(sum, f16_at(w, 0) * f16_at(a, 0));
            // The offset term m_w * s_a, as for Q4_1.
            let scalar = acc.scalar + f16_at(w, 2) * f16_at(a, 2);
            Acc { scalar, ..acc }
        }
    }
}

/// Q8_0: f16 d + 32 i8, value = d * q.
pub(super) struct Q8_0;

impl BlockDot for Q8_0 {
    const VALUES: usize = QK;
    const W_BYTES: usize = Q8_0_BYTES;
    const A_BYTES: usize = Q8_0_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: as in `Q4_0::step`.
        unsafe {
            let sum = dot32::<D>(i8x16(w, 2), i8x16(w, 18), a, 2);
            acc.add_scaled(sum, f16_at(w, 0) * f16_at(a, 0))
        }
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

impl BlockDot for Mxfp4 {
    const VALUES: usize = QK;
    const W_BYTES: usize = 17;
    const A_BYTES: usize = Q8_0_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: as in `Q4_0::step`.
        unsafe {
            let (lo, hi) = table_codes(&MXFP4_VALUES, w, 1);
            let sum = dot32::<D>(lo, hi, a, 2);
            acc.add_scaled(sum, e8m0_to_f32_half(w[0]) * f16_at(a, 0))
        }
    }
}

/// IQ4_NL: f16 d + 16 bytes of nibbles (value j low, value j + 16 high) indexing the
/// non-linear table, value = d * IQ4NL_VALUES[q].
pub(super) struct Iq4Nl;

impl BlockDot for Iq4Nl {
    const VALUES: usize = QK;
    const W_BYTES: usize = 18;
    const A_BYTES: usize = Q8_0_BYTES;

    #[inline(always)]
    unsafe fn step<D: I8Dot>(acc: Acc, w: &[u8], a: &[u8]) -> Acc {
        // SAFETY: as in `Q4_0::step`.
        unsafe {
            let (lo, hi) = table_codes(&IQ4NL_VALUES, w, 2);
            let sum = dot32::<D>(lo, hi, a, 2);
            acc.add_scaled(sum, f16_at(w, 0) * f16_at(a, 0))
        }
    }
}
