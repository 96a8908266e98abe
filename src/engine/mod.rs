//! Continuous batching: many requests over one model, each on a session of its own, advanced
//! together. Every [`Engine::step`] runs one forward pass for all running requests: decoding
//! requests contribute their next token, new requests a piece of their prompt (long prompts
//! are cut into pieces so they do not stall the others), and each weight matrix is read once
//! for all of them. Rows are summed as if each were alone ([`BatchSums::PerRow`]), so a reply
//! never depends on what else is in the batch: a greedy request gives the same tokens alone or
//! among others.
//!
//! Finished requests leave their sessions in a prefix cache (bounded in bytes, least recently
//! used first out): a new request starts from the cached session sharing the longest token
//! prefix with its prompt (a system prompt, the earlier turns of a chat), and evaluates only
//! the rest. Requests that arrive together share a prefix as well: a new request starts from
//! a copy of a running request's session when that holds at least [`MIN_SHARED_PREFIX`] more
//! of its prompt than the cache. And rather than evaluate a prefix a second time, the request
//! at the head of the queue (with those behind it) waits for a running request still reading
//! a prompt that shares at least that many more tokens with its own than any evaluated session
//! holds, a step at a time and only while that request advances, then copies its session.
//!
//! The engine does no I/O and owns no thread besides its compute pool: a server runs it on a
//! thread of its own, feeds it [`Request`]s and forwards the [`Event`]s of each step.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tramontane::engine::{Engine, EngineOptions, Event, Request};
//! use tramontane::tokenizer::EncodeOptions;
//! use tramontane::{GenerateOptions, Model};
//! # fn main() -> tramontane::Result<()> {
//! let model = Arc::new(Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf")?);
//! let mut engine = Engine::new(Arc::clone(&model), EngineOptions::default())?;
//! for text in ["The capital of France is", "Two plus two is"] {
//!     let prompt = model.tokenizer().encode(text, EncodeOptions::PROMPT)?;
//!     let options = GenerateOptions { max_tokens: Some(16), ..Default::default() };
//!     engine.submit(Request { prompt, options, logprobs: None })?;
//! }
//! while engine.has_work() {
//!     for event in engine.step() {
//!         if let Event::Token { id, text, .. } = event {
//!             print!("[{id}] {text}");
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

mod prefix_cache;

use std::collections::VecDeque;
use std::sync::Arc;

use prefix_cache::PrefixCache;

use crate::kv_cache::KvCacheType;
use crate::model::forward::{Forward, Output, Segment};
use crate::model::Model;
use crate::session::{Completion, FinishReason, GenerateOptions, OwnedSession, SessionOptions};
use crate::sums::BatchSums;
use crate::{Error, Result};

/// The most alternatives [`Request::logprobs`] may ask for (the OpenAI API's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// The fewest prompt tokens a request must gain to start from a copy of a running request's
/// session (over the longest prefix of its prompt in the prefix cache), or to wait for one
/// still reading its prompt (over the longest prefix any evaluated session holds). Below that
/// the gain does not pay: a copy moves the shared cells of every layer, and a wait holds
/// the queue for a step, while a few more prompt tokens cost little in a pass
/// that reads every weight once for the whole batch anyway. 16 lets a chat template's system
/// prompt (tens to hundreds of tokens) be shared, but not the few tokens of a turn's header.
pub const MIN_SHARED_PREFIX: usize = 16;

/// How an engine is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Requests decoded at once; more wait in the queue.
    pub slots: usize,
    /// Context of each request (prompt and reply), in tokens; 0 means the model's training
    /// context.
    pub context: usize,
    /// Worker threads of the compute pool; `None` means all cores.
    pub threads: Option<usize>,
    /// Most tokens in one step, over all requests (decoding ones come first).
    pub batch: usize,
    /// Most requests waiting for a slot; [`Engine::submit`] refuses more.
    pub queue: usize,
    /// Bytes of KV cache kept for prefix reuse once requests finish.
    pub prefix_cache_bytes: usize,
    /// KV cache element type.
    pub kv_cache: KvCacheType,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            slots: 4,
            context: 4096,
            threads: None,
            batch: 512,
            queue: 64,
            prefix_cache_bytes: 256 << 20,
            kv_cache: KvCacheType::F16,
        }
    }
}

/// One request: a prompt (tokens: render and tokenize it first) and how to continue it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// The prompt's tokens (with BOS where the model wants one).
    pub prompt: Vec<u32>,
    /// Sampling, budget and stop strings.
    pub options: GenerateOptions,
    /// Log-probabilities of each generated token, with this many most likely alternatives
    /// (0 to [`MAX_TOP_LOGPROBS`]); `None`: none.
    pub logprobs: Option<usize>,
}

/// Names a submitted request in the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The log-probability of a generated token and of the most likely alternatives, from the
/// model's distribution (log-softmax of the raw logits, before penalties and temperature).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprobs {
    /// The generated token's log-probability.
    pub logprob: f32,
    /// The most likely tokens and their log-probabilities, most likely first.
    pub top: Vec<(u32, f32)>,
}

/// Token counts of a finished request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Of those, how many came from the prefix cache (not evaluated again).
    pub cached_tokens: usize,
    /// Tokens sampled (an end-of-generation token included).
    pub completion_tokens: usize,
}

/// What happened to a request during a step.
#[derive(Debug)]
pub enum Event {
    /// A token was generated. `text` is the text that can be shown now: it may be empty (a
    /// character not complete yet, text held back because it may start a stop string) or
    /// hold more than this token's text.
    Token {
        /// The request.
        id: RequestId,
        /// The token (an end-of-generation token is not reported).
        token: u32,
        /// Text to append to the reply.
        text: String,
        /// When the request asked for them.
        logprobs: Option<TokenLogprobs>,
    },
    /// The request ended; its slot is free.
    Finished {
        /// The request.
        id: RequestId,
        /// Why.
        reason: FinishReason,
        /// The last text of the reply (what was held back until the end).
        text: String,
        /// Token counts.
        usage: Usage,
    },
    /// The request failed (an error during evaluation); its slot is free.
    Failed {
        /// The request.
        id: RequestId,
        /// What went wrong.
        error: Error,
    },
}

/// The engine's load, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Requests holding a slot.
    pub running: usize,
    /// Requests waiting for one.
    pub queued: usize,
    /// Sessions kept in the prefix cache.
    pub cached_sequences: usize,
    /// Their KV bytes.
    pub cached_bytes: usize,
}

/// A request holding a slot.
#[derive(Debug)]
struct Running {
    id: RequestId,
    session: OwnedSession,
    completion: Completion,
    logprobs: Option<usize>,
    usage: Usage,
}

/// A request waiting for a slot.
#[derive(Debug)]
struct Waiting {
    id: RequestId,
    request: Request,
    /// The running request it was last held back for, if any.
    held: Option<Hold>,
}

/// Why the request at the head of the queue was left there for a step: a running request was
/// still reading a prompt sharing a long prefix with its own.
#[derive(Clone, Copy, Debug)]
struct Hold {
    leader: RequestId,
    /// The tokens the leader had evaluated then, to see whether it advances.
    evaluated: usize,
}

/// Continuous batching over one model; see the module docs.
pub struct Engine {
    model: Arc<Model>,
    options: EngineOptions,
    session_options: SessionOptions,
    pool: rayon::ThreadPool,
    running: Vec<Running>,
    waiting: VecDeque<Waiting>,
    cache: PrefixCache,
    next_id: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("options", &self.options)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn invalid(what: String) -> Error {
    Error::InvalidArgument { what }
}

impl Engine {
    /// An engine over `model`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 slots, batch or queue, or session options out of range
    /// (threads, context; see [`Model::session`]).
    pub fn new(model: Arc<Model>, options: EngineOptions) -> Result<Engine> {
        for (name, value) in [
            ("slots", options.slots),
            ("batch", options.batch),
            ("queue", options.queue),
        ] {
            if value == 0 {
                return Err(invalid(format!("engine {name} must be at least 1")));
            }
        }
        let session_options = SessionOptions {
            context: options.context,
            threads: Some(1),
            kv_cache: options.kv_cache,
            batch: options.batch,
            exceed_training_context: false,
        };
        // Checks the context against the model, and the thread count.
        let probe = model.owned_session(SessionOptions {
            threads: options.threads,
            ..session_options.clone()
        })?;
        let threads = probe.threads();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("tramontane-engine-{i}"))
            .build()
            .map_err(|e| invalid(format!("cannot start {threads} threads: {e}")))?;
        Ok(Engine {
            cache: PrefixCache::new(options.prefix_cache_bytes),
            model,
            options,
            session_options,
            pool,
            running: Vec::new(),
            waiting: VecDeque::new(),
            next_id: 0,
        })
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// The context of each request, in tokens.
    pub fn n_ctx(&self) -> usize {
        match self.options.context {
            0 => self.model.config().context_length,
            n => n,
        }
    }

    /// The options the engine was made with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Queues a request.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the queue holds [`EngineOptions::queue`] requests already;
    /// [`Error::InvalidArgument`] for an empty prompt, a token outside the vocabulary, a
    /// prompt that does not fit the context, bad sampling options or too many logprobs.
    pub fn submit(&mut self, request: Request) -> Result<RequestId> {
        if self.waiting.len() >= self.options.queue {
            return Err(Error::QueueFull {
                capacity: self.options.queue,
            });
        }
        let n_vocab = self.model.config().n_vocab;
        if request.prompt.is_empty() {
            return Err(invalid("the prompt has no tokens".into()));
        }
        if let Some(&bad) = request.prompt.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(invalid(format!(
                "token id {bad} is outside the vocabulary of {n_vocab}"
            )));
        }
        if request.prompt.len() >= self.n_ctx() {
            return Err(invalid(format!(
                "the prompt has {} tokens; the context holds {} (prompt and reply)",
                request.prompt.len(),
                self.n_ctx()
            )));
        }
        request.options.sampling.validate()?;
        if request.logprobs.is_some_and(|n| n > MAX_TOP_LOGPROBS) {
            return Err(invalid(format!(
                "top logprobs must be at most {MAX_TOP_LOGPROBS}"
            )));
        }
        let id = RequestId(self.next_id);
        self.next_id += 1;
        self.waiting.push_back(Waiting {
            id,
            request,
            held: None,
        });
        Ok(id)
    }

    /// Drops a request, queued or running (its session goes to the prefix cache). False when
    /// the engine does not know it (it finished already).
    pub fn cancel(&mut self, id: RequestId) -> bool {
        if let Some(i) = self.waiting.iter().position(|w| w.id == id) {
            self.waiting.remove(i);
            return true;
        }
        match self.running.iter().position(|r| r.id == id) {
            Some(i) => {
                let r = self.running.swap_remove(i);
                self.cache.put(r.session);
                true
            }
            None => false,
        }
    }

    /// Whether a request is queued or running.
    pub fn has_work(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty()
    }

    /// The engine's load.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            running: self.running.len(),
            queued: self.waiting.len(),
            cached_sequences: self.cache.len(),
            cached_bytes: self.cache.bytes(),
        }
    }

    /// Admits waiting requests into free slots, then runs one forward pass over every running
    /// request and samples the next token of each whose prompt is complete. Returns what
    /// happened; an empty list when there is no work.
    pub fn step(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.admit(&mut events);
        if let Err(e) = self.evaluate() {
            // A failed pass leaves no request in a known state: fail them all.
            for r in self.running.drain(..) {
                events.push(Event::Failed {
                    id: r.id,
                    error: clone_error(&e),
                });
            }
            return events;
        }
        let mut i = 0;
        while i < self.running.len() {
            match self.sample(i, &mut events) {
                Ok(false) => i += 1,
                Ok(true) => {
                    let r = self.running.swap_remove(i);
                    self.cache.put(r.session);
                }
                Err(error) => {
                    let r = self.running.swap_remove(i);
                    events.push(Event::Failed { id: r.id, error });
                }
            }
        }
        events
    }

    /// Moves waiting requests into free slots, in order, each on the session holding the
    /// longest prefix of its prompt (see [`start`](Self::start)). Stops early, for this step,
    /// when the request at the head should wait for a leader (see [`hold`](Self::hold)): the
    /// ones behind it wait too, so that the queue stays first come, first served.
    fn admit(&mut self, events: &mut Vec<Event>) {
        while self.running.len() < self.options.slots {
            let Some(head) = self.waiting.front() else {
                return;
            };
            if let Some(hold) = self.hold(head) {
                if let Some(head) = self.waiting.front_mut() {
                    head.held = Some(hold);
                }
                return;
            }
            let Some(w) = self.waiting.pop_front() else {
                return;
            };
            match self.start(w.id, w.request) {
                Ok(r) => self.running.push(r),
                Err(error) => events.push(Event::Failed { id: w.id, error }),
            }
        }
    }

    /// Whether `w`, at the head of the queue, should wait a step for a running request (the
    /// leader) that is reading a prompt sharing at least [`MIN_SHARED_PREFIX`] more tokens with
    /// its own than any evaluated session holds: next step it can copy the leader's session
    /// instead of evaluating that prefix again. The hold to record, or None to admit it now.
    ///
    /// A request waits on one leader only (the first it was held for), and only while that
    /// leader advances: not on one that is gone (finished, cancelled, failed), whose budget is
    /// spent (it evaluates nothing more), or whose prompt got no room in the last pass (the
    /// batch was full). So it waits at most the steps the leader takes to evaluate the shared
    /// prefix, plus one when the leader stalls.
    fn hold(&self, w: &Waiting) -> Option<Hold> {
        let prompt = &w.request.prompt;
        let reusable = self.reusable_prefix(prompt);
        let worth_waiting_for = |r: &&Running| {
            let shared = common_prefix(r.session.tokens(), prompt);
            !r.completion.budget_spent()
                && r.session.n_cached() < shared
                && shared >= reusable + MIN_SHARED_PREFIX
        };
        let leader = match w.held {
            Some(hold) => self
                .running
                .iter()
                .find(|r| r.id == hold.leader)
                .filter(|r| r.session.n_cached() > hold.evaluated)
                .filter(worth_waiting_for),
            None => self
                .running
                .iter()
                .filter(worth_waiting_for)
                .max_by_key(|r| common_prefix(r.session.tokens(), prompt)),
        }?;
        Some(Hold {
            leader: leader.id,
            evaluated: leader.session.n_cached(),
        })
    }

    /// The most tokens of `prompt` that an evaluated session holds: one in the prefix cache or
    /// a running request's.
    fn reusable_prefix(&self, prompt: &[u32]) -> usize {
        let running = self.best_running(prompt).map_or(0, |(_, n)| n);
        self.cache.best_len(prompt).max(running)
    }

    /// The running request whose evaluated tokens share the longest prefix with `prompt`, by
    /// index, and that length; None when none shares a token.
    fn best_running(&self, prompt: &[u32]) -> Option<(usize, usize)> {
        self.running
            .iter()
            .map(|r| evaluated_prefix(&r.session, prompt))
            .enumerate()
            .max_by_key(|&(_, n)| n)
            .filter(|&(_, n)| n > 0)
    }

    /// The session a new request with `prompt` starts on, holding the longest prefix of it
    /// that is worth taking: a copy of the shared prefix of a running request's session when
    /// that holds at least [`MIN_SHARED_PREFIX`] more of it than the prefix cache, else the
    /// best cached session, else a new one.
    fn session_for(&mut self, prompt: &[u32]) -> Result<OwnedSession> {
        let from_cache = self.cache.best_len(prompt);
        if let Some((i, n)) = self.best_running(prompt) {
            if n >= from_cache + MIN_SHARED_PREFIX {
                if let Some(r) = self.running.get(i) {
                    // Only the shared cells: the other request's history may be far longer.
                    return r.session.fork_prefix(n);
                }
            }
        }
        match self.cache.take_best(prompt) {
            Some((session, _)) => Ok(session),
            None => self.model.owned_session(self.session_options.clone()),
        }
    }

    /// A running request for `request`, on the session from [`session_for`](Self::session_for)
    /// with its history made the prompt (what it shares with the session is kept, the rest
    /// queued for evaluation).
    fn start(&mut self, id: RequestId, request: Request) -> Result<Running> {
        let mut session = self.session_for(&request.prompt)?;
        let cached = session.set_tokens(&request.prompt)?;
        let completion = Completion::new(&session, &request.options)?;
        Ok(Running {
            id,
            usage: Usage {
                prompt_tokens: request.prompt.len(),
                cached_tokens: cached.min(session.n_cached()),
                completion_tokens: 0,
            },
            session,
            completion,
            logprobs: request.logprobs,
        })
    }

    /// One forward pass: every decoding request's pending token first, then pieces of the
    /// prompts still being read, up to the batch size.
    fn evaluate(&mut self) -> Result<()> {
        let mut budget = self.options.batch;
        let mut takes: Vec<(usize, usize)> = Vec::new();
        // Decoding requests (one pending token) before prompts, so streams never stall.
        let mut order: Vec<usize> = (0..self.running.len()).collect();
        for r in &mut self.running {
            // A request whose budget is spent needs no more logits.
            if !r.completion.limit_reached(&mut r.session)? {
                r.session.needs_evaluation()?;
            }
        }
        order.sort_by_key(|&i| self.running[i].session.n_pending());
        for i in order {
            let pending = self.running[i].session.n_pending();
            if pending == 0 || budget == 0 {
                continue;
            }
            let n = pending.min(budget);
            budget -= n;
            takes.push((i, n));
        }
        if takes.is_empty() {
            return Ok(());
        }
        takes.sort_unstable();
        let model = Arc::clone(&self.model);
        let fwd = Forward::new(&model, BatchSums::PerRow, self.n_ctx());
        {
            let mut segments: Vec<Segment<'_>> = Vec::with_capacity(takes.len());
            let mut take = takes.iter().peekable();
            for (i, r) in self.running.iter_mut().enumerate() {
                if let Some(&&(j, n)) = take.peek() {
                    if i == j {
                        segments.push(r.session.next_segment(n)?);
                        take.next();
                    }
                }
            }
            self.pool.install(|| fwd.run_segments(&mut segments))?;
        }
        for &(i, n) in &takes {
            self.running[i].session.segment_done(n);
        }
        Ok(())
    }

    /// Samples the next token of request `i` when its logits are ready; true when it ended.
    fn sample(&mut self, i: usize, events: &mut Vec<Event>) -> Result<bool> {
        let r = &mut self.running[i];
        if r.completion.finish.is_none() {
            if r.session.n_pending() > 0 || r.session.logits().is_empty() {
                return Ok(false); // its prompt is still being read
            }
            let logits = r.session.logits();
            let token = r.completion.sampler.sample(logits, r.session.tokens());
            let logprobs = r.logprobs.map(|n| token_logprobs(logits, token, n));
            r.completion.accept(&mut r.session, token)?;
            r.completion.limit_reached(&mut r.session)?;
            let eog = self.model.tokenizer().is_eog(token);
            if !eog {
                events.push(Event::Token {
                    id: r.id,
                    token,
                    text: r.completion.take_ready(),
                    logprobs,
                });
            }
        }
        let Some(reason) = r.completion.finish else {
            return Ok(false);
        };
        r.usage.completion_tokens = r.completion.n_sampled;
        events.push(Event::Finished {
            id: r.id,
            reason,
            text: r.completion.take_ready(),
            usage: r.usage,
        });
        Ok(true)
    }

    /// The embedding of `tokens`: the mean of their final hidden states (after the output
    /// norm), normalised to unit length, as llama.cpp's server gives for decoder models with
    /// mean pooling. Runs now, between steps.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no tokens, too many for the context, or a token outside
    /// the vocabulary.
    pub fn embed(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(invalid("nothing to embed: no tokens".into()));
        }
        let mut session = self.model.owned_session(self.session_options.clone())?;
        session.push_tokens(tokens)?;
        let model = Arc::clone(&self.model);
        let fwd = Forward::new(&model, BatchSums::PerRow, self.n_ctx());
        let mut pooled = Vec::new();
        {
            let mut segment = session.next_segment(tokens.len())?;
            segment.output = Output::MeanHidden(&mut pooled);
            self.pool.install(|| fwd.run_segments(&mut [segment]))?;
        }
        let norm = pooled
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            pooled
                .iter_mut()
                .for_each(|v| *v = (f64::from(*v) / norm) as f32);
        }
        Ok(pooled)
    }
}

/// The number of leading tokens `a` and `b` share.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The number of leading tokens of `prompt` whose K/V `session` holds (its evaluated tokens;
/// pending ones do not count).
fn evaluated_prefix(session: &OwnedSession, prompt: &[u32]) -> usize {
    let tokens = session.tokens();
    common_prefix(&tokens[..session.n_cached().min(tokens.len())], prompt)
}

/// The log-softmax of `logits` at `token`, and the `n` most likely tokens.
fn token_logprobs(logits: &[f32], token: u32, n: usize) -> TokenLogprobs {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .map(|&l| (f64::from(l) - f64::from(max)).exp())
        .sum();
    let log_z = f64::from(max) + sum.ln();
    let lp = |l: f32| (f64::from(l) - log_z) as f32;
    let top = crate::session::top_logits(logits, n)
        .into_iter()
        .map(|(id, l)| (id, lp(l)))
        .collect();
    TokenLogprobs {
        logprob: logits
            .get(token as usize)
            .map_or(f32::NEG_INFINITY, |&l| lp(l)),
        top,
    }
}

/// A failed pass is reported to every request it carried; errors do not implement `Clone`, so
/// each gets one that says the same.
fn clone_error(e: &Error) -> Error {
    let mut what = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        what = format!("{what}: {s}");
        source = s.source();
    }
    Error::InvalidArgument { what }
}
