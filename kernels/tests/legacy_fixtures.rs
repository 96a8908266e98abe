//! Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL against llama.cpp's own numbers:
//! `tests/fixtures/quant/legacy-vec-dot.json`, made by `scripts/make-legacy-dot-vectors.py`
//! through ctypes into the AVX2-only peer (llama.cpp 0c1e57098). The reference quantizers must
//! write ggml's weight bytes; every level of every architecture must agree with ggml's AVX2
//! `vec_dot` for every (weight row, activation row) pair, from ggml's own activation bytes; on
//! x86 every SIMD level must give its bits, alone and at every position of a GEMM tile. IQ4_NL
//! has two x86 orders in llama.cpp: `vec_dot`'s for the matrices it does not repack (our batch
//! order) and the repacked gemv's for those of a multiple of 8 rows (our ordinary order).

mod support;

use serde_json::Value;
use support::{b64, f32s};
use tramontane_kernels::reference;
use tramontane_kernels::GgmlType;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/quant/legacy-vec-dot.json"
);
const TYPES: [(&str, GgmlType); 5] = [
    ("Q4_1", GgmlType::Q4_1),
    ("Q5_0", GgmlType::Q5_0),
    ("Q5_1", GgmlType::Q5_1),
    ("Q8_0", GgmlType::Q8_0),
    ("IQ4_NL", GgmlType::IQ4_NL),
];

/// One type's rows: weight f32 inputs, ggml's weight bytes, ggml's activation bytes, ggml's
/// `vec_dot` results `[activation row][weight row]`, and for IQ4_NL the repacked gemv's.
struct Rows {
    inputs: Vec<Vec<f32>>,
    weights: Vec<Vec<u8>>,
    acts: Vec<Vec<u8>>,
    dots: Vec<f32>,
    repacked: Option<Vec<f32>>,
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
        repacked: t["repacked_gemv_f32_b64"].as_str().map(|v| f32s(&b64(v))),
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
        // llama.cpp's ordinary result: the repacked gemv's where it repacks (IQ4_NL).
        let ggml = r.repacked.as_ref().unwrap_or(&r.dots);
        for level in dispatch::available_levels() {
            for (j, a) in r.acts.iter().enumerate() {
                for (i, w) in r.weights.iter().enumerate() {
                    let got = dispatch::vec_dot_at(level, ty, n, w, a).unwrap();
                    let want = ggml[j * nw + i];
                    // Orders differ by roundings of the partial sums, which are bounded by
                    // the sum of the blocks' |terms|; one wrong block would be off by about
                    // a block's term (a 17th of that sum), far above 1e-5 of it.
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

/// Every x86 SIMD level gives ggml's bits: `dispatch::vec_dot` and the ordinary tiles in
/// `vec_dot`'s order (for IQ4_NL the repacked gemv's), the batch tiles of IQ4_NL in its
/// `vec_dot`'s, alone and at every position of a tile.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_x86_level_gives_ggmls_bits() {
    use tramontane_kernels::dispatch::{self, TileArgs};
    let fixture = support::read_json(FIXTURE);
    let n = n_per_row(&fixture);
    let levels: Vec<&str> = dispatch::available_levels()
        .into_iter()
        .filter(|l| *l != "scalar")
        .collect();
    assert!(!levels.is_empty(), "this x86 CPU runs no SIMD level");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    for (name, ty) in TYPES {
        let r = rows(&fixture, name);
        let (nw, na) = (r.weights.len(), r.acts.len());
        // The ordinary order, and the batch order where it differs.
        let (ordinary, batch) = match &r.repacked {
            Some(gemv) => (gemv.clone(), Some(r.dots.clone())),
            None => (r.dots.clone(), None),
        };
        assert_eq!(ordinary.len(), nw * na, "{name}: result count");
        let (w_all, a_all) = (r.weights.concat(), r.acts.concat());
        let t = TileArgs {
            n,
            w: &w_all,
            w_stride: w_all.len() / nw,
            rows: nw,
            act: &a_all,
            act_stride: a_all.len() / na,
            acts: na,
        };
        for level in &levels {
            for (j, a) in r.acts.iter().enumerate() {
                for (i, w) in r.weights.iter().enumerate() {
                    let got = dispatch::vec_dot_at(level, ty, n, w, a).unwrap();
                    let want = ordinary[j * nw + i];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{name} level {level} act {j} row {i}: {got} vs ggml {want}"
                    );
                }
            }
            let mut out = vec![0f32; nw * na];
            dispatch::vec_dot_tile_at(level, ty, &t, &mut out, nw).unwrap();
            assert_eq!(bits(&out), bits(&ordinary), "{name} level {level}: tile");
            if let Some(batch) = &batch {
                dispatch::vec_dot_tile_batch_at(level, ty, &t, &mut out, nw).unwrap();
                assert_eq!(bits(&out), bits(batch), "{name} level {level}: batch tile");
            }
        }
    }
}

/// The matmul driver picks IQ4_NL's order from the operation as llama.cpp does: the repacked
/// gemv's for matrices of a multiple of 8 rows, `vec_dot`'s for the others (one activation
/// row: llama.cpp sends batches of such `mul_mat`s to tinyBLAS, whose order is not kept).
#[cfg(target_arch = "x86_64")]
#[test]
fn iq4_nl_matmul_follows_llama_cpp_per_shape() {
    use tramontane_kernels::dispatch;
    use tramontane_kernels::matmul::{
        matmul_quantized_as, GgmlOp, Parallelism, QuantizedActivations,
    };
    // Only the x86 SIMD levels sum in llama.cpp's AVX2 orders.
    if !dispatch::follows_llama_cpp_avx2() {
        eprintln!(
            "skipped: level {} is not llama.cpp's order",
            dispatch::active_kernels()
        );
        return;
    }
    let fixture = support::read_json(FIXTURE);
    let n = n_per_row(&fixture);
    let r = rows(&fixture, "IQ4_NL");
    let gemv = r
        .repacked
        .clone()
        .expect("IQ4_NL has repacked gemv results");
    let nw = r.weights.len();
    let w = r.weights.concat();
    let inputs = &fixture["types"]["IQ4_NL"]["activations_f32_b64"];
    for (j, a) in r.acts.iter().enumerate() {
        let x = f32s(&b64(inputs[j].as_str().unwrap()));
        let acts = QuantizedActivations::new(GgmlType::Q8_0, &x, n, 1).unwrap();
        assert!(
            acts.as_bytes() == &a[..],
            "act {j}: our Q8_0 bytes differ from ggml's"
        );
        let run = |op: GgmlOp| {
            let mut y = vec![0f32; nw];
            matmul_quantized_as(
                op,
                &w,
                GgmlType::IQ4_NL,
                nw,
                n,
                &acts,
                &mut y,
                Parallelism::Inline,
            )
            .unwrap();
            y
        };
        let (repacked, plain) = (&gemv[j * nw..(j + 1) * nw], &r.dots[j * nw..(j + 1) * nw]);
        for op in [
            GgmlOp::MulMat { matrix_rows: nw },
            GgmlOp::MulMatId { matrix_rows: nw },
        ] {
            assert_eq!(run(op), repacked, "{op:?} act {j}");
        }
        for op in [
            GgmlOp::MulMat {
                matrix_rows: nw + 4,
            },
            GgmlOp::MulMatId {
                matrix_rows: nw + 4,
            },
        ] {
            assert_eq!(run(op), plain, "{op:?} act {j}");
        }
    }
}
