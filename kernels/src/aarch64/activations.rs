//! Activation quantizers: f32 rows to Q8_0, Q8_1 and Q8_K blocks.
//!
//! They must produce the same bytes as the x86 path on every machine, so that results do not
//! depend on where they run. Q8_0/Q8_1 follow llama.cpp's AVX2 formula, which differs from its
//! ARM one: `d = amax / 127`, `id = 127 / amax` (not `1 / d`), quants `round_half_even(x * id)`
//! saturated to i8; Q8_1 adds `s = f16(d * sum(quants))`. `fcvtns` rounds half to even like
//! `_mm256_round_ps(_, _MM_ROUND_NEAREST)`. Q8_K follows llama.cpp's reference on every arch:
//! the signed value of largest magnitude (first one on ties) sets `iscale = -127 / max`, quants
//! are `min(127, round_half_even(x * iscale))`, `d = 1 / iscale` (f32), plus 16 i16 bsums.

use core::arch::aarch64::*;

use super::load::f16_bytes;

/// Values per Q8_0 / Q8_1 block.
const QK8: usize = 32;
/// Bytes per Q8_0 block.
const Q8_0_BYTES: usize = 34;
/// Bytes per Q8_1 block.
const Q8_1_BYTES: usize = 36;
/// Values per Q8_K block.
const QK_K: usize = 256;
/// Bytes per Q8_K block: f32 d, 256 i8, 16 i16 bsums.
const Q8_K_BYTES: usize = 292;

/// Four f32 at `x[off..off + 4]`.
#[inline(always)]
fn f32x4(x: &[f32], off: usize) -> float32x4_t {
    let s = &x[off..off + 4];
    // SAFETY: `s` holds exactly 4 readable f32.
    unsafe { vld1q_f32(s.as_ptr()) }
}

/// `round_half_even(v)` as i32 with x86's conversion semantics: NaN and values outside the i32
/// range give `i32::MIN` (the "integer indefinite" of `cvtps2dq`), where `fcvtns` would
/// saturate or give 0. Only degenerate rows reach those cases (NaN input, or `127 / amax`
/// overflowing for |x| < 3.7e-37), but the bytes must match there too.
#[inline(always)]
fn round_x86(v: float32x4_t) -> int32x4_t {
    // SAFETY: register-only NEON.
    unsafe {
        let in_range = vcltq_f32(vabsq_f32(v), vdupq_n_f32(2_147_483_648.0));
        vbslq_s32(in_range, vcvtnq_s32_f32(v), vdupq_n_s32(i32::MIN))
    }
}

/// Quantizes 32 values with the x86 Q8_0 formula: returns (d, sum of the i8 quants) and
/// writes the 32 quants to `qs`.
#[inline(always)]
fn quantize_32(x: &[f32], qs: &mut [u8]) -> (f32, i32) {
    let qs = &mut qs[..QK8];
    // SAFETY: register-only NEON on checked loads; the stores write exactly the 32 bytes of
    // `qs`.
    unsafe {
        let v: [float32x4_t; 8] = core::array::from_fn(|i| f32x4(x, 4 * i));
        // `fmaxnm` from 0 skips NaN, like the reference's `f32::max` fold.
        let mut amax = vdupq_n_f32(0.0);
        for vi in &v {
            amax = vmaxnmq_f32(amax, vabsq_f32(*vi));
        }
        let amax = vmaxnmvq_f32(amax);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let q: [int32x4_t; 8] = core::array::from_fn(|i| round_x86(vmulq_n_f32(v[i], id)));
        // Saturating narrows, like `packs_epi32` / `packs_epi16`.
        let h: [int16x8_t; 4] =
            core::array::from_fn(|i| vqmovn_high_s32(vqmovn_s32(q[2 * i]), q[2 * i + 1]));
        let lo = vqmovn_high_s16(vqmovn_s16(h[0]), h[1]);
        let hi = vqmovn_high_s16(vqmovn_s16(h[2]), h[3]);
        vst1q_s8(qs.as_mut_ptr().cast(), lo);
        vst1q_s8(qs[16..].as_mut_ptr().cast(), hi);
        let sum = i32::from(vaddlvq_s8(lo)) + i32::from(vaddlvq_s8(hi));
        (d, sum)
    }
}

/// Quantizes `x` to Q8_0 blocks in `out` (`min(x.len() / 32, out.len() / 34)` blocks).
///
/// # Safety
/// The CPU must have NEON (always true on aarch64).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q8_0(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(QK8).zip(out.chunks_exact_mut(Q8_0_BYTES)) {
        let (d, _) = quantize_32(xb, &mut ob[2..]);
        ob[..2].copy_from_slice(&f16_bytes(d));
    }
}

/// Quantizes `x` to Q8_1 blocks in `out` (`min(x.len() / 32, out.len() / 36)` blocks).
///
/// # Safety
/// The CPU must have NEON (always true on aarch64).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q8_1(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(QK8).zip(out.chunks_exact_mut(Q8_1_BYTES)) {
        let (d, sum) = quantize_32(xb, &mut ob[4..]);
        ob[..2].copy_from_slice(&f16_bytes(d));
        ob[2..4].copy_from_slice(&f16_bytes(d * sum as f32));
    }
}

/// Quantizes `x` to Q8_K blocks in `out` (`min(x.len() / 256, out.len() / 292)` blocks).
///
/// # Safety
/// The CPU must have NEON (always true on aarch64).
#[target_feature(enable = "neon")]
pub(crate) unsafe fn quantize_q8_k(x: &[f32], out: &mut [u8]) {
    for (xb, ob) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(Q8_K_BYTES)) {
        quantize_q8_k_block(xb, ob);
    }
}

/// One Q8_K block: `x` is 256 values, `out` 292 bytes.
#[inline(always)]
fn quantize_q8_k_block(x: &[f32], out: &mut [u8]) {
    // The largest magnitude; `fmaxnm` skips NaN like the reference's `ax > amax` test does.
    // SAFETY: register-only NEON on checked loads.
    let amax = unsafe {
        let mut m = vdupq_n_f32(0.0);
        for off in (0..QK_K).step_by(4) {
            m = vmaxnmq_f32(m, vabsq_f32(f32x4(x, off)));
        }
        vmaxnmvq_f32(m)
    };
    // `!(amax > 0)` also catches a NaN maximum; the reference writes a zero block then.
    let max = x.iter().copied().find(|v| v.abs() == amax);
    let (Some(max), true) = (max, amax > 0.0) else {
        out.fill(0);
        return;
    };
    let iscale = -127.0 / max;
    let (head, bsums) = out.split_at_mut(4 + QK_K);
    let (d, qs) = head.split_at_mut(4);
    // SAFETY: register-only NEON on checked loads; each store writes the 16 bytes of `chunk`.
    unsafe {
        let cap = vdupq_n_s32(127);
        for (g, (chunk, bsum)) in qs
            .chunks_exact_mut(16)
            .zip(bsums.chunks_exact_mut(2))
            .enumerate()
        {
            let q: [int32x4_t; 4] = core::array::from_fn(|i| {
                let v = vmulq_n_f32(f32x4(x, 16 * g + 4 * i), iscale);
                // ggml's `nearest_int` maps +-inf (iscale overflowed) to -2^22; NaN gives 0
                // both ways.
                let inf = vceqq_f32(vabsq_f32(v), vdupq_n_f32(f32::INFINITY));
                vminq_s32(
                    vbslq_s32(inf, vdupq_n_s32(-0x40_0000), vcvtnq_s32_f32(v)),
                    cap,
                )
            });
            let lo = vqmovn_high_s32(vqmovn_s32(q[0]), q[1]);
            let hi = vqmovn_high_s32(vqmovn_s32(q[2]), q[3]);
            let bytes = vqmovn_high_s16(vqmovn_s16(lo), hi);
            vst1q_s8(chunk.as_mut_ptr().cast(), bytes);
            bsum.copy_from_slice(&vaddlvq_s8(bytes).to_le_bytes());
        }
    }
    d.copy_from_slice(&(1.0 / iscale).to_le_bytes());
}
