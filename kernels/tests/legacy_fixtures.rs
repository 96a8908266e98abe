//! Q4_1, Q5_0, Q5_1 and Q8_0 against llama.cpp's own numbers:
//! `tests/fixtures/quant/legacy-vec-dot.json`, made by `scripts/make-legacy-dot-vectors.py`
//! through ctypes into the AVX2-only peer (llama.cpp 0c1e57098). The reference quantizers must
//! write ggml's weight bytes; every level of every architecture must agree with ggml's AVX2
//! `vec_dot` for every (weight row, activation row) pair, from ggml's own activation bytes; on
//! x86 every SIMD level must give its bits, alone and at every position of a GEMM tile.

mod support;

use serde_json::Value;
use support::{b64, f32s};
use tramontane_kernels::reference;
use tramontane_kernels::GgmlType;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/quant/legacy-vec-dot.json"
);
const TYPES: [(&str, GgmlType); 4] = [
    ("Q4_1", GgmlType::Q4_1),
    ("Q5_0", GgmlType::Q5_0),
    ("Q5_1", GgmlType::Q5_1),
    ("Q8_0", GgmlType::Q8_0),
];

/// One type's rows: (weight f32 inputs, ggml's weight bytes, ggml's activation bytes, ggml's
/// `vec_dot` results `[activation row][weight row]`).
struct Rows {
    inputs: Vec<Vec<f32>>,
    weights: Vec<Vec<u8>>,
    acts: Vec<Vec<u8>>,
    dots: Vec<f32>,
}

fn rows(fixture: &Value, name: &str) -> Rows {
    let t = &fixture["types"][name];
    let list = |key: &str| -> Vec<Vec<u8>> {
        t[key]
            .as_array()
            .unwrap_or_else(|| panic!("{name}.{key} missing"))
            .iter()
            .map(|v| b64(v.as_str().unwrap()))
            .collect()
    };
    Rows {
        inputs: list("weights_f32_b64").iter().map(|b| f32s(b)).collect(),
        weights: list("quantized_b64"),
        acts: list("activations_quantized_b64"),
        dots: f32s(&b64(t["vec_dot_f32_b64"].as_str().unwrap())),
    }
}

fn n_per_row(fixture: &Value) -> usize {
    fixture["n_per_row"].as_u64().unwrap() as usize
}

#[test]
fn reference_quantizers_write_ggmls_bytes() {
    let fixture = support::read_json(FIXTURE);
    let n = n_per_row(&fixture);
    for (name, ty) in TYPES {
        let r = rows(&fixture, name);
        assert!(!r.inputs.is_empty(), "{name}: no rows");
        for (i, (x, want)) in r.inputs.iter().zip(&r.weights).enumerate() {
            assert_eq!(x.len(), n);
            let mut got = vec![0u8; reference::row_bytes(ty, n).unwrap()];
            reference::quantize_row(ty, x, &mut got).unwrap();
            assert!(got == *want, "{name} row {i}: bytes differ from ggml's");
        }
    }
}

/// On every architecture and level (NEON sums in its own order, the scalar reference in f64),
/// every dot product lies within a few f32 roundings of llama.cpp's.
#[test]
fn every_level_agrees_with_ggmls_vec_dot() {
    use tramontane_kernels::dispatch;
    let fixture = support::read_json(FIXTURE);
    let n = n_per_row(&fixture);
    for (name, ty) in TYPES {
        let r = rows(&fixture, name);
        let nw = r.weights.len();
        assert_eq!(r.dots.len(), nw * r.acts.len(), "{name}: vec_dot count");
        for level in dispatch::available_levels() {
            for (j, a) in r.acts.iter().enumerate() {
                for (i, w) in r.weights.iter().enumerate() {
                    let got = dispatch::vec_dot_at(level, ty, n, w, a).unwrap();
                    let want = r.dots[j * nw + i];
                    // Orders differ by roundings of the partial sums, which are bounded by
                    // the sum of the blocks' |terms|; one wrong block would be off by about
                    // a block's term (a 18th of that sum), far above 1e-5 of it.
                    let terms = reference::block_dot_terms(ty, n, w, a).unwrap();
                    let tol = 1e-5 * terms.iter().map(|t| t.abs()).sum::<f32>();
                    assert!(
                        (got - want).abs() <= tol,
                        "{name} level {level} act {j} row {i}: {got} vs ggml {want}"
                    );
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn every_x86_level_gives_ggmls_vec_dot_bits() {
    use tramontane_kernels::dispatch::{self, TileArgs};
    let fixture = support::read_json(FIXTURE);
    let n = n_per_row(&fixture);
    let levels: Vec<&str> = dispatch::available_levels()
        .into_iter()
        .filter(|l| *l != "scalar")
        .collect();
    assert!(!levels.is_empty(), "this x86 CPU runs no SIMD level");
    for (name, ty) in TYPES {
        let r = rows(&fixture, name);
        let (nw, na) = (r.weights.len(), r.acts.len());
        assert_eq!(r.dots.len(), nw * na, "{name}: vec_dot count");
        let (w_all, a_all) = (r.weights.concat(), r.acts.concat());
        for level in &levels {
            for (j, a) in r.acts.iter().enumerate() {
                for (i, w) in r.weights.iter().enumerate() {
                    let got = dispatch::vec_dot_at(level, ty, n, w, a).unwrap();
                    let want = r.dots[j * nw + i];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{name} level {level} act {j} row {i}: {got} vs ggml {want}"
                    );
                }
            }
            // The same pairs as one tile (every row at every activation position).
            let t = TileArgs {
                n,
                w: &w_all,
                w_stride: w_all.len() / nw,
                rows: nw,
                act: &a_all,
                act_stride: a_all.len() / na,
                acts: na,
            };
            let mut out = vec![0f32; nw * na];
            dispatch::vec_dot_tile_at(level, ty, &t, &mut out, nw).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            assert_eq!(bits(&out), bits(&r.dots), "{name} level {level}: tile");
        }
    }
}
