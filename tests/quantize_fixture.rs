//! Requantized bytes against llama-quantize's: every output tensor's type, shape and sha256,
//! and the whole file's sha256, for each `llama-quantize --allow-requantize --pure IN OUT TYPE`
//! run recorded in tests/fixtures/quant/requant-sha256.json (scripts/make-requant-sha.py).

mod quantize_support;

use quantize_support::{fixture_input, model_path, scratch_dir, sha256_file, sha256_hex};
use tramontane::quantize::{quantize_model, FileType, QuantizeOptions};
use tramontane::GgufFile;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const MOE: &str = "moe-s101-f32.gguf";

fn check(model: &str, ty: &str) {
    let fixture = fixture_input(model);
    let want = fixture
        .outputs
        .iter()
        .find(|o| o.ty == ty)
        .unwrap_or_else(|| panic!("no {ty} output for {model} in the fixture"));
    let in_path = model_path(model);
    assert_eq!(
        sha256_file(&in_path),
        fixture.sha256,
        "{model} is not the file the fixture was made from (re-run scripts/fetch-models)"
    );
    let input = GgufFile::open(&in_path).expect("open input");

    let dir = scratch_dir(&format!("fixture-{model}-{ty}"));
    let out_path = dir.join(format!("{ty}.gguf"));
    let ftype = FileType::parse(ty).expect("supported type");
    let options = QuantizeOptions {
        pure: true,
        threads: Some(2),
        progress: None,
    };
    let summary = quantize_model(&input, &out_path, ftype, &options)
        .unwrap_or_else(|e| panic!("quantize {model} -> {ty}: {e}"));
    assert_eq!(summary.n_tensors, want.tensors.len());

    let out = GgufFile::open(&out_path).expect("our reader opens the output");
    assert_eq!(
        out.get_u32("general.file_type").expect("file type"),
        want.general_file_type
    );
    assert_eq!(out.n_tensors(), want.tensors.len());
    let mut mismatched = Vec::new();
    for (got, w) in out.tensors().zip(&want.tensors) {
        assert_eq!(got.name, w.name, "tensor order");
        assert_eq!(got.ty.name(), w.ty, "type of {}", w.name);
        assert_eq!(got.dims, w.dims, "shape of {}", w.name);
        assert_eq!(got.n_bytes, w.n_bytes, "size of {}", w.name);
        let data = out.tensor_of(got).expect("tensor bytes");
        if sha256_hex(data.data) != w.sha256 {
            mismatched.push(format!("{} ({})", w.name, w.ty));
        }
    }
    assert!(
        mismatched.is_empty(),
        "{model} -> {ty}: {} of {} tensors differ from llama-quantize's: {}",
        mismatched.len(),
        want.tensors.len(),
        mismatched.join(", ")
    );
    // Metadata and layout too: the whole file is llama-quantize's, byte for byte.
    assert_eq!(
        std::fs::metadata(&out_path).map(|m| m.len()).ok(),
        Some(want.output_file_size)
    );
    assert_eq!(
        sha256_file(&out_path),
        want.output_file_sha256,
        "whole file"
    );
    drop(out);
    std::fs::remove_dir_all(&dir).expect("remove test output");
}

#[test]
fn smollm2_to_q4_0() {
    check(SMOLLM2, "Q4_0");
}

#[test]
fn smollm2_to_q4_1() {
    check(SMOLLM2, "Q4_1");
}

#[test]
fn smollm2_to_q5_0() {
    check(SMOLLM2, "Q5_0");
}

#[test]
fn smollm2_to_q5_1() {
    check(SMOLLM2, "Q5_1");
}

#[test]
fn smollm2_to_q8_0() {
    check(SMOLLM2, "Q8_0");
}

#[test]
fn smollm2_to_q4_k_with_q5_0_fallback() {
    check(SMOLLM2, "Q4_K");
}

#[test]
fn smollm2_to_q6_k_with_q8_0_fallback() {
    check(SMOLLM2, "Q6_K");
}

#[test]
fn moe_f32_to_q4_k() {
    check(MOE, "Q4_K");
}

#[test]
fn moe_f32_to_q5_k() {
    check(MOE, "Q5_K");
}

#[test]
fn moe_f32_to_q6_k() {
    check(MOE, "Q6_K");
}

#[test]
fn moe_f32_to_q4_0() {
    check(MOE, "Q4_0");
}

#[test]
fn moe_f32_to_q8_0() {
    check(MOE, "Q8_0");
}

#[test]
fn moe_f32_to_mxfp4_moe() {
    check(MOE, "MXFP4_MOE");
}
