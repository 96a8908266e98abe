//! Generation against llama.cpp (tests/fixtures/generation/refs.json, from
//! scripts/make-generation-refs.py): for SmolLM2 as shipped (no space clean-up), SmolLM2 with its
//! pre-tokenizer relabelled to `gpt-2` and to `llama-bpe` (space clean-up), and Gemma 3
//! (SentencePiece), on English, code, CJK, emoji and mixed prompts and a chat turn:
//! - the streamed pieces concatenate to llama_detokenize of the generated ids;
//! - exactly `max_tokens` tokens come out unless an end-of-generation token comes first;
//! - where our kernels are bit-identical to llama.cpp's, the greedy ids are llama.cpp's.
//!
//! Also Gemma 3's sliding-window layers as a ring: 8-token batches over 828 tokens wrap the
//! 768-cell ring, and the logits match llama.cpp's with the same ring (swa_full off).

mod support;

use serde_json::Value;
use tramontane::gguf::GgufWriter;
use tramontane::tokenizer::{DecodeOptions, EncodeOptions};
use tramontane::{FinishReason, GenerateOptions, GgufFile, Model, Sampling, SessionOptions};

fn refs() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/generation/refs.json"
    );
    let text = std::fs::read_to_string(path).expect("generation refs");
    serde_json::from_str(&text).expect("refs JSON")
}

fn model_path(file: &str) -> std::path::PathBuf {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(file);
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-models",
        p.display()
    );
    p
}

/// The model in `file`, with `tokenizer.ggml.pre` replaced by `pre` when given (a copy made in
/// memory with our GGUF writer).
fn load(file: &str, pre: Option<&str>) -> Model {
    let path = model_path(file);
    let Some(pre) = pre else {
        return Model::load(&path).expect("model");
    };
    let src = GgufFile::open(&path).expect("open");
    let mut w = GgufWriter::new();
    for (k, v) in src.metadata().iter() {
        let v = match k {
            "tokenizer.ggml.pre" => tramontane::Value::String(pre.to_string()),
            _ => v.clone(),
        };
        w.add(k, v).expect("metadata");
    }
    for t in src.tensors() {
        w.add_tensor(t.name.clone(), t.ty, &t.dims)
            .expect("tensor info");
    }
    let mut data = w.write_header(Vec::new()).expect("header");
    for t in src.tensors() {
        data.write_tensor(src.tensor_of(t).expect("tensor").data)
            .expect("tensor data");
    }
    let bytes = data.finish().expect("finish");
    Model::from_gguf(GgufFile::from_bytes(bytes).expect("reparse")).expect("relabelled model")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id list")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

#[test]
fn streamed_text_is_llama_detokenize_of_exactly_n_generated_tokens() {
    let refs = refs();
    let exact = support::conformance::bit_exact_expected();
    for variant in refs["variants"].as_array().expect("variants") {
        let label = variant["label"].as_str().expect("label");
        let model = load(
            variant["model_file"].as_str().expect("file"),
            variant["relabelled_pre"].as_str(),
        );
        let tok = model.tokenizer();
        for case in variant["cases"].as_array().expect("cases") {
            let name = format!("{label}/{}", case["name"].as_str().expect("name"));
            let n = case["n"].as_u64().expect("n") as usize;
            let prompt = tok
                .encode(case["text"].as_str().expect("text"), EncodeOptions::PROMPT)
                .expect("encode");
            assert_eq!(prompt, ids(&case["prompt_ids"]), "{name}: prompt ids");
            let want_ids = ids(&case["ids"]);
            let want_text = support::base64(case["detok_b64"].as_str().expect("detok"));
            // Our detokenizer on llama.cpp's ids, whatever our kernels generate.
            let ours = tok
                .decode_bytes(&want_ids, DecodeOptions::default())
                .expect("decode");
            assert_eq!(ours, want_text, "{name}: decode of llama.cpp's ids");

            // Sized like the generate example: the prompt and n tokens, nothing more.
            let mut session = model
                .session(SessionOptions {
                    context: prompt.len() + n,
                    threads: Some(2),
                    ..SessionOptions::default()
                })
                .expect("session");
            let options = GenerateOptions {
                sampling: Sampling::greedy(),
                max_tokens: Some(n),
                ..GenerateOptions::default()
            };
            let mut gen = session.generate_tokens(&prompt, &options).expect("start");
            let streamed: String = gen.by_ref().map(|p| p.expect("piece")).collect();
            let got = gen.tokens().to_vec();
            let finish = gen.finish_reason();
            let decoded = tok.decode(&got, DecodeOptions::default()).expect("decode");
            assert_eq!(streamed, decoded, "{name}: stream vs detokenization");
            match finish {
                Some(FinishReason::EndOfGeneration) => assert!(got.len() <= n, "{name}"),
                Some(FinishReason::MaxTokens) => assert_eq!(got.len(), n, "{name}"),
                other => panic!("{name}: finished with {other:?}"),
            }
            if exact {
                assert_eq!(got, want_ids, "{name}: greedy ids vs llama.cpp");
                let eog = case["eog"].is_u64();
                assert_eq!(finish == Some(FinishReason::EndOfGeneration), eog, "{name}");
                assert_eq!(
                    streamed,
                    String::from_utf8_lossy(&want_text),
                    "{name}: text vs llama.cpp"
                );
            }
            drop(gen);
            // The session holds the prompt and every sampled token (an end-of-generation
            // token too), the last one pending.
            let held = session.tokens();
            assert_eq!(&held[..prompt.len()], &prompt[..], "{name}");
            assert_eq!(&held[prompt.len()..prompt.len() + got.len()], &got[..]);
            assert_eq!(session.n_cached(), held.len() - 1, "{name}: one pending");
        }
    }
}

#[test]
fn gemma3_sliding_window_ring_matches_llama_cpp() {
    let refs = refs();
    let ring = &refs["ring"];
    let model = load("gemma-3-270m-q4_k_m.gguf", None);
    let prompt = ids(&ring["prompt_ids"]);
    let text = ring["text"].as_str().expect("text");
    assert_eq!(
        model
            .tokenizer()
            .encode(text, EncodeOptions::PROMPT)
            .unwrap(),
        prompt
    );
    let mut session = model
        .session(SessionOptions {
            context: ring["n_ctx"].as_u64().unwrap() as usize,
            batch: ring["n_ubatch"].as_u64().unwrap() as usize,
            threads: Some(2),
            ..SessionOptions::default()
        })
        .expect("session");
    let logits = session.eval(&prompt).expect("eval").to_vec();
    // 768 cells hold the sliding-window layers' keys, far fewer than the 828 positions.
    let full_layers =
        model.config().n_layer - model.config().swa_layers.iter().filter(|&&s| s).count();
    let cell_bytes = 2 * model.config().n_kv_head * model.config().head_dim * 2;
    let full = model.config().n_layer * session.tokens().len().div_ceil(32) * 32 * cell_bytes;
    assert!(
        session.kv_bytes() < full,
        "{} bytes for {full_layers} full layers and the rings",
        session.kv_bytes()
    );
    let top = ring["top10"].as_array().unwrap();
    for pair in top {
        let id = pair[0].as_u64().unwrap() as usize;
        let want = pair[1].as_f64().unwrap() as f32;
        let bound = if support::conformance::bit_exact_expected() {
            0.0
        } else {
            0.05
        };
        assert!(
            (logits[id] - want).abs() <= bound,
            "logit of {id}: {} vs llama.cpp {want}",
            logits[id]
        );
    }
    if support::conformance::bit_exact_expected() {
        let options = GenerateOptions {
            sampling: Sampling::greedy(),
            max_tokens: Some(8),
            ..GenerateOptions::default()
        };
        let mut gen = session.generate_tokens(&[], &options).expect("generate");
        gen.by_ref().for_each(|p| drop(p.expect("piece")));
        assert_eq!(gen.tokens(), &ids(&ring["greedy"])[..]);
    }
}
