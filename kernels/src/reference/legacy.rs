//! Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1: ggml's `quantize_row_*_ref` / `dequantize_row_*`, and the
//! x86 activation quantizers for Q8_0/Q8_1.

use crate::formats::{
    as_blocks, as_blocks_mut, to_half, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0,
    BlockQ8_1, QK_LEGACY,
};
use crate::KernelError;

/// C's float-to-integer conversion as x86 compiles it (`cvttss2si`): truncation toward zero,
/// and the "integer indefinite" `i32::MIN` for NaN and out-of-range values. ggml narrows the
/// result to 8 bits afterwards, so mirroring this keeps even degenerate inputs byte-identical.
#[inline]
pub(crate) fn c_trunc(x: f32) -> i32 {
    if x.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&x) {
        i32::MIN
    } else {
        x as i32
    }
}

/// The value of largest magnitude, with its sign (the first one on ties), and its magnitude.
#[inline]
pub(crate) fn signed_absmax(x: &[f32]) -> (f32, f32) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// Minimum and maximum, starting from (+FLT_MAX, -FLT_MAX) as ggml does.
#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// Packs 32 codes of 4 bits (or the low 4 bits of 5-bit codes): value j low, j + 16 high.
#[inline]
fn pack_nibbles(codes: &[u8; 32]) -> [u8; 16] {
    let mut qs = [0u8; 16];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = (codes[j] & 0x0F) | ((codes[j + 16] & 0x0F) << 4);
    }
    qs
}

/// Bit j of the result is the fifth bit of code j.
#[inline]
fn pack_fifth_bits(codes: &[u8; 32]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &c) in codes.iter().enumerate() {
        qh |= u32::from((c >> 4) & 1) << j;
    }
    qh.to_le_bytes()
}

pub(crate) fn quantize_q4_0(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ4_0>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        let (_, max) = signed_absmax(x);
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = to_half(d);
        let mut codes = [0u8; 32];
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = (c_trunc(v * id + 8.5) as i8).min(15) as u8;
        }
        b.qs = pack_nibbles(&codes);
    }
    Ok(())
}

pub(crate) fn quantize_q4_1(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ4_1>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = to_half(d);
        b.m = to_half(min);
        let mut codes = [0u8; 32];
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = (c_trunc((v - min) * id + 0.5) as i8).min(15) as u8;
        }
        b.qs = pack_nibbles(&codes);
    }
    Ok(())
}

pub(crate) fn quantize_q5_0(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ5_0>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        let (_, max) = signed_absmax(x);
        let d = max / -16.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = to_half(d);
        let mut codes = [0u8; 32];
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = (c_trunc(v * id + 16.5) as i8).min(31) as u8;
        }
        b.qs = pack_nibbles(&codes);
        b.qh = pack_fifth_bits(&codes);
    }
    Ok(())
}

pub(crate) fn quantize_q5_1(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ5_1>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = to_half(d);
        b.m = to_half(min);
        let mut codes = [0u8; 32];
        for (c, &v) in codes.iter_mut().zip(x) {
            // ggml does not clamp here: (max - min) * id rounds to at most 31.
            *c = c_trunc((v - min) * id + 0.5) as u8;
        }
        b.qs = pack_nibbles(&codes);
        b.qh = pack_fifth_bits(&codes);
    }
    Ok(())
}

/// `quantize_row_q8_0_ref` / `q8_1_ref`: `d = amax / 127`, `q = roundf(x * (1 / d))`.
fn q8_ref_block(x: &[f32], qs: &mut [i8; 32]) -> f32 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = c_trunc((v * id).round()) as i8;
    }
    d
}

/// The AVX2 `quantize_row_q8_0` / `q8_1` of ggml-cpu: `d = amax / 127`,
/// `q = round_half_even(x * (127 / amax))`, saturated to i8 by the pack instructions.
fn q8_x86_block(x: &[f32], qs: &mut [i8; 32]) -> f32 {
    // _mm256_max_ps keeps the second operand on NaN; for finite input this is a plain max.
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = c_trunc((v * id).round_ties_even()).clamp(-128, 127) as i8;
    }
    d
}

pub(crate) fn quantize_q8_0_ref(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ8_0>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        b.d = to_half(q8_ref_block(x, &mut b.qs));
    }
    Ok(())
}

pub(crate) fn quantize_q8_0_x86(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ8_0>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        b.d = to_half(q8_x86_block(x, &mut b.qs));
    }
    Ok(())
}

fn code_sum(qs: &[i8; 32]) -> i32 {
    qs.iter().map(|&q| i32::from(q)).sum()
}

pub(crate) fn quantize_q8_1_ref(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ8_1>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        let d = q8_ref_block(x, &mut b.qs);
        b.d = to_half(d);
        b.s = to_half(code_sum(&b.qs) as f32 * d);
    }
    Ok(())
}

pub(crate) fn quantize_q8_1_x86(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let blocks = as_blocks_mut::<BlockQ8_1>(dst)?;
    for (b, x) in blocks.iter_mut().zip(src.chunks_exact(QK_LEGACY)) {
        let d = q8_x86_block(x, &mut b.qs);
        b.d = to_half(d);
        b.s = to_half(d * code_sum(&b.qs) as f32);
    }
    Ok(())
}

pub(crate) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ4_0>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_LEGACY))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            *v = (i32::from(b.q(i)) - 8) as f32 * d;
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ4_1>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_LEGACY))
    {
        let (d, m) = (b.d(), b.m());
        for (i, v) in y.iter_mut().enumerate() {
            *v = f32::from(b.q(i)) * d + m;
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ5_0>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_LEGACY))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            *v = (i32::from(b.q(i)) - 16) as f32 * d;
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ5_1>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_LEGACY))
    {
        let (d, m) = (b.d(), b.m());
        for (i, v) in y.iter_mut().enumerate() {
            *v = f32::from(b.q(i)) * d + m;
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ8_0>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_LEGACY))
    {
        let d = b.d();
        for (v, &q) in y.iter_mut().zip(&b.qs) {
            *v = f32::from(q) * d;
        }
    }
    Ok(())
}

/// ggml has no `dequantize_row_q8_1`; this is the obvious `d * q` (the `s` field is redundant).
pub(crate) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ8_1>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_LEGACY))
    {
        let d = b.d();
        for (v, &q) in y.iter_mut().zip(&b.qs) {
            *v = f32::from(q) * d;
        }
    }
    Ok(())
}
