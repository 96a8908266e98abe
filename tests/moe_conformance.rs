//! Conformance against llama.cpp on the two synthetic Mixtral files (`scripts/make-moe.py`,
//! references in tests/fixtures/logits, made by `scripts/make-logit-refs`): prompt token ids, top-1 and top-10 at the last prompt
//! position, the full last logit row, batch vs one-token-at-a-time evaluation, and
//! teacher-forced greedy steps, with the bounds of `support::conformance::moe()` (bit-exact on
//! x86 SIMD levels, the 0.75 elsewhere); the report prints what we reach.

mod support;

use std::path::PathBuf;

use support::conformance::{check, moe, read_refs};
use tramontane::Model;

fn model_path(name: &str) -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/models")).join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-models moe",
        p.display()
    );
    p
}

fn check_file(model_file: &str, refs_file: &str) {
    let model = Model::load(model_path(model_file)).expect("load");
    let refs = read_refs(&format!(
        "{}/tests/fixtures/logits/{refs_file}",
        env!("CARGO_MANIFEST_DIR")
    ));
    check(&model, &refs, &moe(), &|_| true).assert_ok(model_file);
}

#[test]
fn moe_s202_q8_0_matches_llama_cpp() {
    check_file("moe-s202-q8_0.gguf", "moe-s202-q8_0.refs.json");
}

#[test]
fn moe_s101_q4_0_matches_llama_cpp() {
    check_file("moe-s101-q4_0.gguf", "moe-s101-q4_0.refs.json");
}
