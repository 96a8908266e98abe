//! On x86, the Q4_1, Q5_0, Q5_1 and Q8_0 dot products must reproduce llama.cpp's bits, not only
//! its math: its AVX2 kernels (`ggml_vec_dot_q4_1_q8_1`, `..._q5_0_q8_0`, `..._q5_1_q8_1`,
//! `..._q8_0_q8_0`, and tinyBLAS for batches) keep one 8-lane f32 accumulator per dot product,
//! add per block `fma(f32(lane sum of 4 products), d_w * d_a, acc)` per lane, reduce the lanes
//! as `hsum_float_8` does, and add Q4_1's and Q5_1's `sum m_w * s_a` (accumulated block by
//! block) last. The SmolLM2 conformance test depends on this order (a different one moved its
//! logits by up to 0.76). This test spells the order out in scalar code and requires bit
//! equality at every x86 SIMD level, for single dot products and for GEMM tiles
//! (`legacy_fixtures.rs` checks the same kernels against llama.cpp's own results).
#![cfg(target_arch = "x86_64")]

use half::f16;
use tramontane_kernels::dispatch::{self, TileArgs};
use tramontane_kernels::reference;
use tramontane_kernels::GgmlType;

/// splitmix64: deterministic test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn normal_ish(&mut self) -> f32 {
        (0..4)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
            .sum::<f32>()
            * 1.7
    }
}

fn h(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 32 true weight values (codes minus zero point) of one block, and (d, m).
fn weight_block(ty: GgmlType, b: &[u8]) -> ([i32; 32], f32, f32) {
    let mut q = [0i32; 32];
    match ty {
        GgmlType::Q4_1 => {
            for j in 0..16 {
                q[j] = i32::from(b[4 + j] & 15);
                q[j + 16] = i32::from(b[4 + j] >> 4);
            }
            (q, h(b, 0), h(b, 2))
        }
        GgmlType::Q5_0 => {
            let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            for j in 0..16 {
                let lo = i32::from(b[6 + j] & 15) | (((qh >> j) & 1) as i32) << 4;
                let hi = i32::from(b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) as i32) << 4;
                q[j] = lo - 16;
                q[j + 16] = hi - 16;
            }
            (q, h(b, 0), 0.0)
        }
        GgmlType::Q5_1 => {
            let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            for j in 0..16 {
                q[j] = i32::from(b[8 + j] & 15) | (((qh >> j) & 1) as i32) << 4;
                q[j + 16] = i32::from(b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) as i32) << 4;
            }
            (q, h(b, 0), h(b, 2))
        }
        GgmlType::Q8_0 => {
            for j in 0..32 {
                q[j] = i32::from(b[2 + j] as i8);
            }
            (q, h(b, 0), 0.0)
        }
        _ => unreachable!("not a type of this test"),
    }
}

/// ggml's AVX2 order, in scalar code.
fn ggml_order_dot(ty: GgmlType, n: usize, w: &[u8], act: &[u8]) -> f32 {
    let (wb, ab) = (ty.block_bytes(), reference::vec_dot_type(ty).block_bytes());
    let has_min = matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1);
    let a_qs = if has_min { 4 } else { 2 };
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for b in 0..n / 32 {
        let (wq, dw, mw) = weight_block(ty, &w[b * wb..(b + 1) * wb]);
        let a = &act[b * ab..(b + 1) * ab];
        let da = h(a, 0);
        let scale = dw * da;
        for (lane, slot) in acc.iter_mut().enumerate() {
            let s: i32 = (0..4)
                .map(|k| wq[4 * lane + k] * i32::from(a[a_qs + 4 * lane + k] as i8))
                .sum();
            *slot = scale.mul_add(s as f32, *slot);
        }
        if has_min {
            summs += mw * h(a, 2);
        }
    }
    let v = acc;
    let q = [v[0] + v[4], v[1] + v[5], v[2] + v[6], v[3] + v[7]];
    let x = [q[0] + q[2], q[1] + q[3]];
    (x[0] + x[1]) + summs
}

fn random_rows(ty: GgmlType, rng: &mut Rng, rows: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rows {
        let x: Vec<f32> = (0..n).map(|_| rng.normal_ish()).collect();
        let mut q = vec![0u8; reference::row_bytes(ty, n).unwrap()];
        reference::quantize_row(ty, &x, &mut q).unwrap();
        out.extend_from_slice(&q);
    }
    out
}

fn random_acts(ty: GgmlType, rng: &mut Rng, acts: usize, n: usize) -> Vec<u8> {
    let act_ty = reference::vec_dot_type(ty);
    let mut out = Vec::new();
    for _ in 0..acts {
        let x: Vec<f32> = (0..n).map(|_| rng.normal_ish() * 3.0).collect();
        let mut q = vec![0u8; reference::row_bytes(act_ty, n).unwrap()];
        reference::quantize_activations(act_ty, &x, &mut q).unwrap();
        out.extend_from_slice(&q);
    }
    out
}

const TYPES: [GgmlType; 4] = [
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
];

fn simd_levels() -> Vec<&'static str> {
    dispatch::available_levels()
        .into_iter()
        .filter(|l| *l != "scalar")
        .collect()
}

#[test]
fn vec_dot_reproduces_ggml_order_bit_for_bit() {
    let mut rng = Rng(7);
    for ty in TYPES {
        for n in [32, 64, 576, 1536] {
            let w = random_rows(ty, &mut rng, 1, n);
            let a = random_acts(ty, &mut rng, 1, n);
            let want = ggml_order_dot(ty, n, &w, &a);
            for level in simd_levels() {
                let got = dispatch::vec_dot_at(level, ty, n, &w, &a).unwrap();
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{ty} n={n} level {level}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn gemm_tiles_reproduce_ggml_order_bit_for_bit() {
    let mut rng = Rng(11);
    let (n, rows, acts) = (576, 11, 5);
    for ty in TYPES {
        let w = random_rows(ty, &mut rng, rows, n);
        let a = random_acts(ty, &mut rng, acts, n);
        let (ws, as_) = (w.len() / rows, a.len() / acts);
        for level in simd_levels() {
            let mut out = vec![0f32; rows * acts];
            let t = TileArgs {
                n,
                w: &w,
                w_stride: ws,
                rows,
                act: &a,
                act_stride: as_,
                acts,
            };
            dispatch::vec_dot_tile_at(level, ty, &t, &mut out, rows).unwrap();
            for r in 0..rows {
                for c in 0..acts {
                    let want =
                        ggml_order_dot(ty, n, &w[r * ws..(r + 1) * ws], &a[c * as_..(c + 1) * as_]);
                    let got = out[c * rows + r];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{ty} row {r} act {c} level {level}"
                    );
                }
            }
        }
    }
}

/// The row tiles (what a batch of several sequences uses) reproduce the one-lane-per-pair
/// order of `reference::vec_dot_row_order` bit for bit at every x86 level, for Q4_0 and for
/// the types whose ordinary tiles keep ggml's order, and for IQ4_NL and MXFP4 (whose ordinary
/// tiles are in this order, llama.cpp's repacked one), whatever the tile's shape: a single
/// activation row (the matvec path, eight rows at a time and the rest one by one) and GEMM
/// tiles of 1 to 9 activation rows over row counts that are and are not multiples of eight
/// (and of sixteen, the GEMM's two-group step).
#[test]
fn row_tiles_reproduce_the_row_order_bit_for_bit() {
    let mut rng = Rng(23);
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::IQ4_NL,
        GgmlType::MXFP4,
    ] {
        for (n, rows) in [(32, 1), (64, 8), (576, 11), (128, 13), (1536, 17), (96, 37)] {
            for acts in [1usize, 2, 3, 4, 5, 8, 9] {
                let w = random_rows(ty, &mut rng, rows, n);
                let a = random_acts(ty, &mut rng, acts, n);
                let (ws, as_) = (w.len() / rows, a.len() / acts);
                for level in simd_levels() {
                    let mut out = vec![0f32; rows * acts];
                    let t = TileArgs {
                        n,
                        w: &w,
                        w_stride: ws,
                        rows,
                        act: &a,
                        act_stride: as_,
                        acts,
                    };
                    dispatch::vec_dot_tile_rows_at(level, ty, &t, &mut out, rows).unwrap();
                    for r in 0..rows {
                        for c in 0..acts {
                            let (wr, ar) = (&w[r * ws..(r + 1) * ws], &a[c * as_..(c + 1) * as_]);
                            let want = reference::vec_dot_row_order(ty, n, wr, ar).unwrap();
                            let got = out[c * rows + r];
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{ty} n={n} rows={rows} acts={acts} row {r} act {c} level {level}"
                            );
                        }
                    }
                }
            }
        }
    }
}
