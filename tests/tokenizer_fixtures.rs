//! Token ids and detokenized text against llama.cpp (fixtures made by llama.cpp 0c1e57098
//! through llama-cpp-python 0.3.36): the shared corpus (432 strings) and this crate's own
//! corpus (tests/fixtures/tokenizer/), for SmolLM2 (byte-level BPE, smollm pre-tokenizer) and
//! Gemma 3 (SentencePiece with user-defined tokens).

use std::path::PathBuf;

use serde_json::Value;
use tramontane::tokenizer::Tokenizer;
use tramontane::GgufFile;

fn model(name: &str) -> Tokenizer {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models").join(name);
    assert!(path.exists(), "{} is missing: run scripts/fetch-models", path.display());
    let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&f).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id list")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// The expected detokenized bytes: `detok_b64*` when present (not UTF-8), else `detok*`.
fn expected_detok(case: &Value, suffix: &str) -> Vec<u8> {
    if let Some(b64) = case.get(format!("detok_b64{suffix}")).and_then(Value::as_str) {
        return base64_decode(b64);
    }
    case[format!("detok{suffix}")].as_str().expect("detok").as_bytes().to_vec()
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= if c == b'=' { 0 } else { val(c) } << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

/// Compares every case; returns (matches, total) per field and prints the first mismatches.
fn check(tok: &Tokenizer, refs: &Value, label: &str) -> usize {
    let cases = refs["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    let mut counts = [0usize; 4];
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let id = &case["id"];
        for (k, (suffix, parse_special)) in [("", true), ("_nps", false)].into_iter().enumerate() {
            let want = ids_of(&case[format!("ids{suffix}")]);
            let got = tok.encode(text, true, parse_special).expect("encode");
            if got == want {
                counts[k] += 1;
            } else {
                failures.push(format!("{label} case {id} ids{suffix}: {text:?}\n  want {want:?}\n  got  {got:?}"));
            }
            let want_text = expected_detok(case, suffix);
            let got_text = tok.decode(&want, false, true).expect("decode");
            // detok is the lossy UTF-8 form unless detok_b64 gave the exact bytes.
            let got_cmp = if case.get(format!("detok_b64{suffix}")).is_some() {
                got_text
            } else {
                String::from_utf8_lossy(&got_text).into_owned().into_bytes()
            };
            if got_cmp == want_text {
                counts[2 + k] += 1;
            } else {
                failures.push(format!(
                    "{label} case {id} detok{suffix}: want {:?} got {:?}",
                    String::from_utf8_lossy(&want_text),
                    String::from_utf8_lossy(&got_cmp)
                ));
            }
        }
    }
    let n = cases.len();
    println!(
        "{label}: ids {}/{n}, ids_nps {}/{n}, detok {}/{n}, detok_nps {}/{n}",
        counts[0], counts[1], counts[2], counts[3]
    );
    for f in failures.iter().take(15) {
        println!("{f}");
    }
    failures.len()
}

fn check_header(tok: &Tokenizer, refs: &Value) {
    assert_eq!(tok.n_vocab() as u64, refs["n_vocab"].as_u64().unwrap());
    assert_eq!(tok.add_bos(), refs["add_bos"].as_bool().unwrap());
    assert_eq!(tok.add_eos(), refs["add_eos"].as_bool().unwrap());
    assert_eq!(tok.bos().map(u64::from), refs["bos_id"].as_u64());
    assert_eq!(tok.eos().map(u64::from), refs["eos_id"].as_u64());
}

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/tokenizer/");
const OWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer/");

#[test]
fn smollm2_matches_llama_cpp_on_shared_corpus() {
    let tok = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let refs = load(&format!("{SHARED}smollm2.json"));
    check_header(&tok, &refs);
    assert_eq!(check(&tok, &refs, "smollm2/shared"), 0);
}

#[test]
fn gemma3_matches_llama_cpp_on_shared_corpus() {
    let tok = model("gemma-3-270m-q4_k_m.gguf");
    let refs = load(&format!("{SHARED}gemma3.json"));
    check_header(&tok, &refs);
    assert_eq!(check(&tok, &refs, "gemma3/shared"), 0);
}

#[test]
fn smollm2_matches_llama_cpp_on_own_corpus() {
    let tok = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let refs = load(&format!("{OWN}smollm2.json"));
    check_header(&tok, &refs);
    assert_eq!(check(&tok, &refs, "smollm2/own"), 0);
}

#[test]
fn gemma3_matches_llama_cpp_on_own_corpus() {
    let tok = model("gemma-3-270m-q4_k_m.gguf");
    let refs = load(&format!("{OWN}gemma3.json"));
    check_header(&tok, &refs);
    assert_eq!(check(&tok, &refs, "gemma3/own"), 0);
}

/// Special ids and end-of-generation sets as llama.cpp reports them (llama_vocab_eot,
/// llama_vocab_is_eog over every id, printed by llama-cpp-python 0.3.36 for these files).
#[test]
fn special_ids_match_llama_cpp() {
    let s = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!((s.bos(), s.eos(), s.eot()), (Some(1), Some(2), Some(0)));
    assert_eq!(s.eog_ids(), &[0, 2, 4]);
    assert_eq!(s.token_id("<|im_end|>"), Some(2));
    assert!(s.chat_template().is_some_and(|t| t.contains("<|im_start|>")));
    let g = model("gemma-3-270m-q4_k_m.gguf");
    assert_eq!((g.bos(), g.eos(), g.eot()), (Some(2), Some(1), Some(106)));
    assert_eq!(g.eog_ids(), &[1, 106, 212]);
    assert!(g.is_eog(106) && !g.is_eog(2));
}

/// Invalid ids are errors that name the id, not panics.
#[test]
fn invalid_ids_are_errors() {
    let s = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let e = s.decode(&[1, 49152, 2], false, true).unwrap_err().to_string();
    assert!(e.contains("49152"), "{e}");
    assert!(s.token_to_piece(u32::MAX, true).is_empty());
    let mut d = s.stream_decoder();
    assert!(d.push(u32::MAX).is_err());
}
