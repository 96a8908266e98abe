//! Expert selection for one token, as llama.cpp's `build_moe_ffn` does it with softmax gating
//! and no weight scale (Mixtral, Qwen 2/3 MoE, OLMoE; `norm_w` per architecture):
//!
//! 1. `probs = soft_max(logits)`: max, ggml's polynomial exp with each full 8-lane block summed
//!    as AVX2 does (libm `expf` and one-by-one sums for a tail), an f64 total, then every value
//!    times `f32(1 / total)`.
//! 2. `argsort_top_k(probs, k)`: a descending `std::sort` over the **probabilities** (not the
//!    logits: two logits can round to one probability). For up to 16 experts libstdc++'s
//!    `std::sort` is an insertion sort, which is stable: ties go to the lower expert index.
//!    We always break ties that way (NaN sorts last, so a broken row cannot panic us). Past 16
//!    experts (Qwen 3 MoE has 128) `std::sort` is an introsort, whose order among exactly equal
//!    probabilities is its own: only such a tie at the k-th place could choose differently.
//! 3. `weights = probs[selected]`, then (`norm_w`) their sum (f64 accumulation of the f32
//!    values, rounded to f32, `ggml_sum_rows`), clamped to at least 2^-14 (the smallest
//!    normal f16, as llama.cpp does against division by zero), and each weight divided by it.

use std::cmp::Ordering;

use tramontane_kernels::vecmath::scalar::{expf as ggml_expf, hsum8};

use crate::moe::experts::Gating;

/// The smallest normal f16, llama.cpp's floor for the sum of the selected weights.
const MIN_WEIGHT_SUM: f32 = 1.0 / 16384.0; // 2^-14 = 6.103515625e-5

/// `probs = soft_max(logits)` exactly as ggml-cpu (AVX2) rounds it.
pub fn softmax(logits: &[f32], probs: &mut [f32]) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let full = logits.len() - logits.len() % 8;
    let mut sum = 0.0f64;
    for (src, dst) in logits[..full]
        .chunks_exact(8)
        .zip(probs.chunks_exact_mut(8))
    {
        let mut lanes = [0.0f32; 8];
        for ((lane, p), &x) in lanes.iter_mut().zip(dst.iter_mut()).zip(src) {
            *p = ggml_expf(x - max);
            *lane = *p;
        }
        sum += f64::from(hsum8(&lanes));
    }
    for (p, &x) in probs[full..].iter_mut().zip(&logits[full..]) {
        *p = (x - max).exp();
        sum += f64::from(*p);
    }
    let inv = (1.0 / sum) as f32;
    probs.iter_mut().for_each(|p| *p *= inv);
}

/// Descending by value, ties (and NaNs, which sort last) by ascending index.
fn by_descending_prob(probs: &[f32]) -> impl Fn(&usize, &usize) -> Ordering + '_ {
    |&a, &b| {
        let (pa, pb) = (probs[a], probs[b]);
        match (pa.is_nan(), pb.is_nan()) {
            (false, false) => pb.partial_cmp(&pa).unwrap_or(Ordering::Equal),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (true, true) => Ordering::Equal,
        }
        .then(a.cmp(&b))
    }
}

/// The chosen experts of one token: `experts[j]` with weight `weights[j]`, in llama.cpp's
/// order (highest probability first), which is also the order their outputs are summed in.
///
/// `logits.len()` is the expert count; the number of experts chosen is `experts.len()`
/// (= `weights.len()`, at most `logits.len()`; the caller checks). `normalize` is llama.cpp's
/// `norm_w`.
pub fn route_token(logits: &[f32], normalize: bool, experts: &mut [u32], weights: &mut [f32]) {
    route_token_gated(logits, Gating::Softmax, normalize, experts, weights);
}

/// [`route_token`] with llama.cpp's gating function `gating`: for
/// [`Gating::SoftmaxOfTopK`] the experts are the top logits (ties to the lower index) and
/// their weights the softmax of those k logits alone (ggml's soft_max on a k-wide row).
pub fn route_token_gated(
    logits: &[f32],
    gating: Gating,
    normalize: bool,
    experts: &mut [u32],
    weights: &mut [f32],
) {
    let mut probs = vec![0.0f32; logits.len()];
    match gating {
        Gating::Softmax => softmax(logits, &mut probs),
        Gating::SoftmaxOfTopK => probs.copy_from_slice(logits),
    }
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(by_descending_prob(&probs));
    for ((e, w), &i) in experts.iter_mut().zip(weights.iter_mut()).zip(&order) {
        *e = i as u32;
        *w = probs[i];
    }
    if gating == Gating::SoftmaxOfTopK {
        let chosen = weights.to_vec();
        softmax(&chosen, weights);
    }
    if normalize {
        let sum = weights.iter().map(|&w| f64::from(w)).sum::<f64>() as f32;
        let sum = sum.max(MIN_WEIGHT_SUM);
        weights.iter_mut().for_each(|w| *w /= sum);
    }
}

/// The routing of a batch: token `t` uses experts `experts[t*n_used..][..n_used]` with the
/// matching `weights`.
#[derive(Clone, Debug, PartialEq)]
pub struct Routing {
    /// Experts chosen per token (`n_used` per token, highest probability first).
    pub experts: Vec<u32>,
    /// Their weights.
    pub weights: Vec<f32>,
    /// Experts per token.
    pub n_used: usize,
}

impl Routing {
    /// Routes every token of `logits` (`n_tokens` rows of `n_expert` router logits).
    pub fn from_logits(logits: &[f32], n_expert: usize, n_used: usize, normalize: bool) -> Self {
        Self::from_logits_gated(logits, n_expert, n_used, Gating::Softmax, normalize)
    }

    /// [`from_logits`](Self::from_logits) with llama.cpp's gating function `gating`.
    pub fn from_logits_gated(
        logits: &[f32],
        n_expert: usize,
        n_used: usize,
        gating: Gating,
        normalize: bool,
    ) -> Self {
        let n_tokens = logits.len().checked_div(n_expert).unwrap_or(0);
        let mut experts = vec![0u32; n_tokens * n_used];
        let mut weights = vec![0.0f32; n_tokens * n_used];
        if n_used > 0 {
            for ((row, e), w) in logits
                .chunks_exact(n_expert.max(1))
                .zip(experts.chunks_exact_mut(n_used))
                .zip(weights.chunks_exact_mut(n_used))
            {
                route_token_gated(row, gating, normalize, e, w);
            }
        }
        Routing {
            experts,
            weights,
            n_used,
        }
    }

    /// Number of routed tokens.
    pub fn n_tokens(&self) -> usize {
        self.experts.len().checked_div(self.n_used).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_with_a_tail() {
        let logits = [0.5f32, -1.0, 2.0, 0.0, 1.0, 3.0, -2.0, 0.25, 1.5, -0.5];
        let mut p = [0.0f32; 10];
        softmax(&logits, &mut p);
        let s: f64 = p.iter().map(|&x| f64::from(x)).sum();
        assert!((s - 1.0).abs() < 1e-6, "{s}");
        assert!(p[5] > p[2] && p[2] > p[8]);
    }

    #[test]
    fn nan_logits_do_not_panic() {
        let mut e = [0u32; 2];
        let mut w = [0.0f32; 2];
        route_token(&[f32::NAN, 1.0, 2.0], true, &mut e, &mut w);
        route_token(&[f32::NAN, f32::NAN], true, &mut e, &mut w);
    }
}
