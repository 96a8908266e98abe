//! The vocabulary: tokens, their attributes, special ids and the settings llama.cpp derives
//! from the metadata (src/llama-vocab.cpp `llama_vocab::impl::load`).

use super::hash::{hash_bytes, hash_pair};
use super::pretokenize::{settings_for, PreTokenizer};
use super::table::{IndexTable, Inserted};
use super::unicode::{cpt_to_byte, decode_one, push_utf8};
use crate::gguf::{F32View, StringArray};
use crate::{Error, Result};

/// Token attributes, as llama.cpp's `llama_token_attr` but renumbered to fit a byte (one per
/// token is stored): the flags are the same, LSTRIP and RSTRIP sit at bits 6 and 7 instead of
/// 7 and 8 (llama.cpp's bit 6, SINGLE_WORD, is never set from a GGUF file).
pub mod attr {
    pub const UNDEFINED: u8 = 0;
    pub const UNKNOWN: u8 = 1 << 0;
    pub const UNUSED: u8 = 1 << 1;
    pub const NORMAL: u8 = 1 << 2;
    pub const CONTROL: u8 = 1 << 3;
    pub const USER_DEFINED: u8 = 1 << 4;
    pub const BYTE: u8 = 1 << 5;
    pub const LSTRIP: u8 = 1 << 6;
    pub const RSTRIP: u8 = 1 << 7;
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
    /// `tokenizer.ggml.tokens` (read from a file: shared with it, not copied).
    pub tokens: StringArray,
    /// `tokenizer.ggml.scores` (empty: all 0).
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.token_type` (empty: all normal).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges` ("left right", rank = index; shared with the file like
    /// `tokens`).
    pub merges: StringArray,
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

/// A token that [`special::partition`](super::special::partition) looks for in the text, with
/// what it needs to skip the token without reading its text (most special tokens of a big
/// vocabulary never occur: Gemma 3 has thousands).
pub struct SpecialToken {
    pub id: u32,
    /// The length of its text, up to 2 (all the filter looks at; 8 bytes per token in all).
    pub short_len: u8,
    /// Its first two bytes (0 past the end).
    pub head: [u8; 2],
    /// Its attributes.
    pub attr: u8,
}

/// Where a vocabulary's scores are.
enum Scores {
    /// All 0.
    Zero,
    Owned(Vec<f32>),
    /// In the model file, read in place.
    InFile(F32View),
}

/// The built vocabulary, immutable after construction.
///
/// Compact by design, as it lives as long as the model: token texts stay in the file
/// ([`StringArray`]), one byte of attributes per token, scores only for SentencePiece (their
/// only user; read in place from the file when it has them as f32), text -> id and merge ->
/// rank as [`IndexTable`]s of 4-byte slots holding no key, and pieces rendered when asked
/// instead of cached.
pub struct Vocab {
    pub kind: Kind,
    /// `tokenizer.ggml.tokens`.
    texts: StringArray,
    /// What llama.cpp calls the tokens whose text is empty (`[EMPTY_<id>]`), by ascending id.
    empty_texts: Vec<(u32, Box<str>)>,
    /// [`attr`] bits per token.
    attrs: Vec<u8>,
    /// SentencePiece scores per token (all 0 for BPE, which ignores them).
    scores: Scores,
    /// Token text -> id.
    token_to_id: IndexTable,
    /// `tokenizer.ggml.merges` (BPE only).
    merges: StringArray,
    /// BPE (left, right) -> rank, the index of the merge line; the first occurrence wins.
    merge_ranks: IndexTable,
    pub special: SpecialIds,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    /// End-of-generation ids, ascending.
    pub eog: Vec<u32>,
    /// Tokens matched in the raw text before tokenizing (control, user-defined, unknown),
    /// longest first.
    pub special_cache: Vec<SpecialToken>,
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
    /// The vocabulary of `data`, with its own scores and token types.
    pub fn build(data: &VocabData) -> Result<Vocab> {
        Self::build_with(data, &data.scores, None, &data.token_types)
    }

    /// The vocabulary of `data` with `scores` and `token_types` in place of its fields (which
    /// are ignored): a file's arrays are used where they are, not copied into a `VocabData`.
    /// `in_file`, when given, holds the same scores in the file, kept instead of a copy.
    pub fn build_with(
        data: &VocabData,
        scores: &[f32],
        in_file: Option<F32View>,
        token_types: &[i32],
    ) -> Result<Vocab> {
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

        if !scores.is_empty() && scores.len() < n {
            return Err(err(format!("{} scores for {n} tokens", scores.len())));
        }
        if !token_types.is_empty() && token_types.len() < n {
            return Err(err(format!(
                "{} token types for {n} tokens",
                token_types.len()
            )));
        }

        let texts = data.tokens.clone();
        let mut empty_texts = Vec::new();
        let mut attrs = Vec::new();
        attrs
            .try_reserve_exact(n)
            .map_err(|_| out_of_memory("token attributes", n))?;
        for i in 0..n {
            if texts.get_bytes(i).is_some_and(<[u8]>::is_empty) {
                empty_texts.push((i as u32, format!("[EMPTY_{i}]").into_boxed_str()));
            }
            attrs.push(match token_types.get(i) {
                None => attr::NORMAL,
                Some(1) => attr::NORMAL,
                Some(2) => attr::UNKNOWN,
                Some(3) => attr::CONTROL,
                Some(4) => attr::USER_DEFINED,
                Some(5) => attr::UNUSED,
                Some(6) => attr::BYTE,
                Some(_) => attr::UNDEFINED,
            });
        }

        let mut token_to_id = IndexTable::new(n)?;
        for id in 0..n_u32 {
            let text = text_of(&texts, &empty_texts, id);
            let is_key = |j| text_of(&texts, &empty_texts, j) == text;
            if let Inserted::Existing(prev) = token_to_id.insert(hash_bytes(text), id, is_key)? {
                return Err(err(format!(
                    "duplicate token in vocabulary: '{}' has ids {prev} and {id}",
                    String::from_utf8_lossy(text)
                )));
            }
        }

        // Only SentencePiece reads scores.
        let scores = match (kind, in_file) {
            (Kind::Bpe(_), _) => Scores::Zero,
            _ if scores.is_empty() => Scores::Zero,
            (Kind::Spm, Some(v)) if v.len() == scores.len() => Scores::InFile(v),
            (Kind::Spm, _) => Scores::Owned(scores.get(..n).unwrap_or_default().to_vec()),
        };

        let (merges, merge_ranks) = match kind {
            Kind::Bpe(_) => {
                let merges = data.merges.clone();
                let n_merges =
                    u32::try_from(merges.len()).map_err(|_| err("more than u32::MAX merges"))?;
                let mut ranks = IndexTable::new(merges.len())?;
                for rank in 0..n_merges {
                    let line = merges.get_bytes(rank as usize).unwrap_or_default();
                    // A line without a space after its first byte is the pair ("", ""), which
                    // no lookup can produce: left out.
                    let Some((left, right)) = split_merge(line) else {
                        continue;
                    };
                    // Equal pairs are equal lines; the first one keeps its rank.
                    let is_key = |j: u32| merges.get_bytes(j as usize) == Some(line);
                    ranks.insert(hash_pair(left, right), rank, is_key)?;
                }
                (merges, ranks)
            }
            Kind::Spm => (StringArray::new(), IndexTable::new(0)?),
        };

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
            texts,
            empty_texts,
            attrs,
            scores,
            token_to_id,
            merges,
            merge_ranks,
            special: SpecialIds::default(),
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            ignore_merges,
            eog: Vec::new(),
            special_cache: Vec::new(),
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
        for id in 0..n_u32 {
            if vocab.attr(id) & attr::CONTROL != 0 && contains(vocab.text_bytes(id), b"unused") {
                vocab.add_attr(id, attr::UNUSED);
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
        cache.sort_by_key(|&id| std::cmp::Reverse(vocab.text_bytes(id).len()));
        vocab.apply_model_attrs(data, &cache);
        vocab.special_cache = cache
            .into_iter()
            .map(|id| {
                let text = vocab.text_bytes(id);
                SpecialToken {
                    id,
                    short_len: text.len().min(2) as u8,
                    head: [
                        text.first().copied().unwrap_or(0),
                        text.get(1).copied().unwrap_or(0),
                    ],
                    attr: vocab.attr(id),
                }
            })
            .collect();
        Ok(vocab)
    }

    pub fn n_tokens(&self) -> usize {
        self.texts.len()
    }

    pub fn id_of(&self, text: &str) -> Option<u32> {
        self.id_of_bytes(text.as_bytes())
    }

    pub fn id_of_bytes(&self, text: &[u8]) -> Option<u32> {
        self.token_to_id
            .find(hash_bytes(text), |id| self.text_bytes(id) == text)
    }

    /// The rank of the BPE merge of `left` and `right` (llama.cpp's `find_bpe_rank`).
    pub fn merge_rank(&self, left: &[u8], right: &[u8]) -> Option<u32> {
        self.merge_ranks.find(hash_pair(left, right), |rank| {
            let line = self.merges.get_bytes(rank as usize).unwrap_or_default();
            split_merge(line) == Some((left, right))
        })
    }

    pub fn attr(&self, id: u32) -> u8 {
        self.attrs
            .get(id as usize)
            .copied()
            .unwrap_or(attr::UNDEFINED)
    }

    /// The text of token `id` as llama.cpp has it (empty texts become `[EMPTY_<id>]`); empty
    /// for an id out of range.
    pub fn text_bytes(&self, id: u32) -> &[u8] {
        text_of(&self.texts, &self.empty_texts, id)
    }

    /// [`text_bytes`](Self::text_bytes) as text; None for an id out of range.
    pub fn text(&self, id: u32) -> Option<&str> {
        if id as usize >= self.n_tokens() {
            return None;
        }
        std::str::from_utf8(self.text_bytes(id)).ok()
    }

    pub fn score(&self, id: u32) -> f32 {
        match &self.scores {
            Scores::Zero => 0.0,
            Scores::Owned(v) => v.get(id as usize).copied().unwrap_or(0.0),
            Scores::InFile(v) => v.get(id as usize).unwrap_or(0.0),
        }
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    fn add_attr(&mut self, id: u32, a: u8) {
        if let Some(t) = self.attrs.get_mut(id as usize) {
            *t |= a;
        }
    }

    fn set_attr(&mut self, id: u32, a: u8) {
        if let Some(t) = self.attrs.get_mut(id as usize) {
            *t = a;
        }
    }

    fn clear_attr(&mut self, id: u32, a: u8) {
        if let Some(t) = self.attrs.get_mut(id as usize) {
            *t &= !a;
        }
    }

    /// Appends llama.cpp's `token_to_piece(id, special = true)` (without lstrip): rendered
    /// here each time rather than cached for every token, as decoding is a few tokens at a time
    /// and a cache costs as much memory as the texts themselves. Nothing for an id out of range.
    pub fn push_piece(&self, id: u32, out: &mut Vec<u8>) {
        let a = self.attr(id);
        let text = self.text_bytes(id);
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text);
        } else if a & attr::NORMAL != 0 {
            match self.kind {
                Kind::Spm => unescape_spaces(text, out),
                Kind::Bpe(_) => decode_byte_level(text, out),
            }
        } else if a & attr::BYTE != 0 {
            out.push(byte_of_byte_token(text));
        }
        // Undefined and unused tokens render as nothing.
    }

    /// Attributes llama.cpp sets by model name (the GGUF has no per-token lstrip/rstrip).
    fn apply_model_attrs(&mut self, data: &VocabData, special_cache: &[u32]) {
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
            for &id in special_cache {
                self.add_attr(id, attr::RSTRIP);
            }
            if let Some(id) = self.id_of("</s>") {
                self.add_attr(id, attr::RSTRIP);
            }
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                if let Some(id) = self.id_of(t) {
                    self.clear_attr(id, attr::RSTRIP);
                }
            }
        } else if contains_any(&name, &["modern-bert"]) {
            if let Some(id) = self.id_of("[MASK]") {
                self.add_attr(id, attr::LSTRIP);
            }
        }
    }
}

/// Token `id`'s text in `texts`, or its `[EMPTY_<id>]` name from `empty` when the file has it
/// empty; empty for an id out of range.
fn text_of<'a>(texts: &'a StringArray, empty: &'a [(u32, Box<str>)], id: u32) -> &'a [u8] {
    match texts.get_bytes(id as usize) {
        Some([]) => match empty.binary_search_by_key(&id, |e| e.0) {
            Ok(i) => empty.get(i).map_or(&[], |e| e.1.as_bytes()),
            Err(_) => &[],
        },
        Some(t) => t,
        None => &[],
    }
}

/// A merge line's (left, right) pair as llama.cpp splits it: at the first space after the
/// first byte. None without such a space.
fn split_merge(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let p = line.get(1..)?.iter().position(|&b| b == b' ')? + 1;
    Some((line.get(..p)?, line.get(p + 1..)?))
}

/// Whether `needle` (non-empty) occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len().max(1)).any(|w| w == needle)
}

fn out_of_memory(what: &str, n: usize) -> Error {
    Error::OutOfMemory {
        what: format!("{what} of {n} tokens"),
    }
}

/// A SentencePiece token's text with each U+2581 (`▁`) turned back into a space.
fn unescape_spaces(text: &[u8], out: &mut Vec<u8>) {
    const ESCAPED: &[u8] = "\u{2581}".as_bytes();
    let mut rest = text;
    while let Some(p) = rest.windows(ESCAPED.len()).position(|w| w == ESCAPED) {
        out.extend_from_slice(rest.get(..p).unwrap_or_default());
        out.push(b' ');
        rest = rest.get(p + ESCAPED.len()..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
}

/// A byte-level BPE token's text back to bytes (llama.cpp's `llama_decode_text`), including its
/// marker for a character outside the byte map: `[UNK_BYTE_0x<hex of the char>` + the whole
/// token text + `]`.
fn decode_byte_level(text: &[u8], out: &mut Vec<u8>) {
    let mut offset = 0;
    while offset < text.len() {
        // As `cpts_from_utf8`: a byte that starts no well-formed sequence is U+FFFD.
        let (cpt, len) = decode_one(text, offset).unwrap_or((0xFFFD, 1));
        offset += len;
        match cpt_to_byte(cpt) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = Vec::with_capacity(4);
                push_utf8(cpt, &mut utf8);
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in utf8 {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text);
                out.push(b']');
            }
        }
    }
}

/// The byte of a `<0xNN>` token: `strtol(text.substr(3, 2), 16)` truncated to a byte, as
/// llama.cpp computes it (a malformed text gives whatever strtol gives, 0 when no digits).
pub fn byte_of_byte_token(text: &[u8]) -> u8 {
    let b = text;
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
        assert_eq!(byte_of_byte_token(b"<0x0A>"), 0x0A);
        assert_eq!(byte_of_byte_token(b"<0xFF>"), 0xFF);
        assert_eq!(byte_of_byte_token(b"<0x"), 0);
        assert_eq!(byte_of_byte_token(b"x"), 0);
        assert_eq!(&byte_token_text(0x0A), b"<0x0A>");
    }

    #[test]
    fn spaces_unescaped() {
        let mut out = Vec::new();
        unescape_spaces(
            "\u{2581}a\u{2581}\u{2581}é\u{2580}b\u{2581}".as_bytes(),
            &mut out,
        );
        assert_eq!(out, " a  é\u{2580}b ".as_bytes());
        out.clear();
        unescape_spaces(b"\xE2\x96", &mut out);
        assert_eq!(out, b"\xE2\x96");
    }

    #[test]
    fn byte_level_decoding() {
        let mut out = Vec::new();
        decode_byte_level("Ġhello\u{10A}".as_bytes(), &mut out);
        assert_eq!(out, b" hello\n");
        out.clear();
        decode_byte_level("a\u{2581}".as_bytes(), &mut out);
        assert_eq!(out, "a[UNK_BYTE_0xe29681a\u{2581}]".as_bytes());
    }
}
