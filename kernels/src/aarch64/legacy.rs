//! vec_dot for the legacy 32-value block types against 8-bit activations:
//! Q4_0 x Q8_0, Q4_1 x Q8_1, Q5_0 x Q8_0, Q8_0 x Q8_0 (layouts of ggml-common.h).
//!
//! Each block's integer dot product is exact; it is scaled by `d_w * d_a` into four f32 lanes
//! that are summed once at the end.

use core::arch::aarch64::*;

use super::dot::I8Dot;
use super::load::{f16_at, i8x16, nibbles, u8x16};

/// Values per block of every type in this file.
const QK: usize = 32;
/// Bytes per block: Q4_0 = f16 d + 16 nibble bytes.
const Q4_0_BYTES: usize = 18;
/// Q4_1 = f16 d + f16 m + 16 nibble bytes.
const Q4_1_BYTES: usize = 20;
/// Q5_0 = f16 d + u32 high bits + 16 nibble bytes.
const Q5_0_BYTES: usize = 22;
/// Q8_0 = f16 d + 32 i8.
const Q8_0_BYTES: usize = 34;
/// Q8_1 = f16 d + f16 s (= d * sum of quants) + 32 i8.
const Q8_1_BYTES: usize = 36;

#[inline(always)]
pub(super) unsafe fn q4_0_q8_0<D: I8Dot>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: register-only NEON plus loads from fixed-size block slices (see `load`); the
    // caller guarantees the level's features.
    unsafe {
        let mut acc = vdupq_n_f32(0.0);
        let eight = vdupq_n_s8(8);
        let blocks = w.chunks_exact(Q4_0_BYTES).zip(act.chunks_exact(Q8_0_BYTES));
        for (wb, ab) in blocks.take(n / QK) {
            let (lo, hi) = nibbles(u8x16(wb, 2));
            let (lo, hi) = (vsubq_s8(lo, eight), vsubq_s8(hi, eight));
            let sum = D::dot(D::dot(vdupq_n_s32(0), lo, i8x16(ab, 2)), hi, i8x16(ab, 18));
            acc = vmlaq_n_f32(acc, vcvtq_f32_s32(sum), f16_at(wb, 0) * f16_at(ab, 0));
        }
        vaddvq_f32(acc)
    }
}

#[inline(always)]
pub(super) unsafe fn q4_1_q8_1<D: I8Dot>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: as in `q4_0_q8_0`.
    unsafe {
        let mut acc = vdupq_n_f32(0.0);
        // The offset term m_w * s_a, where s_a is d_a times the block's quant sum.
        let mut offsets = 0.0f32;
        let blocks = w.chunks_exact(Q4_1_BYTES).zip(act.chunks_exact(Q8_1_BYTES));
        for (wb, ab) in blocks.take(n / QK) {
            let (lo, hi) = nibbles(u8x16(wb, 4));
            let sum = D::dot(D::dot(vdupq_n_s32(0), lo, i8x16(ab, 4)), hi, i8x16(ab, 20));
            acc = vmlaq_n_f32(acc, vcvtq_f32_s32(sum), f16_at(wb, 0) * f16_at(ab, 0));
            offsets += f16_at(wb, 2) * f16_at(ab, 2);
        }
        vaddvq_f32(acc) + offsets
    }
}

/// Table indices that broadcast byte 0 of the high-bit word to lanes 0..8 and byte 1 to 8..16.
static QH_LOW_BYTES: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
/// The same for bytes 2 and 3 (values 16..32 of the block).
static QH_HIGH_BYTES: [u8; 16] = [2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3];
/// Lane i tests bit i % 8 of its byte.
static BIT_OF_LANE: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];

#[inline(always)]
pub(super) unsafe fn q5_0_q8_0<D: I8Dot>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: as in `q4_0_q8_0`; the constant tables are 16 bytes each.
    unsafe {
        let mut acc = vdupq_n_f32(0.0);
        let idx_lo = vld1q_u8(QH_LOW_BYTES.as_ptr());
        let idx_hi = vld1q_u8(QH_HIGH_BYTES.as_ptr());
        let bit = vld1q_u8(BIT_OF_LANE.as_ptr());
        let fifth = vdupq_n_u8(0x10);
        let sixteen = vdupq_n_s8(16);
        let blocks = w.chunks_exact(Q5_0_BYTES).zip(act.chunks_exact(Q8_0_BYTES));
        for (wb, ab) in blocks.take(n / QK) {
            let qh = u32::from_le_bytes([wb[2], wb[3], wb[4], wb[5]]);
            let qh = vreinterpretq_u8_u32(vdupq_n_u32(qh));
            // 0x10 in lane j where bit j (resp. j + 16) of qh is set.
            let h_lo = vandq_u8(vtstq_u8(vqtbl1q_u8(qh, idx_lo), bit), fifth);
            let h_hi = vandq_u8(vtstq_u8(vqtbl1q_u8(qh, idx_hi), bit), fifth);
            let (lo, hi) = nibbles(u8x16(wb, 6));
            let lo = vsubq_s8(vorrq_s8(lo, vreinterpretq_s8_u8(h_lo)), sixteen);
            let hi = vsubq_s8(vorrq_s8(hi, vreinterpretq_s8_u8(h_hi)), sixteen);
            let sum = D::dot(D::dot(vdupq_n_s32(0), lo, i8x16(ab, 2)), hi, i8x16(ab, 18));
            acc = vmlaq_n_f32(acc, vcvtq_f32_s32(sum), f16_at(wb, 0) * f16_at(ab, 0));
        }
        vaddvq_f32(acc)
    }
}

#[inline(always)]
pub(super) unsafe fn q8_0_q8_0<D: I8Dot>(n: usize, w: &[u8], act: &[u8]) -> f32 {
    // SAFETY: as in `q4_0_q8_0`.
    unsafe {
        let mut acc = vdupq_n_f32(0.0);
        let blocks = w.chunks_exact(Q8_0_BYTES).zip(act.chunks_exact(Q8_0_BYTES));
        for (wb, ab) in blocks.take(n / QK) {
            let sum = D::dot(vdupq_n_s32(0), i8x16(wb, 2), i8x16(ab, 2));
            let sum = D::dot(sum, i8x16(wb, 18), i8x16(ab, 18));
            acc = vmlaq_n_f32(acc, vcvtq_f32_s32(sum), f16_at(wb, 0) * f16_at(ab, 0));
        }
        vaddvq_f32(acc)
    }
}
