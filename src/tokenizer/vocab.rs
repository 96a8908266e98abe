//! The vocabulary: tokens, their attributes, special ids and the settings llama.cpp derives
//! from the metadata (src/llama-vocab.cpp `llama_vocab::impl::load`).

use super::hash::FxHashMap;
use super::pretokenize::{settings_for, PreTokenizer};
use super::unicode::{cpt_to_byte, cpts_from_utf8, push_utf8};
use crate::{Error, Result};

/// Token attribute bits, as llama.cpp's `llama_token_attr`.
pub mod attr {
    pub const UNDEFINED: u32 = 0;
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
}

/// Special token ids as the metadata gives them (`tokenizer.ggml.*_token_id`); None when absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
}

/// Everything the tokenizer reads from a model file, as plain values: the `tokenizer.*` keys
/// (and `general.name` / `general.architecture`, which select a few per-model token attributes).
#[derive(Clone, Debug, Default)]
pub struct VocabData {
    /// `tokenizer.ggml.model`: "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer of a gpt2 vocabulary.
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores` (empty: all 0).
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.token_type` (empty: all normal).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges` ("left right", rank = index).
    pub merges: Vec<String>,
    /// `tokenizer.ggml.*_token_id`.
    pub special: SpecialIds,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// `general.name`.
    pub model_name: Option<String>,
    /// `general.architecture`.
    pub architecture: Option<String>,
}

/// Which algorithm turns text into tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SentencePiece BPE (`llama`): score-ordered merges over characters, byte fallback.
    Spm,
    /// GPT-2 byte-level BPE (`gpt2`): pre-tokenizer, then rank-ordered merges.
    Bpe(PreTokenizer),
}

pub struct TokenData {
    pub text: Box<str>,
    pub score: f32,
    pub attr: u32,
}

/// The built vocabulary, immutable after construction.
pub struct Vocab {
    pub kind: Kind,
    pub tokens: Vec<TokenData>,
    pub token_to_id: FxHashMap<Box<[u8]>, u32>,
    /// BPE merge ranks keyed by "left right" (the merge line), first occurrence wins.
    pub merge_ranks: FxHashMap<Box<[u8]>, u32>,
    pub special: SpecialIds,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    /// End-of-generation ids, ascending.
    pub eog: Vec<u32>,
    /// Tokens matched in the text before tokenizing (control, user-defined, unknown), longest
    /// first.
    pub special_cache: Vec<u32>,
    /// `token_to_piece(id, special = true)` of every token, concatenated.
    piece_bytes: Vec<u8>,
    /// Start of each token's piece in `piece_bytes`, plus the end.
    piece_offsets: Vec<usize>,
    pub chat_template: Option<String>,
}

fn err(what: impl Into<String>) -> Error {
    Error::Tokenizer { what: what.into() }
}

const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

impl Vocab {
    pub fn build(data: &VocabData) -> Result<Vocab> {
        let n = data.tokens.len();
        if n == 0 {
            return Err(err("the vocabulary (tokenizer.ggml.tokens) is empty"));
        }
        let n_u32 = u32::try_from(n)
            .map_err(|_| err(format!("{n} tokens is more than u32 ids can address")))?;

        let (
            kind,
            mut add_bos,
            add_eos,
            mut add_space_prefix,
            clean_spaces,
            ignore_merges,
            defaults,
        ) = match data.model.as_str() {
            "llama" => {
                let d = SpecialIds {
                    bos: Some(1),
                    eos: Some(2),
                    unk: Some(0),
                    ..SpecialIds::default()
                };
                (Kind::Spm, true, false, true, false, false, d)
            }
            "gpt2" => {
                let s = settings_for(data.pre.as_deref()).ok_or_else(|| {
                    err(format!(
                        "unknown pre-tokenizer type '{}' (tokenizer.ggml.pre)",
                        data.pre.as_deref().unwrap_or("")
                    ))
                })?;
                let d = SpecialIds {
                    bos: Some(11),
                    eos: Some(11),
                    ..SpecialIds::default()
                };
                (
                    Kind::Bpe(s.pre),
                    s.add_bos,
                    false,
                    false,
                    s.clean_spaces,
                    s.ignore_merges,
                    d,
                )
            }
            other => {
                return Err(Error::Unsupported {
                    what: format!(
                        "tokenizer model '{other}' (tokenizer.ggml.model); supported: llama, gpt2"
                    ),
                })
            }
        };
        if let Some(v) = data.add_space_prefix {
            add_space_prefix = v;
        }

        if !data.scores.is_empty() && data.scores.len() < n {
            return Err(err(format!("{} scores for {n} tokens", data.scores.len())));
        }
        if !data.token_types.is_empty() && data.token_types.len() < n {
            return Err(err(format!(
                "{} token types for {n} tokens",
                data.token_types.len()
            )));
        }

        let mut tokens = Vec::with_capacity(n);
        let mut token_to_id = FxHashMap::default();
        token_to_id.reserve(n);
        for (i, text) in data.tokens.iter().enumerate() {
            let text: Box<str> = if text.is_empty() {
                format!("[EMPTY_{i}]").into()
            } else {
                text.as_str().into()
            };
            let id = i as u32; // i < n <= u32::MAX
            if let Some(prev) = token_to_id.insert(Box::<[u8]>::from(text.as_bytes()), id) {
                return Err(err(format!(
                    "duplicate token in vocabulary: '{text}' has ids {prev} and {id}"
                )));
            }
            let attr = match data.token_types.get(i) {
                None => attr::NORMAL,
                Some(1) => attr::NORMAL,
                Some(2) => attr::UNKNOWN,
                Some(3) => attr::CONTROL,
                Some(4) => attr::USER_DEFINED,
                Some(5) => attr::UNUSED,
                Some(6) => attr::BYTE,
                Some(_) => attr::UNDEFINED,
            };
            let score = data.scores.get(i).copied().unwrap_or(0.0);
            tokens.push(TokenData { text, score, attr });
        }

        let mut merge_ranks = FxHashMap::default();
        if matches!(kind, Kind::Bpe(_)) {
            merge_ranks.reserve(data.merges.len());
            for (rank, line) in data.merges.iter().enumerate() {
                // llama.cpp splits at the first space after the first byte; a line without one
                // becomes the pair ("", ""), which no lookup can produce.
                let key: &[u8] = match line.as_bytes().iter().skip(1).position(|&b| b == b' ') {
                    Some(_) => line.as_bytes(),
                    None => b" ",
                };
                let rank = u32::try_from(rank).map_err(|_| err("more than u32::MAX merges"))?;
                merge_ranks.entry(Box::<[u8]>::from(key)).or_insert(rank);
            }
        }

        // Special ids: per-type defaults (dropped when out of range), then metadata (ignored
        // when out of range, like llama.cpp, which warns and keeps the default).
        let pick = |default: Option<u32>, meta: Option<u32>| -> Option<u32> {
            let default = default.filter(|&d| d < n_u32);
            match meta {
                Some(m) if m < n_u32 => Some(m),
                _ => default,
            }
        };
        let m = &data.special;
        let mut special = SpecialIds {
            bos: pick(defaults.bos, m.bos),
            eos: pick(defaults.eos, m.eos),
            eot: pick(None, m.eot),
            eom: pick(None, m.eom),
            unk: pick(defaults.unk, m.unk),
            sep: pick(None, m.sep),
            pad: pick(None, m.pad),
            mask: pick(None, m.mask),
            fim_pre: pick(None, m.fim_pre),
            fim_suf: pick(None, m.fim_suf),
            fim_mid: pick(None, m.fim_mid),
            fim_pad: pick(None, m.fim_pad),
            fim_rep: pick(None, m.fim_rep),
            fim_sep: pick(None, m.fim_sep),
        };

        if let Some(v) = data.add_bos {
            add_bos = v;
        }
        let add_eos = data.add_eos.unwrap_or(add_eos);
        if add_bos && special.bos.is_none() {
            return Err(err(
                "tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set",
            ));
        }
        if add_eos && special.eos.is_none() {
            return Err(err(
                "tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set",
            ));
        }

        let mut vocab = Vocab {
            kind,
            tokens,
            token_to_id,
            merge_ranks,
            special: SpecialIds::default(),
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            ignore_merges,
            eog: Vec::new(),
            special_cache: Vec::new(),
            piece_bytes: Vec::new(),
            piece_offsets: Vec::new(),
            chat_template: data.chat_template.clone(),
        };

        // Find unset special tokens by their text and make them control tokens. llama.cpp scans
        // a hash map and keeps the first hit, so with several candidates its pick depends on hash
        // order; the lowest id is taken here (the same pick on SmolLM2: <|endoftext|> as EOT).
        let slots: [(&mut Option<u32>, &[&str]); 8] = [
            (&mut special.eot, EOT_TEXTS),
            (&mut special.eom, EOM_TEXTS),
            (&mut special.fim_pre, FIM_PRE_TEXTS),
            (&mut special.fim_suf, FIM_SUF_TEXTS),
            (&mut special.fim_mid, FIM_MID_TEXTS),
            (&mut special.fim_pad, FIM_PAD_TEXTS),
            (&mut special.fim_rep, FIM_REP_TEXTS),
            (&mut special.fim_sep, FIM_SEP_TEXTS),
        ];
        for (slot, texts) in slots {
            if slot.is_none() {
                let found = texts.iter().filter_map(|t| vocab.id_of(t)).min();
                if let Some(id) = found {
                    *slot = Some(id);
                    vocab.add_attr(id, attr::CONTROL);
                }
            }
        }

        // Control tokens whose text says "unused" are unused.
        for t in &mut vocab.tokens {
            if t.attr & attr::CONTROL != 0 && t.text.contains("unused") {
                t.attr |= attr::UNUSED;
            }
        }

        let mut eog: Vec<u32> = [special.fim_pad, special.fim_rep, special.fim_sep]
            .into_iter()
            .flatten()
            .collect();
        for t in EOG_TEXTS {
            if let Some(id) = vocab.id_of(t) {
                eog.push(id);
                vocab.add_attr(id, attr::CONTROL);
            }
        }
        // gpt-oss: these are always rendered.
        for t in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = vocab.id_of(t) {
                vocab.set_attr(id, attr::USER_DEFINED);
            }
        }
        eog.extend(
            [special.eos, special.eot, special.eom]
                .into_iter()
                .flatten(),
        );
        eog.sort_unstable();
        eog.dedup();

        // o200k_harmony / solar-open: <|end|> is not end-of-generation there.
        let has = |eog: &[u32], v: &Vocab, t: &str| {
            v.id_of(t).is_some_and(|id| eog.binary_search(&id).is_ok())
        };
        let end_id = vocab
            .id_of("<|end|>")
            .filter(|&id| eog.binary_search(&id).is_ok());
        let has_call = has(&eog, &vocab, "<|call|>") || has(&eog, &vocab, "<|calls|>");
        if let Some(end_id) = end_id {
            if has_call && (has(&eog, &vocab, "<|return|>") || has(&eog, &vocab, "<|flush|>")) {
                eog.retain(|&x| x != end_id);
                vocab.set_attr(end_id, attr::USER_DEFINED);
            }
        }
        // gemma4 / paddleocr: </s> is not end-of-generation when <|tool_response> is.
        if has(&eog, &vocab, "<|tool_response>") {
            if let Some(s_id) = vocab
                .id_of("</s>")
                .filter(|&id| eog.binary_search(&id).is_ok())
            {
                eog.retain(|&x| x != s_id);
                vocab.set_attr(s_id, attr::NORMAL);
            }
        }
        vocab.eog = eog;
        vocab.special = special;

        // Tokens matched in the raw text, longest first (ties: lower id first; llama.cpp's
        // std::sort leaves their order unspecified).
        let mut cache: Vec<u32> = (0..n_u32)
            .filter(|&id| {
                vocab.attr(id) & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        cache.sort_by_key(|&id| std::cmp::Reverse(vocab.text(id).len()));
        vocab.special_cache = cache;

        vocab.build_piece_cache();
        vocab.apply_model_attrs(data);
        Ok(vocab)
    }

    pub fn n_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text.as_bytes()).copied()
    }

    pub fn id_of_bytes(&self, text: &[u8]) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub fn attr(&self, id: u32) -> u32 {
        self.tokens
            .get(id as usize)
            .map_or(attr::UNDEFINED, |t| t.attr)
    }

    pub fn text(&self, id: u32) -> &str {
        self.tokens.get(id as usize).map_or("", |t| &t.text)
    }

    pub fn score(&self, id: u32) -> f32 {
        self.tokens.get(id as usize).map_or(0.0, |t| t.score)
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    fn add_attr(&mut self, id: u32, a: u32) {
        if let Some(t) = self.tokens.get_mut(id as usize) {
            t.attr |= a;
        }
    }

    fn set_attr(&mut self, id: u32, a: u32) {
        if let Some(t) = self.tokens.get_mut(id as usize) {
            t.attr = a;
        }
    }

    /// The piece of `id` with special tokens rendered; None for an id out of range.
    pub fn piece(&self, id: u32) -> Option<&[u8]> {
        let i = id as usize;
        let start = *self.piece_offsets.get(i)?;
        let end = *self.piece_offsets.get(i + 1)?;
        self.piece_bytes.get(start..end)
    }

    fn build_piece_cache(&mut self) {
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(self.tokens.len() + 1);
        for t in &self.tokens {
            offsets.push(bytes.len());
            self.render_piece(t, &mut bytes);
        }
        offsets.push(bytes.len());
        self.piece_bytes = bytes;
        self.piece_offsets = offsets;
    }

    /// llama.cpp's `token_to_piece(id, special = true)` (without lstrip).
    fn render_piece(&self, t: &TokenData, out: &mut Vec<u8>) {
        if t.attr & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(t.text.as_bytes());
        } else if t.attr & attr::NORMAL != 0 {
            match self.kind {
                Kind::Spm => out.extend_from_slice(t.text.replace('\u{2581}', " ").as_bytes()),
                Kind::Bpe(_) => decode_byte_level(&t.text, out),
            }
        } else if t.attr & attr::BYTE != 0 {
            out.push(byte_of_byte_token(&t.text));
        }
        // Undefined and unused tokens render as nothing.
    }

    /// Attributes llama.cpp sets by model name (the GGUF has no per-token lstrip/rstrip).
    fn apply_model_attrs(&mut self, data: &VocabData) {
        let name = data
            .model_name
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let pre = data.pre.as_deref().unwrap_or("");
        let arch = data.architecture.as_deref().unwrap_or("");
        let contains_any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
        if contains_any(pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
            || contains_any(arch, &["nomic-bert-moe", "jina-bert-v3"])
        {
            if let Some(id) = self.id_of("<mask>") {
                self.add_attr(id, attr::LSTRIP);
            }
        } else if contains_any(&name, &["phi-3", "phi3"]) {
            for id in self.special_cache.clone() {
                self.add_attr(id, attr::RSTRIP);
            }
            if let Some(id) = self.id_of("</s>") {
                self.add_attr(id, attr::RSTRIP);
            }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(id) = self.id_of(t) {
                    if let Some(tok) = self.tokens.get_mut(id as usize) {
                        tok.attr &= !attr::RSTRIP;
                    }
                }
            }
        } else if contains_any(&name, &["modern-bert"]) {
            if let Some(id) = self.id_of("[MASK]") {
                self.add_attr(id, attr::LSTRIP);
            }
        }
    }
}

/// A byte-level BPE token's text back to bytes (llama.cpp's `llama_decode_text`), including its
/// marker for a character outside the byte map: `[UNK_BYTE_0x<hex of the char>` + the whole
/// token text + `]`.
fn decode_byte_level(text: &str, out: &mut Vec<u8>) {
    for cpt in cpts_from_utf8(text.as_bytes()) {
        match cpt_to_byte(cpt) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = Vec::with_capacity(4);
                push_utf8(cpt, &mut utf8);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in utf8 {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

/// The byte of a `<0xNN>` token: `strtol(text.substr(3, 2), 16)` truncated to a byte, as
/// llama.cpp computes it (a malformed text gives whatever strtol gives, 0 when no digits).
pub fn byte_of_byte_token(text: &str) -> u8 {
    let b = text.as_bytes();
    let digits = b.get(3..b.len().min(5)).unwrap_or(&[]);
    let digits = match digits.iter().position(|c| !c.is_ascii_whitespace()) {
        Some(p) => digits.get(p..).unwrap_or(&[]),
        None => &[],
    };
    let (neg, digits) = match digits.first() {
        Some(b'-') => (true, digits.get(1..).unwrap_or(&[])),
        Some(b'+') => (false, digits.get(1..).unwrap_or(&[])),
        _ => (false, digits),
    };
    let mut v: i64 = 0;
    for &c in digits {
        match (c as char).to_digit(16) {
            Some(d) => v = v * 16 + i64::from(d),
            None => break,
        }
    }
    if neg {
        v = -v;
    }
    v as u8 // truncation to the low byte, as llama.cpp's (char) cast
}

/// What a byte-fallback token for `b` is called in a SentencePiece vocabulary.
pub fn byte_token_text(b: u8) -> [u8; 6] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'<',
        b'0',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
        b'>',
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens() {
        assert_eq!(byte_of_byte_token("<0x0A>"), 0x0A);
        assert_eq!(byte_of_byte_token("<0xFF>"), 0xFF);
        assert_eq!(byte_of_byte_token("<0x"), 0);
        assert_eq!(byte_of_byte_token("x"), 0);
        assert_eq!(&byte_token_text(0x0A), b"<0x0A>");
    }

    #[test]
    fn byte_level_decoding() {
        let mut out = Vec::new();
        decode_byte_level("Ġhello\u{10A}", &mut out);
        assert_eq!(out, b" hello\n");
        out.clear();
        decode_byte_level("a\u{2581}", &mut out);
        assert_eq!(out, "a[UNK_BYTE_0xe29681a\u{2581}]".as_bytes());
    }
}
