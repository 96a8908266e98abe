//! The scale searches of ggml's k-quant quantizers (`make_qx_quants`, `make_q3_quants`,
//! `make_qkx2_quants` in ggml-quants.c).
//!
//! Each tries a few candidate scales around `nmax / max` and keeps the one with the smallest
//! weighted squared (or absolute) error. The f32 operations are written in exactly ggml's order,
//! `(a * b) * c` where C has `a*b*c`, because the chosen scale, and so every byte of the block,
//! depends on the last bit of these sums.

use super::legacy::signed_absmax;
use super::nearest_int;

/// Below this magnitude a group is treated as all zeros.
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// Symmetric codes `L[i] in 0..2*nmax` (stored with `+nmax`) for `x = scale * (L - nmax)`,
/// searching 18 scales around `nmax / max` with weights `x^2` (ggml's `rmse_type == 1`, the
/// only one the reference quantizers use). Returns the scale.
pub(crate) fn make_qx_quants(nmax: i32, x: &[f32], codes: &mut [i8]) -> f32 {
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        codes.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let quant = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let weight = |v: f32| v * v;

    let mut iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (l_out, &v) in codes.iter_mut().zip(x) {
        let l = quant(iscale, v);
        *l_out = (l + nmax) as i8;
        let w = weight(v);
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for &v in x {
            let l = quant(iscale, v);
            let w = weight(v);
            sumlx += w * v * l as f32;
            suml2 += w * l as f32 * l as f32;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (l_out, &v) in codes.iter_mut().zip(x) {
                *l_out = (quant(iscale, v) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Q3_K's sub-block search (`make_q3_quants` with `do_rmse`): start from `nmax / max`, then
/// move single codes while that lowers the `x^2`-weighted error, at most 5 sweeps. Codes are
/// returned with `+nmax`. Returns the scale.
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32], codes: &mut [i8]) -> f32 {
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        codes.iter_mut().for_each(|l| *l = 0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for (l_out, &v) in codes.iter_mut().zip(x) {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1);
        *l_out = l as i8;
        let w = v * v;
        sumlx += w * v * l as f32;
        suml2 += w * l as f32 * l as f32;
    }
    for _ in 0..5 {
        let mut changed = 0;
        for (l_io, &v) in codes.iter_mut().zip(x) {
            let w = v * v;
            let cur = f32::from(*l_io);
            let mut slx = sumlx - w * v * cur;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * cur * cur;
                let new_l = nearest_int(v * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != i32::from(*l_io) {
                    slx += w * v * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        *l_io = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        changed += 1;
                    }
                }
            }
        }
        if changed == 0 {
            break;
        }
    }
    for l in codes.iter_mut() {
        *l += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Parameters of one `make_qkx2_quants` search.
pub(crate) struct Qkx2 {
    /// Largest code.
    pub nmax: i32,
    /// The candidate inverse scales are `(rmin + rdelta * is + nmax) / (max - min)`,
    /// `is = 0..=nstep`.
    pub rmin: f32,
    pub rdelta: f32,
    pub nstep: i32,
    /// Minimize the weighted absolute error instead of the squared one.
    pub use_mad: bool,
}

/// Asymmetric codes `L in 0..=nmax` for `x = scale * L - min` (`make_qkx2_quants`): for each
/// candidate scale, solve the weighted least-squares (scale, min) for its codes and keep the
/// best. Returns `(scale, min)` with `min >= 0` (the value subtracted).
pub(crate) fn make_qkx2_quants(
    p: &Qkx2,
    x: &[f32],
    weights: &[f32],
    codes: &mut [u8],
) -> (f32, f32) {
    let (Some(&x0), Some(&w0)) = (x.first(), weights.first()) else {
        return (0.0, 0.0);
    };
    let (mut min, mut max) = (x0, x0);
    let mut sum_w = w0;
    let mut sum_x = sum_w * x0;
    for (&v, &w) in x.iter().zip(weights).skip(1) {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
        sum_w += w;
        sum_x += w * v;
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        codes.iter_mut().for_each(|l| *l = 0);
        return (0.0, -min);
    }
    let nmax = p.nmax as f32;
    let quant = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, p.nmax);
    let error = |diff: f32| if p.use_mad { diff.abs() } else { diff * diff };

    let mut iscale = nmax / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for ((l_out, &v), &w) in codes.iter_mut().zip(x).zip(weights) {
        let l = quant(iscale, v, min);
        *l_out = l as u8;
        let diff = scale * l as f32 + min - v;
        best_error += w * error(diff);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    let mut aux = [0u8; 32];
    let aux = &mut aux[..x.len().min(32)];
    for is in 0..=p.nstep {
        iscale = (p.rmin + p.rdelta * is as f32 + nmax) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for ((a, &v), &w) in aux.iter_mut().zip(x).zip(weights) {
            let l = quant(iscale, v, min);
            *a = l as u8;
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * v;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for ((&a, &v), &w) in aux.iter().zip(x).zip(weights) {
                let diff = this_scale * f32::from(a) + this_min - v;
                cur_error += w * error(diff);
            }
            if cur_error < best_error {
                codes.iter_mut().zip(aux.iter()).for_each(|(c, &a)| *c = a);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}
