//! Token ids and detokenized text against llama.cpp (fixtures made by llama.cpp 0c1e57098
//! through llama-cpp-python 0.3.36): the reference corpus (432 strings,
//! tests/fixtures/tokenizer/reference/) and this crate's own corpus (tests/fixtures/tokenizer/), for SmolLM2 (byte-level BPE, smollm pre-tokenizer) and
//! Gemma 3 (SentencePiece with user-defined tokens), and SmolLM2's vocabulary relabelled to other
//! pre-tokenizers (llama3, qwen2, gpt-2, default, tekken, gpt-4o).

mod support;

use std::path::PathBuf;

use serde_json::Value;
use tramontane::tokenizer::{DecodeOptions, EncodeOptions, Tokenizer, VocabData};
use tramontane::GgufFile;

fn open(name: &str) -> GgufFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vocab_data(name: &str) -> VocabData {
    VocabData::from_gguf(&open(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The tokenizer as `Tokenizer::from_gguf` builds it (token texts and SentencePiece scores
/// read in place from the file, which outlives the `GgufFile` here); [`model_for`] builds
/// through `VocabData`, so the corpora cover both.
fn model(name: &str) -> Tokenizer {
    Tokenizer::from_gguf(&open(name)).expect("tokenizer")
}

/// The tokenizer a fixture file was made with: its model, with the header's metadata overrides.
fn model_for(refs: &Value) -> Tokenizer {
    let mut data = vocab_data(refs["model_file"].as_str().expect("model_file"));
    for (key, value) in refs["overrides"].as_object().expect("overrides") {
        match key.as_str() {
            "tokenizer.ggml.pre" => data.pre = value.as_str().map(str::to_string),
            "tokenizer.ggml.add_space_prefix" => data.add_space_prefix = value.as_bool(),
            other => panic!("override {other} not handled"),
        }
    }
    Tokenizer::from_vocab_data(&data).expect("tokenizer")
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

/// The expected bytes of a text field: `<field>_b64` when present (not UTF-8), else `<field>`.
/// (The reference corpus files name theirs `detok_b64` / `detok_b64_nps`; none are present there.)
fn expected_detok(case: &Value, field: &str) -> Vec<u8> {
    if let Some(b64) = case.get(format!("{field}_b64")).and_then(Value::as_str) {
        return support::base64(b64);
    }
    case[field].as_str().expect("detok").as_bytes().to_vec()
}

/// (field, add_special, parse_special) of the id lists, and
/// (field, id list it decodes, remove_special, unparse_special) of the texts.
const ID_FIELDS: &[(&str, bool, bool)] = &[
    ("ids", true, true),
    ("ids_nps", true, false),
    ("ids_raw", false, false),
];
const TEXT_FIELDS: &[(&str, &str, bool, bool)] = &[
    ("detok", "ids", false, true),
    ("detok_nps", "ids_nps", false, true),
    ("detok_rs", "ids", true, false),
];

/// The texts of `corpus` by id.
fn texts(corpus: &Value) -> Vec<String> {
    corpus["strings"]
        .as_array()
        .expect("strings")
        .iter()
        .map(|s| s["text"].as_str().expect("text").to_string())
        .collect()
}

/// Compares every field present in the fixture; prints a count per field and the first
/// mismatches; returns the number of mismatches.
fn check(tok: &Tokenizer, refs: &Value, texts: Option<&[String]>, label: &str) -> usize {
    let cases = refs["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for &(field, add_special, parse_special) in ID_FIELDS {
        let (mut ok, mut n) = (0, 0);
        for case in cases.iter().filter(|c| c.get(field).is_some()) {
            // A case's own text (reference corpus, or a configuration's extra strings) comes
            // first; the others are the corpus strings of that id.
            let text = match (case.get("text").and_then(Value::as_str), texts) {
                (Some(own), _) => own,
                (None, Some(t)) => t[case["id"].as_u64().unwrap() as usize].as_str(),
                (None, None) => panic!("{label} case {} has no text", case["id"]),
            };
            let want = ids_of(&case[field]);
            let got = tok
                .encode(
                    text,
                    EncodeOptions {
                        add_special,
                        parse_special,
                    },
                )
                .expect("encode");
            n += 1;
            if got == want {
                ok += 1;
            } else {
                failures.push(format!(
                    "{label} case {} {field}: {text:?}\n  want {want:?}\n  got  {got:?}",
                    case["id"]
                ));
            }
        }
        if n > 0 {
            summary.push(format!("{field} {ok}/{n}"));
        }
    }
    for &(field, ids_field, remove_special, unparse_special) in TEXT_FIELDS {
        let (mut ok, mut n) = (0, 0);
        for case in cases {
            let exact = case.get(format!("{field}_b64")).is_some();
            if case.get(field).is_none() && !exact {
                continue;
            }
            let want = expected_detok(case, field);
            let got = tok
                .decode_bytes(
                    &ids_of(&case[ids_field]),
                    DecodeOptions {
                        remove_special,
                        render_special: unparse_special,
                    },
                )
                .expect("decode");
            // The text form is lossy UTF-8 in the reference files; *_b64 holds exact bytes.
            let got = if exact {
                got
            } else {
                String::from_utf8_lossy(&got).into_owned().into_bytes()
            };
            n += 1;
            if got == want {
                ok += 1;
            } else {
                failures.push(format!(
                    "{label} case {} {field}: want {:?} got {:?}",
                    case["id"],
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
        if n > 0 {
            summary.push(format!("{field} {ok}/{n}"));
        }
    }
    println!("{label}: {}", summary.join(", "));
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

const SHARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tokenizer/reference/"
);
const OWN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tokenizer/");

#[test]
fn smollm2_matches_llama_cpp_on_shared_corpus() {
    let tok = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let refs = load(&format!("{SHARED}smollm2.json"));
    check_header(&tok, &refs);
    assert_eq!(check(&tok, &refs, None, "smollm2/shared"), 0);
}

#[test]
fn gemma3_matches_llama_cpp_on_shared_corpus() {
    let tok = model("gemma-3-270m-q4_k_m.gguf");
    let refs = load(&format!("{SHARED}gemma3.json"));
    check_header(&tok, &refs);
    assert_eq!(check(&tok, &refs, None, "gemma3/shared"), 0);
}

fn own(name: &str) {
    let corpus = load(&format!("{OWN}corpus.json"));
    let texts = texts(&corpus);
    assert!(texts.len() >= 200);
    let refs = load(&format!("{OWN}{name}.json"));
    let n_extra = refs["n_extra"].as_u64().unwrap_or(0) as usize;
    assert_eq!(
        refs["cases"].as_array().expect("cases").len(),
        texts.len() + n_extra
    );
    let tok = model_for(&refs);
    check_header(&tok, &refs);
    assert_eq!(check(&tok, &refs, Some(&texts), &format!("{name}/own")), 0);
}

#[test]
fn smollm2_own_corpus() {
    own("smollm2");
}

#[test]
fn gemma3_own_corpus() {
    own("gemma3");
}

/// The SmolLM2 vocabulary under the llama3 pre-tokenizer (llama.cpp: hand-written splitter,
/// ignore_merges).
#[test]
fn llama3_pre_tokenizer_own_corpus() {
    own("smollm2-llama3");
}

/// ... under qwen2 (llama.cpp: std::regex on collapsed text).
#[test]
fn qwen2_pre_tokenizer_own_corpus() {
    own("smollm2-qwen2");
}

/// ... under gpt-2 (also exercises clean_spaces in detokenization).
#[test]
fn gpt2_pre_tokenizer_own_corpus() {
    own("smollm2-gpt2");
}

/// ... under default (four regexes in a row).
#[test]
fn default_pre_tokenizer_own_corpus() {
    own("smollm2-default");
}

/// ... under tekken (llama.cpp: std::regex on collapsed text; ignore_merges), over the corpus
/// and 77 strings of its own (case changes, marks, digits, punctuation before '/' and newlines).
#[test]
fn tekken_pre_tokenizer_own_corpus() {
    own("smollm2-tekken");
}

/// ... under gpt-4o (llama.cpp: std::regex on collapsed text; merges not ignored), over the
/// corpus and 136 strings of its own (tekken's 77, then contractions in either case and digit
/// runs of 1 to 7).
#[test]
fn gpt4o_pre_tokenizer_own_corpus() {
    own("smollm2-gpt4o");
}

/// Gemma 3 with add_space_prefix = true: SentencePiece as Llama 2 / Mistral use it.
#[test]
fn spm_space_prefix_own_corpus() {
    own("gemma3-spaceprefix");
}

/// Special ids and end-of-generation sets as llama.cpp reports them (llama_vocab_eot,
/// llama_vocab_is_eog over every id, printed by llama-cpp-python 0.3.36 for these files).
#[test]
fn special_ids_match_llama_cpp() {
    let s = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!((s.bos(), s.eos(), s.eot()), (Some(1), Some(2), Some(0)));
    assert_eq!(s.eog_ids(), &[0, 2, 4]);
    assert_eq!(s.token_id("<|im_end|>"), Some(2));
    assert!(s
        .chat_template()
        .is_some_and(|t| t.contains("<|im_start|>")));
    let g = model("gemma-3-270m-q4_k_m.gguf");
    assert_eq!((g.bos(), g.eos(), g.eot()), (Some(2), Some(1), Some(106)));
    assert_eq!(g.eog_ids(), &[1, 106, 212]);
    assert!(g.is_eog(106) && !g.is_eog(2));
}

/// Invalid ids are errors that name the id, not panics.
#[test]
fn invalid_ids_are_errors() {
    let s = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    let e = s
        .decode(
            &[1, 49152, 2],
            DecodeOptions {
                render_special: true,
                ..DecodeOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("49152"), "{e}");
    assert!(s
        .token_to_piece(
            u32::MAX,
            DecodeOptions {
                render_special: true,
                ..DecodeOptions::default()
            }
        )
        .is_empty());
    let mut d = s.stream_decoder();
    assert!(d.push(u32::MAX).is_err());
}
