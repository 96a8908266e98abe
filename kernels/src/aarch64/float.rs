//! F16 x F16 dot product: both rows widened to f32 four lanes at a time and multiplied-added
//! in f32 (what ggml's f16 dot does on CPUs with hardware conversion).
//!
//! `fcvtl`/`fcvtl2` are baseline Armv8, but their intrinsics take `float16x4_t`, which is
//! unstable on stable Rust; inline assembly on `uint16x8_t` does the same.

use core::arch::aarch64::*;

use super::load::f16_at;

/// Bytes per f16 value.
const F16_BYTES: usize = 2;
/// Values per main-loop step: four vectors of four lanes from two 16-byte loads per row.
const STEP: usize = 16;

/// The low four f16 lanes of `h` as f32.
#[inline(always)]
unsafe fn widen_low(h: uint16x8_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: register-only baseline instruction.
    unsafe {
        core::arch::asm!("fcvtl {o:v}.4s, {i:v}.4h", o = lateout(vreg) out, i = in(vreg) h,
            options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// The high four f16 lanes of `h` as f32.
#[inline(always)]
unsafe fn widen_high(h: uint16x8_t) -> float32x4_t {
    let out: float32x4_t;
    // SAFETY: register-only baseline instruction.
    unsafe {
        core::arch::asm!("fcvtl2 {o:v}.4s, {i:v}.8h", o = lateout(vreg) out, i = in(vreg) h,
            options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// Eight f16 values at `b[off..off + 16]`, as raw bits.
#[inline(always)]
fn u16x8(b: &[u8], off: usize) -> uint16x8_t {
    let s = &b[off..off + 16];
    // SAFETY: `s` holds exactly 16 readable bytes; unaligned loads are fine for vld1.
    unsafe { vld1q_u16(s.as_ptr().cast()) }
}

/// Dot product of two f16 rows of `n` values (fewer if either slice is shorter).
///
/// # Safety
/// The CPU must have NEON (always true on aarch64).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn f16_f16(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let n = n.min(w.len() / F16_BYTES).min(act.len() / F16_BYTES);
    let (w, act) = (&w[..n * F16_BYTES], &act[..n * F16_BYTES]);
    let step_bytes = STEP * F16_BYTES;
    // SAFETY: register-only NEON and conversions on checked 16-byte loads.
    let (mut sum, done) = unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let steps = w.chunks_exact(step_bytes).zip(act.chunks_exact(step_bytes));
        for (wc, ac) in steps {
            let (w0, w1, a0, a1) = (u16x8(wc, 0), u16x8(wc, 16), u16x8(ac, 0), u16x8(ac, 16));
            acc[0] = vfmaq_f32(acc[0], widen_low(w0), widen_low(a0));
            acc[1] = vfmaq_f32(acc[1], widen_high(w0), widen_high(a0));
            acc[2] = vfmaq_f32(acc[2], widen_low(w1), widen_low(a1));
            acc[3] = vfmaq_f32(acc[3], widen_high(w1), widen_high(a1));
        }
        let total = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
        (vaddvq_f32(total), n / STEP * step_bytes)
    };
    for off in (done..n * F16_BYTES).step_by(F16_BYTES) {
        sum += f16_at(w, off) * f16_at(act, off);
    }
    sum
}

/// Four f32 lanes narrowed to f16 (round to nearest even) in the low half of a `uint16x8_t`,
/// then four more in the high half.
#[inline(always)]
unsafe fn narrow(lo: float32x4_t, hi: float32x4_t) -> uint16x8_t {
    let out: uint16x8_t;
    // SAFETY: register-only baseline instructions; `fcvtn` writes the low half and zeroes the
    // high half, which `fcvtn2` then fills.
    unsafe {
        core::arch::asm!(
            "fcvtn {o:v}.4h, {lo:v}.4s",
            "fcvtn2 {o:v}.8h, {hi:v}.4s",
            o = out(vreg) out, lo = in(vreg) lo, hi = in(vreg) hi,
            options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// Converts `x` to little-endian f16 in `out` (`min(x.len(), out.len() / 2)` values), rounding
/// to nearest even like F16C's `vcvtps2ph` with the default rounding.
///
/// # Safety
/// The CPU must have NEON (always true on aarch64).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_f16(x: &[f32], out: &mut [u8]) {
    let n = x.len().min(out.len() / F16_BYTES);
    let (x, out) = (&x[..n], &mut out[..n * F16_BYTES]);
    for (xc, oc) in x.chunks_exact(8).zip(out.chunks_exact_mut(16)) {
        // SAFETY: checked 8-float loads and a 16-byte store into `oc`, which is 16 bytes.
        unsafe {
            let h = narrow(vld1q_f32(xc.as_ptr()), vld1q_f32(xc[4..].as_ptr()));
            vst1q_u16(oc.as_mut_ptr().cast(), h);
        }
    }
    let done = n / 8 * 8;
    for (v, o) in x[done..]
        .iter()
        .zip(out[done * F16_BYTES..].chunks_exact_mut(F16_BYTES))
    {
        o.copy_from_slice(&half::f16::from_f32(*v).to_bits().to_le_bytes());
    }
}
