//! IQ4_NL / IQ4_XS: ggml's `dequantize_row_iq4_*` and the chunk quantizer.

use super::nearest_int;
use crate::formats::{
    as_blocks, as_blocks_mut, to_half, BlockIq4Nl, BlockIq4Xs, IQ4NL_VALUES, QK_K,
};
use crate::KernelError;

pub(crate) fn dequantize_iq4_nl(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockIq4Nl>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(32))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            *v = d * f32::from(IQ4NL_VALUES[usize::from(b.q(i))]);
        }
    }
    Ok(())
}

pub(crate) fn dequantize_iq4_xs(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockIq4Xs>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            let dl = d * (i32::from(b.ls(i / 32)) - 32) as f32;
            *v = dl * f32::from(IQ4NL_VALUES[usize::from(b.q(i))]);
        }
    }
    Ok(())
}

/// Index of the level nearest to `x` (`best_index_int8`; ties go to the upper level, and
/// values outside the table to its ends).
fn best_index(x: f32) -> u8 {
    let val = |i: usize| f32::from(IQ4NL_VALUES[i]);
    if x <= val(0) {
        return 0;
    }
    if x >= val(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - val(mu - 1) < val(mu) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// Scale candidates tried on each side of the first guess (`ntry` of ggml's
/// `quantize_iq4_nl` / `quantize_iq4_xs`; their `_ref` variants use none).
const NTRY: i32 = 7;

/// The scale search of `quantize_row_iq4_nl_impl` for one sub-block of 32 with weights `x^2`
/// (no importance matrix): start from `-max / -127`, then try `id = (itry - 127) / max` for
/// `itry` in -7..=7 and keep the least-squares scale with the largest `sumqx^2 / sumq2`.
fn search_scale(xb: &[f32]) -> f32 {
    let (amax, max) = super::legacy::signed_absmax(xb);
    if amax < super::kquant_search::GROUP_MAX_EPS {
        return 0.0;
    }
    let v0 = f32::from(IQ4NL_VALUES[0]);
    let sums = |id: f32| {
        let (mut sumqx, mut sumq2) = (0f32, 0f32);
        for &v in xb {
            let q = f32::from(IQ4NL_VALUES[usize::from(best_index(id * v))]);
            let w = v * v;
            sumqx += w * q * v;
            sumq2 += w * q * q;
        }
        (sumqx, sumq2)
    };
    let d = -max / v0;
    let (sumqx, sumq2) = sums(1.0 / d);
    let mut d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        let id = (itry + i32::from(IQ4NL_VALUES[0])) as f32 / max;
        let (sumqx, sumq2) = sums(id);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// Packs 32 level indices: value j low nibble, j + 16 high nibble of byte j.
fn pack(codes: &[u8]) -> [u8; 16] {
    let mut qs = [0u8; 16];
    for (j, q) in qs.iter_mut().enumerate() {
        *q = codes[j] | (codes[j + 16] << 4);
    }
    qs
}

/// `quantize_iq4_nl` without an importance matrix (what `ggml_quantize_chunk` and
/// llama-quantize run).
pub(crate) fn quantize_iq4_nl(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    for (b, x) in as_blocks_mut::<BlockIq4Nl>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(32))
    {
        let d = search_scale(x);
        b.d = to_half(d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut codes = [0u8; 32];
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = best_index(id * v);
        }
        b.qs = pack(&codes);
    }
    Ok(())
}

/// `quantize_iq4_xs` without an importance matrix: sub-block scales as for IQ4_NL, then 6-bit
/// sub-block scales against `d = -max_scale / 32` and codes against those.
pub(crate) fn quantize_iq4_xs(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    for (b, x) in as_blocks_mut::<BlockIq4Xs>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let mut scales = [0f32; 8];
        let (mut max_scale, mut amax_scale) = (0f32, 0f32);
        for (s, xb) in scales.iter_mut().zip(x.chunks_exact(32)) {
            *s = search_scale(xb);
            if s.abs() > amax_scale {
                amax_scale = s.abs();
                max_scale = *s;
            }
        }
        let d = -max_scale / 32.0;
        b.d = to_half(d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut scales_h = 0u16;
        b.scales_l = [0; 4];
        for (ib, (&s, xb)) in scales.iter().zip(x.chunks_exact(32)).enumerate() {
            let l = nearest_int(id * s).clamp(-32, 31);
            // The codes use the unrounded f32 `d`, as ggml does.
            let dl = d * l as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            let mut codes = [0u8; 32];
            for (c, &v) in codes.iter_mut().zip(xb) {
                *c = best_index(idl * v);
            }
            b.qs[16 * ib..16 * ib + 16].copy_from_slice(&pack(&codes));
            let l = (l + 32) as u8;
            b.scales_l[ib / 2] |= (l & 0x0F) << (4 * (ib % 2));
            scales_h |= u16::from(l >> 4) << (2 * ib);
        }
        b.scales_h = scales_h.to_le_bytes();
    }
    Ok(())
}
