//! The scalar reference against llama.cpp's own bytes: `tests/fixtures/quant/vectors.json`
//! (made by ggml at llama.cpp 0c1e57098; see tests/fixtures/README.md).

mod support;

use std::sync::OnceLock;

use serde_json::Value;
use support::{b64, f32s};
use tramontane_kernels::reference::{
    dequantize_row, quantize_activations, quantize_row, row_bytes, vec_dot_type,
};
use tramontane_kernels::GgmlType;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/quant/vectors.json"
);

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| support::read_json(VECTORS))
}

fn b64_list(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .expect("a list of base64 strings")
        .iter()
        .map(|s| b64(s.as_str().expect("a base64 string")))
        .collect()
}

fn input_rows() -> Vec<Vec<f32>> {
    b64_list(&vectors()["inputs"]["rows_f32_b64"])
        .iter()
        .map(|b| f32s(b))
        .collect()
}

fn probe_rows() -> Vec<Vec<f32>> {
    b64_list(&vectors()["activation_probe_rows"]["rows_f32_b64"])
        .iter()
        .map(|b| f32s(b))
        .collect()
}

fn ty(name: &str) -> GgmlType {
    GgmlType::from_name(name).unwrap_or_else(|| panic!("unknown type {name}"))
}

/// Index of the first differing byte, for messages.
fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

fn check_quantize(name: &str) {
    let t = ty(name);
    let expected = b64_list(&vectors()["weight_types"][name]["quantized_b64"]);
    let mut failures = Vec::new();
    for (r, (row, want)) in input_rows().iter().zip(&expected).enumerate() {
        let mut got = vec![0u8; row_bytes(t, row.len()).unwrap()];
        quantize_row(t, row, &mut got).unwrap();
        assert_eq!(got.len(), want.len());
        if let Some(i) = first_diff(&got, want) {
            let bb = t.block_bytes();
            failures.push(format!(
                "row {r}: first difference at byte {i} (block {}, offset {}): got {:?} want {:?}; {} bytes differ",
                i / bb,
                i % bb,
                &got[i / bb * bb..(i / bb + 1) * bb],
                &want[i / bb * bb..(i / bb + 1) * bb],
                got.iter().zip(want.iter()).filter(|(a, b)| a != b).count()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{name} quantize:\n{}",
        failures.join("\n")
    );
}

fn check_dequantize(name: &str) {
    let t = ty(name);
    let data = b64_list(&vectors()["weight_types"][name]["quantized_b64"]);
    let expected = b64_list(&vectors()["weight_types"][name]["dequantized_f32_b64"]);
    for (r, (bytes, want)) in data.iter().zip(&expected).enumerate() {
        let want = f32s(want);
        let mut got = vec![f32::NAN; want.len()];
        dequantize_row(t, bytes, &mut got).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{name} row {r} value {i}: got {g} want {w}"
            );
        }
    }
}

macro_rules! weight_type_tests {
    ($($name:literal => $q:ident, $dq:ident;)*) => {$(
        #[test]
        fn $q() {
            check_quantize($name);
        }
        #[test]
        fn $dq() {
            check_dequantize($name);
        }
    )*};
}

weight_type_tests! {
    "Q4_0" => quantize_q4_0_is_byte_identical, dequantize_q4_0_is_bit_identical;
    "Q4_1" => quantize_q4_1_is_byte_identical, dequantize_q4_1_is_bit_identical;
    "Q5_0" => quantize_q5_0_is_byte_identical, dequantize_q5_0_is_bit_identical;
    "Q5_1" => quantize_q5_1_is_byte_identical, dequantize_q5_1_is_bit_identical;
    "Q8_0" => quantize_q8_0_is_byte_identical, dequantize_q8_0_is_bit_identical;
    "Q2_K" => quantize_q2_k_is_byte_identical, dequantize_q2_k_is_bit_identical;
    "Q3_K" => quantize_q3_k_is_byte_identical, dequantize_q3_k_is_bit_identical;
    "Q4_K" => quantize_q4_k_is_byte_identical, dequantize_q4_k_is_bit_identical;
    "Q5_K" => quantize_q5_k_is_byte_identical, dequantize_q5_k_is_bit_identical;
    "Q6_K" => quantize_q6_k_is_byte_identical, dequantize_q6_k_is_bit_identical;
    "IQ4_NL" => quantize_iq4_nl_is_byte_identical, dequantize_iq4_nl_is_bit_identical;
    "IQ4_XS" => quantize_iq4_xs_is_byte_identical, dequantize_iq4_xs_is_bit_identical;
}

type Quantizer = fn(GgmlType, &[f32], &mut [u8]) -> Result<(), tramontane_kernels::KernelError>;

/// Runs `f` over the rows and returns the rows (by index) whose bytes differ from `want`.
fn mismatching_rows(t: GgmlType, rows: &[Vec<f32>], want: &[Vec<u8>], f: Quantizer) -> Vec<usize> {
    assert_eq!(rows.len(), want.len());
    let mut bad = Vec::new();
    for (r, (row, w)) in rows.iter().zip(want).enumerate() {
        let mut got = vec![0u8; row_bytes(t, row.len()).unwrap()];
        f(t, row, &mut got).unwrap();
        if &got != w {
            bad.push(r);
        }
    }
    bad
}

fn check_activation_type(name: &str) {
    let t = ty(name);
    let main = &vectors()["activation_types"][name];
    let probe = &vectors()["activation_probe_rows"]["types"][name];
    let (rows, probes) = (input_rows(), probe_rows());
    // The runtime (x86) quantizer, which is what llama.cpp applies to activations.
    let bad = mismatching_rows(
        t,
        &rows,
        &b64_list(&main["cpu_from_float_b64"]),
        quantize_activations,
    );
    assert!(
        bad.is_empty(),
        "{name} quantize_activations differs on rows {bad:?}"
    );
    let bad = mismatching_rows(
        t,
        &probes,
        &b64_list(&probe["cpu_from_float_b64"]),
        quantize_activations,
    );
    assert!(
        bad.is_empty(),
        "{name} quantize_activations differs on probe rows {bad:?}"
    );
    // The _ref quantizer, exposed as quantize_row.
    let bad = mismatching_rows(t, &rows, &b64_list(&main["ref_b64"]), quantize_row);
    assert!(
        bad.is_empty(),
        "{name} quantize_row (_ref) differs on rows {bad:?}"
    );
    let bad = mismatching_rows(t, &probes, &b64_list(&probe["ref_b64"]), quantize_row);
    assert!(
        bad.is_empty(),
        "{name} quantize_row (_ref) differs on probe rows {bad:?}"
    );
}

#[test]
fn q8_0_activations_match_ggml_cpu_and_ref() {
    check_activation_type("Q8_0");
}

#[test]
fn q8_1_activations_match_ggml_cpu_and_ref() {
    check_activation_type("Q8_1");
}

#[test]
fn q8_k_activations_match_ggml_cpu_and_ref() {
    check_activation_type("Q8_K");
}

#[test]
fn probe_rows_really_tell_the_two_q8_0_quantizers_apart() {
    // The probe rows exist because the runtime and _ref quantizers disagree on them; if ours
    // agreed with each other there, one of them would be wrong.
    let t = GgmlType::Q8_0;
    for row in probe_rows() {
        let mut a = vec![0u8; row_bytes(t, row.len()).unwrap()];
        let mut b = a.clone();
        quantize_activations(t, &row, &mut a).unwrap();
        quantize_row(t, &row, &mut b).unwrap();
        assert_ne!(a, b);
    }
}

#[test]
fn vec_dot_types_match_ggml_cpu() {
    let table = vectors()["vec_dot_type_per_weight_type"]
        .as_object()
        .expect("an object");
    assert!(table.len() >= 14);
    for (w, a) in table {
        assert_eq!(
            vec_dot_type(ty(w)),
            ty(a.as_str().expect("a type name")),
            "vec_dot_type({w})"
        );
    }
}
