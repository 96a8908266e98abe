//! [`Model`]: a GGUF file mapped, validated and ready to be shared by sessions.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use crate::chat::{ChatTemplate, Family, TemplateTokens};
use crate::gguf::GgufFile;
use crate::model::config::ModelConfig;
use crate::model::weights::ModelWeights;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// A loaded model: immutable, `Send + Sync`, shared by any number of sessions.
pub struct Model {
    file: GgufFile,
    config: ModelConfig,
    weights: ModelWeights,
    tokenizer: Tokenizer,
    /// Built on first use: most embedders never render a chat.
    chat_template: OnceLock<ChatTemplate>,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("file", &self.file)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Maps the file and checks metadata and tensors; the weights are not read (milliseconds).
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        // Errors in the metadata or the tensors name the file too, like the reader's own.
        Self::from_gguf(GgufFile::open(path)?).map_err(|e| Error::in_file(path, e))
    }

    /// Builds a model from an already opened file.
    pub fn from_gguf(file: GgufFile) -> Result<Model> {
        let config = ModelConfig::from_gguf(&file)?;
        let weights = ModelWeights::from_gguf(&file, &config)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        if tokenizer.n_vocab() != config.n_vocab {
            return Err(Error::InvalidConfig {
                what: format!(
                    "tokenizer has {} tokens but the model's vocabulary is {}",
                    tokenizer.n_vocab(),
                    config.n_vocab
                ),
            });
        }
        Ok(Model {
            file,
            config,
            weights,
            tokenizer,
            chat_template: OnceLock::new(),
        })
    }

    /// Hyperparameters.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The weight index.
    pub fn weights(&self) -> &ModelWeights {
        &self.weights
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template: the file's own `tokenizer.chat_template` (compiled on the first
    /// call, then kept), or, when the file has none, the built-in Gemma family for a gemma3
    /// model and ChatML (llama.cpp's default) for the others.
    pub fn chat_template(&self) -> &ChatTemplate {
        self.chat_template
            .get_or_init(|| self.build_chat_template())
    }

    fn build_chat_template(&self) -> ChatTemplate {
        let tokens = TemplateTokens::from_tokenizer(&self.tokenizer);
        match self.tokenizer.chat_template() {
            // llama.cpp treats an empty template as none.
            Some(source) if !source.trim().is_empty() => ChatTemplate::from_jinja(source, tokens),
            // A Gemma file without a template (like the 270M one) still speaks in turns;
            // llama.cpp would fall back to ChatML, which the model does not know.
            _ if self.config.arch.name == "gemma3" => ChatTemplate::builtin(Family::Gemma, tokens),
            _ => ChatTemplate::builtin(Family::ChatMl, tokens),
        }
    }

    /// The underlying file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// A summary: architecture, size, shape and the mix of weight types.
    pub fn info(&self) -> ModelInfo {
        let mut types: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        let mut n_params = 0u64;
        for t in self.file.tensors() {
            n_params += t.n_elements();
            let e = types.entry(t.ty.name().to_string()).or_insert((0, 0));
            e.0 += 1;
            e.1 += t.n_bytes;
        }
        ModelInfo {
            name: self
                .file
                .opt_str("general.name")
                .ok()
                .flatten()
                .unwrap_or("")
                .to_string(),
            arch: self.config.arch.name,
            n_params,
            file_bytes: self.file.file_len(),
            config: self.config.clone(),
            tied_output: self.weights.tied_output,
            types: types.into_iter().map(|(k, (n, b))| (k, n, b)).collect(),
        }
    }
}

/// What [`Model::info`] reports; `Display` prints it in a few lines.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// `general.name`.
    pub name: String,
    /// Architecture.
    pub arch: &'static str,
    /// Total number of weights.
    pub n_params: u64,
    /// File size.
    pub file_bytes: u64,
    /// Hyperparameters.
    pub config: ModelConfig,
    /// Whether the output projection is the token embedding.
    pub tied_output: bool,
    /// (type, tensors, bytes) per weight type.
    pub types: Vec<(String, usize, u64)>,
}

impl fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "{} ({}): {:.1}M params, {:.1} MB",
            self.name,
            self.arch,
            self.n_params as f64 / 1e6,
            self.file_bytes as f64 / 1e6
        )?;
        writeln!(
            f,
            "layers {}, embd {}, ffn {}, heads {}/{} kv, head dim {}, vocab {}, context {}, rope base {}{}",
            c.n_layer,
            c.n_embd,
            c.n_ff,
            c.n_head,
            c.n_kv_head,
            c.head_dim,
            c.n_vocab,
            c.context_length,
            c.rope_base,
            if self.tied_output { ", tied output" } else { "" }
        )?;
        let mix: Vec<String> = self
            .types
            .iter()
            .map(|(t, n, b)| format!("{t} x{n} ({:.1} MB)", *b as f64 / 1e6))
            .collect();
        write!(f, "weights: {}", mix.join(", "))
    }
}
