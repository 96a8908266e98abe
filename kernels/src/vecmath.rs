//! The elementwise and attention math of ggml-cpu, rounding exactly like llama.cpp's AVX2 path:
//! f16 dot products in ggml's two summation orders, the polynomial `ggml_v_expf`, softmax,
//! SiLU/SwiGLU and f32 -> f16 rows.
//!
//! Every entry point has a scalar reference in [`scalar`] that spells out the lane-by-lane
//! fused operations; the dispatched SIMD versions (AVX2+FMA+F16C on x86_64, chosen with the
//! rest of the kernels, see [`crate::dispatch`]) perform the same operations in the same
//! order, so their results are bit-identical (NaN payloads aside). On other CPUs the scalar
//! reference runs; on aarch64 its `mul_add` is a real fused instruction.

use half::f16;

use crate::KernelError;

pub mod scalar;

pub use scalar::F16DotOrder;

/// Whether the x86 AVX2+FMA+F16C versions may run: the dispatcher chose an x86 SIMD set,
/// which it only does after detecting those three features (and which
/// `TRAMONTANE_KERNELS=scalar` turns off).
#[cfg(target_arch = "x86_64")]
fn x86_simd() -> bool {
    use std::sync::OnceLock;
    static SIMD: OnceLock<bool> = OnceLock::new();
    *SIMD.get_or_init(crate::dispatch::follows_llama_cpp_avx2)
}

fn mismatch(what: &'static str, expected: usize, got: usize) -> KernelError {
    KernelError::LengthMismatch {
        what,
        expected,
        got,
    }
}

/// `out[r] = dot(rows[r*stride .. r*stride + y.len()], y)` for every `r < out.len()`, summed
/// in `order` (see [`F16DotOrder`]). Rows may overlap or have gaps (`stride` is free).
///
/// # Errors
/// When the last row does not fit in `rows`.
pub fn dot_f16_rows(
    order: F16DotOrder,
    rows: &[f16],
    stride: usize,
    y: &[f16],
    out: &mut [f32],
) -> Result<(), KernelError> {
    let Some(last) = out.len().checked_sub(1) else {
        return Ok(());
    };
    let needed = last
        .checked_mul(stride)
        .and_then(|s| s.checked_add(y.len()))
        .ok_or(mismatch("dot_f16_rows: rows", usize::MAX, rows.len()))?;
    if rows.len() < needed {
        return Err(mismatch("dot_f16_rows: rows", needed, rows.len()));
    }
    #[cfg(target_arch = "x86_64")]
    if x86_simd() {
        // SAFETY: x86_simd() confirmed AVX2+FMA+F16C; every row lies inside `rows` (checked).
        unsafe { crate::x86::vecmath::dot_f16_rows(order, rows, stride, y, out) };
        return Ok(());
    }
    for (r, o) in out.iter_mut().enumerate() {
        let start = r * stride;
        *o = scalar::dot_f16(order, &rows[start..start + y.len()], y);
    }
    Ok(())
}

/// [`dot_f16_rows`] for several vectors of one length at once (`ys` holds them end to end,
/// `len` values each): `out[g * n_rows + r] = dot(row r, y g)` with `n_rows = out.len() /
/// n_ys`, every value bit-identical to [`dot_f16_rows`]'s. The attention of grouped-query
/// heads uses it: the query heads of one KV head read each key and value row once.
///
/// # Errors
/// When `ys` is not a whole number of vectors, `out` not a whole number of rows per vector,
/// or the last row does not fit in `rows`.
pub fn dot_f16_rows_multi(
    order: F16DotOrder,
    rows: &[f16],
    stride: usize,
    ys: &[f16],
    len: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    if len == 0 || !ys.len().is_multiple_of(len) {
        return Err(mismatch("dot_f16_rows_multi: ys", len, ys.len()));
    }
    let n_ys = ys.len() / len;
    if n_ys == 0 || !out.len().is_multiple_of(n_ys) {
        return Err(mismatch("dot_f16_rows_multi: out", n_ys, out.len()));
    }
    let n_rows = out.len() / n_ys;
    if let Some(last) = n_rows.checked_sub(1) {
        let needed = last
            .checked_mul(stride)
            .and_then(|s| s.checked_add(len))
            .ok_or(mismatch("dot_f16_rows_multi: rows", usize::MAX, rows.len()))?;
        if rows.len() < needed {
            return Err(mismatch("dot_f16_rows_multi: rows", needed, rows.len()));
        }
    }
    #[cfg(target_arch = "x86_64")]
    if x86_simd() {
        // SAFETY: x86_simd() confirmed AVX2+FMA+F16C; the lengths and every row's bounds are
        // checked above.
        unsafe {
            match order {
                F16DotOrder::GgmlVec => {
                    crate::x86::vecmath::dot_f16_rows_ggml_multi(rows, stride, ys, len, out)
                }
                F16DotOrder::TinyBlas => {
                    crate::x86::vecmath::dot_f16_rows_tiny_multi(rows, stride, ys, len, out)
                }
            }
        };
        return Ok(());
    }
    for (y, o) in ys
        .chunks_exact(len)
        .zip(out.chunks_exact_mut(n_rows.max(1)))
    {
        dot_f16_rows(order, rows, stride, y, o)?;
    }
    Ok(())
}

/// [`scalar::soft_max`], dispatched.
pub fn soft_max(row: &mut [f32], scale: f32) {
    soft_max_sink(row, scale, None);
}

/// [`scalar::soft_max_sink`], dispatched.
pub fn soft_max_sink(row: &mut [f32], scale: f32, sink: Option<f32>) {
    #[cfg(target_arch = "x86_64")]
    if x86_simd() {
        // SAFETY: x86_simd() confirmed AVX2+FMA+F16C.
        unsafe { crate::x86::vecmath::soft_max(row, scale, sink) };
        return;
    }
    scalar::soft_max_sink(row, scale, sink);
}

/// [`scalar::swiglu_oai`] (scalar everywhere, as in ggml).
///
/// # Errors
/// When the three lengths differ.
pub fn swiglu_oai(
    gate: &[f32],
    up: &[f32],
    out: &mut [f32],
    alpha: f32,
    limit: f32,
) -> Result<(), KernelError> {
    if gate.len() != out.len() || up.len() != out.len() {
        return Err(mismatch("swiglu_oai", out.len(), gate.len().min(up.len())));
    }
    scalar::swiglu_oai(gate, up, out, alpha, limit);
    Ok(())
}

/// [`scalar::swiglu`], dispatched.
///
/// # Errors
/// When the three lengths differ.
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) -> Result<(), KernelError> {
    if gate.len() != out.len() || up.len() != out.len() {
        return Err(mismatch("swiglu", out.len(), gate.len().min(up.len())));
    }
    #[cfg(target_arch = "x86_64")]
    if x86_simd() {
        // SAFETY: x86_simd() confirmed AVX2+FMA+F16C; the lengths are equal (checked).
        unsafe { crate::x86::vecmath::swiglu(gate, up, out) };
        return Ok(());
    }
    scalar::swiglu(gate, up, out);
    Ok(())
}

/// [`scalar::geglu`], dispatched (a table lookup: the same bits on every CPU).
///
/// # Errors
/// When the three lengths differ.
pub fn geglu(gate: &[f32], up: &[f32], out: &mut [f32]) -> Result<(), KernelError> {
    if gate.len() != out.len() || up.len() != out.len() {
        return Err(mismatch("geglu", out.len(), gate.len().min(up.len())));
    }
    #[cfg(target_arch = "x86_64")]
    if x86_simd() {
        // SAFETY: x86_simd() confirmed AVX2+FMA+F16C; the lengths are equal (checked).
        unsafe { crate::x86::vecmath::geglu(gate, up, out) };
        return Ok(());
    }
    scalar::geglu(gate, up, out);
    Ok(())
}

/// [`scalar::f32_to_f16`], dispatched.
///
/// # Errors
/// When the lengths differ.
pub fn f32_to_f16(src: &[f32], dst: &mut [f16]) -> Result<(), KernelError> {
    if src.len() != dst.len() {
        return Err(mismatch("f32_to_f16", dst.len(), src.len()));
    }
    #[cfg(target_arch = "x86_64")]
    if x86_simd() {
        // SAFETY: x86_simd() confirmed AVX2+FMA+F16C; the lengths are equal (checked).
        unsafe { crate::x86::vecmath::f32_to_f16(src, dst) };
        return Ok(());
    }
    scalar::f32_to_f16(src, dst);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (splitmix64) so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn unit(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
        /// Mostly ordinary values of varied scale, sometimes specials.
        fn value(&mut self, scale: f32) -> f32 {
            match self.next() % 64 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                3 => -0.0,
                4 => 1e-6,    // an f16 subnormal
                5 => 70000.0, // overflows f16
                6 => 1e-30,   // f32 tiny
                7 => -88.5,   // near expf's underflow edge
                8 => 89.0,    // past expf's overflow edge
                _ => self.unit() * scale,
            }
        }
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn dot_rows_match_scalar_in_both_orders() {
        let mut rng = Rng(1);
        for &len in &[1usize, 7, 8, 9, 31, 32, 33, 64, 100, 256, 300] {
            for &specials in &[false, true] {
                let gen = |rng: &mut Rng| {
                    if specials {
                        f16::from_f32(rng.value(4.0))
                    } else {
                        f16::from_f32(rng.unit() * 4.0)
                    }
                };
                let n_rows = 7;
                let stride = len + 3;
                let rows: Vec<f16> = (0..n_rows * stride).map(|_| gen(&mut rng)).collect();
                let y: Vec<f16> = (0..len).map(|_| gen(&mut rng)).collect();
                for order in [F16DotOrder::GgmlVec, F16DotOrder::TinyBlas] {
                    let mut out = vec![0.0f32; n_rows];
                    dot_f16_rows(order, &rows, stride, &y, &mut out).unwrap();
                    for (r, &o) in out.iter().enumerate() {
                        let want = scalar::dot_f16(order, &rows[r * stride..][..len], &y);
                        assert!(same(o, want), "{order:?} len {len} row {r}: {o} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn multi_vector_dots_equal_one_vector_at_a_time() {
        let mut rng = Rng(7);
        for &len in &[1usize, 7, 8, 31, 32, 33, 64, 100, 130] {
            for n_ys in 1..=7 {
                let (n_rows, stride) = (5, len + 2);
                let rows: Vec<f16> = (0..n_rows * stride)
                    .map(|_| f16::from_f32(rng.value(4.0)))
                    .collect();
                let ys: Vec<f16> = (0..n_ys * len)
                    .map(|_| f16::from_f32(rng.value(4.0)))
                    .collect();
                for order in [F16DotOrder::GgmlVec, F16DotOrder::TinyBlas] {
                    let mut out = vec![0.0f32; n_ys * n_rows];
                    dot_f16_rows_multi(order, &rows, stride, &ys, len, &mut out).unwrap();
                    for (g, y) in ys.chunks_exact(len).enumerate() {
                        let mut one = vec![0.0f32; n_rows];
                        dot_f16_rows(order, &rows, stride, y, &mut one).unwrap();
                        for (r, (&a, &b)) in out[g * n_rows..].iter().zip(&one).enumerate() {
                            assert!(same(a, b), "{order:?} len {len} y {g}/{n_ys} row {r}");
                        }
                    }
                }
            }
        }
        let mut out = [0.0f32; 4];
        let rows = vec![f16::ZERO; 16];
        // 5 values are not a whole number of 2-value vectors; 4 outputs not of 3 vectors.
        assert!(
            dot_f16_rows_multi(F16DotOrder::GgmlVec, &rows, 2, &rows[..5], 2, &mut out).is_err()
        );
        assert!(
            dot_f16_rows_multi(F16DotOrder::GgmlVec, &rows, 2, &rows[..6], 2, &mut out).is_err()
        );
    }

    #[test]
    fn dot_rows_refuse_short_input() {
        let rows = vec![f16::ZERO; 10];
        let y = vec![f16::ZERO; 4];
        let mut out = [0.0f32; 3];
        assert!(dot_f16_rows(F16DotOrder::TinyBlas, &rows, 4, &y, &mut out).is_err());
        assert!(dot_f16_rows(F16DotOrder::TinyBlas, &rows, 3, &y, &mut out).is_ok());
    }

    #[test]
    fn dot_orders_agree_with_plain_sum_on_exact_values() {
        // Small integers: every order sums exactly, so both must give the plain total.
        let x: Vec<f16> = (0..70).map(|i| f16::from_f32((i % 7) as f32)).collect();
        let y: Vec<f16> = (0..70)
            .map(|i| f16::from_f32((i % 5) as f32 - 2.0))
            .collect();
        let want: f32 = x.iter().zip(&y).map(|(a, b)| a.to_f32() * b.to_f32()).sum();
        assert_eq!(scalar::dot_f16(F16DotOrder::GgmlVec, &x, &y), want);
        assert_eq!(scalar::dot_f16(F16DotOrder::TinyBlas, &x, &y), want);
    }

    #[test]
    fn soft_max_matches_scalar() {
        let mut rng = Rng(2);
        for &len in &[1usize, 5, 8, 13, 64, 257, 1000] {
            for &specials in &[false, true] {
                let row: Vec<f32> = (0..len)
                    .map(|_| {
                        if specials {
                            rng.value(30.0)
                        } else {
                            rng.unit() * 30.0
                        }
                    })
                    .collect();
                for &scale in &[0.125f32, 1.0, 3.7] {
                    let (mut a, mut b) = (row.clone(), row.clone());
                    soft_max(&mut a, scale);
                    scalar::soft_max(&mut b, scale);
                    for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
                        assert!(same(x, y), "len {len} [{i}]: {x} vs {y}");
                    }
                }
            }
        }
    }

    #[test]
    fn swiglu_and_expf_match_scalar_everywhere() {
        let mut rng = Rng(3);
        let n = 4099;
        let gate: Vec<f32> = (0..n).map(|_| rng.value(120.0)).collect();
        let up: Vec<f32> = (0..n).map(|_| rng.value(3.0)).collect();
        let mut out = vec![0.0f32; n];
        swiglu(&gate, &up, &mut out).unwrap();
        for i in 0..n {
            let want = scalar::silu(gate[i]) * up[i];
            assert!(same(out[i], want), "[{i}] g={} u={}", gate[i], up[i]);
        }
        // Sweep expf's whole range through swiglu with up = 1: silu(x) = x / (1 + expf(-x)).
        let xs: Vec<f32> = (0..20000).map(|i| -200.0 + i as f32 * 0.02).collect();
        let ones = vec![1.0f32; xs.len()];
        let mut got = vec![0.0f32; xs.len()];
        swiglu(&xs, &ones, &mut got).unwrap();
        for (&x, &g) in xs.iter().zip(&got) {
            assert!(same(g, scalar::silu(x)), "x={x}");
        }
        assert!(swiglu(&xs, &ones[1..], &mut got).is_err());
    }

    #[test]
    fn geglu_matches_scalar_everywhere() {
        // Every f16 gate value from -12 to 12 (both clamps, the boundaries, signed zeros,
        // subnormals) and random f32 gates between them, with a length that leaves a tail.
        let mut gate: Vec<f32> = (0..=u16::MAX)
            .map(|b| f16::from_bits(b).to_f32())
            .filter(|x| x.abs() <= 12.0)
            .collect();
        let mut rng = Rng(5);
        gate.extend((0..4001).map(|_| rng.value(24.0)));
        gate.extend([
            -10.0,
            10.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        let up: Vec<f32> = gate.iter().map(|_| rng.value(3.0)).collect();
        let mut got = vec![0.0f32; gate.len()];
        let mut want = vec![0.0f32; gate.len()];
        geglu(&gate, &up, &mut got).unwrap();
        scalar::geglu(&gate, &up, &mut want);
        for i in 0..gate.len() {
            assert!(
                got[i].to_bits() == want[i].to_bits() || (got[i].is_nan() && want[i].is_nan()),
                "[{i}] g={} u={}: {} vs {}",
                gate[i],
                up[i],
                got[i],
                want[i]
            );
        }
        assert!(geglu(&gate, &up[1..], &mut got).is_err());
    }

    #[test]
    fn f16_rows_match_scalar() {
        let mut rng = Rng(4);
        let src: Vec<f32> = (0..1001).map(|_| rng.value(1e5)).collect();
        let mut a = vec![f16::ZERO; src.len()];
        let mut b = vec![f16::ZERO; src.len()];
        f32_to_f16(&src, &mut a).unwrap();
        scalar::f32_to_f16(&src, &mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()));
        }
    }

    #[test]
    fn expf_is_close_to_libm_and_handles_extremes() {
        // The routine promises < 2 ulp; check relative error over a sweep.
        let mut x = -80.0f32;
        while x < 80.0 {
            let (a, b) = (scalar::expf(x), x.exp());
            assert!(((a - b) / b).abs() < 3e-7, "x={x}: {a} vs {b}");
            x += 0.173;
        }
        assert_eq!(scalar::expf(0.0), 1.0);
        assert_eq!(scalar::expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(scalar::expf(-200.0), 0.0);
        assert_eq!(scalar::expf(200.0), f32::INFINITY);
    }

    #[test]
    fn silu_matches_definition() {
        for &x in &[-5.0f32, -1.0, 0.0, 0.5, 3.0] {
            let want = x / (1.0 + (-x).exp());
            assert!((scalar::silu(x) - want).abs() <= 1e-6 * want.abs().max(1.0));
        }
    }

    #[test]
    fn hsum8_adds_everything() {
        assert_eq!(
            scalar::hsum8(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
            36.0
        );
    }

    #[test]
    fn gelu_follows_the_f16_table_and_its_limits() {
        assert_eq!(scalar::gelu(0.0), 0.0);
        assert_eq!(scalar::gelu(-10.0), 0.0);
        assert_eq!(scalar::gelu(12.5), 12.5);
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let x = (rng.next() >> 40) as f32 / (1u64 << 24) as f32 * 20.0 - 10.0;
            let y = scalar::gelu(x);
            // The table entry of x rounded to f16: gelu of a value within half an f16 ulp,
            // then rounded to f16 (relative error about 2^-10 each).
            let h = f16::from_f32(x).to_f32();
            let want = f16::from_f32(scalar::gelu_exact(h)).to_f32();
            assert_eq!(y.to_bits(), want.to_bits(), "x = {x}");
            let exact = 0.5
                * f64::from(x)
                * (1.0
                    + (0.797_884_560_8
                        * f64::from(x)
                        * (1.0 + 0.044_715 * f64::from(x) * f64::from(x)))
                    .tanh());
            assert!(
                (f64::from(y) - exact).abs() <= 4e-3 * exact.abs().max(1.0),
                "x = {x}: {y} vs {exact}"
            );
        }
        let (g, u) = ([1.0f32, -11.0, 10.5], [2.0f32, 3.0, -1.0]);
        let mut out = [0.0f32; 3];
        geglu(&g, &u, &mut out).unwrap();
        assert_eq!(out, [scalar::gelu(1.0) * 2.0, 0.0, -10.5]);
        assert!(geglu(&g, &u[..2], &mut out).is_err());
    }
}
