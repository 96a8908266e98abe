//! Properties of the scalar reference that hold for any input: round-trip error bounds, dot
//! products against a plain f64 dot, self-consistency of the activation formats, edge cases and
//! argument checking.

use tramontane_kernels::formats::{as_blocks, half, BlockQ8K, BlockQ8_1};
use tramontane_kernels::reference::{
    block_dot_terms, block_isums, dequantize_row, quantize_activations, quantize_row, row_bytes,
    vec_dot, vec_dot_type,
};
use tramontane_kernels::{GgmlType, KernelError};

/// The 12 weight types with a quantizer and a dot product, with their nominal bits per code
/// and the largest integer that multiplies an f16 scale in their decoding (code times sub-block
/// scale, plus the min's multiplier): how far an f16 rounding error of the stored scales, at
/// most 2^-25 absolute when they are subnormal, can move one decoded value.
const WEIGHT_TYPES: [(GgmlType, u32, f32); 12] = [
    (GgmlType::Q4_0, 4, 8.0),
    (GgmlType::Q4_1, 4, 16.0),
    (GgmlType::Q5_0, 5, 16.0),
    (GgmlType::Q5_1, 5, 32.0),
    (GgmlType::Q8_0, 8, 127.0),
    (GgmlType::Q2_K, 2, 60.0),
    (GgmlType::Q3_K, 3, 128.0),
    (GgmlType::Q4_K, 4, 1008.0),
    (GgmlType::Q5_K, 5, 2016.0),
    (GgmlType::Q6_K, 6, 4096.0),
    (GgmlType::IQ4_NL, 4, 127.0),
    (GgmlType::IQ4_XS, 4, 4064.0),
];

/// Largest absolute error of rounding a value to f16 in the subnormal range.
const F16_SUBNORMAL_ERR: f32 = 2.980_232_2e-8; // 2^-25

/// A small deterministic generator (xorshift64*), so the tests need no dependency and every
/// run sees the same rows.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-7);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

/// Rows of 1024 values with different shapes: normal, uniform, all positive, outliers, one
/// constant, and normal rows scaled very small and large (within f16 range for the scales).
fn test_rows() -> Vec<(String, Vec<f32>)> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let n = 1024;
    let mut rows = Vec::new();
    rows.push(("normal".into(), (0..n).map(|_| rng.normal()).collect()));
    rows.push((
        "uniform".into(),
        (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect(),
    ));
    rows.push((
        "positive".into(),
        (0..n).map(|_| 0.1 + rng.uniform()).collect(),
    ));
    let mut outliers: Vec<f32> = (0..n).map(|_| 0.5 * rng.normal()).collect();
    for k in 0..8 {
        outliers[k * 131 + 7] = if k % 2 == 0 { 40.0 } else { -25.0 };
    }
    rows.push(("outliers".into(), outliers));
    rows.push(("constant".into(), vec![0.7; n]));
    rows.push(("negative constant".into(), vec![-3.25; n]));
    for scale in [1e-6f32, 1e3] {
        rows.push((
            format!("normal x {scale:e}"),
            (0..n).map(|_| scale * rng.normal()).collect(),
        ));
    }
    rows
}

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; row_bytes(ty, x.len()).unwrap()];
    quantize_row(ty, x, &mut q).unwrap();
    q
}

fn dequantize(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![f32::NAN; n];
    dequantize_row(ty, q, &mut y).unwrap();
    y
}

fn activations(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; row_bytes(ty, x.len()).unwrap()];
    quantize_activations(ty, x, &mut q).unwrap();
    q
}

/// Per (super-)block: the largest error must stay within one code step of the block's full
/// range at the type's nominal precision, `2 * amax / (2^bits - 1)`, plus `amax * 2^-9` for the
/// relative f16 rounding of the stored scales and mins, plus the absolute f16 rounding of
/// subnormal scales times the type's largest multiplier (what makes tiny rows flush to zero). Rounding alone gives half a step; the other half
/// covers what the formats really do: Q4_0/Q5_0 clamp the code opposite the extreme value
/// (`+8` becomes `+7`), the k-quants round sub-block scales to 4/6/8 bits and clip codes after
/// their scale search, and IQ4's levels are up to 24/254 of the range apart.
#[test]
fn round_trip_error_stays_within_one_step_per_block() {
    for (name, x) in test_rows() {
        for (ty, bits, multiplier) in WEIGHT_TYPES {
            let y = dequantize(ty, &quantize(ty, &x), x.len());
            let bs = ty.block_size();
            for (b, (xb, yb)) in x.chunks(bs).zip(y.chunks(bs)).enumerate() {
                let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                let step = 2.0 * amax / ((1u32 << bits) - 1) as f32;
                let bound = step + amax * 2f32.powi(-9) + multiplier * F16_SUBNORMAL_ERR;
                let err = xb
                    .iter()
                    .zip(yb)
                    .fold(0f32, |e, (a, b)| e.max((a - b).abs()));
                assert!(
                    err <= bound,
                    "{ty} on {name}, block {b}: max error {err} > bound {bound} (amax {amax})"
                );
            }
        }
    }
}

/// Q8_0 and Q8_1 (both quantizers) and Q8_K: error at most half a step (`d / 2`) plus the f16
/// rounding of `d` (relative, or absolute when subnormal) over at most 127 steps.
#[test]
fn activation_round_trip_is_within_half_a_step() {
    for (name, x) in test_rows() {
        for ty in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K] {
            for (path, q) in [
                ("quantize_activations", activations(ty, &x)),
                ("quantize_row", quantize(ty, &x)),
            ] {
                let y = dequantize(ty, &q, x.len());
                let bs = ty.block_size();
                for (xb, yb) in x.chunks(bs).zip(y.chunks(bs)) {
                    let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let d = amax / 127.0;
                    // Q8_K keeps d in f32: no f16 term, only f32 rounding.
                    let scale_rounding = if ty == GgmlType::Q8_K {
                        amax * 1e-6
                    } else {
                        amax * 2f32.powi(-11) * 1.01 + 127.0 * F16_SUBNORMAL_ERR
                    };
                    let bound = 0.5 * d * 1.0001 + scale_rounding + f32::MIN_POSITIVE;
                    for (a, b) in xb.iter().zip(yb) {
                        assert!(
                            (a - b).abs() <= bound,
                            "{ty} {path} on {name}: {a} -> {b}, bound {bound}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn q8_1_sums_and_q8_k_bsums_agree_with_the_codes() {
    for (name, x) in test_rows() {
        for q in [
            activations(GgmlType::Q8_1, &x),
            quantize(GgmlType::Q8_1, &x),
        ] {
            for b in as_blocks::<BlockQ8_1>(&q).unwrap() {
                let sum: i32 = b.qs.iter().map(|&v| i32::from(v)).sum();
                let exact = b.d() * sum as f32;
                // s = f16(d32 * sum) while d = f16(d32): two f16 roundings of 2^-11 each.
                let tol = exact.abs() * 2f32.powi(-10) * 1.01
                    + (sum.abs() as f32 + 1.0) * F16_SUBNORMAL_ERR;
                assert!(
                    (b.s() - exact).abs() <= tol,
                    "Q8_1 on {name}: s {} vs d*sum {exact}",
                    b.s()
                );
            }
        }
        let q = activations(GgmlType::Q8_K, &x);
        for b in as_blocks::<BlockQ8K>(&q).unwrap() {
            for (j, group) in b.qs.chunks_exact(16).enumerate() {
                let sum: i32 = group.iter().map(|&v| i32::from(v)).sum();
                assert_eq!(i32::from(b.bsum(j)), sum, "Q8_K bsums on {name}");
            }
        }
    }
}

/// Plain f64 dot of the dequantized weights and activations, and a bound on how far the
/// reference may be from it: every dequantized value and every block term carries at most a
/// few f32 roundings (relative 2^-24 each) of quantities no larger than
/// `|w_i| + 2 * amax(w block)` times `|a_i|` (the asymmetric types subtract a min up to the
/// block's amax from a larger product); 2^-20 leaves room for 16 of them. Q4_1/Q5_1 also use
/// Q8_1's `s = f16(d * sum q)` instead of the exact sum: at most `|m| * 2^-9 * sum |a_i|` more.
fn dot_and_tolerance(ty: GgmlType, w: &[u8], act: &[u8], n: usize) -> (f64, f64) {
    let act_ty = vec_dot_type(ty);
    let wf = dequantize(ty, w, n);
    let af = dequantize(act_ty, act, n);
    let exact: f64 = wf
        .iter()
        .zip(&af)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let bs = ty.block_size();
    let mut tol = 0f64;
    for (wb, ab) in wf.chunks(bs).zip(af.chunks(bs)) {
        let amax = wb.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (&wi, &ai) in wb.iter().zip(ab) {
            tol += f64::from(wi.abs() + 2.0 * amax) * f64::from(ai.abs()) * 2f64.powi(-20);
        }
    }
    if act_ty == GgmlType::Q8_1 {
        let sum_a: f64 = af.iter().map(|a| f64::from(a.abs())).sum();
        let mmax = wf.iter().fold(0f32, |m, v| m.max(v.abs()));
        tol += f64::from(mmax) * sum_a * 2f64.powi(-9);
    }
    (exact, tol + 1e-30)
}

#[test]
fn vec_dot_matches_a_plain_dot_of_dequantized_rows() {
    let rows = test_rows();
    for (wname, wx) in &rows {
        for (aname, ax) in rows.iter().take(4) {
            for (ty, _, _) in WEIGHT_TYPES {
                let n = wx.len();
                let w = quantize(ty, wx);
                let act = activations(vec_dot_type(ty), &ax[..n]);
                let got = vec_dot(ty, n, &w, &act).unwrap();
                let (exact, tol) = dot_and_tolerance(ty, &w, &act, n);
                assert!(
                    (f64::from(got) - exact).abs() <= tol + exact.abs() * 2f64.powi(-24),
                    "{ty} {wname} . {aname}: got {got}, f64 dot {exact}, tolerance {tol}"
                );
            }
        }
    }
}

#[test]
fn vec_dot_of_float_types_is_the_product_sum() {
    let rows = test_rows();
    let (wx, ax) = (&rows[0].1, &rows[1].1);
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
        assert_eq!(vec_dot_type(ty), ty);
        let w = quantize(ty, wx);
        let act = activations(ty, ax);
        let got = vec_dot(ty, wx.len(), &w, &act).unwrap();
        let (exact, tol) = dot_and_tolerance(ty, &w, &act, wx.len());
        assert!(
            (f64::from(got) - exact).abs() <= tol,
            "{ty}: {got} vs {exact}"
        );
        assert_eq!(
            block_dot_terms(ty, wx.len(), &w, &act).unwrap().len(),
            wx.len()
        );
    }
}

#[test]
fn vec_dot_is_the_sum_of_the_block_terms_and_terms_follow_the_isums() {
    let rows = test_rows();
    let (wx, ax) = (&rows[3].1, &rows[0].1);
    for (ty, _, _) in WEIGHT_TYPES {
        let n = wx.len();
        let w = quantize(ty, wx);
        let act = activations(vec_dot_type(ty), ax);
        let terms = block_dot_terms(ty, n, &w, &act).unwrap();
        let isums = block_isums(ty, n, &w, &act).unwrap();
        assert_eq!(terms.len(), n / ty.block_size());
        assert_eq!(isums.len(), terms.len());
        let sum: f64 = terms.iter().map(|&t| f64::from(t)).sum();
        assert_eq!(vec_dot(ty, n, &w, &act).unwrap(), sum as f32);
        // Only the types with a per-sub-block min carry a min sum.
        let has_mins = matches!(ty, GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K);
        assert_eq!(has_mins, isums.iter().any(|s| s.mins != 0), "{ty}");
    }
}

#[test]
fn q8_0_isums_are_the_integer_dot_of_the_codes() {
    let rows = test_rows();
    let w = quantize(GgmlType::Q8_0, &rows[0].1);
    let a = activations(GgmlType::Q8_0, &rows[1].1);
    let isums = block_isums(GgmlType::Q8_0, 1024, &w, &a).unwrap();
    let (wb, ab) = (w.chunks(34), a.chunks(34));
    for ((isum, wb), ab) in isums.iter().zip(wb).zip(ab) {
        let expected: i32 = wb[2..]
            .iter()
            .zip(&ab[2..])
            .map(|(&p, &q)| i32::from(p as i8) * i32::from(q as i8))
            .sum();
        assert_eq!(isum.scaled, expected);
        assert_eq!(isum.mins, 0);
    }
}

#[test]
fn zero_rows_round_trip_to_zero_everywhere() {
    let x = vec![0f32; 512];
    for (ty, _, _) in WEIGHT_TYPES {
        let y = dequantize(ty, &quantize(ty, &x), x.len());
        assert!(y.iter().all(|&v| v == 0.0), "{ty}");
        let act = activations(vec_dot_type(ty), &x);
        assert_eq!(vec_dot(ty, x.len(), &quantize(ty, &x), &act).unwrap(), 0.0);
    }
    for ty in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K] {
        assert!(activations(ty, &x).iter().all(|&b| b == 0), "{ty}");
    }
}

/// Tiny inputs (below f16's range for the scales) must flush to zero, not to NaN; values up to
/// what an f16 scale can express must stay finite.
#[test]
fn extreme_scales_give_finite_outputs() {
    let mut rng = Rng(42);
    for scale in [1e-30f32, 1e-12, 1e-5, 1.0, 2e3] {
        let x: Vec<f32> = (0..512).map(|_| scale * rng.normal()).collect();
        for (ty, _, _) in WEIGHT_TYPES {
            let y = dequantize(ty, &quantize(ty, &x), x.len());
            assert!(y.iter().all(|v| v.is_finite()), "{ty} at scale {scale:e}");
            let act = activations(vec_dot_type(ty), &x);
            let d = vec_dot(ty, x.len(), &quantize(ty, &x), &act).unwrap();
            assert!(d.is_finite(), "{ty} dot at scale {scale:e}");
        }
    }
}

#[test]
fn lengths_that_are_not_whole_blocks_are_refused() {
    for (ty, _, _) in WEIGHT_TYPES {
        let bs = ty.block_size();
        let x = vec![1f32; bs + 1];
        let mut q = vec![0u8; 2 * ty.block_bytes()];
        assert!(matches!(
            quantize_row(ty, &x, &mut q),
            Err(KernelError::NotBlockMultiple { .. })
        ));
        let mut y = vec![0f32; bs + 1];
        assert!(matches!(
            dequantize_row(ty, &q, &mut y),
            Err(KernelError::NotBlockMultiple { .. })
        ));
        // Whole blocks, but the byte buffer is one short.
        let x = vec![1f32; bs];
        let mut short = vec![0u8; ty.block_bytes() - 1];
        assert!(matches!(
            quantize_row(ty, &x, &mut short),
            Err(KernelError::LengthMismatch { .. })
        ));
        let mut y = vec![0f32; bs];
        assert!(matches!(
            dequantize_row(ty, &short, &mut y),
            Err(KernelError::LengthMismatch { .. })
        ));
        let w = quantize(ty, &x);
        let act = activations(vec_dot_type(ty), &x);
        assert!(vec_dot(ty, bs, &w, &act[1..]).is_err());
        assert!(vec_dot(ty, bs + 1, &w, &act).is_err());
        assert!(row_bytes(ty, bs + 1).is_err());
    }
    assert!(matches!(
        quantize_activations(GgmlType::Q8_K, &[0.0; 255], &mut [0u8; 292]),
        Err(KernelError::NotBlockMultiple { .. })
    ));
}

#[test]
fn types_without_a_reference_are_refused_not_guessed() {
    let x = vec![0f32; 256];
    let mut q = vec![0u8; 1024];
    let mut y = vec![0f32; 256];
    for ty in [GgmlType::IQ2_XXS, GgmlType::TQ1_0, GgmlType::NVFP4] {
        let bytes = row_bytes(ty, 256).unwrap();
        assert!(matches!(
            quantize_row(ty, &x, &mut q[..bytes]),
            Err(KernelError::Unsupported { .. })
        ));
        assert!(matches!(
            dequantize_row(ty, &q[..bytes], &mut y),
            Err(KernelError::Unsupported { .. })
        ));
        assert!(vec_dot(ty, 256, &q[..bytes], &q[..bytes]).is_err());
    }
    // Activation-only formats have no weight dot product here.
    assert!(vec_dot(GgmlType::Q8_K, 256, &[0; 292], &[0; 1024]).is_err());
    assert!(quantize_activations(GgmlType::Q4_0, &x, &mut q[..144]).is_err());
}

#[test]
fn half_helper_reads_little_endian() {
    assert_eq!(half([0x00, 0x3C]), 1.0);
    assert_eq!(half([0x00, 0xC0]), -2.0);
}

/// The legacy types are plain rounding to a uniform grid, so they must do better than one step:
/// at most half a step (`d / 2`) from rounding, plus the f16 rounding of `d` (and `m`) times the
/// code, except where Q4_0/Q5_0 clamp the value opposite the extreme (`x / d > 2^(b-1) - 1/2`
/// cannot be coded as `2^(b-1)`; its error is the distance to the top code).
#[test]
fn legacy_round_trip_is_within_half_a_step() {
    // (type, symmetric top code (or None), levels for asymmetric)
    let cases = [
        (GgmlType::Q4_0, Some(8.0f32), 0.0f32),
        (GgmlType::Q5_0, Some(16.0), 0.0),
        (GgmlType::Q8_0, None, 0.0),
        (GgmlType::Q4_1, None, 15.0),
        (GgmlType::Q5_1, None, 31.0),
    ];
    for (name, x) in test_rows() {
        for (ty, top, levels) in cases {
            let y = dequantize(ty, &quantize(ty, &x), x.len());
            for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
                let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                let max = xb.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0);
                let min = xb.iter().copied().fold(f32::MAX, f32::min);
                let maxv = xb.iter().copied().fold(-f32::MAX, f32::max);
                // The scale ggml computes, as a signed step (negative when max > 0 for the
                // symmetric types), and the largest code magnitude it multiplies.
                let (d, code_max) = match (ty, top) {
                    (_, Some(t)) => (max / -t, t),
                    (GgmlType::Q8_0, None) => (amax / 127.0, 127.0),
                    _ => ((maxv - min) / levels, levels),
                };
                let scale_err = code_max * (d.abs() * 2f32.powi(-11) + F16_SUBNORMAL_ERR);
                let min_err = if levels > 0.0 {
                    min.abs() * 2f32.powi(-11) + F16_SUBNORMAL_ERR
                } else {
                    0.0
                };
                for (&a, &b) in xb.iter().zip(yb) {
                    let mut allowed = 0.5 * d.abs();
                    if let Some(t) = top {
                        let u = if d != 0.0 { a / d } else { 0.0 };
                        if u > t - 0.5 {
                            allowed = (u - (t - 1.0)) * d.abs();
                        }
                    }
                    let bound = allowed * 1.0001 + scale_err + min_err;
                    assert!(
                        (a - b).abs() <= bound,
                        "{ty} on {name}: {a} -> {b}, bound {bound} (d {d})"
                    );
                }
            }
        }
    }
}

/// Rows with NaN and infinities are garbage in, but must not panic (errors are values, and a
/// quantizer has nothing to report here: ggml writes some bytes too).
#[test]
fn non_finite_inputs_do_not_panic() {
    let mut x = vec![0.5f32; 512];
    x[3] = f32::NAN;
    x[40] = f32::INFINITY;
    x[300] = f32::NEG_INFINITY;
    x[301] = f32::MAX;
    for (ty, _, _) in WEIGHT_TYPES {
        let q = quantize(ty, &x);
        let _ = dequantize(ty, &q, x.len());
        let act = activations(vec_dot_type(ty), &x);
        let _ = vec_dot(ty, x.len(), &q, &act).unwrap();
    }
}
