//! Streaming detokenization: feeding ids one at a time gives exactly the full decode, and no
//! step returns a broken character (a character split over byte tokens comes out whole).

use std::path::PathBuf;

use serde_json::Value;
use tramontane::tokenizer::{DecodeOptions, EncodeOptions, Tokenizer, VocabData};
use tramontane::GgufFile;

fn vocab_data(name: &str) -> VocabData {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/fetch-models",
        path.display()
    );
    let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    VocabData::from_gguf(&f).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// The tokenizers under test: both models, SmolLM2 with the gpt-2 pre-tokenizer (whose
/// detokenization cleans up spaces across tokens) and Gemma 3 with a space prefix (whose first
/// piece loses its leading space).
fn tokenizers() -> Vec<(&'static str, Tokenizer)> {
    let smol = vocab_data(SMOLLM2);
    let gemma = vocab_data(GEMMA3);
    let mut smol_gpt2 = smol.clone();
    smol_gpt2.pre = Some("gpt-2".into());
    let mut gemma_sp = gemma.clone();
    gemma_sp.add_space_prefix = Some(true);
    [
        ("smollm2", smol),
        ("gemma3", gemma),
        ("smollm2-gpt2", smol_gpt2),
        ("gemma3-spaceprefix", gemma_sp),
    ]
    .into_iter()
    .map(|(n, d)| (n, Tokenizer::from_vocab_data(&d).expect("tokenizer")))
    .collect()
}

/// Streams `ids`; checks every step and returns the concatenation.
fn stream(tok: &Tokenizer, ids: &[u32], render_special: bool) -> String {
    let mut d = tok.stream_decoder_with(DecodeOptions {
        render_special,
        ..DecodeOptions::default()
    });
    let mut out = String::new();
    for &id in ids {
        let piece = d.push(id).expect("valid id");
        out.push_str(&piece);
    }
    out.push_str(&d.flush());
    out
}

fn full(tok: &Tokenizer, ids: &[u32], render_special: bool) -> String {
    tok.decode(
        ids,
        DecodeOptions {
            render_special,
            ..DecodeOptions::default()
        },
    )
    .expect("decode")
}

fn corpus_texts() -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer/reference/corpus.json"
        ),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer/corpus.json"
        ),
    ] {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let v: Value = serde_json::from_str(&text).expect("json");
        for s in v["strings"].as_array().expect("strings") {
            out.push(s["text"].as_str().expect("text").to_string());
        }
    }
    out
}

#[test]
fn streaming_equals_full_decode_on_both_corpora() {
    let texts = corpus_texts();
    for (name, tok) in tokenizers() {
        for text in &texts {
            for parse_special in [false, true] {
                let ids = tok
                    .encode(
                        text,
                        EncodeOptions {
                            add_special: true,
                            parse_special,
                        },
                    )
                    .expect("encode");
                for render in [false, true] {
                    assert_eq!(
                        stream(&tok, &ids, render),
                        full(&tok, &ids, render),
                        "{name}: {text:?} render={render}"
                    );
                }
            }
        }
    }
}

/// A character made of several byte tokens: the steps before its last byte return nothing, the
/// last one returns the whole character; no step returns U+FFFD.
#[test]
fn split_characters_come_out_whole() {
    for (name, tok) in tokenizers() {
        for text in ["😀", "👨‍👩‍👧‍👦 family", "𠀀𠀁 plane 2", "日本語", "a€b", "🇫🇷"]
        {
            let ids = tok.encode(text, EncodeOptions::TEXT).expect("encode");
            let mut d = tok.stream_decoder();
            let mut out = String::new();
            for &id in &ids {
                let piece = d.push(id).expect("push");
                assert!(
                    !piece.contains('\u{FFFD}'),
                    "{name} {text:?}: broken piece {piece:?}"
                );
                out.push_str(&piece);
            }
            out.push_str(&d.flush());
            assert_eq!(out, full(&tok, &ids, false), "{name} {text:?}");
        }
    }
    // The plane-2 ideograph has no Gemma token: four <0xNN> byte tokens, the character appears
    // with the fourth.
    let tok = Tokenizer::from_vocab_data(&vocab_data(GEMMA3)).expect("tokenizer");
    let ids = tok.encode("𠀀", EncodeOptions::TEXT).expect("encode");
    assert_eq!(ids.len(), 4, "{ids:?}");
    let mut d = tok.stream_decoder();
    let pieces: Vec<String> = ids.iter().map(|&id| d.push(id).expect("push")).collect();
    assert_eq!(pieces, ["", "", "", "𠀀"]);
}

/// Deterministic pseudo-random id sequences (including byte tokens cut mid-character, control
/// tokens and tokens that trigger the space clean-up) stream to the same text.
#[test]
fn random_id_sequences_stream_like_full_decode() {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as u32
    };
    for (name, tok) in tokenizers() {
        // A small alphabet that makes clean-up patterns (" ,", " '", "'s", ...) likely.
        let small: Vec<u32> = [
            " ", "'", "s", "re", "?", ".", ",", "!", "t", "a", " '", "Ġ", "Ġ'", "'s", "Ġ,",
        ]
        .iter()
        .filter_map(|t| tok.token_id(t))
        .collect();
        for round in 0..400 {
            let len = 1 + next(24) as usize;
            let ids: Vec<u32> = (0..len)
                .map(|_| {
                    if !small.is_empty() && round % 2 == 0 {
                        small[next(small.len()) as usize]
                    } else {
                        next(tok.n_vocab())
                    }
                })
                .collect();
            for render in [false, true] {
                assert_eq!(
                    stream(&tok, &ids, render),
                    full(&tok, &ids, render),
                    "{name}: {ids:?}"
                );
            }
        }
    }
}
