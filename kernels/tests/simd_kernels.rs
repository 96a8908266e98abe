//! The dispatched kernels (SIMD where the CPU has them) against the scalar reference.
//!
//! Expected values come from `reference::{vec_dot, block_dot_terms, quantize_activations}`.
//! The dispatched dot product must be within 1e-5 * sum |block term| of the reference: the
//! kernels compute exact integer block sums and differ only in float rounding of scales and
//! of the accumulation. Rows of a single block are included: there an error of one unit in
//! an integer sum would move the result by a whole |d_w * d_a| (a term's scale), far beyond
//! the tolerance, so the integer sums are checked exactly in effect.
//! Run with `TRAMONTANE_KERNELS=scalar` too: then the dispatched path is the reference.

use tramontane_kernels::dispatch::{self, TileArgs};
use tramontane_kernels::reference;
use tramontane_kernels::{active_kernels, GgmlType};

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

/// Types with a SIMD kernel on x86 / aarch64, plus the rest of what the reference dots.
const WEIGHT_TYPES: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
    GgmlType::MXFP4,
    GgmlType::F16,
    GgmlType::F32,
];

/// Offsets of the f16 scale fields in each weight block (so random bytes stay finite).
fn half_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 | GgmlType::IQ4_NL | GgmlType::IQ4_XS => {
            &[0]
        }
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    }
}

/// A row of `n` values in one of several styles: quantized from floats of a given scale,
/// all zero, or raw random codes with finite random scales (every bit pattern of the codes,
/// including the packed 6-bit scales of k-quants).
fn weight_row(ty: GgmlType, n: usize, style: usize, rng: &mut Rng) -> Vec<u8> {
    let bytes = reference::row_bytes(ty, n).unwrap();
    let scale = [1.0f32, 1e-4, 3e3, 1.0][style % 4];
    let quantized = |rng: &mut Rng| {
        let x: Vec<f32> = (0..n).map(|_| rng.unit() * scale).collect();
        let mut w = vec![0u8; bytes];
        reference::quantize_row(ty, &x, &mut w).ok().map(|_| w)
    };
    match style {
        4 => vec![0u8; bytes],
        // Raw codes; also for types whose reference quantizer is not there yet.
        _ if style == 5 && !matches!(ty, GgmlType::F16 | GgmlType::F32)
            || quantized(&mut Rng(rng.next())).is_none() =>
        {
            let mut w: Vec<u8> = (0..bytes).map(|_| rng.byte()).collect();
            let bb = ty.block_bytes();
            for block in w.chunks_exact_mut(bb) {
                for &off in half_fields(ty) {
                    let h = half::f16::from_f32(rng.unit() * 0.05);
                    block[off..off + 2].copy_from_slice(&h.to_le_bytes());
                }
                if ty == GgmlType::MXFP4 {
                    // An E8M0 exponent: half-scales 2^-28 .. 2^3.
                    block[0] = 100 + rng.byte() % 32;
                }
            }
            w
        }
        _ => quantized(rng).unwrap_or_default(),
    }
}

fn act_row(ty: GgmlType, n: usize, style: usize, rng: &mut Rng) -> Vec<u8> {
    let act_ty = reference::vec_dot_type(ty);
    let scale = [1.0f32, 50.0, 1e-3, 7.0][style % 4];
    let x: Vec<f32> = if style == 2 {
        vec![0.0; n]
    } else {
        (0..n).map(|_| rng.unit() * scale).collect()
    };
    let mut a = vec![0u8; reference::row_bytes(act_ty, n).unwrap()];
    reference::quantize_activations(act_ty, &x, &mut a).unwrap();
    a
}

fn tolerance(ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> f32 {
    let terms = reference::block_dot_terms(ty, n, w, a).unwrap();
    let mut mag: f64 = terms.iter().map(|t| f64::from(t.abs())).sum();
    if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
        // A block's term is `d * isum + m * s`, two products that may cancel: kernels round
        // each on its own, so both magnitudes count (the scaled part is the term with m = 0).
        let mut no_min = w.to_vec();
        for block in no_min.chunks_exact_mut(ty.block_bytes()) {
            block[2..4].fill(0);
        }
        let scaled = reference::block_dot_terms(ty, n, &no_min, a).unwrap();
        mag = terms
            .iter()
            .zip(&scaled)
            .map(|(&t, &d)| f64::from(d.abs()) + f64::from((t - d).abs()))
            .sum();
    }
    (1e-5 * mag) as f32 + f32::MIN_POSITIVE
}

#[test]
fn reports_the_active_level() {
    let name = active_kernels();
    assert!(
        ["scalar", "avx2", "avxvnni", "avx512", "neon", "dotprod", "i8mm"].contains(&name),
        "{name}"
    );
    if std::env::var("TRAMONTANE_KERNELS").as_deref() == Ok("scalar") {
        assert_eq!(name, "scalar");
    }
    #[cfg(target_arch = "x86_64")]
    if std::env::var("TRAMONTANE_KERNELS").is_err() {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        let vnni = avx2 && is_x86_feature_detected!("avxvnni");
        let avx512 = avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        let expected = match (avx2, avx512, vnni) {
            (true, true, _) => "avx512",
            (true, false, true) => "avxvnni",
            (true, false, false) => "avx2",
            _ => "scalar",
        };
        assert_eq!(name, expected);
        let levels = dispatch::available_levels();
        assert_eq!(levels.first(), Some(&expected));
        assert_eq!(levels.last(), Some(&"scalar"));
        assert_eq!(levels.contains(&"avx2"), avx2);
        assert_eq!(levels.contains(&"avxvnni"), vnni);
        assert_eq!(levels.contains(&"avx512"), avx512);
        if avx2 {
            for ty in [
                GgmlType::Q4_0,
                GgmlType::Q4_1,
                GgmlType::Q5_0,
                GgmlType::Q5_1,
                GgmlType::Q8_0,
            ] {
                assert!(dispatch::has_simd_vec_dot(ty), "{ty}");
            }
            for ty in [
                GgmlType::Q4_K,
                GgmlType::Q5_K,
                GgmlType::Q6_K,
                GgmlType::F16,
            ] {
                assert!(dispatch::has_simd_vec_dot(ty), "{ty}");
            }
        }
    }
}

#[test]
fn vec_dot_matches_reference() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for &ty in WEIGHT_TYPES {
        let bs = ty.block_size().max(32);
        for blocks in [1usize, 2, 3, 8, 17] {
            let n = if matches!(ty, GgmlType::F16 | GgmlType::F32) {
                blocks * 37
            } else {
                blocks * bs
            };
            for style in 0..6 {
                let w = weight_row(ty, n, style, &mut rng);
                let a = act_row(ty, n, style, &mut rng);
                let want = reference::vec_dot(ty, n, &w, &a).unwrap();
                let got = dispatch::vec_dot(ty, n, &w, &a).unwrap();
                let tol = tolerance(ty, n, &w, &a);
                assert!(
                    (got - want).abs() <= tol,
                    "{ty} n={n} style={style}: got {got}, reference {want}, tolerance {tol} ({})",
                    active_kernels()
                );
            }
        }
    }
}

#[test]
fn f16_dot_matches_ggml_summation_order() {
    // ggml_vec_dot_f16 (AVX2): 4 x 8-lane accumulators per 32 values, reduced
    // (s0+s2)+(s1+s3), halves, 2 hadds; leftovers in f64. Recomputed here in plain Rust.
    let mut rng = Rng(77);
    for n in [32usize, 64, 96, 100, 4096 + 13] {
        let x: Vec<f32> = (0..n).map(|_| rng.unit() * 4.0).collect();
        let y: Vec<f32> = (0..n).map(|_| rng.unit() * 4.0).collect();
        let to_bytes = |v: &[f32]| -> Vec<u8> {
            v.iter()
                .flat_map(|f| half::f16::from_f32(*f).to_le_bytes())
                .collect()
        };
        let (xb, yb) = (to_bytes(&x), to_bytes(&y));
        let h = |b: &[u8], i: usize| half::f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32();
        let np = n & !31;
        let mut acc = [[0f32; 8]; 4];
        for i in (0..np).step_by(32) {
            for (k, a) in acc.iter_mut().enumerate() {
                for (l, lane) in a.iter_mut().enumerate() {
                    let j = i + 8 * k + l;
                    *lane = h(&xb, j).mul_add(h(&yb, j), *lane);
                }
            }
        }
        let s: Vec<f32> = (0..8)
            .map(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]))
            .collect();
        let t: Vec<f32> = (0..4).map(|l| s[l] + s[l + 4]).collect();
        let mut total = f64::from((t[0] + t[1]) + (t[2] + t[3]));
        for j in np..n {
            total += f64::from(h(&xb, j) * h(&yb, j));
        }
        let got = dispatch::vec_dot(GgmlType::F16, n, &xb, &yb).unwrap();
        if active_kernels() == "avx2" {
            assert_eq!(got, total as f32, "n={n}");
        } else {
            let want = reference::vec_dot(GgmlType::F16, n, &xb, &yb).unwrap();
            assert!(
                (got - want).abs() <= tolerance(GgmlType::F16, n, &xb, &yb),
                "n={n}"
            );
        }
    }
}

#[test]
fn activation_quantizers_are_byte_identical() {
    let mut rng = Rng(12345);
    for act_ty in [
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q8_K,
        GgmlType::F16,
    ] {
        let bs = act_ty.block_size().max(32);
        for blocks in [1usize, 2, 5] {
            let n = if act_ty == GgmlType::F16 {
                blocks * 37
            } else {
                blocks * bs
            };
            for style in 0..6 {
                let x: Vec<f32> = (0..n)
                    .map(|i| match style {
                        0 => rng.unit(),
                        1 => rng.unit() * 1e4,
                        2 => rng.unit() * 1e-6,
                        3 => 0.0,
                        // Exact halves after scaling by 127/amax = 1: ties to even.
                        4 => {
                            if i % 32 == 0 {
                                127.0
                            } else {
                                (i % 17) as f32 - 8.5
                            }
                        }
                        _ => {
                            if rng.byte() < 40 {
                                0.0
                            } else {
                                rng.unit() * 3.0
                            }
                        }
                    })
                    .collect();
                let mut want = vec![0u8; reference::row_bytes(act_ty, n).unwrap()];
                let mut got = vec![0xAAu8; want.len()];
                reference::quantize_activations(act_ty, &x, &mut want).unwrap();
                dispatch::quantize_activations(act_ty, &x, &mut got).unwrap();
                assert_eq!(got, want, "{act_ty} n={n} style={style}");
            }
        }
    }
}

#[test]
fn tile_equals_vec_dot_bit_for_bit() {
    let mut rng = Rng(4242);
    for &ty in WEIGHT_TYPES {
        let n = if ty.block_size() == 256 { 512 } else { 96 };
        for (rows, acts) in [
            (1usize, 1usize),
            (4, 2),
            (7, 3),
            (9, 5),
            (5, 1),
            (8, 1),
            (17, 1),
            (16, 4),
            (19, 9),
        ] {
            let w_row = reference::row_bytes(ty, n).unwrap();
            let a_row = reference::row_bytes(reference::vec_dot_type(ty), n).unwrap();
            // Strides larger than a row, to check they are honoured.
            let (ws, as_) = (w_row + 3, a_row + 5);
            let mut w = vec![0u8; ws * rows];
            let mut a = vec![0u8; as_ * acts];
            for r in 0..rows {
                w[r * ws..r * ws + w_row].copy_from_slice(&weight_row(ty, n, r % 6, &mut rng));
            }
            for j in 0..acts {
                a[j * as_..j * as_ + a_row].copy_from_slice(&act_row(ty, n, j % 4, &mut rng));
            }
            let t = TileArgs {
                n,
                w: &w,
                w_stride: ws,
                rows,
                act: &a,
                act_stride: as_,
                acts,
            };
            let out_stride = rows + 2;
            // Every level this CPU runs (e.g. avxvnni and avx2), each against its own
            // vec_dot, and the SIMD levels against each other.
            let mut first: Option<Vec<f32>> = None;
            for level in dispatch::available_levels() {
                let mut out = vec![f32::NAN; out_stride * acts];
                dispatch::vec_dot_tile_at(level, ty, &t, &mut out, out_stride).unwrap();
                for j in 0..acts {
                    for r in 0..rows {
                        let single = dispatch::vec_dot_at(
                            level,
                            ty,
                            n,
                            &w[r * ws..r * ws + w_row],
                            &a[j * as_..j * as_ + a_row],
                        )
                        .unwrap();
                        let got = out[j * out_stride + r];
                        assert_eq!(
                            got.to_bits(),
                            single.to_bits(),
                            "{level} {ty} {rows}x{acts} at ({r},{j})"
                        );
                    }
                    // Padding between output rows is left alone.
                    assert!(out[j * out_stride + rows].is_nan());
                }
                // The x86 levels share their vec_dot code and differ only in how the exact
                // integer sums are formed, so they must agree bit for bit. NEON, dotprod and
                // i8mm group the products into lanes differently (each still exact), so their
                // f32 sums may differ in the last bits; each is checked against the reference
                // above.
                if level == "scalar" || cfg!(target_arch = "aarch64") {
                    continue;
                }
                match &first {
                    None => first = Some(out),
                    Some(f) => assert!(
                        f.iter().zip(&out).all(|(x, y)| x.to_bits() == y.to_bits()),
                        "{level} {ty} differs from the better SIMD level"
                    ),
                }
            }
        }
    }
}

#[test]
fn batch_tiles_follow_the_reference_batch_order() {
    // The batch tiles (llama.cpp's tiled / repacked-gemm / tinyBLAS orders) fix every f32
    // rounding, so on x86 each level must give reference::vec_dot_batch_order's bits. The
    // aarch64 levels use their ordinary tiles there (no such order to match on ARM), so
    // they are held to the reference tolerance instead.
    let mut rng = Rng(777);
    let cases = [
        (GgmlType::Q2_K, 768),
        (GgmlType::Q3_K, 768),
        (GgmlType::Q4_K, 768),
        (GgmlType::Q5_K, 768),
        (GgmlType::Q6_K, 768),
        (GgmlType::IQ4_XS, 768),
        (GgmlType::IQ4_NL, 224),
        (GgmlType::F32, 104),
        (GgmlType::F16, 104),
        // Not a multiple of 8: tinyBLAS declines, ggml's vec_dot order applies.
        (GgmlType::F32, 100),
        (GgmlType::F16, 75),
    ];
    for (ty, n) in cases {
        for (rows, acts) in [(1usize, 1usize), (8, 4), (9, 5), (19, 9), (16, 8)] {
            let w_row = reference::row_bytes(ty, n).unwrap();
            let a_row = reference::row_bytes(reference::vec_dot_type(ty), n).unwrap();
            let (ws, as_) = (w_row + 1, a_row + 7);
            let mut w = vec![0u8; ws * rows];
            let mut a = vec![0u8; as_ * acts];
            for r in 0..rows {
                w[r * ws..r * ws + w_row].copy_from_slice(&weight_row(ty, n, r % 6, &mut rng));
            }
            for j in 0..acts {
                a[j * as_..j * as_ + a_row].copy_from_slice(&act_row(ty, n, j % 4, &mut rng));
            }
            let t = TileArgs {
                n,
                w: &w,
                w_stride: ws,
                rows,
                act: &a,
                act_stride: as_,
                acts,
            };
            let out_stride = rows + 1;
            for level in dispatch::available_levels() {
                let mut out = vec![f32::NAN; out_stride * acts];
                dispatch::vec_dot_tile_batch_at(level, ty, &t, &mut out, out_stride).unwrap();
                for j in 0..acts {
                    for r in 0..rows {
                        let (wr, ar) = (&w[r * ws..r * ws + w_row], &a[j * as_..j * as_ + a_row]);
                        let want = reference::vec_dot_batch_order(ty, n, wr, ar).unwrap();
                        let got = out[j * out_stride + r];
                        if cfg!(target_arch = "aarch64") && level != "scalar" {
                            assert!(
                                (got - want).abs() <= tolerance(ty, n, wr, ar),
                                "{level} {ty} at ({r},{j}): {got} vs {want}"
                            );
                        } else {
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{level} {ty} {rows}x{acts} at ({r},{j}): {got} vs {want}"
                            );
                        }
                    }
                    assert!(out[j * out_stride + rows].is_nan());
                }
            }
        }
    }
    // The x86 float vec_dots follow ggml's vec_dot order bit for bit.
    if cfg!(target_arch = "x86_64") {
        for (ty, n) in [
            (GgmlType::F32, 200),
            (GgmlType::F16, 200),
            (GgmlType::F32, 64),
        ] {
            let w = weight_row(ty, n, 0, &mut rng);
            let a = act_row(ty, n, 0, &mut rng);
            let want = reference::vec_dot_ggml_order(ty, n, &w, &a).unwrap();
            for level in dispatch::available_levels() {
                if level == "scalar" {
                    continue;
                }
                let got = dispatch::vec_dot_at(level, ty, n, &w, &a).unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "{level} {ty} vec_dot n={n}");
            }
        }
    }
    // No batch order of its own.
    let t = TileArgs {
        n: 32,
        w: &[0u8; 18],
        w_stride: 18,
        rows: 1,
        act: &[0u8; 34],
        act_stride: 34,
        acts: 1,
    };
    assert!(dispatch::vec_dot_tile_batch(GgmlType::Q4_0, &t, &mut [0f32], 1).is_err());
}

#[test]
fn bad_sizes_are_errors_not_panics() {
    let w = vec![0u8; 18];
    let a = vec![0u8; 34];
    assert!(dispatch::vec_dot(GgmlType::Q4_0, 32, &w, &a).is_ok());
    assert!(dispatch::vec_dot(GgmlType::Q4_0, 31, &w, &a).is_err());
    assert!(dispatch::vec_dot(GgmlType::Q4_0, 64, &w, &a).is_err());
    assert!(dispatch::vec_dot(GgmlType::Q4_0, 32, &w[..17], &a).is_err());
    assert!(dispatch::vec_dot(GgmlType::Q4_0, 32, &w, &a[..33]).is_err());
    let mut out = vec![0u8; 33];
    assert!(dispatch::quantize_activations(GgmlType::Q8_0, &[0.0; 32], &mut out).is_err());
    assert!(dispatch::quantize_activations(GgmlType::Q8_0, &[0.0; 31], &mut out).is_err());
    let t = TileArgs {
        n: 32,
        w: &w,
        w_stride: 18,
        rows: 2,
        act: &a,
        act_stride: 34,
        acts: 1,
    };
    let mut o = vec![0f32; 2];
    assert!(dispatch::vec_dot_tile(GgmlType::Q4_0, &t, &mut o, 2).is_err());
    let t = TileArgs { rows: 1, ..t };
    assert!(dispatch::vec_dot_tile(GgmlType::Q4_0, &t, &mut o, 2).is_ok());
    assert!(dispatch::vec_dot_tile(GgmlType::Q4_0, &t, &mut o[..0], 1).is_err());
}

/// Q8_K activations of `n` values, every quant `q` (also -128, which the quantizer never
/// writes but a tile must survive), d = 1, bsums consistent.
fn q8k_constant(n: usize, q: i8) -> Vec<u8> {
    let mut a = Vec::new();
    for _ in 0..n / 256 {
        a.extend_from_slice(&1f32.to_le_bytes());
        a.extend_from_slice(&[q as u8; 256]);
        for _ in 0..16 {
            a.extend_from_slice(&(16 * i16::from(q)).to_le_bytes());
        }
    }
    a
}

#[test]
fn kquant_tiles_survive_extreme_codes() {
    // The largest codes and scales against +-128 activations: the i16 sums of the AVX2 tile
    // (I16_REGS registers) sit closest to overflow here, and any saturation would move the
    // exact integer sums (checked against the reference and bit for bit against vec_dot).
    let n = 512;
    for ty in [GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
        let w_row = reference::row_bytes(ty, n).unwrap();
        let mut w = vec![0xFFu8; w_row];
        for block in w.chunks_exact_mut(ty.block_bytes()) {
            for &off in half_fields(ty) {
                block[off..off + 2].copy_from_slice(&half::f16::from_f32(1.0).to_le_bytes());
            }
            if ty == GgmlType::Q6_K {
                // Scales -128 and 127 alternating (i8 at 192..208).
                for (g, s) in block[192..208].iter_mut().enumerate() {
                    *s = if g % 2 == 0 { 0x80 } else { 0x7F };
                }
            }
        }
        let rows = 9;
        let w: Vec<u8> = w.repeat(rows);
        for q in [-128i8, 127, -127] {
            let acts = 5;
            let a = q8k_constant(n, q).repeat(acts);
            let a_row = a.len() / acts;
            let want = reference::vec_dot(ty, n, &w[..w_row], &a[..a_row]).unwrap();
            let t = TileArgs {
                n,
                w: &w,
                w_stride: w_row,
                rows,
                act: &a,
                act_stride: a_row,
                acts,
            };
            for level in dispatch::available_levels() {
                let single = dispatch::vec_dot_at(level, ty, n, &w[..w_row], &a[..a_row]).unwrap();
                assert!(
                    (single - want).abs() <= tolerance(ty, n, &w[..w_row], &a[..a_row]),
                    "{level} {ty} q={q}: {single} vs reference {want}"
                );
                let mut out = vec![f32::NAN; rows * acts];
                dispatch::vec_dot_tile_at(level, ty, &t, &mut out, rows).unwrap();
                for v in out {
                    assert_eq!(v.to_bits(), single.to_bits(), "{level} {ty} q={q}");
                }
                // The batch tiles form the same exact integers: within the tolerance of the
                // reference (bit-identical to its batch order on x86).
                let batch =
                    reference::vec_dot_batch_order(ty, n, &w[..w_row], &a[..a_row]).unwrap();
                assert!((batch - want).abs() <= tolerance(ty, n, &w[..w_row], &a[..a_row]));
                let mut out = vec![f32::NAN; rows * acts];
                dispatch::vec_dot_tile_batch_at(level, ty, &t, &mut out, rows).unwrap();
                for v in out {
                    if cfg!(target_arch = "aarch64") {
                        assert_eq!(v.to_bits(), single.to_bits(), "{level} {ty} q={q} batch");
                    } else {
                        assert_eq!(v.to_bits(), batch.to_bits(), "{level} {ty} q={q} batch");
                    }
                }
            }
        }
    }
}
