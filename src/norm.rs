//! RMSNorm, computed the way ggml does so that logits match llama.cpp bit for bit where possible:
//! the sum of squares is accumulated in f64 (each square rounded to f32 first), the mean is
//! rounded to f32, and `1/sqrt(mean + eps)` is taken in f32.

use rayon::prelude::*;

/// `out[i] = x[i] * scale * weight[i]` with `scale = 1/sqrt(mean(x^2) + eps)`.
///
/// All three slices must have the same length (callers size them from the model config).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let scale = rms_scale(x, eps);
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

/// Normalises every row of `rows` (each `weight.len()` long) into the same place of `out`,
/// rows spread over the current rayon pool (each row on its own: the same values either way).
pub fn rms_norm_rows(rows: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let n = weight.len();
    if n == 0 {
        return;
    }
    rows.par_chunks_exact(n)
        .zip(out.par_chunks_exact_mut(n))
        .with_min_len(16)
        .for_each(|(x, o)| rms_norm(x, weight, eps, o));
}

/// [`rms_norm_rows`] in place (each row's scale is taken before the row is overwritten).
pub fn rms_norm_rows_in_place(rows: &mut [f32], weight: &[f32], eps: f32) {
    let n = weight.len();
    if n == 0 {
        return;
    }
    rows.par_chunks_exact_mut(n).with_min_len(16).for_each(|x| {
        let scale = rms_scale(x, eps);
        for (v, &w) in x.iter_mut().zip(weight) {
            *v = *v * scale * w;
        }
    });
}

fn rms_scale(x: &[f32], eps: f32) -> f32 {
    let sum: f64 = x.iter().map(|&v| f64::from(v * v)).sum();
    let mean = (sum / x.len().max(1) as f64) as f32;
    1.0 / (mean + eps).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_weight_gives_unit_rms() {
        // A row of constant 3.0 has rms 3, so every output is 3/3 = 1 (eps 0).
        let x = [3.0f32; 8];
        let w = [1.0f32; 8];
        let mut y = [0.0f32; 8];
        rms_norm(&x, &w, 0.0, &mut y);
        assert!(y.iter().all(|&v| v == 1.0), "{y:?}");
    }

    #[test]
    fn weight_and_sign_are_applied_per_element() {
        // x = [1, -1, 1, -1]: rms 1, so y = x * w.
        let x = [1.0f32, -1.0, 1.0, -1.0];
        let w = [0.5f32, 2.0, -1.0, 4.0];
        let mut y = [0.0f32; 4];
        rms_norm(&x, &w, 0.0, &mut y);
        assert_eq!(y, [0.5, -2.0, -1.0, -4.0]);
    }
}
