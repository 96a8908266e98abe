//! The elementwise math of ggml-cpu's AVX2 path, lane by lane, so our activations and softmax
//! round exactly like llama.cpp's: `ggml_v_expf` (a polynomial from ARM's optimized routines,
//! not libm's `expf`), SiLU built on it, and the 8-lane horizontal sum both `ggml_vec_soft_max_f32`
//! and tinyBLAS use.

/// One lane of ggml's `ggml_v_expf` (max error about 1.5 ulp; flushes below -103.97 to 0).
pub fn ggml_expf(x: f32) -> f32 {
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

/// ggml's vector SiLU: `x / (1 + expf(-x))` with the polynomial exp.
pub fn silu(x: f32) -> f32 {
    x / (1.0 + ggml_expf(0.0 - x))
}

/// `out[i] = silu(gate[i]) * up[i]` (ggml's `swiglu` op).
pub fn swiglu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = silu(g) * u;
    }
}

/// The horizontal sum of one 8-lane register as AVX code does it (high half plus low half,
/// then pairs): `((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7))`.
pub fn hsum8(v: &[f32; 8]) -> f32 {
    let h = [v[4] + v[0], v[5] + v[1], v[6] + v[2], v[7] + v[3]];
    (h[0] + h[2]) + (h[1] + h[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expf_is_close_to_libm_and_handles_extremes() {
        // The routine promises < 2 ulp; check relative error over a sweep.
        let mut x = -80.0f32;
        while x < 80.0 {
            let (a, b) = (ggml_expf(x), x.exp());
            assert!(((a - b) / b).abs() < 3e-7, "x={x}: {a} vs {b}");
            x += 0.173;
        }
        assert_eq!(ggml_expf(0.0), 1.0);
        assert_eq!(ggml_expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(ggml_expf(-200.0), 0.0);
        assert_eq!(ggml_expf(200.0), f32::INFINITY);
    }

    #[test]
    fn silu_matches_definition() {
        for &x in &[-5.0f32, -1.0, 0.0, 0.5, 3.0] {
            let want = x / (1.0 + (-x).exp());
            assert!((silu(x) - want).abs() <= 1e-6 * want.abs().max(1.0));
        }
    }

    #[test]
    fn hsum8_adds_everything() {
        assert_eq!(hsum8(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]), 36.0);
    }
}
