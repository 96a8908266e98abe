//! Sessions: one KV cache, one token history and one thread pool each, over a shared [`Model`].
//!
//! A session holds a sequence of tokens. Those whose K/V are in the cache are *cached*; tokens
//! appended since the last evaluation (a prompt not yet run, the last token of a reply) are
//! *pending* and go in front of the next evaluation. The history can be cut back
//! ([`truncate`](Session::truncate)), replaced while reusing its longest common prefix
//! ([`set_tokens`](Session::set_tokens)), copied ([`fork`](Session::fork)) and saved to a
//! file ([`save_state`](Session::save_state) / [`load_state`](Session::load_state)).

mod completion;
mod generate;
mod state;

pub(crate) use completion::Completion;
pub(crate) use generate::top_logits;
pub use generate::{FinishReason, Generate, GenerateOptions};

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use crate::kv_cache::{ring_cells, KvCache, KvCacheType, KvShape};
use crate::model::forward::{Forward, LogitRows, Output, Segment, Tracer};
use crate::model::Model;
use crate::sums::BatchSums;
use crate::tokenizer::EncodeOptions;
use crate::{Error, Result};

/// Tokens per forward pass by default: llama.cpp's default micro-batch (`n_ubatch`).
pub const DEFAULT_BATCH: usize = 512;

/// The most threads a session takes, as a multiple of the logical CPUs: more only queue.
pub const MAX_THREADS_PER_CPU: usize = 4;

/// The longest context a session accepts even when asked to go past the training length:
/// positions must stay exact in the f32 arithmetic of RoPE.
pub const MAX_CONTEXT: usize = 1 << 24;

/// How a session is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOptions {
    /// Context length (tokens the session can hold). 0 means the model's training context.
    /// Memory is taken as tokens arrive, not up front.
    pub context: usize,
    /// Worker threads; `None` means all cores. At most [`MAX_THREADS_PER_CPU`] per logical
    /// CPU.
    pub threads: Option<usize>,
    /// KV cache element type (f16 like llama.cpp by default).
    pub kv_cache: KvCacheType,
    /// Most tokens per forward pass: longer inputs run in pieces of this size, like
    /// llama.cpp's micro-batches (which decide where results match its own bit for bit).
    pub batch: usize,
    /// Accept a context longer than the model was trained for (refused otherwise: the model's
    /// output past that length is usually garbage).
    pub exceed_training_context: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            context: 4096,
            threads: None,
            kv_cache: KvCacheType::F16,
            batch: DEFAULT_BATCH,
            exceed_training_context: false,
        }
    }
}

/// The model a session runs: borrowed, or shared through an `Arc` (an owned session).
#[derive(Clone, Debug)]
enum ModelRef<'m> {
    Borrowed(&'m Model),
    Shared(Arc<Model>),
}

impl Deref for ModelRef<'_> {
    type Target = Model;
    fn deref(&self) -> &Model {
        match self {
            ModelRef::Borrowed(m) => m,
            ModelRef::Shared(m) => m,
        }
    }
}

/// A session that owns its model reference: `'static`, `Send`, storable in a map.
pub type OwnedSession = Session<'static>;

/// A conversation state over a model: its own KV cache, token history and thread pool.
pub struct Session<'m> {
    model: ModelRef<'m>,
    n_ctx: usize,
    batch: usize,
    threads: usize,
    /// Started on the first evaluation (a session that a batch engine evaluates never needs
    /// one), and stopped with the session.
    pool: Option<rayon::ThreadPool>,
    cache: KvCache,
    /// Every token the session holds: `tokens[..n_cached]` are in the cache, the rest pending.
    tokens: Vec<u32>,
    n_cached: usize,
    /// Logits after `tokens[..n_cached]`, when `logits_valid`.
    logits: Vec<f32>,
    logits_valid: bool,
    /// Tokens run through the model since the session was made.
    evaluated: u64,
}

impl std::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("n_ctx", &self.n_ctx)
            .field("n_tokens", &self.tokens.len())
            .field("n_cached", &self.n_cached)
            .field("threads", &self.threads)
            .field("kv_bytes", &self.cache.bytes())
            .finish_non_exhaustive()
    }
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument { what }
}

/// The thread count `requested` resolves to, checked against the machine.
fn resolve_threads(requested: Option<usize>) -> Result<usize> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match requested {
        None => Ok(cpus),
        Some(0) => Err(invalid("threads must be at least 1".into())),
        Some(t) if t > MAX_THREADS_PER_CPU * cpus => Err(invalid(format!(
            "threads = {t} is more than {MAX_THREADS_PER_CPU} per logical CPU ({cpus} CPUs)"
        ))),
        Some(t) => Ok(t),
    }
}

/// A pool of `threads` workers for one session.
fn start_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tramontane-{i}"))
        .build()
        .map_err(|e| invalid(format!("cannot start {threads} threads: {e}")))
}

impl Model {
    /// A new session with an empty KV cache.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a thread count of 0 or above [`MAX_THREADS_PER_CPU`] per
    /// CPU, a batch of 0, or a context above the training length (unless
    /// [`SessionOptions::exceed_training_context`]) or above [`MAX_CONTEXT`].
    pub fn session(&self, opts: SessionOptions) -> Result<Session<'_>> {
        Session::new(ModelRef::Borrowed(self), &opts)
    }

    /// [`session`](Self::session) holding the model through its `Arc`: a `'static` session
    /// that can be stored and moved between threads freely.
    pub fn owned_session(self: &Arc<Self>, opts: SessionOptions) -> Result<OwnedSession> {
        Session::new(ModelRef::Shared(Arc::clone(self)), &opts)
    }
}

impl<'m> Session<'m> {
    fn new(model: ModelRef<'m>, opts: &SessionOptions) -> Result<Session<'m>> {
        let c = model.config();
        let n_ctx = match opts.context {
            0 => c.context_length,
            n => n,
        };
        if n_ctx > c.context_length && !opts.exceed_training_context {
            return Err(invalid(format!(
                "context = {n_ctx} is above the model's training context of {} tokens \
                 (set exceed_training_context to allow it)",
                c.context_length
            )));
        }
        if n_ctx > MAX_CONTEXT {
            return Err(invalid(format!(
                "context = {n_ctx} is above the supported maximum of {MAX_CONTEXT}"
            )));
        }
        if opts.batch == 0 {
            return Err(invalid("batch must be at least 1".into()));
        }
        let threads = resolve_threads(opts.threads)?;
        let layer_cells = (0..c.n_layer)
            .map(|il| match c.is_swa(il) {
                true => ring_cells(c.sliding_window, opts.batch).min(n_ctx),
                false => n_ctx,
            })
            .collect();
        let shape = KvShape {
            n_kv_head: c.n_kv_head,
            head_dim: c.head_dim,
            layer_cells,
        };
        Ok(Session {
            model,
            n_ctx,
            batch: opts.batch,
            threads,
            pool: None,
            cache: KvCache::new(shape, opts.kv_cache),
            tokens: Vec::new(),
            n_cached: 0,
            logits: Vec::new(),
            logits_valid: false,
            evaluated: 0,
        })
    }

    /// The model this session runs.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Context length in tokens: the most the session can hold.
    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Every token the session holds, oldest first: the cached ones, then the pending ones.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// How many of [`tokens`](Self::tokens) are in the KV cache.
    pub fn n_cached(&self) -> usize {
        self.n_cached
    }

    /// The tokens appended since the last evaluation (they run in front of the next one).
    pub fn pending(&self) -> &[u32] {
        &self.tokens[self.n_cached..]
    }

    /// Tokens run through the model since the session was made (the work done, including
    /// anything evaluated again after a truncation).
    pub fn evaluated_tokens(&self) -> u64 {
        self.evaluated
    }

    /// Bytes the KV cache has allocated.
    pub fn kv_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Logits after the last evaluated token; empty before the first evaluation and after a
    /// change to the history that has not been evaluated yet.
    pub fn logits(&self) -> &[f32] {
        if self.logits_valid {
            &self.logits
        } else {
            &[]
        }
    }

    /// Forgets everything: the next token goes to position 0. The cache keeps its memory.
    pub fn reset(&mut self) {
        self.tokens.clear();
        self.n_cached = 0;
        self.logits_valid = false;
    }

    /// Checks that `new` tokens can be appended: ids in the vocabulary, room in the context.
    fn check_append(&self, new: &[u32]) -> Result<()> {
        let n_vocab = self.model.config().n_vocab;
        if let Some(&bad) = new.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(invalid(format!(
                "token id {bad} is outside the vocabulary of {n_vocab}"
            )));
        }
        if self.tokens.len() + new.len() > self.n_ctx {
            return Err(Error::ContextFull { n_ctx: self.n_ctx });
        }
        Ok(())
    }

    /// Appends `tokens` as pending, without evaluating them.
    ///
    /// # Errors
    /// An id outside the vocabulary, or [`Error::ContextFull`]; the session is unchanged.
    pub fn push_tokens(&mut self, tokens: &[u32]) -> Result<()> {
        self.check_append(tokens)?;
        self.tokens.extend_from_slice(tokens);
        Ok(())
    }

    /// Cuts the history back to its first `n` tokens. The KV cache keeps what it has for
    /// them; the logits are recomputed (by evaluating the last kept token again) when next
    /// needed. Where a sliding-window layer's ring no longer holds keys that the kept tokens
    /// need (a cut more than one batch back, past the ring's wrap), those tokens are
    /// evaluated again from the start.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `n` is more than the tokens held.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n > self.tokens.len() {
            return Err(invalid(format!(
                "cannot truncate to {n} tokens: the session holds {}",
                self.tokens.len()
            )));
        }
        if n == self.tokens.len() {
            return Ok(());
        }
        self.tokens.truncate(n);
        if n < self.n_cached {
            let c = self.model.config();
            let windows: Vec<Option<usize>> = (0..c.n_layer)
                .map(|il| c.is_swa(il).then_some(c.sliding_window))
                .collect();
            self.n_cached = if self.cache.can_truncate(self.n_cached, n, &windows) {
                n
            } else {
                0
            };
            self.logits_valid = false;
        }
        Ok(())
    }

    /// Makes the history `tokens`, keeping the longest common prefix with what the session
    /// holds (its K/V are reused) and appending the rest as pending. Returns the number of
    /// tokens kept.
    ///
    /// # Errors
    /// An id outside the vocabulary or [`Error::ContextFull`]; the session is unchanged.
    pub fn set_tokens(&mut self, tokens: &[u32]) -> Result<usize> {
        let common = self
            .tokens
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        let new = &tokens[common..];
        let n_vocab = self.model.config().n_vocab;
        if let Some(&bad) = new.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(invalid(format!(
                "token id {bad} is outside the vocabulary of {n_vocab}"
            )));
        }
        if tokens.len() > self.n_ctx {
            return Err(Error::ContextFull { n_ctx: self.n_ctx });
        }
        self.truncate(common)?;
        self.tokens.extend_from_slice(new);
        Ok(common)
    }

    /// A copy of this session (history, cache and logits) with its own thread pool: the two
    /// continue independently.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the cache cannot be copied.
    pub fn fork(&self) -> Result<Session<'m>> {
        let cache = self.cache.try_clone()?;
        let (tokens, logits) = (self.tokens.clone(), self.logits.clone());
        Ok(self.copy_with(cache, tokens, self.n_cached, (logits, self.logits_valid)))
    }

    /// A copy of this session's first `n` tokens (at most the evaluated ones), holding only
    /// their K/V: where [`fork`](Self::fork) copies the whole cache, this copies `n` cells per
    /// layer (another session sharing a short prefix of a long history costs that prefix, not
    /// the history). The copy has no logits until it evaluates something. When a sliding-window
    /// layer's ring has wrapped (its first cells were overwritten), this is `fork` then
    /// [`truncate`](Self::truncate), which keeps what the ring allows.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the cells cannot be copied.
    pub fn fork_prefix(&self, n: usize) -> Result<Session<'m>> {
        let keep = n.min(self.n_cached);
        let layers = self.model.config().n_layer;
        if (0..layers).any(|il| self.cache.cells(il, self.n_cached).wrapped) {
            let mut copy = self.fork()?;
            copy.truncate(keep)?;
            return Ok(copy);
        }
        let cache = self.cache.try_clone_prefix(keep)?;
        Ok(self.copy_with(
            cache,
            self.tokens[..keep].to_vec(),
            keep,
            (Vec::new(), false),
        ))
    }

    /// A session with this one's model and settings (its own thread pool, made on first use)
    /// over the given cache, history and logits (with whether they are valid).
    fn copy_with(
        &self,
        cache: KvCache,
        tokens: Vec<u32>,
        n_cached: usize,
        (logits, logits_valid): (Vec<f32>, bool),
    ) -> Session<'m> {
        Session {
            model: self.model.clone(),
            n_ctx: self.n_ctx,
            batch: self.batch,
            threads: self.threads,
            pool: None,
            cache,
            tokens,
            n_cached,
            logits,
            logits_valid,
            evaluated: self.evaluated,
        }
    }

    /// Writes the session's state (history, cached K/V, logits) to `path`, through a
    /// temporary file renamed into place (an existing file there is replaced whole or not at
    /// all). [`load_state`](Self::load_state) reads it back.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`; [`Error::NotAFile`] or [`Error::OutputIsInput`] when `path`
    /// is a directory or device, or the model file itself.
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<()> {
        state::save(self, path.as_ref())
    }

    /// Replaces this session's state with one saved by [`save_state`](Self::save_state)
    /// from a session of the same model and settings (KV type, context, batch).
    ///
    /// # Errors
    /// [`Error::BadState`] when the file is not a state file, was saved for another model or
    /// with other settings, has another format version or inconsistent sizes, or is
    /// truncated; [`Error::Io`] when it cannot be read. The session is unchanged then.
    pub fn load_state(&mut self, path: impl AsRef<Path>) -> Result<()> {
        state::load(self, path.as_ref())
    }

    /// Evaluates the pending tokens, in pieces of at most `batch`. With `All` it returns one
    /// row of logits per pending token; with `Last` only the final piece computes logits, which
    /// become the session's (and nothing is returned).
    fn evaluate(&mut self, rows: LogitRows, trace: Option<Tracer<'_>>) -> Result<Vec<f32>> {
        if self.n_cached == self.tokens.len() {
            return Err(invalid("nothing to evaluate: no pending tokens".into()));
        }
        self.cache.reserve(self.tokens.len())?;
        let mut all = Vec::new();
        let mut piece_logits = Vec::new();
        if rows == LogitRows::All {
            let n = (self.tokens.len() - self.n_cached) * self.model.config().n_vocab;
            all.try_reserve_exact(n).map_err(|_| Error::OutOfMemory {
                what: format!("{n} logits"),
            })?;
        }
        while self.n_cached < self.tokens.len() {
            let first = self.n_cached;
            let end = self.tokens.len().min(first + self.batch);
            let last_piece = end == self.tokens.len();
            let piece_rows = match rows {
                LogitRows::All => LogitRows::All,
                _ if last_piece => rows,
                _ => LogitRows::None,
            };
            let fwd = Forward {
                trace,
                ..Forward::new(&self.model, BatchSums::LlamaCpp, self.n_ctx)
            };
            let chunk = &self.tokens[first..end];
            let cache = &mut self.cache;
            // The final piece's last row goes straight into the session's logits (its memory
            // reused from token to token); batch rows go to `all`.
            self.logits_valid = false;
            let out = match rows {
                LogitRows::All => &mut piece_logits,
                _ => &mut self.logits,
            };
            let pool = match &mut self.pool {
                Some(p) => p,
                slot => slot.insert(start_pool(self.threads)?),
            };
            pool.install(|| fwd.run(cache, chunk, first, piece_rows, out))?;
            self.n_cached = end;
            self.evaluated += (end - first) as u64;
            if rows == LogitRows::All {
                all.extend_from_slice(&piece_logits);
            }
        }
        let n_vocab = self.model.config().n_vocab;
        if rows == LogitRows::All && all.len() >= n_vocab {
            self.logits.clear();
            self.logits.extend_from_slice(&all[all.len() - n_vocab..]);
        }
        self.logits_valid = self.logits.len() == n_vocab;
        Ok(all)
    }

    /// Makes sure the logits after every held token are known: evaluates what is pending,
    /// or the last token again when the history changed without new tokens.
    fn ensure_logits(&mut self) -> Result<()> {
        if self.needs_evaluation()? {
            self.evaluate(LogitRows::Last, None)?;
        }
        Ok(())
    }

    /// Whether the logits after every held token must be computed; when they are unknown with
    /// nothing pending, the last token is made pending again (stepping back one token is always
    /// possible, even on a wrapped ring: the ring is longer than the window).
    pub(crate) fn needs_evaluation(&mut self) -> Result<bool> {
        if self.n_cached < self.tokens.len() {
            return Ok(true);
        }
        if self.logits_valid {
            return Ok(false);
        }
        if self.tokens.is_empty() {
            return Err(invalid(
                "the session is empty: there is nothing to continue from".into(),
            ));
        }
        self.n_cached -= 1;
        Ok(true)
    }

    /// The next `max` pending tokens (at most) as a segment of a batch, with room reserved in
    /// the cache; it asks for logits when it takes the last pending token. Mark it evaluated
    /// with [`segment_done`](Self::segment_done).
    pub(crate) fn next_segment(&mut self, max: usize) -> Result<Segment<'_>> {
        let first = self.n_cached;
        let end = self.tokens.len().min(first + max.max(1));
        self.cache.reserve(self.tokens.len())?;
        self.logits_valid = false;
        let output = if end == self.tokens.len() {
            Output::LastLogits(&mut self.logits)
        } else {
            Output::None
        };
        Ok(Segment {
            cache: &mut self.cache,
            tokens: &self.tokens[first..end],
            first_pos: first,
            output,
        })
    }

    /// Records that the segment of `n` tokens taken by [`next_segment`](Self::next_segment)
    /// was evaluated.
    pub(crate) fn segment_done(&mut self, n: usize) {
        self.n_cached += n;
        self.evaluated += n as u64;
        self.logits_valid =
            self.n_cached == self.tokens.len() && self.logits.len() == self.model.config().n_vocab;
    }

    /// The number of tokens not yet evaluated.
    pub(crate) fn n_pending(&self) -> usize {
        self.tokens.len() - self.n_cached
    }

    /// Appends `tokens` and evaluates everything pending; returns the logits of the last token.
    ///
    /// # Errors
    /// An id outside the vocabulary or [`Error::ContextFull`] (nothing changes then), or a
    /// failure during evaluation.
    pub fn eval(&mut self, tokens: &[u32]) -> Result<&[f32]> {
        self.push_tokens(tokens)?;
        self.ensure_logits()?;
        Ok(&self.logits)
    }

    /// Appends `tokens`, evaluates everything pending and returns every pending position's
    /// logits, token-major (`n_pending * n_vocab` values).
    pub fn eval_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        self.push_tokens(tokens)?;
        self.evaluate(LogitRows::All, None)
    }

    /// [`eval_all`](Self::eval_all), handing every intermediate tensor to `trace` (see
    /// [`Tracer`]): to find where a model departs from a reference implementation.
    pub fn eval_traced(&mut self, tokens: &[u32], trace: Tracer<'_>) -> Result<Vec<f32>> {
        self.push_tokens(tokens)?;
        self.evaluate(LogitRows::All, Some(trace))
    }

    /// Tokenizes `prompt` (control tokens written in it are parsed; BOS added when the session
    /// is empty and the model asks for it), and returns a streaming iterator of the text
    /// generated after it (see [`Generate`]).
    ///
    /// # Errors
    /// Bad options ([`Error::InvalidArgument`] naming the field), a prompt that does not fit
    /// the context ([`Error::ContextFull`]; nothing changes then), or a failed evaluation.
    pub fn generate(
        &mut self,
        prompt: &str,
        options: &GenerateOptions,
    ) -> Result<Generate<'_, 'm>> {
        let encode = EncodeOptions {
            add_special: self.tokens.is_empty(),
            parse_special: true,
        };
        let tokens = self.model.tokenizer().encode(prompt, encode)?;
        self.generate_tokens(&tokens, options)
    }

    /// [`generate`](Self::generate) from token ids.
    pub fn generate_tokens(
        &mut self,
        tokens: &[u32],
        options: &GenerateOptions,
    ) -> Result<Generate<'_, 'm>> {
        Generate::start(self, tokens, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_send_and_owned_ones_static() {
        fn check<T: Send + 'static>() {}
        check::<OwnedSession>();
    }

    #[test]
    fn thread_counts_are_bounded() {
        assert!(resolve_threads(Some(0)).is_err());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(resolve_threads(Some(1)).unwrap(), 1);
        assert_eq!(resolve_threads(None).unwrap(), cpus);
        assert!(resolve_threads(Some(MAX_THREADS_PER_CPU * cpus)).is_ok());
        let e = resolve_threads(Some(MAX_THREADS_PER_CPU * cpus + 1)).unwrap_err();
        assert!(e.to_string().contains("threads"), "{e}");
        assert!(resolve_threads(Some(usize::MAX)).is_err());
    }
}
