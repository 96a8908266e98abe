//! Conformance against llama.cpp on requantized files: SmolLM2 Q4_1 requantized (`--pure`) to
//! Q4_0, Q8_0, Q4_K, Q6_K, Q5_1, IQ4_NL, IQ4_XS, the synthetic MoE F32 file quantized to Q2_K,
//! Q3_K, Q4_K, Q5_K, Q6_K and MXFP4_MOE (every matrix MXFP4 with --pure), and the synthetic F32
//! files of every other family (`scripts/fetch-models families`) quantized to Q4_K (gpt-oss to
//! MXFP4_MOE too), all by our own `quantize_model`. Each
//! file is made under target/ and its whole-file sha256 is
//! asserted against llama-quantize's (tests/fixtures/quant/requant-sha256.json) before any
//! logit is compared: the references in tests/fixtures/logits/ were made by llama.cpp on
//! those exact bytes (scripts/make-logit-refs; see the README there).
//!
//! The references come from an AVX2-only llama.cpp build, the same build as the SmolLM2 Q4_1
//! references (it regenerates tests/fixtures/logits/smollm2-q4_1.refs.json bit for bit). On x86
//! every SmolLM2 file is reproduced bit for bit (see tests/fixtures/logits/README.md).
//!
//! Bounds: `support::conformance::dense()` for the SmolLM2 files, the stricter
//! `support::conformance::MOE` of tests/moe_conformance.rs for the MoE files (top-1 always,
//! 0.75 on steps, batch vs one-token-at-a-time). SmolLM2 files are checked on a
//! subset of the 12 reference prompts (`SMOLLM2_SUBSET`) to keep the test time down;
//! `REQUANT_ALL_PROMPTS=1` checks all of them. The MoE files are checked on all 6.

mod quantize_support;
mod support;

use std::path::{Path, PathBuf};

use quantize_support::{fixture_input, model_path, sha256_file};
use support::conformance::{check, dense, moe, read_refs, Bounds};
use tramontane::quantize::{quantize_model, FileType, QuantizeOptions};
use tramontane::{GgufFile, Model};

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const MOE_F32: &str = "moe-s101-f32.gguf";

/// Six of the twelve SmolLM2 prompts: prose with a full logit row, code, arithmetic, ChatML,
/// mixed scripts and whitespace (the three longest prompts are left out).
const SMOLLM2_SUBSET: &[&str] = &[
    "story_clockmaker",
    "code_rust",
    "math_table",
    "chatml_chat",
    "multilingual_mixed",
    "whitespace_yaml",
];

/// `target/requant-conformance/<stem>.<TYPE>.gguf`, made by our quantizer unless a file with
/// llama-quantize's sha256 is already there; panics unless the bytes are llama-quantize's.
fn requantized(input: &str, ty: &str) -> PathBuf {
    let fixture = fixture_input(input);
    let want = fixture
        .outputs
        .iter()
        .find(|o| o.ty == ty)
        .unwrap_or_else(|| panic!("no {ty} output for {input} in the quantize fixture"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("requant-conformance");
    std::fs::create_dir_all(&dir).expect("create target/requant-conformance");
    let stem = input.trim_end_matches(".gguf");
    let out = dir.join(format!("{stem}.{ty}.gguf"));
    if out.exists() && sha256_file(&out) == want.output_file_sha256 {
        return out;
    }
    let in_path = model_path(input);
    assert_eq!(
        sha256_file(&in_path),
        fixture.sha256,
        "{input} is not the file the fixture was made from (re-run scripts/fetch-models)"
    );
    let source = GgufFile::open(&in_path).expect("open input");
    let options = QuantizeOptions {
        pure: true,
        threads: Some(2),
        progress: None,
    };
    let ftype = FileType::parse(ty).expect("supported type");
    quantize_model(&source, &out, ftype, &options)
        .unwrap_or_else(|e| panic!("quantize {input} -> {ty}: {e}"));
    assert_eq!(
        sha256_file(&out),
        want.output_file_sha256,
        "{input} -> {ty} is not llama-quantize's file: the logit references do not apply"
    );
    out
}

fn check_requantized(
    input: &str,
    ty: &str,
    refs_file: &str,
    bounds: &Bounds,
    subset: Option<&[&str]>,
) {
    let path = requantized(input, ty);
    let model = Model::load(&path).expect("load requantized model");
    let refs = read_refs(&format!(
        "{}/tests/fixtures/logits/{refs_file}",
        env!("CARGO_MANIFEST_DIR")
    ));
    assert_eq!(
        refs["model_sha256"].as_str(),
        Some(sha256_file(&path).as_str()),
        "{refs_file} was made from another file"
    );
    let all = std::env::var_os("REQUANT_ALL_PROMPTS").is_some();
    let select = |name: &str| all || subset.is_none_or(|s| s.contains(&name));
    check(&model, &refs, bounds, &select).assert_ok(&format!("{input} -> {ty}"));
}

#[test]
fn smollm2_requant_q4_0_matches_llama_cpp() {
    check_requantized(
        SMOLLM2,
        "Q4_0",
        "smollm2-q4_0.refs.json",
        &dense(),
        Some(SMOLLM2_SUBSET),
    );
}

#[test]
fn smollm2_requant_q8_0_matches_llama_cpp() {
    check_requantized(
        SMOLLM2,
        "Q8_0",
        "smollm2-q8_0.refs.json",
        &dense(),
        Some(SMOLLM2_SUBSET),
    );
}

#[test]
fn smollm2_requant_q4_k_matches_llama_cpp() {
    check_requantized(
        SMOLLM2,
        "Q4_K",
        "smollm2-q4_k.refs.json",
        &dense(),
        Some(SMOLLM2_SUBSET),
    );
}

#[test]
fn smollm2_requant_q6_k_matches_llama_cpp() {
    check_requantized(
        SMOLLM2,
        "Q6_K",
        "smollm2-q6_k.refs.json",
        &dense(),
        Some(SMOLLM2_SUBSET),
    );
}

#[test]
fn smollm2_requant_q5_1_matches_llama_cpp() {
    check_requantized(
        SMOLLM2,
        "Q5_1",
        "smollm2-q5_1.refs.json",
        &dense(),
        Some(SMOLLM2_SUBSET),
    );
}

/// Every matrix IQ4_NL (`--pure`), all of a multiple of 8 rows: llama.cpp's repacked order.
#[test]
fn smollm2_requant_iq4_nl_matches_llama_cpp() {
    check_requantized(
        SMOLLM2,
        "IQ4_NL",
        "smollm2-iq4_nl.refs.json",
        &dense(),
        Some(SMOLLM2_SUBSET),
    );
}

/// IQ4_XS where rows are a multiple of 256 (`ffn_down`), IQ4_NL elsewhere (llama-quantize's
/// fallback): IQ4_XS in `vec_dot`'s order for one token and the tiled GEMM's for prompts.
#[test]
fn smollm2_requant_iq4_xs_matches_llama_cpp() {
    check_requantized(
        SMOLLM2,
        "IQ4_XS",
        "smollm2-iq4_xs.refs.json",
        &dense(),
        Some(SMOLLM2_SUBSET),
    );
}

#[test]
fn moe_s101_q4_k_matches_llama_cpp() {
    check_requantized(MOE_F32, "Q4_K", "moe-s101-q4_k.refs.json", &moe(), None);
}

#[test]
fn moe_s101_q5_k_matches_llama_cpp() {
    check_requantized(MOE_F32, "Q5_K", "moe-s101-q5_k.refs.json", &moe(), None);
}

#[test]
fn moe_s101_q6_k_matches_llama_cpp() {
    check_requantized(MOE_F32, "Q6_K", "moe-s101-q6_k.refs.json", &moe(), None);
}

#[test]
fn moe_s101_q2_k_matches_llama_cpp() {
    check_requantized(MOE_F32, "Q2_K", "moe-s101-q2_k.refs.json", &moe(), None);
}

#[test]
fn moe_s101_q3_k_matches_llama_cpp() {
    check_requantized(MOE_F32, "Q3_K", "moe-s101-q3_k.refs.json", &moe(), None);
}

#[test]
fn phi3_q4_k_with_fused_projections_matches_llama_cpp() {
    check_requantized(
        "phi3-s307-f32.gguf",
        "Q4_K",
        "phi3-s307-q4_k.refs.json",
        &dense(),
        None,
    );
}

#[test]
fn qwen3moe_q4_k_with_32_experts_top_8_matches_llama_cpp() {
    check_requantized(
        "qwen3moe-s308-f32.gguf",
        "Q4_K",
        "qwen3moe-s308-q4_k.refs.json",
        &moe(),
        None,
    );
}

/// Every weight matrix in MXFP4 (`--pure`; the experts through `mul_mat_id`, the rest through
/// `mul_mat`, all of a multiple of 8 rows: llama.cpp's repacked order on x86).
#[test]
fn moe_s101_mxfp4_moe_matches_llama_cpp() {
    check_requantized(
        MOE_F32,
        "MXFP4_MOE",
        "moe-s101-mxfp4_moe.refs.json",
        &moe(),
        None,
    );
}

/// gpt-oss with MXFP4 weights (`--pure`: the experts through `mul_mat_id`, attention and output
/// through `mul_mat`), as the real files ship their experts.
#[test]
fn gpt_oss_mxfp4_moe_matches_llama_cpp() {
    check_requantized(
        "gpt-oss-s309-f32.gguf",
        "MXFP4_MOE",
        "gpt-oss-s309-mxfp4_moe.refs.json",
        &moe(),
        None,
    );
}

/// The other families in Q4_K (their F32 files from `scripts/fetch-models families`), so that
/// every family runs through a k-quant GEMM against llama.cpp: (F32 file, reference, bounds).
const FAMILIES_Q4_K: &[(&str, &str, bool)] = &[
    ("qwen2-s312-f32.gguf", "qwen2-s312-q4_k.refs.json", false),
    ("qwen3-s313-f32.gguf", "qwen3-s313-q4_k.refs.json", false),
    (
        "qwen2moe-s310-f32.gguf",
        "qwen2moe-s310-q4_k.refs.json",
        true,
    ),
    ("olmoe-s311-f32.gguf", "olmoe-s311-q4_k.refs.json", true),
    ("gpt-oss-s309-f32.gguf", "gpt-oss-s309-q4_k.refs.json", true),
];

#[test]
fn qwen2_qwen3_qwen2moe_olmoe_and_gpt_oss_q4_k_match_llama_cpp() {
    for &(input, refs, is_moe) in FAMILIES_Q4_K {
        let bounds = if is_moe { moe() } else { dense() };
        check_requantized(input, "Q4_K", refs, &bounds, None);
    }
}
