//! The scalar references of [`crate::vecmath`]: the definition of every result there, lane by
//! lane, and the order names its f16 dot products take.

use half::f16;

/// Which of ggml's f16 dot-product kernels a product imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F16DotOrder {
    /// `ggml_vec_dot_f16` (one token): four 8-lane accumulators over steps of 32 values,
    /// reduced as `(s0+s2)+(s1+s3)`, then halves and two pairwise adds. The rows are taken as
    /// zero-padded to a multiple of 32 (what llama.cpp's padded attention window amounts to),
    /// so there are no f64 leftovers; for unpadded lengths use the dispatched F16 `vec_dot`.
    GgmlVec,
    /// llamafile tinyBLAS (a batch): one 8-lane accumulator, element `i` into lane `i % 8`,
    /// then the 8-lane horizontal sum.
    TinyBlas,
}

/// The horizontal sum of one 8-lane register as AVX code does it (high half plus low
/// half, then pairs): `((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7))`.
pub fn hsum8(v: &[f32; 8]) -> f32 {
    let h = [v[4] + v[0], v[5] + v[1], v[6] + v[2], v[7] + v[3]];
    (h[0] + h[2]) + (h[1] + h[3])
}

/// `sum x[i]*y[i]` over `min(x.len(), y.len())` values in the given order.
pub fn dot_f16(order: F16DotOrder, x: &[f16], y: &[f16]) -> f32 {
    let pairs = x.iter().zip(y).map(|(a, b)| (a.to_f32(), b.to_f32()));
    match order {
        F16DotOrder::TinyBlas => tinyblas_sum(pairs),
        F16DotOrder::GgmlVec => ggml_vec_sum(pairs),
    }
}

/// tinyBLAS's order: one 8-lane accumulator of fused multiply-adds (pair `i` into lane
/// `i % 8`), then [`hsum8`].
pub fn tinyblas_sum(pairs: impl IntoIterator<Item = (f32, f32)>) -> f32 {
    let mut acc = [0.0f32; 8];
    for (i, (a, b)) in pairs.into_iter().enumerate() {
        acc[i % 8] = a.mul_add(b, acc[i % 8]);
    }
    hsum8(&acc)
}

/// The 32-value steps of ggml's x86 float `vec_dot`: four 8-lane accumulators of fused
/// multiply-adds (pair `i` into accumulator `(i / 8) % 4`, lane `i % 8`), reduced as
/// `(s0+s2)+(s1+s3)`, then halves and two pairwise adds. Pairs past a multiple of 32
/// land in the accumulators too, so callers pass those steps only (or zero padding).
pub fn ggml_vec_sum(pairs: impl IntoIterator<Item = (f32, f32)>) -> f32 {
    let mut acc = [[0.0f32; 8]; 4];
    for (i, (a, b)) in pairs.into_iter().enumerate() {
        let slot = &mut acc[(i / 8) % 4][i % 8];
        *slot = a.mul_add(b, *slot);
    }
    let mut v = [0.0f32; 8];
    for (l, out) in v.iter_mut().enumerate() {
        *out = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    }
    let t = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    (t[0] + t[1]) + (t[2] + t[3])
}

/// One lane of ggml's `ggml_v_expf` (max error about 1.5 ulp; flushes below -103.97
/// to 0, overflows above 88.7 to infinity).
pub fn expf(x: f32) -> f32 {
    let r = f32::from_bits(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), r); // log2(e)
    let n = z - r;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),
        (-n).mul_add(f32::from_bits(0x3f31_7200), x),
    );
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1.0f32.to_bits()));
    let u = b * b;
    let j = f32::from_bits(0x3c07_2010)
        .mul_add(b, f32::from_bits(0x3d2b_9f17))
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)),
        )
        .mul_add(u, f32::from_bits(0x3f7f_fff6) * b);
    if n.abs() <= 126.0 || n.is_nan() {
        return k.mul_add(j, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    if n.abs() > 192.0 {
        return s1 * s1;
    }
    let s2 = f32::from_bits(e.wrapping_sub(g));
    s2.mul_add(j, s2) * s1
}

/// ggml's vector SiLU: `x / (1 + expf(0 - x))` with the polynomial exp.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + expf(0.0 - x))
}

/// ggml's `swiglu_oai` (gpt-oss's experts): `x = min(gate, limit)`,
/// `y = clamp(up, -limit, limit)`, `out = x / (1 + expf(alpha * -x)) * (y + 1)`, with
/// libm's `expf` and C++'s `std::min` / `std::clamp` (a NaN gate stays NaN).
pub fn swiglu_oai(gate: &[f32], up: &[f32], out: &mut [f32], alpha: f32, limit: f32) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        let x = if limit < g { limit } else { g };
        let y = if u < -limit {
            -limit
        } else if limit < u {
            limit
        } else {
            u
        };
        let glu = x / (1.0 + (alpha * -x).exp());
        *o = glu * (y + 1.0);
    }
}

/// `out[i] = silu(gate[i]) * up[i]` over the common length.
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu(g) * u;
    }
}

/// ggml's tanh-approximated GELU in f32, as its CPU backend evaluates it when building
/// its lookup table: `0.5*x*(1 + tanh(sqrt(2/pi)*x*(1 + 0.044715*x*x)))`, where GCC
/// fuses `1 + (0.044715*x)*x` into one multiply-add.
pub fn gelu_exact(x: f32) -> f32 {
    const COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (COEF_A * x).mul_add(x, 1.0)).tanh())
}

/// ggml's f32 GELU (`GGML_GELU_FP16`): 0 at or below -10, `x` at or above 10, otherwise
/// the table entry of `x` rounded to f16 (the table holds `gelu_exact` of every f16,
/// rounded to f16).
pub fn gelu(x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        gelu_table()[usize::from(f16::from_f32(x).to_bits())].to_f32()
    }
}

/// `out[i] = gelu(gate[i]) * up[i]` over the common length (ggml's `geglu`).
pub fn geglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = gelu(g) * u;
    }
}

/// `gelu_exact` of every f16 (indexed by its bits), rounded to f16: ggml's GELU table.
pub(crate) fn gelu_table() -> &'static [f16] {
    static TABLE: std::sync::OnceLock<Vec<f16>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_exact(f16::from_bits(bits).to_f32())))
            .collect()
    })
}

/// `ggml_soft_max_ext` on the unmasked part of one row: `x*scale`, the max, the
/// polynomial exp of `x - max`, each 8-lane block's horizontal sum added into an f64
/// (masked lanes count as 0), then every value times `f32(1/sum)`.
pub fn soft_max(row: &mut [f32], scale: f32) {
    soft_max_sink(row, scale, None);
}

/// [`soft_max`] with an attention sink (`ggml_soft_max_add_sinks`): a logit that joins the
/// max and, as `expf(sink - max)` (libm) added in f64 after the row's sum, the
/// denominator, but has no output of its own.
pub fn soft_max_sink(row: &mut [f32], scale: f32, sink: Option<f32>) {
    let mut max = f32::NEG_INFINITY;
    for x in row.iter_mut() {
        *x *= scale;
        max = max.max(*x);
    }
    if let Some(sk) = sink {
        max = if max > sk { max } else { sk };
    }
    let mut sum = 0.0f64;
    for block in row.chunks_mut(8) {
        sum += exp_block(block, max);
    }
    if let Some(sk) = sink {
        sum += f64::from((sk - max).exp());
    }
    let inv = (1.0 / sum) as f32;
    for x in row.iter_mut() {
        *x *= inv;
    }
}

/// `x = expf(x - max)` on up to 8 values; returns their 8-lane horizontal sum (missing
/// lanes are 0).
pub(crate) fn exp_block(block: &mut [f32], max: f32) -> f64 {
    let mut lanes = [0.0f32; 8];
    for (lane, x) in lanes.iter_mut().zip(block.iter_mut()) {
        *x = expf(*x - max);
        *lane = *x;
    }
    f64::from(hsum8(&lanes))
}

/// Rounds each value to f16 (nearest even, like F16C) over the common length.
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(s);
    }
}
