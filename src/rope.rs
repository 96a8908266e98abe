//! Rotary position embedding, following ggml's `rope` op with `ext_factor = 0` (no YaRN):
//! `theta_i = freq_scale * pos * base^(-2i/n_dims) / freq_factor_i`, where the powers of the base
//! are built by repeated f32 multiplication exactly as ggml builds its cos/sin cache, so the
//! angles (and therefore K, which is cached after RoPE) round the same way.

/// Which elements form a rotated pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(x[2i], x[2i+1])`: llama, mistral, mixtral ("normal" in ggml).
    Normal,
    /// Halves `(x[i], x[i + n_dims/2])`: gemma, qwen ("neox" in ggml).
    Neox,
}

/// The RoPE parameters of one model (shared by every layer).
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Number of leading dimensions of each head that are rotated (even).
    pub n_dims: usize,
    /// `base^(-2/n_dims)`, the ratio between successive pair frequencies.
    theta_scale: f32,
    /// `1/factor` for linear scaling, 1 otherwise.
    freq_scale: f32,
    /// Per-pair divisors of the angle (llama3 scaling / `rope_freqs.weight` / LongRoPE's
    /// factors), `n_dims/2` long.
    freq_factors: Option<Vec<f32>>,
    /// Multiplier of every cos and sin (ggml's `mscale`: `rope.scaling.attn_factor`, 1 by
    /// default).
    mscale: f32,
    /// YaRN's `ext_factor` and correction dimensions, when the model uses YaRN.
    yarn: Option<(f32, [f32; 2])>,
    /// Pair layout.
    pub style: RopeStyle,
}

impl Rope {
    /// Builds the parameters; `freq_factors`, when given, must hold at least `n_dims/2` values
    /// (the caller validates it against the model).
    pub fn new(
        n_dims: usize,
        freq_base: f32,
        freq_scale: f32,
        freq_factors: Option<Vec<f32>>,
        style: RopeStyle,
    ) -> Rope {
        Rope {
            n_dims,
            theta_scale: freq_base.powf(-2.0 / n_dims as f32),
            freq_scale,
            freq_factors,
            mscale: 1.0,
            yarn: None,
            style,
        }
    }

    /// The same rotation with every cos and sin multiplied by `mscale` (ggml's `attn_factor`,
    /// which LongRoPE models set from `rope.scaling.attn_factor`).
    pub fn with_mscale(mut self, mscale: f32) -> Rope {
        self.mscale = mscale;
        self
    }

    /// The same rotation with YaRN's ramp (ggml's `ext_factor` and `beta_fast` / `beta_slow`
    /// over the `original_context` the model was trained on).
    pub fn with_yarn(
        mut self,
        ext_factor: f32,
        original_context: u32,
        freq_base: f32,
        beta_fast: f32,
        beta_slow: f32,
    ) -> Rope {
        // ggml_rope_yarn_corr_dims: the dimensions whose wavelength turns `beta` times over
        // the original context.
        let n_dims = self.n_dims as f32;
        let corr = |beta: f32| {
            n_dims * (original_context as f32 / (beta * 2.0 * std::f32::consts::PI)).ln()
                / (2.0 * freq_base.ln())
        };
        let start = corr(beta_fast).floor().max(0.0);
        let end = corr(beta_slow).ceil().min(n_dims - 1.0);
        self.yarn = Some((ext_factor, [start, end]));
        self
    }

    /// The (cos, sin) pairs for one position, `n_dims/2` of them.
    pub fn angles(&self, pos: usize) -> Vec<(f32, f32)> {
        let mut theta = pos as f32;
        (0..self.n_dims / 2)
            .map(|i| {
                let ff = self
                    .freq_factors
                    .as_ref()
                    .and_then(|f| f.get(i))
                    .copied()
                    .unwrap_or(1.0);
                let extrap = theta / ff;
                let interp = self.freq_scale * extrap;
                theta *= self.theta_scale;
                let (angle, mscale) = match self.yarn {
                    Some((ext, [low, high])) if ext != 0.0 => {
                        // ggml's rope_yarn, as its FMA build contracts it.
                        let y = ((i as f32) - low) / (high - low).max(0.001);
                        let ramp_mix = (1.0 - y.clamp(0.0, 1.0)) * ext;
                        let angle = interp.mul_add(1.0 - ramp_mix, extrap * ramp_mix);
                        let boost = 0.1f32.mul_add((1.0 / self.freq_scale).ln(), 1.0);
                        (angle, self.mscale * boost)
                    }
                    _ => (interp, self.mscale),
                };
                // ggml: cosf(theta) * mscale (a multiplication by 1 changes no bit).
                (angle.cos() * mscale, angle.sin() * mscale)
            })
            .collect()
    }

    /// Rotates one head vector in place with the angles of its position.
    pub fn rotate(&self, angles: &[(f32, f32)], head: &mut [f32]) {
        let half = self.n_dims / 2;
        for (i, &(cos, sin)) in angles.iter().enumerate().take(half) {
            let (a, b) = match self.style {
                RopeStyle::Normal => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + half),
            };
            let (Some(&x0), Some(&x1)) = (head.get(a), head.get(b)) else {
                return;
            };
            // ggml's C source writes `x0*cos - x1*sin`; its x86 and ARM builds contract the
            // first product into a fused multiply-add, and that rounding is what we match.
            head[a] = x0.mul_add(cos, -(x1 * sin));
            head[b] = x0.mul_add(sin, x1 * cos);
        }
    }

    /// Rotates every head of one token's row (`n_heads * head_dim` wide) in place.
    pub fn rotate_heads(&self, angles: &[(f32, f32)], row: &mut [f32], head_dim: usize) {
        if head_dim == 0 {
            return;
        }
        for head in row.chunks_exact_mut(head_dim) {
            self.rotate(angles, head);
        }
    }
}

/// The llama3 frequency factors (what `convert_hf_to_gguf.py` writes as `rope_freqs.weight`),
/// computed from `rope.scaling.*` metadata when a file carries the parameters but not the tensor.
pub fn llama3_freq_factors(
    n_dims: usize,
    freq_base: f32,
    factor: f32,
    low_freq_factor: f32,
    high_freq_factor: f32,
    original_context: f32,
) -> Vec<f32> {
    use std::f32::consts::PI;
    let low_freq_wavelen = original_context / low_freq_factor;
    let high_freq_wavelen = original_context / high_freq_factor;
    (0..n_dims / 2)
        .map(|i| {
            let freq = 1.0 / freq_base.powf((2 * i) as f32 / n_dims as f32);
            let wavelen = 2.0 * PI / freq;
            if wavelen < high_freq_wavelen {
                1.0
            } else if wavelen > low_freq_wavelen {
                factor
            } else {
                let smooth = (original_context / wavelen - low_freq_factor)
                    / (high_freq_factor - low_freq_factor);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_zero_is_identity() {
        let rope = Rope::new(4, 10000.0, 1.0, None, RopeStyle::Normal);
        let mut x = [1.0f32, 2.0, 3.0, 4.0];
        rope.rotate(&rope.angles(0), &mut x);
        assert_eq!(x, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn first_pair_rotates_by_position_radians() {
        // Pair 0 has frequency base^0 = 1, so at position 1 it turns by exactly 1 radian.
        let rope = Rope::new(4, 10000.0, 1.0, None, RopeStyle::Normal);
        let mut x = [1.0f32, 0.0, 0.0, 0.0];
        rope.rotate(&rope.angles(1), &mut x);
        assert_eq!(x[0], 1.0f32.cos());
        assert_eq!(x[1], 1.0f32.sin());
    }

    #[test]
    fn neox_pairs_halves_and_linear_scale_slows_rotation() {
        // With freq_scale 0.5 (linear factor 2), position 2 turns pair 0 by 1 radian.
        let rope = Rope::new(4, 10000.0, 0.5, None, RopeStyle::Neox);
        let mut x = [1.0f32, 0.0, 0.0, 0.0];
        rope.rotate(&rope.angles(2), &mut x);
        assert_eq!(x[0], 1.0f32.cos());
        assert_eq!(x[2], 1.0f32.sin());
        assert_eq!(x[1], 0.0);
    }

    #[test]
    fn llama3_factors_bracket_the_scaling_factor() {
        // Llama 3.1 values: the highest frequencies are untouched (1), the lowest divided by 8.
        let f = llama3_freq_factors(128, 500000.0, 8.0, 1.0, 4.0, 8192.0);
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0);
        assert_eq!(f[63], 8.0);
        assert!(f.iter().all(|&v| (1.0..=8.0).contains(&v)));
    }
}
