//! Conformance against llama.cpp on the synthetic files of the families beyond llama and gemma3
//! (`scripts/make-family.py`, made by `scripts/fetch-models families`; references in
//! tests/fixtures/logits, made by `scripts/make-logit-refs` from llama.cpp's AVX2 build): prompt
//! token ids, top-1 and top-10 at the last prompt position, the full last logit row and
//! teacher-forced greedy steps, bit-exact where `support::conformance::bit_exact_expected`
//! holds and within the dense bounds elsewhere.
//!
//! - qwen2: Q/K/V biases, an output bias, NeoX RoPE.
//! - qwen3: per-head Q/K norms, NeoX RoPE, and heads wider than the residual stream
//!   (8 heads of 64 over 256 dimensions).

mod support;

use std::path::PathBuf;

use support::conformance::{check, dense, read_refs};
use tramontane::Model;

fn check_file(name: &str) {
    let path =
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models")).join(format!("{name}.gguf"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models families",
        path.display()
    );
    let model = Model::load(&path).expect("load");
    let refs = read_refs(&format!(
        "{}/tests/fixtures/logits/{name}.refs.json",
        env!("CARGO_MANIFEST_DIR")
    ));
    check(&model, &refs, &dense(), &|_| true).assert_ok(name);
}

#[test]
fn qwen2_with_biases_matches_llama_cpp() {
    check_file("qwen2-s301-q8_0");
}

#[test]
fn qwen3_with_qk_norms_and_wide_heads_matches_llama_cpp() {
    check_file("qwen3-s302-q8_0");
}
