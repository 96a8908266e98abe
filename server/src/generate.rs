//! Running a generation request on the engine thread, for both completion endpoints: submit
//! its choices, then either collect them (a JSON reply) or stream them (server-sent events);
//! the endpoints only say how their chunks look ([`Chunks`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::{json, Value};
use tramontane::engine::{Request, TokenLogprobs};
use tramontane::FinishReason;

use crate::engine_thread::{ChoiceUpdate, Submitted, Update};
use crate::openai::error::ApiError;
use crate::openai::params::Generation;
use crate::request_log::RequestLog;
use crate::state::AppState;

/// One generation request: its prompts (tokens), each run `generation.n` times.
#[derive(Debug)]
pub struct Job {
    /// The prompts; choice `p * n + j` is the `j`-th reply to prompt `p`.
    pub prompts: Vec<Vec<u32>>,
    /// Sampling, budget, stop strings, n, streaming.
    pub generation: Generation,
    /// Top alternatives per token, when log-probabilities are asked for.
    pub logprobs: Option<usize>,
}

impl Job {
    /// The number of choices.
    pub fn n_choices(&self) -> usize {
        self.prompts.len() * self.generation.n
    }
}

/// Token counts of a whole request, OpenAI's `usage`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    /// Prompt tokens, each prompt counted once (not once per choice).
    pub prompt: usize,
    /// Of those, tokens the prefix cache supplied (first choice of each prompt).
    pub cached: usize,
    /// Tokens generated over all choices.
    pub completion: usize,
}

impl Totals {
    /// The `usage` object.
    pub fn json(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached},
        })
    }
}

/// A finished choice.
#[derive(Debug, Default)]
pub struct Choice {
    /// The reply.
    pub text: String,
    /// Generated tokens and their log-probabilities (when asked for).
    pub tokens: Vec<(u32, Option<TokenLogprobs>)>,
    /// Why it ended.
    pub finish: Option<FinishReason>,
}

/// What every stream chunk of one response repeats, for either endpoint.
#[derive(Debug)]
pub struct ChunkHead {
    /// The response id.
    pub id: String,
    /// The chunks' kind (`chat.completion.chunk`, `text_completion`).
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model's name.
    pub model: String,
    /// Whether the last chunk carries the usage.
    pub include_usage: bool,
}

impl ChunkHead {
    /// A chunk with these `choices`. OpenAI sends `"usage": null` on every chunk but the last
    /// when usage is asked for.
    pub fn chunk(&self, choices: Value) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }
}

/// The prompt must leave room for at least one generated token.
pub fn check_prompt(tokens: &[u32], n_ctx: usize, param: &str) -> Result<(), ApiError> {
    if tokens.is_empty() {
        return Err(ApiError::bad_request("the prompt is empty", Some(param)));
    }
    if tokens.len() >= n_ctx {
        return Err(ApiError::too_long(tokens.len(), n_ctx, param));
    }
    Ok(())
}

/// Submits every choice of `job` (all or none).
pub async fn submit(state: &AppState, job: &Job, arrived: Instant) -> Result<Submitted, ApiError> {
    let n = job.generation.n;
    let requests = job
        .prompts
        .iter()
        .flat_map(|prompt| (0..n).map(move |j| (prompt, j)))
        .map(|(prompt, j)| Request {
            prompt: prompt.clone(),
            options: job.generation.choice(j),
            logprobs: job.logprobs,
        })
        .collect();
    Ok(state.engine.submit(requests, arrived).await?)
}

/// The error for a request whose events stopped before it finished: the engine cancelled it
/// (shutdown) or stopped.
fn interrupted() -> ApiError {
    ApiError::server(
        StatusCode::SERVICE_UNAVAILABLE,
        "the request was cancelled: the server is shutting down",
        "cancelled",
    )
}

/// Waits for every choice; the reply in choice order and the usage.
pub async fn collect(
    mut submitted: Submitted,
    job: &Job,
    log: &RequestLog,
) -> Result<(Vec<Choice>, Totals), ApiError> {
    let n_choices = job.n_choices();
    let mut choices: Vec<Choice> = (0..n_choices).map(|_| Choice::default()).collect();
    let mut totals = Totals::default();
    let mut remaining = n_choices;
    while remaining > 0 {
        let Some(ChoiceUpdate { index, update }) = submitted.events.recv().await else {
            return Err(interrupted());
        };
        let Some(choice) = choices.get_mut(index) else {
            continue;
        };
        match update {
            Update::Token {
                token,
                text,
                logprobs,
            } => {
                choice.text += &text;
                choice.tokens.push((token, logprobs));
            }
            Update::Finished {
                reason,
                text,
                usage,
            } => {
                choice.text += &text;
                choice.finish = Some(reason);
                remaining -= 1;
                totals.completion += usage.completion_tokens;
                if index % job.generation.n == 0 {
                    totals.prompt += usage.prompt_tokens;
                    totals.cached += usage.cached_tokens;
                }
                log.tokens(0, usage.completion_tokens);
            }
            Update::Failed(message) => {
                return Err(ApiError::server(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("generation failed: {message}"),
                    "generation_failed",
                ))
            }
        }
    }
    Ok((choices, totals))
}

/// How an endpoint's stream chunks look. Each method returns the JSON chunks to send.
pub trait Chunks: Send + 'static {
    /// Before any token (chat: the role of each choice).
    fn opening(&mut self, n_choices: usize) -> Vec<Value>;
    /// A token of choice `index` with the text it made visible (may be empty).
    fn token(
        &mut self,
        index: usize,
        token: u32,
        text: &str,
        logprobs: Option<&TokenLogprobs>,
    ) -> Vec<Value>;
    /// Choice `index` ended, with its last text.
    fn finished(&mut self, index: usize, text: &str, reason: FinishReason) -> Vec<Value>;
    /// The usage chunk (`stream_options.include_usage`).
    fn usage(&mut self, totals: &Totals) -> Value;
}

/// A streaming reply's state between events.
struct StreamState<C> {
    submitted: Submitted,
    chunks: C,
    n: usize,
    include_usage: bool,
    log: Arc<RequestLog>,
    out: VecDeque<SseEvent>,
    remaining: usize,
    totals: Totals,
    done: bool,
}

impl<C: Chunks> StreamState<C> {
    fn push(&mut self, values: Vec<Value>) {
        self.out.extend(
            values
                .iter()
                .map(|v| SseEvent::default().data(v.to_string())),
        );
    }

    fn end(&mut self, error: Option<ApiError>) {
        if let Some(e) = error {
            // OpenAI's clients raise an APIError for a chunk with an "error" key.
            self.out
                .push_back(SseEvent::default().data(e.body().to_string()));
        } else if self.include_usage {
            let usage = self.chunks.usage(&self.totals);
            self.push(vec![usage]);
        }
        self.out.push_back(SseEvent::default().data("[DONE]"));
        self.done = true;
    }

    fn update(&mut self, ChoiceUpdate { index, update }: ChoiceUpdate) {
        match update {
            Update::Token {
                token,
                text,
                logprobs,
            } => {
                let values = self.chunks.token(index, token, &text, logprobs.as_ref());
                self.push(values);
            }
            Update::Finished {
                reason,
                text,
                usage,
            } => {
                let values = self.chunks.finished(index, &text, reason);
                self.push(values);
                self.totals.completion += usage.completion_tokens;
                if index % self.n == 0 {
                    self.totals.prompt += usage.prompt_tokens;
                    self.totals.cached += usage.cached_tokens;
                }
                self.log.tokens(0, usage.completion_tokens);
                self.remaining = self.remaining.saturating_sub(1);
                if self.remaining == 0 {
                    self.end(None);
                }
            }
            Update::Failed(message) => self.end(Some(ApiError::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("generation failed: {message}"),
                "generation_failed",
            ))),
        }
    }
}

/// The reply as server-sent events: `data: {chunk}` lines, then `data: [DONE]`. The stream
/// owns the request's guard: when the client goes away, hyper drops the stream and the
/// request is cancelled at once.
pub fn stream(
    submitted: Submitted,
    mut chunks: impl Chunks,
    job: &Job,
    log: Arc<RequestLog>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let n_choices = job.n_choices();
    let opening = chunks.opening(n_choices);
    let mut state = StreamState {
        submitted,
        chunks,
        n: job.generation.n,
        include_usage: job.generation.include_usage,
        log,
        out: VecDeque::new(),
        remaining: n_choices,
        totals: Totals::default(),
        done: false,
    };
    state.push(opening);
    let events = stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.out.pop_front() {
                return Some((Ok(event), state));
            }
            if state.done {
                return None;
            }
            match state.submitted.events.recv().await {
                Some(update) => state.update(update),
                None => state.end(Some(interrupted())),
            }
        }
    });
    // Comments while a long prompt is read keep proxies from closing an idle connection.
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A log-probability as JSON: a number, with -9999 for an impossible token (JSON has no
/// infinity; -9999 is what OpenAI sends).
pub fn logprob_value(lp: f32) -> f64 {
    if lp.is_finite() {
        f64::from(lp)
    } else {
        -9999.0
    }
}
