//! Conformance against llama.cpp on SmolLM2-135M-Instruct Q4_1: logits at the last prompt
//! position (prompt evaluated as one batch, like the reference), full logit rows where the
//! fixture has them, greedy continuations and teacher-forced greedy logits, with the dense
//! bounds of `support::conformance::dense()` (bit-exact on x86 SIMD, the bounds
//! elsewhere). `CONFORMANCE_PROMPT=name` checks one prompt;
//! `CONFORMANCE_REFS=path` compares with another refs file of the same model (e.g. one made by
//! a differently built llama.cpp, to see how far that build moves the references).

mod support;

use support::conformance::{check, dense};
use tramontane::Model;

#[test]
fn smollm2_logits_and_greedy_match_llama_cpp() {
    let model = Model::load(support::smollm2_path()).expect("load");
    let refs = match std::env::var("CONFORMANCE_REFS") {
        Ok(path) => support::conformance::read_refs(&path),
        Err(_) => support::smollm2_refs(),
    };
    let only = std::env::var("CONFORMANCE_PROMPT").ok();
    let select = |name: &str| only.as_deref().is_none_or(|o| o == name);
    check(&model, &refs, &dense(), &select).assert_ok("SmolLM2 Q4_1");
}
