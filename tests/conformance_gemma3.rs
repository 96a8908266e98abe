//! Conformance against llama.cpp on Gemma 3 270M (Q4_K_M: Q8_0 embeddings, Q5_0/Q8_0/Q4_K/Q6_K
//! matrices): prompt ids, top-1 and top-10 at the last prompt position, greedy continuations and
//! 32 teacher-forced steps, with the bounds of `support::conformance::dense()` (bit-exact on x86
//! SIMD levels). References: tests/fixtures/logits/gemma3.refs.json from
//! `scripts/make-gemma3-refs` (AVX2-only llama.cpp, n_ctx 1024); its longest prompt (616
//! tokens) runs past the 512-token sliding window of five layers in six.

mod support;

use std::path::PathBuf;

use support::conformance::{check, dense, read_refs};
use tramontane::Model;

#[test]
fn gemma3_logits_and_greedy_match_llama_cpp() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/gemma-3-270m-q4_k_m.gguf"
    ));
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models gemma3",
        path.display()
    );
    let model = Model::load(&path).expect("load");
    let refs = read_refs(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/logits/gemma3.refs.json"
    ));
    check(&model, &refs, &dense(), &|_| true).assert_ok("Gemma 3 270M");
}

#[test]
fn gemma3_config_reads_the_sliding_window_layout() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/gemma-3-270m-q4_k_m.gguf"
    ));
    let model = Model::load(&path).expect("load");
    let c = model.config();
    assert_eq!(c.sliding_window, 512);
    // Period 6: layers 5, 11 and 17 are global, the others slide.
    let global: Vec<usize> = (0..c.n_layer).filter(|&il| !c.is_swa(il)).collect();
    assert_eq!(global, [5, 11, 17]);
    assert_eq!(c.rope_base, 1_000_000.0);
    assert_eq!(c.rope_base_swa, 10_000.0);
    assert_eq!(c.attn_scale(), 1.0 / 16.0);
    assert_eq!(c.final_softcap, None);
}
