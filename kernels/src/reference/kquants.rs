//! Q2_K Q3_K Q4_K Q5_K Q6_K Q8_K: ggml's `quantize_row_*_ref` / `dequantize_row_*`.

use super::kquant_search::{make_q3_quants, make_qkx2_quants, make_qx_quants, Qkx2, GROUP_MAX_EPS};
use super::nearest_int;
use crate::formats::{
    as_blocks, as_blocks_mut, scale_min_k4, to_half, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K,
    BlockQ6K, BlockQ8K, K_SCALE_SIZE, QK_K,
};
use crate::KernelError;

// ---------------------------------------------------------------- dequantize

pub(crate) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ2K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = (b.d(), b.dmin());
        for (i, v) in y.iter_mut().enumerate() {
            let dl = d * f32::from(b.scale(i));
            let ml = dmin * f32::from(b.min(i));
            *v = dl * f32::from(b.q(i)) - ml;
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ3K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            let dl = d * f32::from(b.scale(i));
            *v = dl * f32::from(b.q(i));
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ4K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = (b.d(), b.dmin());
        for (i, v) in y.iter_mut().enumerate() {
            let (sc, m) = b.scale_min(i);
            *v = (d * f32::from(sc)) * f32::from(b.q(i)) - dmin * f32::from(m);
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ5K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let (d, dmin) = (b.d(), b.dmin());
        for (i, v) in y.iter_mut().enumerate() {
            let (sc, m) = b.scale_min(i);
            *v = (d * f32::from(sc)) * f32::from(b.q(i)) - dmin * f32::from(m);
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ6K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (i, v) in y.iter_mut().enumerate() {
            *v = d * f32::from(b.scale(i)) * f32::from(b.q(i));
        }
    }
    Ok(())
}

pub(crate) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) -> Result<(), KernelError> {
    for (b, y) in as_blocks::<BlockQ8K>(src)?
        .iter()
        .zip(dst.chunks_exact_mut(QK_K))
    {
        let d = b.d();
        for (v, &q) in y.iter_mut().zip(&b.qs) {
            *v = d * f32::from(q);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- quantize

/// `quantize_row_q8_K_ref`: the signed value of largest magnitude `max` gives
/// `iscale = -127 / max`, codes `nearest_int(iscale * x)` capped at 127, `d = 1 / iscale` as f32,
/// and the sums of each 16 codes.
pub(crate) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    for (b, x) in as_blocks_mut::<BlockQ8K>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let (amax, max) = super::legacy::signed_absmax(x);
        if amax == 0.0 {
            *b = BlockQ8K::default();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(x) {
            *q = nearest_int(iscale * v).clamp(-128, 127) as i8;
        }
        for (sum, group) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            let s: i32 = group.iter().map(|&q| i32::from(q)).sum();
            *sum = (s as i16).to_le_bytes();
        }
        b.d = (1.0 / iscale).to_le_bytes();
    }
    Ok(())
}

/// Packs 256 2-bit codes in the Q2_K/Q3_K order (see `BlockQ2K::q`).
fn pack_two_bits(codes: &[u8; QK_K]) -> [u8; 64] {
    let mut qs = [0u8; 64];
    for (h, out) in qs.chunks_exact_mut(32).enumerate() {
        for (l, q) in out.iter_mut().enumerate() {
            let c = |g: usize| codes[128 * h + 32 * g + l] & 3;
            *q = c(0) | (c(1) << 2) | (c(2) << 4) | (c(3) << 6);
        }
    }
    qs
}

/// `quantize_row_q2_K_ref`.
pub(crate) fn quantize_q2_k(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    const Q4SCALE: f32 = 15.0;
    let search = Qkx2 {
        nmax: 3,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    for (b, x) in as_blocks_mut::<BlockQ2K>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let mut codes = [0u8; QK_K];
        let mut scales = [0f32; 16];
        let mut mins = [0f32; 16];
        let (mut max_scale, mut max_min) = (0f32, 0f32);
        for (j, (xs, ls)) in x
            .chunks_exact(16)
            .zip(codes.chunks_exact_mut(16))
            .enumerate()
        {
            let mut weights = [0f32; 16];
            for (w, &v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            (scales[j], mins[j]) = make_qkx2_quants(&search, xs, &weights, ls);
            if scales[j] > max_scale {
                max_scale = scales[j];
            }
            if mins[j] > max_min {
                max_min = mins[j];
            }
        }
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for (s, &sc) in b.scales.iter_mut().zip(&scales) {
                *s = nearest_int(iscale * sc) as u8;
            }
            b.d = to_half(max_scale / Q4SCALE);
        } else {
            b.scales = [0; 16];
            b.d = to_half(0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for (s, &m) in b.scales.iter_mut().zip(&mins) {
                *s |= (nearest_int(iscale * m) << 4) as u8;
            }
            b.dmin = to_half(max_min / Q4SCALE);
        } else {
            b.dmin = to_half(0.0);
        }
        // Requantize against the rounded scales; sub-blocks whose scale rounded to zero keep the
        // codes of the search.
        let (d_all, dmin_all) = (b.d(), b.dmin());
        for (j, (xs, ls)) in x
            .chunks_exact(16)
            .zip(codes.chunks_exact_mut(16))
            .enumerate()
        {
            let d = d_all * f32::from(b.scales[j] & 0x0F);
            if d == 0.0 {
                continue;
            }
            let dm = dmin_all * f32::from(b.scales[j] >> 4);
            for (l, &v) in ls.iter_mut().zip(xs) {
                *l = nearest_int((v + dm) / d).clamp(0, 3) as u8;
            }
        }
        b.qs = pack_two_bits(&codes);
    }
    Ok(())
}

/// `quantize_row_q3_K_ref`.
pub(crate) fn quantize_q3_k(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    for (b, x) in as_blocks_mut::<BlockQ3K>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let mut codes = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut amax) = (0f32, 0f32);
        for (j, (xs, ls)) in x
            .chunks_exact(16)
            .zip(codes.chunks_exact_mut(16))
            .enumerate()
        {
            scales[j] = make_q3_quants(4, xs, ls);
            if scales[j].abs() > amax {
                amax = scales[j].abs();
                max_scale = scales[j];
            }
        }
        b.scales = [0; 12];
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for (j, &sc) in scales.iter().enumerate() {
                // ggml stores nearest_int's result in an int8_t before clamping.
                let l = ((nearest_int(iscale * sc) as i8).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    b.scales[j] = l & 0x0F;
                } else {
                    b.scales[j - 8] |= (l & 0x0F) << 4;
                }
                b.scales[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
            }
            b.d = to_half(1.0 / iscale);
        } else {
            b.d = to_half(0.0);
        }
        let d_all = b.d();
        for (j, (xs, ls)) in x
            .chunks_exact(16)
            .zip(codes.chunks_exact_mut(16))
            .enumerate()
        {
            let d = d_all * f32::from(b.sub_scale(j));
            if d == 0.0 {
                continue;
            }
            for (l, &v) in ls.iter_mut().zip(xs) {
                *l = (nearest_int(v / d).clamp(-4, 3) + 4) as i8;
            }
        }
        // Codes are 0..8: bit 2 goes to hmask (bit j/32 of byte j%32), bits 0-1 to qs.
        b.hmask = [0; 32];
        let mut low = [0u8; QK_K];
        for (j, (&c, lo)) in codes.iter().zip(low.iter_mut()).enumerate() {
            let c = c as u8;
            if c > 3 {
                b.hmask[j % 32] |= 1 << (j / 32);
            }
            *lo = c & 3;
        }
        b.qs = pack_two_bits(&low);
    }
    Ok(())
}

/// Packs eight 6-bit (scale, min) pairs in the Q4_K/Q5_K layout (see `scale_min_k4`).
fn pack_scale_mins(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; K_SCALE_SIZE] {
    let mut s = [0u8; K_SCALE_SIZE];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

/// The shared first half of `quantize_row_q4_K_ref` / `q5_K_ref`: per sub-block of 32, a
/// `make_qkx2_quants` search weighted by `rms + |x|`, then 6-bit scales and mins against their
/// maxima. Returns (d, dmin, packed scales) and leaves the search's codes in `codes`.
fn k4_scales(x: &[f32], search: &Qkx2, codes: &mut [u8; QK_K]) -> ([u8; 2], [u8; 2], [u8; 12]) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for (j, (xs, ls)) in x
        .chunks_exact(32)
        .zip(codes.chunks_exact_mut(32))
        .enumerate()
    {
        let sum_x2 = xs.iter().fold(0f32, |s, &v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let mut weights = [0f32; 32];
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(search, xs, &weights, ls);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..8 {
        // ggml narrows to uint8_t before taking the minimum with 63.
        ls[j] = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        lm[j] = (nearest_int(inv_min * mins[j]) as u8).min(63);
    }
    (
        to_half(max_scale / 63.0),
        to_half(max_min / 63.0),
        pack_scale_mins(&ls, &lm),
    )
}

/// Requantizes against the rounded 6-bit scales and mins; sub-blocks whose scale is zero keep
/// the search's codes.
fn k4_requantize(
    x: &[f32],
    d: f32,
    dmin: f32,
    scales: &[u8; 12],
    nmax: i32,
    codes: &mut [u8; QK_K],
) {
    for (j, (xs, ls)) in x
        .chunks_exact(32)
        .zip(codes.chunks_exact_mut(32))
        .enumerate()
    {
        let (sc, m) = scale_min_k4(j, scales);
        let d = d * f32::from(sc);
        if d == 0.0 {
            continue;
        }
        let dm = dmin * f32::from(m);
        for (l, &v) in ls.iter_mut().zip(xs) {
            *l = nearest_int((v + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

/// `quantize_row_q4_K_ref`.
pub(crate) fn quantize_q4_k(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let search = Qkx2 {
        nmax: 15,
        rmin: -1.0,
        rdelta: 0.1,
        nstep: 20,
        use_mad: false,
    };
    for (b, x) in as_blocks_mut::<BlockQ4K>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let mut codes = [0u8; QK_K];
        (b.d, b.dmin, b.scales) = k4_scales(x, &search, &mut codes);
        k4_requantize(x, b.d(), b.dmin(), &b.scales, 15, &mut codes);
        for (c, q) in b.qs.chunks_exact_mut(32).enumerate() {
            for (l, byte) in q.iter_mut().enumerate() {
                *byte = codes[64 * c + l] | (codes[64 * c + 32 + l] << 4);
            }
        }
    }
    Ok(())
}

/// `quantize_row_q5_K_ref`.
pub(crate) fn quantize_q5_k(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    let search = Qkx2 {
        nmax: 31,
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: false,
    };
    for (b, x) in as_blocks_mut::<BlockQ5K>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let mut codes = [0u8; QK_K];
        (b.d, b.dmin, b.scales) = k4_scales(x, &search, &mut codes);
        k4_requantize(x, b.d(), b.dmin(), &b.scales, 31, &mut codes);
        b.qh = [0; 32];
        for (c, q) in b.qs.chunks_exact_mut(32).enumerate() {
            for (l, byte) in q.iter_mut().enumerate() {
                let (lo, hi) = (codes[64 * c + l], codes[64 * c + 32 + l]);
                // The fifth bit of value i is bit i/32 of qh[i % 32].
                b.qh[l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
                *byte = (lo & 0x0F) | ((hi & 0x0F) << 4);
            }
        }
    }
    Ok(())
}

/// `quantize_row_q6_K_ref`.
pub(crate) fn quantize_q6_k(src: &[f32], dst: &mut [u8]) -> Result<(), KernelError> {
    for (b, x) in as_blocks_mut::<BlockQ6K>(dst)?
        .iter_mut()
        .zip(src.chunks_exact(QK_K))
    {
        let mut codes = [0i8; QK_K];
        let mut scales = [0f32; 16];
        let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
        for (j, (xs, ls)) in x
            .chunks_exact(16)
            .zip(codes.chunks_exact_mut(16))
            .enumerate()
        {
            scales[j] = make_qx_quants(32, xs, ls);
            if scales[j].abs() > max_abs_scale {
                max_abs_scale = scales[j].abs();
                max_scale = scales[j];
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            *b = BlockQ6K::default();
            continue;
        }
        let iscale = -128.0 / max_scale;
        b.d = to_half(1.0 / iscale);
        for (s, &sc) in b.scales.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * sc).clamp(-128, 127) as i8;
        }
        let d_all = b.d();
        for (j, (xs, ls)) in x
            .chunks_exact(16)
            .zip(codes.chunks_exact_mut(16))
            .enumerate()
        {
            let d = d_all * f32::from(b.scales[j]);
            if d == 0.0 {
                continue;
            }
            for (l, &v) in ls.iter_mut().zip(xs) {
                *l = (nearest_int(v / d).clamp(-32, 31) + 32) as i8;
            }
        }
        for (h, (ql, qh)) in
            b.ql.chunks_exact_mut(64)
                .zip(b.qh.chunks_exact_mut(32))
                .enumerate()
        {
            for l in 0..32 {
                let c = |g: usize| codes[128 * h + 32 * g + l] as u8;
                ql[l] = (c(0) & 0x0F) | ((c(2) & 0x0F) << 4);
                ql[l + 32] = (c(1) & 0x0F) | ((c(3) & 0x0F) << 4);
                qh[l] = (c(0) >> 4) | ((c(1) >> 4) << 2) | ((c(2) >> 4) << 4) | ((c(3) >> 4) << 6);
            }
        }
    }
    Ok(())
}
