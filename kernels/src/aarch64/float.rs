//! F16 x F16 dot product, and f32 -> f16 activation conversion.
//!
//! `fcvtl`/`fcvtl2` are baseline Armv8, but their intrinsics take `float16x4_t`, which is
//! unstable on stable Rust; inline assembly on `uint16x8_t` does the same.

use core::arch::aarch64::*;

use super::load::{f16_at, f16_bytes};

/// Bytes per f16 value.
const F16_BYTES: usize = 2;
/// Values per main-loop step: four 8-lane accumulators, as in ggml's AVX2 loop.
const STEP: usize = 32;

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
/// Bit-identical to ggml's AVX2 `ggml_vec_dot_f16` (and so to our x86 kernel): per 32 values,
/// four accumulators of 8 lanes (here each as a low and a high `float32x4_t`) take fused
/// multiply-adds; they are reduced as `(a0 + a2) + (a1 + a3)`, then the two 4-lane halves are
/// added, then `(t0 + t1) + (t2 + t3)`; the leftover values are added in f64.
///
/// # Safety
/// The CPU must have NEON (always true on aarch64).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn f16_f16(n: usize, w: &[u8], act: &[u8]) -> f32 {
    let n = n.min(w.len() / F16_BYTES).min(act.len() / F16_BYTES);
    let steps = n / STEP;
    let step_bytes = STEP * F16_BYTES;
    let (mut w_steps, mut a_steps) = (w.chunks_exact(step_bytes), act.chunks_exact(step_bytes));
    // SAFETY: register-only NEON and conversions on checked 16-byte loads.
    let main = unsafe {
        let mut lo = [vdupq_n_f32(0.0); 4];
        let mut hi = [vdupq_n_f32(0.0); 4];
        for (wc, ac) in (&mut w_steps).zip(&mut a_steps).take(steps) {
            for k in 0..4 {
                let (wv, av) = (u16x8(wc, 16 * k), u16x8(ac, 16 * k));
                lo[k] = vfmaq_f32(lo[k], widen_low(wv), widen_low(av));
                hi[k] = vfmaq_f32(hi[k], widen_high(wv), widen_high(av));
            }
        }
        let s_lo = vaddq_f32(vaddq_f32(lo[0], lo[2]), vaddq_f32(lo[1], lo[3]));
        let s_hi = vaddq_f32(vaddq_f32(hi[0], hi[2]), vaddq_f32(hi[1], hi[3]));
        let t = vaddq_f32(s_lo, s_hi);
        let pairs = vpaddq_f32(t, t); // [t0 + t1, t2 + t3, ..]
        vgetq_lane_f32::<0>(pairs) + vgetq_lane_f32::<1>(pairs)
    };
    let done = steps * step_bytes;
    let (w_tail, a_tail) = (
        w.get(done..).unwrap_or_default(),
        act.get(done..).unwrap_or_default(),
    );
    let pairs = w_tail
        .chunks_exact(F16_BYTES)
        .zip(a_tail.chunks_exact(F16_BYTES));
    let mut sum = f64::from(main);
    for (x, y) in pairs.take(n - steps * STEP) {
        sum += f64::from(f16_at(x, 0) * f16_at(y, 0));
    }
    sum as f32
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
    let groups = (x.len() / 8).min(out.len() / 16);
    for (xc, oc) in x.chunks_exact(8).zip(out.chunks_exact_mut(16)) {
        // SAFETY: `xc` is 8 floats (two 4-lane loads); the store writes the 16 bytes of `oc`.
        unsafe {
            let (lo, hi) = xc.split_at(4);
            let h = narrow(vld1q_f32(lo.as_ptr()), vld1q_f32(hi.as_ptr()));
            vst1q_u16(oc.as_mut_ptr().cast(), h);
        }
    }
    let x_tail = x.get(groups * 8..).unwrap_or_default();
    let out_tail = out.get_mut(groups * 16..).unwrap_or_default();
    for (v, o) in x_tail.iter().zip(out_tail.chunks_exact_mut(F16_BYTES)) {
        o.copy_from_slice(&f16_bytes(*v));
    }
}
