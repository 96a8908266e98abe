//! Small loads shared by the kernels: scalar scales out of block bytes, and 16-byte vectors
//! out of slices whose length the caller has already fixed (blocks come from `chunks_exact`).

use core::arch::aarch64::*;

/// The little-endian f16 at `b[off..off + 2]`, widened to f32.
///
/// With `fcvtl` rather than the `half` crate, which on aarch64 checks for FEAT_FP16 at run time
/// and calls out of line: a call per block scale in every kernel's inner loop.
#[inline(always)]
pub(super) fn f16_at(b: &[u8], off: usize) -> f32 {
    let bits = u16::from_le_bytes([b[off], b[off + 1]]);
    // SAFETY: register-only baseline instructions (`fcvtl` from 4H is Armv8.0, not FP16).
    unsafe {
        let h = vdup_n_u16(bits);
        let out: float32x4_t;
        core::arch::asm!("fcvtl {o:v}.4s, {i:v}.4h", o = lateout(vreg) out, i = in(vreg) h,
            options(pure, nomem, nostack, preserves_flags));
        vgetq_lane_f32::<0>(out)
    }
}

/// `v` as little-endian f16 bytes, rounded to nearest even (`fcvtn`, the F16C rounding).
#[inline(always)]
pub(super) fn f16_bytes(v: f32) -> [u8; 2] {
    // SAFETY: register-only baseline instructions.
    let bits = unsafe {
        let out: uint16x4_t;
        core::arch::asm!("fcvtn {o:v}.4h, {i:v}.4s", o = lateout(vreg) out, i = in(vreg) vdupq_n_f32(v),
            options(pure, nomem, nostack, preserves_flags));
        vget_lane_u16::<0>(out)
    };
    bits.to_le_bytes()
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
