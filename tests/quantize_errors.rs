//! Refusals, as llama-quantize refuses: non-finite weights, overflowing scales, types that
//! cannot be converted; and no output file is left behind when a run fails.

mod files_support;
mod quantize_support;

use std::path::Path;

use quantize_support::scratch_dir;
use tramontane::kernels::GgmlType;
use tramontane::quantize::{quantize_model, FileType, QuantizeOptions};
use tramontane::{Error, GgufFile};

fn quantize(dir: &Path, weight: &[f32], norm: &[f32], ftype: FileType) -> tramontane::Result<()> {
    let input_path = dir.join("in.gguf");
    files_support::write_model(&input_path, weight, norm);
    let input = GgufFile::open(&input_path).expect("open");
    let options = QuantizeOptions {
        pure: true,
        ..QuantizeOptions::default()
    };
    let out = dir.join("out.gguf");
    let result = quantize_model(&input, &out, ftype, &options).map(|_| ());
    if result.is_err() {
        assert!(!out.exists(), "no output after a failure");
        assert!(!dir.join("out.gguf.partial").exists(), "no partial file");
    }
    result
}

fn ramp(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 / n as f32 - 0.5).collect()
}

fn reason(e: Error) -> String {
    match e {
        Error::TensorType { name, reason, .. } => format!("{name}: {reason}"),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn finite_input_quantizes() {
    let dir = scratch_dir("errors-finite");
    quantize(&dir, &ramp(128), &ramp(64), FileType::Q8_0).expect("quantizes");
    let out = GgufFile::open(dir.join("out.gguf")).expect("open output");
    assert_eq!(
        out.tensor("blk.0.attn_q.weight").expect("t").ty(),
        GgmlType::Q8_0
    );
    std::fs::remove_dir_all(&dir).expect("clean");
}

#[test]
fn nan_in_a_converted_weight_is_refused() {
    let dir = scratch_dir("errors-nan-weight");
    let mut w = ramp(128);
    w[70] = f32::NAN; // row 1
    let e = quantize(&dir, &w, &ramp(64), FileType::Q4_0).expect_err("refused");
    let r = reason(e);
    assert!(
        r.starts_with("blk.0.attn_q.weight: invalid data: row 1"),
        "{r}"
    );
    std::fs::remove_dir_all(&dir).expect("clean");
}

#[test]
fn infinity_in_a_copied_tensor_is_refused() {
    // llama-quantize checks every tensor it loads, also those it copies.
    let dir = scratch_dir("errors-inf-norm");
    let mut n = ramp(64);
    n[3] = f32::INFINITY;
    let e = quantize(&dir, &ramp(128), &n, FileType::Q4_0).expect_err("refused");
    let r = reason(e);
    assert!(
        r.starts_with("blk.0.attn_norm.weight: invalid data: row 0"),
        "{r}"
    );
    std::fs::remove_dir_all(&dir).expect("clean");
}

#[test]
fn scales_that_overflow_f16_are_refused() {
    // Q4_0 stores d = max / -8 as f16: |max| = 1e6 gives 125000, above f16's 65504.
    let dir = scratch_dir("errors-overflow");
    let mut w = ramp(128);
    w[0] = 1.0e6;
    let e = quantize(&dir, &w, &ramp(64), FileType::Q4_0).expect_err("refused");
    let r = reason(e);
    assert!(r.contains("quantized data validation failed: row 0"), "{r}");
    // The same weights fit Q8_0 (d = 1e6 / 127 < 65504).
    quantize(&dir, &w, &ramp(64), FileType::Q8_0).expect("Q8_0 holds it");
    std::fs::remove_dir_all(&dir).expect("clean");
}

#[test]
fn zero_threads_and_missing_directories_are_errors() {
    let dir = scratch_dir("errors-args");
    let input_path = dir.join("in.gguf");
    files_support::write_model(&input_path, &ramp(128), &ramp(64));
    let input = GgufFile::open(&input_path).expect("open");
    let pure = QuantizeOptions {
        pure: true,
        ..QuantizeOptions::default()
    };
    let zero = QuantizeOptions {
        threads: Some(0),
        ..pure
    };
    let e = quantize_model(&input, dir.join("o.gguf"), FileType::Q8_0, &zero);
    assert!(matches!(e, Err(Error::InvalidArgument { .. })), "{e:?}");
    let e = quantize_model(
        &input,
        dir.join("no/such/dir/o.gguf"),
        FileType::Q8_0,
        &pure,
    );
    assert!(matches!(e, Err(Error::Io { .. })), "{e:?}");
    // A mix needs the model's hyperparameters, which this file lacks.
    let e = quantize_model(
        &input,
        dir.join("o.gguf"),
        FileType::Q4_K_M,
        &QuantizeOptions::default(),
    );
    assert!(matches!(e, Err(Error::MissingKey { .. })), "{e:?}");
    std::fs::remove_dir_all(&dir).expect("clean");
}
