//! MXFP4 against llama.cpp's own numbers: `tests/fixtures/quant/mxfp4.json`, made by
//! `scripts/make-mxfp4-vectors.py` through ctypes into the AVX2-only peer (llama.cpp 0c1e57098):
//! `quantize_row_mxfp4_ref` bytes, `dequantize_row_mxfp4` values, `ggml_vec_dot_mxfp4_q8_0`
//! (unrepacked matrices) and the repacked `gemv`/`gemm<block_mxfp4, 8, 8, Q8_0>` (matrices of a
//! multiple of 8 rows), every f32 compared bit for bit.

mod support;

use std::sync::OnceLock;

use serde_json::Value;
use support::{b64, f32s};
use tramontane_kernels::dispatch;
#[cfg(target_arch = "x86_64")]
use tramontane_kernels::dispatch::TileArgs;
#[cfg(target_arch = "x86_64")]
use tramontane_kernels::matmul::{matmul_quantized_as, GgmlOp, Parallelism, QuantizedActivations};
use tramontane_kernels::reference;
use tramontane_kernels::GgmlType;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/quant/mxfp4.json"
);
const TY: GgmlType = GgmlType::MXFP4;
/// Weight rows in the fixture (16 random, 8 following the activations) and activation rows.
const ROWS: usize = 24;
const ACTS: usize = 4;

fn fixture() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| support::read_json(FIXTURE))
}

fn list(path: &[&str]) -> Vec<Vec<u8>> {
    let mut v = fixture();
    for p in path {
        v = &v[*p];
    }
    v.as_array()
        .unwrap_or_else(|| panic!("{path:?} is a list"))
        .iter()
        .map(|s| b64(s.as_str().expect("a base64 string")))
        .collect()
}

fn floats(key: &str) -> Vec<f32> {
    f32s(&b64(fixture()[key].as_str().expect("a base64 string")))
}

fn n() -> usize {
    fixture()["n_per_row"].as_u64().expect("n_per_row") as usize
}

fn same_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what} [{i}]: {g} vs {w}");
    }
}

/// The weight rows (MXFP4, back to back) and the activation rows (Q8_0, ggml's bytes).
fn operands() -> (Vec<u8>, Vec<u8>) {
    let (w, a) = (
        list(&["weights", "quantized_b64"]),
        list(&["activations", "q8_0_from_float_b64"]),
    );
    assert_eq!((w.len(), a.len()), (ROWS, ACTS));
    (w.concat(), a.concat())
}

#[test]
fn quantize_and_dequantize_match_ggml_bytes() {
    let n = n();
    for set in ["weights", "edge_rows"] {
        let inputs = list(&[set, "inputs_f32_b64"]);
        let quantized = list(&[set, "quantized_b64"]);
        let dequantized = list(&[set, "dequantized_f32_b64"]);
        for (r, ((x, q), d)) in inputs.iter().zip(&quantized).zip(&dequantized).enumerate() {
            let mut ours = vec![0u8; reference::row_bytes(TY, n).unwrap()];
            reference::quantize_row(TY, &f32s(x), &mut ours).unwrap();
            for (b, (o, g)) in ours.chunks(17).zip(q.chunks(17)).enumerate() {
                assert_eq!(o, g, "{set} row {r} block {b}: quantize_row_mxfp4_ref");
            }
            let mut y = vec![0f32; n];
            reference::dequantize_row(TY, q, &mut y).unwrap();
            same_bits(&y, &f32s(d), &format!("{set} row {r}: dequantize"));
        }
    }
}

#[test]
fn activations_quantize_as_ggml_cpu_does() {
    let n = n();
    let inputs = list(&["activations", "inputs_f32_b64"]);
    let want = list(&["activations", "q8_0_from_float_b64"]);
    assert_eq!(
        fixture()["activations"]["quantize_mat_equals_from_float"].as_bool(),
        Some(true),
        "the repacked gemm's activation quantizer gives from_float's bytes"
    );
    for (x, w) in inputs.iter().zip(&want) {
        let mut q = vec![0u8; reference::row_bytes(GgmlType::Q8_0, n).unwrap()];
        dispatch::quantize_activations(GgmlType::Q8_0, &f32s(x), &mut q).unwrap();
        assert_eq!(&q, w);
    }
}

/// `vec_dot_batch_order` is `ggml_vec_dot_mxfp4_q8_0`; `vec_dot_row_order` the repacked gemv and
/// gemm (which agree with each other).
#[test]
fn reference_orders_match_ggml_kernels() {
    let n = n();
    let (w, a) = operands();
    let (wr, ar) = (w.len() / ROWS, a.len() / ACTS);
    let (mut ggml, mut rows) = (Vec::new(), Vec::new());
    for t in 0..ACTS {
        for r in 0..ROWS {
            let (wrow, arow) = (&w[r * wr..(r + 1) * wr], &a[t * ar..(t + 1) * ar]);
            ggml.push(reference::vec_dot_batch_order(TY, n, wrow, arow).unwrap());
            rows.push(reference::vec_dot_row_order(TY, n, wrow, arow).unwrap());
            let oracle = reference::vec_dot(TY, n, wrow, arow).unwrap();
            let scale = reference::block_dot_terms(TY, n, wrow, arow)
                .unwrap()
                .iter()
                .map(|t| t.abs())
                .sum::<f32>();
            assert!((oracle - ggml[ggml.len() - 1]).abs() <= 1e-5 * scale.max(1e-30));
        }
    }
    same_bits(&ggml, &floats("vec_dot_f32_b64"), "ggml_vec_dot_mxfp4_q8_0");
    same_bits(&rows, &floats("repacked_gemv_f32_b64"), "repacked gemv");
    same_bits(&rows, &floats("repacked_gemm_f32_b64"), "repacked gemm");
}

/// Every SIMD level's vec_dot and tiles give the repacked kernels' bits (the scalar level's
/// are the f64 oracle's). x86 only: the NEON kernels are held to the oracle's tolerance.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_level_matches_the_repacked_kernels() {
    let n = n();
    let (w, a) = operands();
    let (wr, ar) = (w.len() / ROWS, a.len() / ACTS);
    let gemv = floats("repacked_gemv_f32_b64");
    let gemm = floats("repacked_gemm_f32_b64");
    let levels = dispatch::available_levels();
    assert!(levels.contains(&"scalar"));
    for level in levels.into_iter().filter(|l| *l != "scalar") {
        let mut dots = Vec::new();
        for t in 0..ACTS {
            for r in 0..ROWS {
                let (wrow, arow) = (&w[r * wr..(r + 1) * wr], &a[t * ar..(t + 1) * ar]);
                dots.push(dispatch::vec_dot_at(level, TY, n, wrow, arow).unwrap());
            }
        }
        same_bits(&dots, &gemv, &format!("{level} vec_dot"));
        for acts in 1..=4 {
            let t = TileArgs {
                n,
                w: &w,
                w_stride: wr,
                rows: ROWS,
                act: &a,
                act_stride: ar,
                acts,
            };
            let mut out = vec![0f32; ROWS * acts];
            dispatch::vec_dot_tile_at(level, TY, &t, &mut out, ROWS).unwrap();
            same_bits(&out, &gemm[..ROWS * acts], &format!("{level} tile x{acts}"));
            dispatch::vec_dot_tile_rows_at(level, TY, &t, &mut out, ROWS).unwrap();
            same_bits(
                &out,
                &gemm[..ROWS * acts],
                &format!("{level} row tile x{acts}"),
            );
        }
    }
}

/// Every SIMD level's batch tile (unrepacked matrices) gives `ggml_vec_dot_mxfp4_q8_0`'s bits,
/// on the fixture and on random rows of 1 to 9 blocks against `reference::vec_dot_batch_order`.
#[cfg(target_arch = "x86_64")]
#[test]
fn batch_tiles_match_ggml_vec_dot() {
    let n = n();
    let (w, a) = operands();
    let (wr, ar) = (w.len() / ROWS, a.len() / ACTS);
    let ggml = floats("vec_dot_f32_b64");
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut unit = move || {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    for level in dispatch::available_levels()
        .into_iter()
        .filter(|l| *l != "scalar")
    {
        let t = TileArgs {
            n,
            w: &w,
            w_stride: wr,
            rows: ROWS,
            act: &a,
            act_stride: ar,
            acts: ACTS,
        };
        let mut out = vec![0f32; ROWS * ACTS];
        dispatch::vec_dot_tile_batch_at(level, TY, &t, &mut out, ROWS).unwrap();
        same_bits(&out, &ggml, &format!("{level} batch tile"));
        for blocks in 1..=9 {
            let n = 32 * blocks;
            let x: Vec<f32> = (0..2 * n).map(|_| unit() * 3.0).collect();
            let mut wq = vec![0u8; 2 * reference::row_bytes(TY, n).unwrap()];
            for (src, dst) in x.chunks(n).zip(wq.chunks_mut(17 * blocks)) {
                reference::quantize_row(TY, src, dst).unwrap();
            }
            let y: Vec<f32> = (0..n).map(|_| unit()).collect();
            let mut aq = vec![0u8; 34 * blocks];
            reference::quantize_activations(GgmlType::Q8_0, &y, &mut aq).unwrap();
            let t = TileArgs {
                n,
                w: &wq,
                w_stride: 17 * blocks,
                rows: 2,
                act: &aq,
                act_stride: 34 * blocks,
                acts: 1,
            };
            let mut out = [0f32; 2];
            dispatch::vec_dot_tile_batch_at(level, TY, &t, &mut out, 2).unwrap();
            let want: Vec<f32> = wq
                .chunks(17 * blocks)
                .map(|row| reference::vec_dot_batch_order(TY, n, row, &aq).unwrap())
                .collect();
            same_bits(&out, &want, &format!("{level} batch tile, {blocks} blocks"));
        }
    }
}

/// The matmul driver picks llama.cpp's order from the operation: repacked (rows a multiple of
/// 8) for `mul_mat` and `mul_mat_id`, `ggml_vec_dot_mxfp4_q8_0` otherwise. x86 only.
#[cfg(target_arch = "x86_64")]
#[test]
fn matmul_follows_llama_cpp_per_shape() {
    // The dispatched matmul reproduces llama.cpp's bits only at the x86 SIMD levels, whose
    // orders are llama.cpp's AVX2 ones; the scalar path (`TRAMONTANE_KERNELS=scalar`) sums in
    // f64 and NEON in its own lanes (both checked against the oracle elsewhere).
    if !dispatch::follows_llama_cpp_avx2() {
        eprintln!(
            "skipped: level {} does not follow llama.cpp's AVX2 order",
            dispatch::active_kernels()
        );
        return;
    }
    let n = n();
    let (w, _) = operands();
    let inputs: Vec<f32> = list(&["activations", "inputs_f32_b64"])
        .iter()
        .flat_map(|x| f32s(x))
        .collect();
    let gemm = floats("repacked_gemm_f32_b64");
    let ggml = floats("vec_dot_f32_b64");
    for tokens in [1, 4] {
        let acts =
            QuantizedActivations::new(GgmlType::Q8_0, &inputs[..n * tokens], n, tokens).unwrap();
        for op in [
            GgmlOp::MulMat { matrix_rows: ROWS },
            GgmlOp::MulMatId { matrix_rows: ROWS },
            GgmlOp::RowIndependent,
        ] {
            let mut y = vec![0f32; ROWS * tokens];
            matmul_quantized_as(op, &w, TY, ROWS, n, &acts, &mut y, Parallelism::Inline).unwrap();
            same_bits(&y, &gemm[..ROWS * tokens], &format!("{op:?} x{tokens}"));
        }
        // Twelve rows (the last twelve): llama.cpp does not repack them.
        let wr = w.len() / ROWS;
        for op in [
            GgmlOp::MulMat { matrix_rows: 12 },
            GgmlOp::MulMatId { matrix_rows: 12 },
        ] {
            let mut y = vec![0f32; 12 * tokens];
            let w12 = &w[(ROWS - 12) * wr..];
            matmul_quantized_as(op, w12, TY, 12, n, &acts, &mut y, Parallelism::Inline).unwrap();
            let want: Vec<f32> = (0..tokens)
                .flat_map(|t| ggml[t * ROWS + ROWS - 12..(t + 1) * ROWS].iter().copied())
                .collect();
            same_bits(&y, &want, &format!("{op:?} x{tokens}"));
        }
    }
}
