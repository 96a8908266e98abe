//! Reading [`VocabData`] from a GGUF file's metadata.

use std::borrow::Cow;

use super::vocab::{SpecialIds, VocabData};
use crate::gguf::{Array, F32View, GgufFile, StringArray};
use crate::{Error, Result};

fn wrong(key: &str, expected: &str, found: &Array) -> Error {
    let found = match found {
        Array::U8(_) => "array of u8",
        Array::I8(_) => "array of i8",
        Array::U16(_) => "array of u16",
        Array::I16(_) => "array of i16",
        Array::U32(_) => "array of u32",
        Array::I32(_) => "array of i32",
        Array::U64(_) => "array of u64",
        Array::I64(_) => "array of i64",
        Array::F32(_) => "array of f32",
        Array::F64(_) => "array of f64",
        Array::Bool(_) => "array of bool",
        Array::String(_) => "array of string",
        Array::Array(_) => "array of arrays",
    };
    Error::WrongValueType {
        key: key.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

fn strings(f: &GgufFile, key: &str) -> Result<Option<StringArray>> {
    match f.opt_array(key)? {
        None => Ok(None),
        Some(Array::String(v)) => Ok(Some(v.clone())),
        Some(other) => Err(wrong(key, "array of string", other)),
    }
}

/// The per-token number arrays of a file, where its metadata holds them.
pub(super) struct Arrays<'a> {
    /// `tokenizer.ggml.scores` (borrowed unless the file has integer scores).
    pub scores: Cow<'a, [f32]>,
    /// The same f32 scores read in place from the file (None for integer scores).
    pub scores_in_file: Option<F32View>,
    /// `tokenizer.ggml.token_type`.
    pub token_types: &'a [i32],
}

impl VocabData {
    /// The tokenizer metadata of `f` (`tokenizer.*`, `general.name`, `general.architecture`).
    /// The token and merge lists are shared with `f` (see [`StringArray`]); the scores and
    /// token types are copied.
    pub fn from_gguf(f: &GgufFile) -> Result<VocabData> {
        let (mut data, arrays) = read(f)?;
        data.scores = arrays.scores.into_owned();
        data.token_types = arrays.token_types.to_vec();
        Ok(data)
    }
}

/// [`VocabData::from_gguf`] without its scores and token types, which are returned borrowed.
pub(super) fn read(f: &GgufFile) -> Result<(VocabData, Arrays<'_>)> {
    let model = f.get_str("tokenizer.ggml.model")?.to_string();
    let tokens = strings(f, "tokenizer.ggml.tokens")?.ok_or_else(|| Error::MissingKey {
        key: "tokenizer.ggml.tokens".to_string(),
    })?;

    let scores = match f.opt_array("tokenizer.ggml.scores")? {
        None => Cow::Borrowed(&[][..]),
        Some(Array::F32(v)) => Cow::Borrowed(v.as_slice()),
        // llama.cpp also accepts integer scores.
        Some(Array::I32(v)) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        Some(other) => return Err(wrong("tokenizer.ggml.scores", "array of f32 or i32", other)),
    };
    let token_types = match f.opt_array("tokenizer.ggml.token_type")? {
        None => &[][..],
        Some(Array::I32(v)) => v.as_slice(),
        Some(other) => return Err(wrong("tokenizer.ggml.token_type", "array of i32", other)),
    };
    let merges = strings(f, "tokenizer.ggml.merges")?;
    if model == "gpt2" && merges.is_none() {
        return Err(Error::MissingKey {
            key: "tokenizer.ggml.merges".to_string(),
        });
    }

    let id = |name: &str| f.opt_u32(&format!("tokenizer.ggml.{name}_token_id"));
    // The deprecated prefix/suffix/middle keys are read after the fim_* ones in llama.cpp,
    // so they win when both are present.
    let special = SpecialIds {
        bos: id("bos")?,
        eos: id("eos")?,
        eot: id("eot")?,
        eom: id("eom")?,
        unk: id("unknown")?,
        sep: id("seperator")?,
        pad: id("padding")?,
        mask: id("mask")?,
        fim_pre: id("prefix")?.or(id("fim_pre")?),
        fim_suf: id("suffix")?.or(id("fim_suf")?),
        fim_mid: id("middle")?.or(id("fim_mid")?),
        fim_pad: id("fim_pad")?,
        fim_rep: id("fim_rep")?,
        fim_sep: id("fim_sep")?,
    };

    let data = VocabData {
        model,
        pre: f.opt_str("tokenizer.ggml.pre")?.map(str::to_string),
        tokens,
        scores: Vec::new(),
        token_types: Vec::new(),
        merges: merges.unwrap_or_default(),
        special,
        add_bos: f.opt_bool("tokenizer.ggml.add_bos_token")?,
        add_eos: f.opt_bool("tokenizer.ggml.add_eos_token")?,
        add_space_prefix: f.opt_bool("tokenizer.ggml.add_space_prefix")?,
        chat_template: f.opt_str("tokenizer.chat_template")?.map(str::to_string),
        model_name: f.opt_str("general.name")?.map(str::to_string),
        architecture: f.opt_str("general.architecture")?.map(str::to_string),
    };
    Ok((
        data,
        Arrays {
            scores,
            scores_in_file: f.f32_view("tokenizer.ggml.scores"),
            token_types,
        },
    ))
}
