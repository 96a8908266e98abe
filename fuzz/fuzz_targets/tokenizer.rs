//! Tokenizes arbitrary text and decodes arbitrary ids with the two reference vocabularies
//! (SmolLM2: byte-level BPE; Gemma 3: SentencePiece), loaded once from <workspace>/models (run
//! scripts/fetch-models first). Never a panic or a hang; and the invariants the conformance
//! tests rely on hold for every input:
//! - every id produced is in the vocabulary, and decoding it succeeds;
//! - streaming the ids gives the same text as decoding them at once;
//! - Gemma 3 round-trips text exactly (every byte has a token; rendering special tokens, which
//!   merges may form) when no special tokens are parsed or added, except
//!   for U+2581, which SentencePiece decodes as a space;
//! - decoding arbitrary ids gives an error exactly when one is out of range.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tramontane::tokenizer::{DecodeOptions, EncodeOptions, Tokenizer};
use tramontane::GgufFile;

fn load(name: &str) -> Tokenizer {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/").to_string() + name;
    let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/fetch-models)"));
    Tokenizer::from_gguf(&f).expect("tokenizer")
}

fn tokenizers() -> &'static [Tokenizer; 2] {
    static TOKS: OnceLock<[Tokenizer; 2]> = OnceLock::new();
    TOKS.get_or_init(|| {
        [
            load("SmolLM2-135M-Instruct.Q4_1.gguf"),
            load("gemma-3-270m-q4_k_m.gguf"),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let which = usize::from(selector & 1);
    let tok = &tokenizers()[which];
    let parse_special = selector & 2 != 0;
    let add_special = selector & 4 != 0;
    let render = selector & 8 != 0;

    if selector & 16 == 0 {
        let text = String::from_utf8_lossy(rest);
        let options = EncodeOptions { add_special, parse_special };
        let ids = tok.encode(&text, options).expect("encode never fails");
        assert!(ids.iter().all(|&id| (id as usize) < tok.n_vocab()));
        let render = DecodeOptions { render_special: render, remove_special: false };
        let full = tok.decode_bytes(&ids, render).expect("ids from encode decode");
        let mut d = tok.stream_decoder_with(render);
        let mut streamed = String::new();
        for &id in &ids {
            streamed.push_str(&d.push(id).expect("ids from encode stream"));
        }
        streamed.push_str(&d.flush());
        assert_eq!(streamed, String::from_utf8_lossy(&full));
        if which == 1 && render.render_special && !parse_special && !add_special && !text.contains('\u{2581}') {
            assert_eq!(full, text.as_bytes());
        }
    } else {
        let ids: Vec<u32> = rest
            .chunks(3)
            .map(|c| c.iter().fold(0u32, |a, &b| a << 8 | u32::from(b)))
            .collect();
        let any_bad = ids.iter().any(|&id| id as usize >= tok.n_vocab());
        let options = DecodeOptions { remove_special: selector & 32 != 0, render_special: render };
        assert_eq!(tok.decode_bytes(&ids, options).is_err(), any_bad);
        for &id in &ids {
            std::hint::black_box(tok.token_to_piece(id, options));
        }
    }
});
