//! Sessions: one KV cache and one thread pool each, over a shared [`Model`].

mod generate;

pub use generate::Generate;

use crate::kv_cache::{KvCache, KvCacheType, KvShape};
use crate::model::forward::{Forward, LogitRows, Tracer};
use crate::model::Model;
use crate::{Error, Result};

/// How a session is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Context length (KV cells). 0 means the model's training context.
    pub context: usize,
    /// Worker threads; `None` means all cores.
    pub threads: Option<usize>,
    /// KV cache element type (f16 like llama.cpp by default).
    pub kv_cache: KvCacheType,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            context: 4096,
            threads: None,
            kv_cache: KvCacheType::F16,
        }
    }
}

/// A conversation state over a model: its own KV cache, token history and thread pool.
pub struct Session<'m> {
    model: &'m Model,
    cache: KvCache,
    pool: std::sync::Arc<rayon::ThreadPool>,
    threads: usize,
    /// Tokens whose K/V are in the cache, in order.
    tokens: Vec<u32>,
    /// Logits after the last evaluated token.
    logits: Vec<f32>,
    /// A sampled token not yet evaluated (e.g. the end-of-turn token that ended a reply): it
    /// goes in front of the next batch, so the cache always holds the whole conversation.
    pending: Option<u32>,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("n_ctx", &self.n_ctx())
            .field("n_past", &self.tokens.len())
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// A new session with an empty KV cache.
    pub fn session(&self, opts: SessionOptions) -> Result<Session<'_>> {
        let c = self.config();
        let n_ctx = if opts.context == 0 {
            c.context_length
        } else {
            opts.context
        };
        let threads = match opts.threads {
            Some(0) => {
                return Err(Error::InvalidArgument {
                    what: "threads must be at least 1".into(),
                })
            }
            Some(t) => t,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        // With two or more threads, the matmul kernels' pool of that size also runs the
        // attention: one set of workers, none spinning idle beside another pool's.
        let pool = match tramontane_kernels::matmul::pool(threads) {
            Some(p) if threads > 1 => p,
            _ => std::sync::Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| Error::InvalidArgument {
                        what: format!("cannot start {threads} threads: {e}"),
                    })?,
            ),
        };
        let shape = KvShape {
            n_layer: c.n_layer,
            n_ctx,
            n_kv_head: c.n_kv_head,
            head_dim: c.head_dim,
        };
        Ok(Session {
            model: self,
            cache: KvCache::new(shape, opts.kv_cache),
            pool,
            threads,
            tokens: Vec::new(),
            logits: Vec::new(),
            pending: None,
        })
    }
}

impl<'m> Session<'m> {
    /// The model this session runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// Context length in tokens.
    pub fn n_ctx(&self) -> usize {
        self.cache.shape().n_ctx
    }

    /// Tokens evaluated so far (their K/V are cached).
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Forgets everything: the next token goes to position 0.
    pub fn reset(&mut self) {
        self.tokens.clear();
        self.logits.clear();
        self.pending = None;
    }

    /// Logits after the last evaluated token (empty before the first eval).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Tokens sampled but not yet evaluated (they go in front of the next batch).
    pub fn pending(&self) -> Option<u32> {
        self.pending
    }

    fn run(
        &mut self,
        tokens: &[u32],
        rows: LogitRows,
        trace: Option<Tracer<'_>>,
    ) -> Result<Vec<f32>> {
        let with_pending: Vec<u32>;
        let tokens = match self.pending {
            Some(p) => {
                with_pending = std::iter::once(p).chain(tokens.iter().copied()).collect();
                &with_pending[..]
            }
            None => tokens,
        };
        if tokens.is_empty() {
            return Err(Error::InvalidArgument {
                what: "eval needs at least one token".into(),
            });
        }
        let first = self.tokens.len();
        if first + tokens.len() > self.n_ctx() {
            return Err(Error::ContextFull {
                n_ctx: self.n_ctx(),
            });
        }
        let fwd = Forward {
            config: self.model.config(),
            weights: self.model.weights(),
            bytes: self.model.file().bytes(),
            threads: self.threads,
            trace,
        };
        let cache = &mut self.cache;
        let out = self.pool.install(|| fwd.run(cache, tokens, first, rows))?;
        self.tokens.extend_from_slice(tokens);
        self.pending = None;
        Ok(out)
    }

    /// Appends `tokens` (one batch) and returns the logits of the last one.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.logits = self.run(tokens, LogitRows::Last, None)?;
        Ok(&self.logits)
    }

    /// [`eval_all`](Self::eval_all), handing every intermediate tensor to `trace` (see
    /// [`Tracer`]): to find where a model departs from a reference implementation.
    pub fn eval_traced(&mut self, tokens: &[u32], trace: Tracer<'_>) -> Result<Vec<f32>> {
        self.eval_rows(tokens, Some(trace))
    }

    /// Tokenizes `prompt` (special tokens parsed; BOS added when the session is empty and the
    /// model asks for it), evaluates it as one batch, and returns a streaming iterator of text
    /// pieces sampled with `sampling`. It stops at an end-of-generation token or a stop string.
    pub fn generate(
        &mut self,
        prompt: &str,
        sampling: &crate::Sampling,
    ) -> Result<Generate<'_, 'm>> {
        let empty = self.tokens.is_empty() && self.pending.is_none();
        let tokens = self.model.tokenizer().encode(prompt, empty, true)?;
        self.generate_tokens(&tokens, sampling)
    }

    /// [`generate`](Self::generate) from token ids.
    pub fn generate_tokens(
        &mut self,
        tokens: &[u32],
        sampling: &crate::Sampling,
    ) -> Result<Generate<'_, 'm>> {
        Generate::start(self, tokens, sampling)
    }

    /// Appends `tokens` (one batch) and returns every position's logits, token-major
    /// (`tokens.len() * n_vocab` values).
    pub fn eval_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.eval_rows(tokens, None)
    }

    fn eval_rows(&mut self, tokens: &[u32], trace: Option<Tracer<'_>>) -> Result<Vec<f32>> {
        let all = self.run(tokens, LogitRows::All, trace)?;
        let n_vocab = self.model.config().n_vocab;
        self.logits = all[all.len() - n_vocab..].to_vec();
        Ok(all)
    }
}
