//! Tokenizers built from GGUF metadata, matching llama.cpp token for token.
//!
//! Two vocabulary types: SentencePiece BPE (`tokenizer.ggml.model = llama`: Llama 2, Mistral,
//! Gemma) and GPT-2 byte-level BPE (`gpt2`: SmolLM2, Llama 3, Qwen 2) with the pre-tokenizers
//! `default`, `gpt-2`, the llama3 family, the smollm family, the qwen2 family, `tekken` and the
//! gpt-4o family (`gpt-4o`, `llama4`, `minimax-m2`, ...).
//!
//! Where llama.cpp's behaviour is unspecified or aborts, this module picks as follows:
//! - several tokens whose text marks them as EOT (or FIM): the lowest id (llama.cpp takes the
//!   first in hash-map order; the same pick on SmolLM2 and Gemma 3);
//! - special tokens of equal length: matched in id order (llama.cpp's `std::sort` leaves it open);
//! - a SentencePiece byte with neither a `<0xNN>` nor a one-byte token: dropped (llama.cpp throws).
//!
//! Not implemented (an error at load): the `bert`, `t5`, `rwkv`, `plamo2` and `gemma4` vocab
//! types, and byte-level pre-tokenizers outside the families above (deepseek, falcon, chatglm,
//! ...).
//!
//! ```no_run
//! # fn main() -> tramontane::Result<()> {
//! let f = tramontane::GgufFile::open("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let tok = tramontane::tokenizer::Tokenizer::from_gguf(&f)?;
//! use tramontane::tokenizer::{DecodeOptions, EncodeOptions};
//! let ids = tok.encode("<|im_start|>user\nHi!<|im_end|>", EncodeOptions::PROMPT)?;
//! let text = tok.decode(&ids, DecodeOptions { render_special: true, ..Default::default() })?;
//! assert_eq!(text, "<|im_start|>user\nHi!<|im_end|>");
//! # Ok(()) }
//! ```

mod bpe;
mod decode;
mod gguf_data;
mod hash;
mod pretokenize;
mod special;
mod spm;
mod stream;
mod symbols;
mod table;
mod unicode;
mod unicode_tables;
mod vocab;

pub(crate) use stream::DecoderState;
pub use stream::StreamDecoder;
pub use unicode_tables::UNICODE_VERSION;
pub use vocab::{SpecialIds, VocabData};

use crate::gguf::GgufFile;
use crate::Result;
use special::Fragment;
use vocab::{Kind, Vocab};

/// How [`Tokenizer::encode`] treats special tokens (llama.cpp's `llama_tokenize` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Add BOS / EOS as the model's metadata says (`add_special`).
    pub add_special: bool,
    /// Turn control-token text such as `<|im_start|>` into those tokens (`parse_special`).
    /// Leave it off for text from untrusted users: with it they can write turn markers.
    pub parse_special: bool,
}

impl EncodeOptions {
    /// A whole prompt: BOS as the model asks, control tokens written in the text recognised.
    pub const PROMPT: EncodeOptions = EncodeOptions {
        add_special: true,
        parse_special: true,
    };
    /// Plain text: nothing added, control-token text kept as text (the default).
    pub const TEXT: EncodeOptions = EncodeOptions {
        add_special: false,
        parse_special: false,
    };
}

/// How [`Tokenizer::decode`] renders ids (llama.cpp's `llama_detokenize` flags).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Drop a leading BOS and a trailing EOS when the model adds them (`remove_special`).
    pub remove_special: bool,
    /// Render control tokens as their text; otherwise they render as nothing
    /// (`unparse_special`).
    pub render_special: bool,
}

/// A model's tokenizer: built once, then shared (`Send + Sync`, no interior mutability).
pub struct Tokenizer {
    vocab: Vocab,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.kind)
            .field("n_vocab", &self.vocab.n_tokens())
            .field("bos", &self.vocab.special.bos)
            .field("eos", &self.vocab.special.eos)
            .field("add_bos", &self.vocab.add_bos)
            .finish()
    }
}

impl Tokenizer {
    /// The tokenizer described by `f`'s `tokenizer.*` metadata.
    pub fn from_gguf(f: &GgufFile) -> Result<Tokenizer> {
        // The scores and token types are read where the file holds them, not copied.
        let (data, a) = gguf_data::read(f)?;
        Ok(Tokenizer {
            vocab: Vocab::build_with(&data, &a.scores, a.scores_in_file, a.token_types)?,
        })
    }

    /// The tokenizer described by plain metadata values.
    pub fn from_vocab_data(data: &VocabData) -> Result<Tokenizer> {
        Ok(Tokenizer {
            vocab: Vocab::build(data)?,
        })
    }

    /// `llama_tokenize(vocab, text, add_special, parse_special)`: with `add_special`, BOS / EOS
    /// are added as the metadata says; with `parse_special`, control tokens written in the text
    /// (e.g. `<|im_start|>`) become those tokens. User-defined tokens are always recognised.
    pub fn encode(&self, text: &str, options: EncodeOptions) -> Result<Vec<u32>> {
        self.encode_from(text, options, Start::Input)
    }

    /// The tokens of `text` written right after earlier text (no SentencePiece space prefix
    /// before its first piece): to re-tokenize the tail of a reply.
    pub(crate) fn encode_continuation(&self, text: &str) -> Result<Vec<u32>> {
        self.encode_from(text, EncodeOptions::TEXT, Start::Continuation)
    }

    fn encode_from(&self, text: &str, options: EncodeOptions, start: Start) -> Result<Vec<u32>> {
        let v = &self.vocab;
        let bytes = text.as_bytes();
        let frags = special::partition(v, bytes, options.parse_special);
        let mut out = Vec::new();
        out.try_reserve(bytes.len() / 3 + 2)
            .map_err(|_| crate::Error::OutOfMemory {
                what: format!("tokens for {} bytes of text", bytes.len()),
            })?;
        if options.add_special && v.add_bos {
            out.extend(v.special.bos);
        }
        let mut buf = Vec::new();
        // SentencePiece adds a space before text that starts the input or follows a token.
        let mut prev_special = start == Start::Input;
        for frag in frags {
            match frag {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text { start, end } => {
                    let piece = bytes.get(start..end).unwrap_or(&[]);
                    match v.kind {
                        Kind::Spm => {
                            buf.clear();
                            if v.add_space_prefix && prev_special {
                                buf.extend_from_slice("\u{2581}".as_bytes());
                            }
                            for &b in piece {
                                if b == b' ' {
                                    buf.extend_from_slice("\u{2581}".as_bytes());
                                } else {
                                    buf.push(b);
                                }
                            }
                            spm::tokenize(v, &buf, &mut out);
                        }
                        Kind::Bpe(pre) => bpe::tokenize(v, pre, piece, &mut out),
                    }
                    prev_special = false;
                }
            }
        }
        if options.add_special && v.add_eos {
            out.extend(v.special.eos);
        }
        Ok(out)
    }

    /// `llama_token_to_piece(vocab, id, .., lstrip = 0, special = render_special)`: the bytes of
    /// one token. Control and unknown tokens are empty unless `options.render_special`
    /// (`remove_special` does not apply to one token). An id outside the vocabulary gives an
    /// empty piece ([`decode`](Self::decode) reports it as an error).
    pub fn token_to_piece(&self, id: u32, options: DecodeOptions) -> Vec<u8> {
        let mut out = Vec::new();
        decode::write_piece(&self.vocab, id, options.render_special, &mut out);
        out
    }

    /// `llama_detokenize(vocab, ids, remove_special, unparse_special)` as text. Bytes that are
    /// not UTF-8 (a sequence that stops inside a character, or byte tokens that never form
    /// one) become U+FFFD, as `String::from_utf8_lossy` makes them; [`decode_bytes`] keeps
    /// them. An id outside the vocabulary is an error that names it.
    ///
    /// [`decode_bytes`]: Self::decode_bytes
    pub fn decode(&self, ids: &[u32], options: DecodeOptions) -> Result<String> {
        let bytes = self.decode_bytes(ids, options)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// [`decode`](Self::decode) as the exact bytes llama.cpp produces (not always UTF-8).
    pub fn decode_bytes(&self, ids: &[u32], options: DecodeOptions) -> Result<Vec<u8>> {
        decode::detokenize(
            &self.vocab,
            ids,
            options.remove_special,
            options.render_special,
        )
    }

    /// A streaming decoder that does not render control tokens (what a chat front end prints).
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self, false)
    }

    /// A streaming decoder; `options.render_special` as in [`decode`](Self::decode)
    /// (`remove_special` does not apply to a stream).
    pub fn stream_decoder_with(&self, options: DecodeOptions) -> StreamDecoder<'_> {
        StreamDecoder::new(self, options.render_special)
    }

    /// The number of tokens.
    pub fn n_vocab(&self) -> usize {
        self.vocab.n_tokens()
    }

    /// Beginning-of-sequence id.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.special.bos
    }

    /// End-of-sequence id.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.special.eos
    }

    /// End-of-turn id (metadata, or found by text like `<|im_end|>`, `<end_of_turn>`).
    pub fn eot(&self) -> Option<u32> {
        self.vocab.special.eot
    }

    /// All special ids as resolved (metadata, defaults and text detection).
    pub fn special_ids(&self) -> &SpecialIds {
        &self.vocab.special
    }

    /// Whether `id` ends generation (EOS, EOT, EOM and the others llama.cpp lists).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.is_eog(id)
    }

    /// The end-of-generation ids, ascending.
    pub fn eog_ids(&self) -> &[u32] {
        &self.vocab.eog
    }

    /// The id of the token whose text is exactly `piece` (e.g. `<|im_end|>`).
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.vocab.id_of(piece)
    }

    /// The stored text of token `id` (SentencePiece `▁`, byte-level `Ġ` forms as in the file).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.text(id)
    }

    /// Whether detokenizing drops one leading space from the first piece (a SentencePiece
    /// vocabulary that adds a space prefix when encoding).
    pub(crate) fn strips_leading_space(&self) -> bool {
        self.vocab.add_space_prefix
    }

    /// Whether [`encode`](Self::encode) with `add_special` adds BOS.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// Whether [`encode`](Self::encode) with `add_special` adds EOS.
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// `tokenizer.chat_template`, if the file has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.vocab.chat_template.as_deref()
    }
}

/// Where encoded text stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Start {
    /// At the start of the input (SentencePiece adds its space prefix).
    Input,
    /// Right after earlier text.
    Continuation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Tokenizer>();
    }
}
