//! Conformance against llama.cpp on the synthetic files of the families beyond llama and gemma3
//! (`scripts/make-family.py`, made by `scripts/fetch-models families`; references in
//! tests/fixtures/logits, made by `scripts/make-logit-refs` from llama.cpp's AVX2 build): prompt
//! token ids, top-1 and top-10 at the last prompt position, the full last logit row and
//! teacher-forced greedy steps, bit-exact where `support::conformance::bit_exact_expected`
//! holds and within the bounds elsewhere.
//!
//! - qwen2: Q/K/V biases, an output bias, NeoX RoPE.
//! - qwen3: per-head Q/K norms, NeoX RoPE, and heads wider than the residual stream
//!   (8 heads of 64 over 256 dimensions).
//! - qwen3moe: 128 experts, 8 chosen, weights renormalised.
//! - qwen2moe: 8 experts, 4 chosen, weights not renormalised, and a shared expert with its
//!   sigmoid gate.
//! - olmoe: 64 experts, 8 chosen, Q/K norms over the whole projection.
//! - phi3: fused `attn_qkv` and gate+up matrices, Q scaled before the product, LongRoPE with
//!   `rope.scaling.attn_factor`: at a 512-token context (above its original 256) the long
//!   factors, at 256 the short ones.
//!
//! - gpt-oss: Q/K/V and output biases, attention sinks, a 64-token sliding window on the even
//!   layers (the 142-token prompt runs past it), YaRN RoPE, 16 experts top-4 with biases, routed
//!   by a softmax over the top logits and gated by the clamped SwiGLU (Q8_0 experts here; the
//!   real files use MXFP4).
//!
//! And two invariances that hold by construction:
//! - a qwen3moe file whose experts are all the dense qwen3 file's FFN computes that file's
//!   logits (up to the rounding of weights that sum to 1);
//! - a shared expert whose down projection is zero changes nothing: bit for bit the file
//!   without one.

mod support;

use std::path::PathBuf;

use support::conformance::{check, dense, moe, read_refs, Bounds};
use tramontane::{Model, SessionOptions};

fn load(name: &str) -> Model {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models")).join(format!("{name}.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models families",
        path.display()
    );
    Model::load(&path).expect("load")
}

/// `models/<name>.gguf` against `tests/fixtures/logits/<name>.refs.json`.
fn check_file(name: &str, bounds: &Bounds) {
    check_against(name, name, bounds);
}

/// `models/<model>.gguf` against `tests/fixtures/logits/<refs>.refs.json`.
fn check_against(model: &str, refs: &str, bounds: &Bounds) {
    let loaded = load(model);
    let refs_json = read_refs(&format!(
        "{}/tests/fixtures/logits/{refs}.refs.json",
        env!("CARGO_MANIFEST_DIR")
    ));
    check(&loaded, &refs_json, bounds, &|_| true).assert_ok(refs);
}

#[test]
fn qwen2_with_biases_matches_llama_cpp() {
    check_file("qwen2-s301-q8_0", &dense());
}

#[test]
fn qwen3_with_qk_norms_and_wide_heads_matches_llama_cpp() {
    check_file("qwen3-s302-q8_0", &dense());
}

#[test]
fn qwen3moe_with_128_experts_top_8_matches_llama_cpp() {
    check_file("qwen3moe-s303-q8_0", &moe());
}

#[test]
fn qwen2moe_with_a_shared_expert_matches_llama_cpp() {
    check_file("qwen2moe-s304-q8_0", &moe());
}

#[test]
fn olmoe_with_full_width_qk_norms_matches_llama_cpp() {
    check_file("olmoe-s305-q8_0", &moe());
}

#[test]
fn phi3_with_fused_projections_and_long_rope_factors_matches_llama_cpp() {
    check_file("phi3-s307-q8_0", &dense());
}

#[test]
fn phi3_within_its_original_context_uses_the_short_factors_as_llama_cpp() {
    check_against("phi3-s307-q8_0", "phi3-s307-q8_0-short", &dense());
}

#[test]
fn gpt_oss_with_sinks_yarn_and_biased_experts_matches_llama_cpp() {
    check_file("gpt-oss-s309-q8_0", &moe());
}

const PROMPT: &str = "The lighthouse keeper climbed the stairs at dusk and, as every night,";

/// Every position's logits of `PROMPT` (one batch, two threads).
fn all_logits(model: &Model) -> Vec<f32> {
    let mut session = model
        .session(SessionOptions {
            context: 256,
            threads: Some(2),
            ..Default::default()
        })
        .expect("session");
    let tokens = model
        .tokenizer()
        .encode(PROMPT, tramontane::tokenizer::EncodeOptions::PROMPT)
        .expect("tokenize");
    session.eval_all(&tokens).expect("eval")
}

#[test]
fn identical_experts_compute_the_dense_ffn() {
    let dense = all_logits(&load("qwen3-s302-q8_0"));
    let moe = all_logits(&load("qwen3moe-s302-identical-q8_0"));
    assert_eq!(dense.len(), moe.len());
    let max_diff = dense
        .iter()
        .zip(&moe)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let spread = dense.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    // Two experts of weights w and 1 - w (each rounded, their sum renormalised) give
    // w*y + (1-w)*y: a few ulps from y per layer, nothing like a wrong expert or a missing
    // normalisation, which move logits by whole units.
    assert!(
        max_diff <= 1e-3,
        "max |dense - moe| = {max_diff} (logits up to {spread})"
    );
}

#[test]
fn a_shared_expert_that_outputs_zero_changes_nothing() {
    let with = all_logits(&load("qwen2moe-s306-shexp-zero-q8_0"));
    let without = all_logits(&load("qwen2moe-s306-shexp-none-q8_0"));
    assert_eq!(with.len(), without.len());
    let differ = with
        .iter()
        .zip(&without)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differ, 0, "{differ} logits differ");
}
