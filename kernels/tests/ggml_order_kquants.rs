//! On x86, Q2_K, Q3_K, Q5_K, Q6_K and IQ4_XS dot products must reproduce the bits of
//! llama.cpp's AVX2 kernels (`ggml_vec_dot_q2_K_q8_K` ... `ggml_vec_dot_iq4_xs_q8_K`, which it
//! runs for these types unrepacked), not only their math: a 30-layer model turns one-ulp
//! differences into logit differences of order 0.5. Their order: per (weight row, activation
//! row) pair eight f32 lanes; i32 lane `L` of a super-block sums, over its eight 32-value
//! chunks, the chunk's (Q2_K, Q3_K, Q6_K: the 16-value group's; IQ4_XS: `ls - 32`) scale times
//! the products at positions `4L..4L+4`; Q6_K subtracts
//! `32 * (sc[2L] * bsum[2L] + sc[2L+1] * bsum[2L+1])`; Q2_K first adds
//! `fma(-(da * dmin), f32(min[2L] * bsum[2L] + min[2L+1] * bsum[2L+1]), acc_L)`; then
//! `acc_L = fma(da * dw, f32(lane_L), acc_L)`, `hsum_float_8`, and for Q5_K the mins chain
//! `summs = fma(-(da * dmin), f32(m), summs)` added last.
//!
//! `ggml_order_dot` spells that out in scalar code. The fixture `ggml-order-kquants.bin`
//! holds rows quantized by ggml itself with the AVX2 library's `vec_dot` bits
//! (`scripts/check-ggml-vec-dot.py`, which checked the same emulation on 3000 rows): the
//! emulation must give those bits, and every x86 SIMD level must give them for single dot
//! products and at every position of GEMM tiles (including pairs not in the fixture, against
//! the emulation).
#![cfg(target_arch = "x86_64")]

use half::f16;
use tramontane_kernels::dispatch::{self, TileArgs};
use tramontane_kernels::formats::IQ4NL_VALUES;
use tramontane_kernels::GgmlType;

const Q8K_BYTES: usize = 292;

fn h(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Codes (0..31), 6-bit scales and mins of one Q5_K block.
fn q5k_block(x: &[u8]) -> ([i32; 256], [i32; 8], [i32; 8]) {
    let s = &x[4..16];
    let (mut sc, mut mn) = ([0i32; 8], [0i32; 8]);
    for j in 0..8 {
        let (a, m) = if j < 4 {
            (s[j] & 63, s[j + 4] & 63)
        } else {
            (
                (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
                (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
            )
        };
        (sc[j], mn[j]) = (i32::from(a), i32::from(m));
    }
    let (qh, qs) = (&x[16..48], &x[48..176]);
    let mut q = [0i32; 256];
    for j in 0..4 {
        for l in 0..32 {
            let b = qs[32 * j + l];
            q[64 * j + l] = i32::from((b & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4));
            q[64 * j + 32 + l] = i32::from((b >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4));
        }
    }
    (q, sc, mn)
}

/// Codes (0..63, the -32 not applied) and signed scales of one Q6_K block.
fn q6k_block(x: &[u8]) -> ([i32; 256], [i32; 16]) {
    let (ql, qh) = (&x[0..128], &x[128..192]);
    let sc: [i32; 16] = core::array::from_fn(|g| i32::from(x[192 + g] as i8));
    let mut q = [0i32; 256];
    for half in 0..2 {
        for l in 0..32 {
            let b = qh[32 * half + l];
            let (lo0, lo1) = (ql[64 * half + l], ql[64 * half + 32 + l]);
            q[128 * half + l] = i32::from((lo0 & 0xF) | ((b & 3) << 4));
            q[128 * half + 32 + l] = i32::from((lo1 & 0xF) | (((b >> 2) & 3) << 4));
            q[128 * half + 64 + l] = i32::from((lo0 >> 4) | (((b >> 4) & 3) << 4));
            q[128 * half + 96 + l] = i32::from((lo1 >> 4) | (((b >> 6) & 3) << 4));
        }
    }
    (q, sc)
}

/// Values (table levels) and sub-block scales `ls - 32` of one IQ4_XS block.
fn iq4xs_block(x: &[u8]) -> ([i32; 256], [i32; 8]) {
    let high = u16::from_le_bytes([x[2], x[3]]);
    let sc: [i32; 8] = core::array::from_fn(|j| {
        let low = (x[4 + j / 2] >> (4 * (j % 2))) & 0xF;
        i32::from(low | ((((high >> (2 * j)) & 3) as u8) << 4)) - 32
    });
    let mut q = [0i32; 256];
    for j in 0..8 {
        for l in 0..16 {
            let b = x[8 + 16 * j + l];
            q[32 * j + l] = i32::from(IQ4NL_VALUES[usize::from(b & 0xF)]);
            q[32 * j + 16 + l] = i32::from(IQ4NL_VALUES[usize::from(b >> 4)]);
        }
    }
    (q, sc)
}

/// Codes (0..3), 4-bit scales and 4-bit mins of one Q2_K block.
fn q2k_block(x: &[u8]) -> ([i32; 256], [i32; 16], [i32; 16]) {
    let q = core::array::from_fn(|i| {
        let (j, k, p) = (i / 128, (i % 128) / 32, i % 32);
        i32::from((x[16 + 32 * j + p] >> (2 * k)) & 3)
    });
    let sc = core::array::from_fn(|g| i32::from(x[g] & 0xF));
    let mn = core::array::from_fn(|g| i32::from(x[g] >> 4));
    (q, sc, mn)
}

/// Values (-4..3) and scales (`sc - 32`) of one Q3_K block.
fn q3k_block(x: &[u8]) -> ([i32; 256], [i32; 16]) {
    let q = core::array::from_fn(|i| {
        let (j, k, p) = (i / 128, (i % 128) / 32, i % 32);
        let low = i32::from((x[32 + 32 * j + p] >> (2 * k)) & 3);
        if (x[p] >> (i / 32)) & 1 == 1 {
            low
        } else {
            low - 4
        }
    });
    let sc = core::array::from_fn(|g| {
        let low = if g < 8 {
            x[96 + g] & 0xF
        } else {
            x[96 + g - 8] >> 4
        };
        let high = (x[104 + g % 4] >> (2 * (g / 4))) & 3;
        i32::from(low | (high << 4)) - 32
    });
    (q, sc)
}

/// Bytes per super-block of the weight types of this test.
fn block_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q2_K => 84,
        GgmlType::Q3_K => 110,
        GgmlType::Q5_K => 176,
        GgmlType::Q6_K => 210,
        _ => 136,
    }
}

/// ggml's AVX2 Q2_K/Q3_K/Q5_K/Q6_K/IQ4_XS order (module docs) in scalar code.
fn ggml_order_dot(ty: GgmlType, n: usize, w: &[u8], a: &[u8]) -> f32 {
    let wb = block_bytes(ty);
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for b in 0..n / 256 {
        let x = &w[b * wb..(b + 1) * wb];
        let y = &a[b * Q8K_BYTES..(b + 1) * Q8K_BYTES];
        let da = f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
        let q8: Vec<i32> = y[4..260].iter().map(|&v| i32::from(v as i8)).collect();
        let bsum = |k: usize| i32::from(i16::from_le_bytes([y[260 + 2 * k], y[261 + 2 * k]]));
        let dot4 = |q: &[i32; 256], c: usize, l: usize| -> i32 {
            (0..4)
                .map(|t| q[32 * c + 4 * l + t] * q8[32 * c + 4 * l + t])
                .sum()
        };
        let mut lanes = [0i32; 8];
        let d;
        if matches!(ty, GgmlType::Q2_K | GgmlType::Q3_K) {
            let (q, sc) = if ty == GgmlType::Q2_K {
                let (q, sc, mn) = q2k_block(x);
                d = da * h(x, 80);
                let dmin = -(da * h(x, 82));
                for (l, a) in acc.iter_mut().enumerate() {
                    let m = mn[2 * l] * bsum(2 * l) + mn[2 * l + 1] * bsum(2 * l + 1);
                    *a = dmin.mul_add(m as f32, *a);
                }
                (q, sc)
            } else {
                d = da * h(x, 108);
                q3k_block(x)
            };
            for (l, lane) in lanes.iter_mut().enumerate() {
                for c in 0..8 {
                    *lane += sc[2 * c + l / 4] * dot4(&q, c, l);
                }
            }
        } else if ty == GgmlType::IQ4_XS {
            let (q, sc) = iq4xs_block(x);
            d = h(x, 0) * da;
            for (l, lane) in lanes.iter_mut().enumerate() {
                for (c, s) in sc.iter().enumerate() {
                    *lane += s * dot4(&q, c, l);
                }
            }
        } else if ty == GgmlType::Q6_K {
            let (q, sc) = q6k_block(x);
            d = da * h(x, 208);
            for (l, lane) in lanes.iter_mut().enumerate() {
                for c in 0..8 {
                    *lane += sc[2 * c + l / 4] * dot4(&q, c, l);
                }
                *lane -= 32 * (sc[2 * l] * bsum(2 * l) + sc[2 * l + 1] * bsum(2 * l + 1));
            }
        } else {
            let (q, sc, mn) = q5k_block(x);
            d = da * h(x, 0);
            for (l, lane) in lanes.iter_mut().enumerate() {
                for (c, s) in sc.iter().enumerate() {
                    *lane += s * dot4(&q, c, l);
                }
            }
            let m: i32 = (0..8)
                .map(|j| mn[j] * (bsum(2 * j) + bsum(2 * j + 1)))
                .sum();
            summs = (-(da * h(x, 2))).mul_add(m as f32, summs);
        }
        for (a, &l) in acc.iter_mut().zip(&lanes) {
            *a = d.mul_add(l as f32, *a);
        }
    }
    let r: [f32; 4] = core::array::from_fn(|i| acc[i + 4] + acc[i]);
    ((r[0] + r[2]) + (r[1] + r[3])) + summs
}

struct Case {
    ty: GgmlType,
    n: usize,
    w: Vec<u8>,
    a: Vec<u8>,
    want: u32,
}

fn fixture() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ggml-order-kquants.bin"
    );
    let data = std::fs::read(path).unwrap();
    assert_eq!(&data[..8], b"KQORDER1");
    let mut at = 8;
    let mut out = Vec::new();
    while at < data.len() {
        let ty = match data[at] {
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            23 => GgmlType::IQ4_XS,
            t => panic!("unexpected type {t}"),
        };
        let n = u32::from_le_bytes(data[at + 1..at + 5].try_into().unwrap()) as usize;
        at += 5;
        let wl = n / 256 * block_bytes(ty);
        let al = n / 256 * Q8K_BYTES;
        let w = data[at..at + wl].to_vec();
        let a = data[at + wl..at + wl + al].to_vec();
        at += wl + al;
        let want = u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        at += 4;
        out.push(Case { ty, n, w, a, want });
    }
    out
}

fn simd_levels() -> Vec<&'static str> {
    dispatch::available_levels()
        .into_iter()
        .filter(|l| *l != "scalar")
        .collect()
}

#[test]
fn emulation_matches_the_ggml_library() {
    let cases = fixture();
    assert_eq!(cases.len(), 360);
    for (i, c) in cases.iter().enumerate() {
        let got = ggml_order_dot(c.ty, c.n, &c.w, &c.a);
        assert_eq!(got.to_bits(), c.want, "case {i} {} n={}", c.ty, c.n);
    }
}

#[test]
fn vec_dot_matches_the_ggml_library_bit_for_bit() {
    let cases = fixture();
    for level in simd_levels() {
        for (i, c) in cases.iter().enumerate() {
            let got = dispatch::vec_dot_at(level, c.ty, c.n, &c.w, &c.a).unwrap();
            let want = f32::from_bits(c.want);
            assert_eq!(
                got.to_bits(),
                c.want,
                "case {i} {} n={} level {level}: {got} vs {want}",
                c.ty,
                c.n
            );
        }
    }
}

/// Tiles over rows and activations taken from the fixture's cases of one (type, n): matvecs
/// (eight-row and single-row paths) and GEMMs, every output against the emulation.
#[test]
fn tiles_match_the_ggml_order_bit_for_bit() {
    let cases = fixture();
    for ty in [
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::IQ4_XS,
    ] {
        for n in [256, 512, 1536] {
            let group: Vec<&Case> = cases.iter().filter(|c| c.ty == ty && c.n == n).collect();
            let (rows, acts_max) = (11, 6);
            assert!(group.len() >= rows);
            let w: Vec<u8> = group[..rows].iter().flat_map(|c| c.w.clone()).collect();
            let a: Vec<u8> = group[..acts_max]
                .iter()
                .rev()
                .flat_map(|c| c.a.clone())
                .collect();
            let (ws, as_) = (w.len() / rows, a.len() / acts_max);
            for acts in [1, acts_max] {
                for level in simd_levels() {
                    let mut out = vec![0f32; rows * acts];
                    let t = TileArgs {
                        n,
                        w: &w,
                        w_stride: ws,
                        rows,
                        act: &a[..acts * as_],
                        act_stride: as_,
                        acts,
                    };
                    dispatch::vec_dot_tile_at(level, ty, &t, &mut out, rows).unwrap();
                    for r in 0..rows {
                        for c in 0..acts {
                            let want = ggml_order_dot(
                                ty,
                                n,
                                &w[r * ws..(r + 1) * ws],
                                &a[c * as_..(c + 1) * as_],
                            );
                            let got = out[c * rows + r];
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{ty} n={n} row {r} act {c} of {acts} level {level}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The Q8_K activation quantizer (the other input of these dot products) gives ggml's bytes
/// (`quantize_row_q8_K`, the scalar reference on x86) on rows quantized by the library.
#[test]
fn q8_k_activations_match_the_ggml_library() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ggml-q8k-activations.bin"
    );
    let data = std::fs::read(path).unwrap();
    assert_eq!(&data[..8], b"Q8KQUAN1");
    let (mut at, mut count) = (8, 0);
    while at < data.len() {
        let n = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        at += 4;
        let x: Vec<f32> = data[at..at + 4 * n]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        at += 4 * n;
        let want = &data[at..at + n / 256 * Q8K_BYTES];
        at += want.len();
        let mut got = vec![0u8; want.len()];
        dispatch::quantize_activations(GgmlType::Q8_K, &x, &mut got).unwrap();
        assert!(got == want, "record {count} (n={n}): Q8_K bytes differ");
        count += 1;
    }
    assert_eq!(count, 48);
}
