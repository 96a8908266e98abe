//! Small loads shared by the kernels: scalar scales out of block bytes, and 16-byte vectors
//! out of slices whose length the caller has already fixed (blocks come from `chunks_exact`).

use core::arch::aarch64::*;

/// The little-endian f16 at `b[off..off + 2]`, widened to f32.
#[inline(always)]
pub(super) fn f16_at(b: &[u8], off: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// The little-endian f32 at `b[off..off + 4]`.
#[inline(always)]
pub(super) fn f32_at(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Sixteen unsigned bytes at `b[off..off + 16]`.
#[inline(always)]
pub(super) fn u8x16(b: &[u8], off: usize) -> uint8x16_t {
    let s = &b[off..off + 16];
    // SAFETY: `s` holds exactly 16 readable bytes; NEON is baseline on aarch64.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// Sixteen signed bytes at `b[off..off + 16]`.
#[inline(always)]
pub(super) fn i8x16(b: &[u8], off: usize) -> int8x16_t {
    let s = &b[off..off + 16];
    // SAFETY: `s` holds exactly 16 readable bytes; NEON is baseline on aarch64.
    unsafe { vld1q_s8(s.as_ptr().cast()) }
}

/// Splits 16 bytes of packed nibbles into (low nibbles, high nibbles), lanes 0..=15 each.
#[inline(always)]
pub(super) fn nibbles(qs: uint8x16_t) -> (int8x16_t, int8x16_t) {
    // SAFETY: register-only NEON operations; NEON is baseline on aarch64.
    unsafe {
        let lo = vandq_u8(qs, vdupq_n_u8(0x0F));
        let hi = vshrq_n_u8::<4>(qs);
        (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi))
    }
}

/// Eight signed 16-bit values, little-endian, at `b[off..off + 16]`.
#[inline(always)]
pub(super) fn i16x8(b: &[u8], off: usize) -> int16x8_t {
    // SAFETY: register-only reinterpretation of a checked 16-byte load (aarch64 is little-endian
    // here, so lane i is bytes 2i..2i+2).
    unsafe { vreinterpretq_s16_u8(u8x16(b, off)) }
}
