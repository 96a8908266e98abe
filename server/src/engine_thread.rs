//! The engine on an OS thread of its own. The engine is driven step by step and holds sessions
//! that are not meant to cross `await`s, so one thread owns it; HTTP handlers talk to it over a
//! channel and get each request's events on a tokio channel of their own.
//!
//! The thread blocks on the command channel while the engine has no work; otherwise it takes
//! every pending command, then runs one step and routes its events. A request whose receiver
//! is gone (the client hung up) is cancelled at once, and so is every request of a
//! [`Ticket`] whose guard is dropped, so a disconnected client frees its slot within a step.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use tokio::sync::{mpsc as tokio_mpsc, oneshot};
use tramontane::engine::{Engine, EngineOptions, Event, Request, RequestId, TokenLogprobs, Usage};
use tramontane::{FinishReason, Model};

use crate::metrics::Metrics;

/// What happened to one choice of a request.
#[derive(Debug)]
pub enum Update {
    /// A token was generated; `text` is what can be shown now (may be empty).
    Token {
        /// The token id.
        token: u32,
        /// Text to append.
        text: String,
        /// When asked for.
        logprobs: Option<TokenLogprobs>,
    },
    /// The choice ended.
    Finished {
        /// Why.
        reason: FinishReason,
        /// The last text (held back until the end).
        text: String,
        /// Token counts.
        usage: Usage,
    },
    /// The choice failed during evaluation.
    Failed(String),
}

/// An [`Update`] for the choice at `index` of an HTTP request.
#[derive(Debug)]
pub struct ChoiceUpdate {
    /// The choice's index in the response.
    pub index: usize,
    /// What happened.
    pub update: Update,
}

/// Why a submission was refused.
#[derive(Debug)]
pub enum SubmitError {
    /// Every slot is busy and the queue is full.
    QueueFull,
    /// The request is not valid (the engine's message).
    Invalid(String),
    /// The engine thread is gone.
    Stopped,
}

/// Names the engine requests of one HTTP request, so that they can be cancelled together
/// before the engine has given them ids.
pub type Ticket = u64;

enum Command {
    Submit {
        ticket: Ticket,
        requests: Vec<Request>,
        events: tokio_mpsc::UnboundedSender<ChoiceUpdate>,
        arrived: Instant,
        reply: oneshot::Sender<Result<(), SubmitError>>,
    },
    Cancel(Ticket),
    CancelAll,
    Embed {
        tokens: Vec<u32>,
        reply: oneshot::Sender<tramontane::Result<Vec<f32>>>,
    },
}

/// The HTTP side's handle on the engine thread: cheap to clone.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
    next_ticket: Arc<AtomicU64>,
    alive: Arc<AtomicBool>,
    /// Context of each request, in tokens.
    pub n_ctx: usize,
    /// Width of the embeddings.
    pub n_embd: usize,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Submit {
                ticket, requests, ..
            } => {
                write!(f, "Submit({ticket}, {} requests)", requests.len())
            }
            Command::Cancel(t) => write!(f, "Cancel({t})"),
            Command::CancelAll => f.write_str("CancelAll"),
            Command::Embed { tokens, .. } => write!(f, "Embed({} tokens)", tokens.len()),
        }
    }
}

/// Cancels its ticket's requests when dropped: a response future or stream that goes away
/// (client disconnect, error, shutdown) frees the slots at once. Cancelling finished requests
/// is harmless.
#[derive(Debug)]
pub struct TicketGuard {
    ticket: Ticket,
    commands: mpsc::Sender<Command>,
}

impl Drop for TicketGuard {
    fn drop(&mut self) {
        // The engine thread may be gone already (shutdown): nothing left to cancel then.
        let _ = self.commands.send(Command::Cancel(self.ticket));
    }
}

/// The events of a submitted HTTP request, and the guard that cancels it.
#[derive(Debug)]
pub struct Submitted {
    /// The choices' events, in order.
    pub events: tokio_mpsc::UnboundedReceiver<ChoiceUpdate>,
    /// Cancels on drop: held as long as the events are wanted, never read.
    _guard: TicketGuard,
}

impl EngineHandle {
    /// Submits the choices of one HTTP request (choice `i` is `requests[i]`), all or none.
    /// `arrived` is when the HTTP request came in (time to first token counts from there).
    pub async fn submit(
        &self,
        requests: Vec<Request>,
        arrived: Instant,
    ) -> Result<Submitted, SubmitError> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let (events, receiver) = tokio_mpsc::unbounded_channel();
        let (reply, answer) = oneshot::channel();
        // Made before sending, so that a handler dropped while waiting still cancels.
        let guard = TicketGuard {
            ticket,
            commands: self.commands.clone(),
        };
        self.commands
            .send(Command::Submit {
                ticket,
                requests,
                events,
                arrived,
                reply,
            })
            .map_err(|_| SubmitError::Stopped)?;
        answer.await.map_err(|_| SubmitError::Stopped)??;
        Ok(Submitted {
            events: receiver,
            _guard: guard,
        })
    }

    /// The mean-pooled, normalised embedding of `tokens`, computed between two steps.
    pub async fn embed(
        &self,
        tokens: Vec<u32>,
    ) -> Result<tramontane::Result<Vec<f32>>, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Embed { tokens, reply })
            .map_err(|_| SubmitError::Stopped)?;
        answer.await.map_err(|_| SubmitError::Stopped)
    }

    /// Cancels every request (end of the shutdown grace period): their event channels close.
    pub fn cancel_all(&self) {
        let _ = self.commands.send(Command::CancelAll);
    }

    /// Whether the engine thread is running.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }
}

/// A choice the engine is working on.
struct Live {
    ticket: Ticket,
    index: usize,
    events: tokio_mpsc::UnboundedSender<ChoiceUpdate>,
    arrived: Instant,
    first_token_seen: bool,
}

/// The engine thread's state: the engine and where each request's events go.
struct Worker {
    engine: Engine,
    capacity: usize,
    metrics: Arc<Metrics>,
    live: HashMap<RequestId, Live>,
    tickets: HashMap<Ticket, Vec<RequestId>>,
}

/// Starts the engine on its own thread; returns once the engine is built (or failed to be).
///
/// `queue` is how many requests may wait beyond the busy slots: the server refuses more with
/// 503. (The engine's own queue counts requests not admitted yet, which includes those that
/// the next step would admit into free slots; its bound is set above ours so that only ours
/// decides.)
pub fn spawn(
    model: Arc<Model>,
    mut options: EngineOptions,
    metrics: Arc<Metrics>,
) -> tramontane::Result<EngineHandle> {
    let queue = options.queue;
    let capacity = options.slots + queue;
    options.queue = capacity;
    let (commands, receiver) = mpsc::channel();
    let (ready, started) = mpsc::channel();
    let alive = Arc::new(AtomicBool::new(false));
    let alive_thread = Arc::clone(&alive);
    let spawned = std::thread::Builder::new()
        .name("tramontane-engine".into())
        .spawn(move || {
            let engine = match Engine::new(model, options) {
                Ok(engine) => engine,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let n_ctx = engine.n_ctx();
            let n_embd = engine.model().config().n_embd;
            alive_thread.store(true, Ordering::Relaxed);
            let _ = ready.send(Ok((n_ctx, n_embd)));
            let mut worker = Worker {
                engine,
                capacity,
                metrics,
                live: HashMap::new(),
                tickets: HashMap::new(),
            };
            // A panic in the engine must not leave handlers waiting forever: their channels
            // close when the worker is dropped, and /health reports the engine gone.
            let result = catch_unwind(AssertUnwindSafe(|| worker.run(receiver)));
            alive_thread.store(false, Ordering::Relaxed);
            if result.is_err() {
                tracing::error!("the engine thread panicked; requests fail from now on");
            }
        });
    if let Err(e) = spawned {
        return Err(tramontane::Error::InvalidArgument {
            what: format!("cannot start the engine thread: {e}"),
        });
    }
    let (n_ctx, n_embd) = started
        .recv()
        .map_err(|_| tramontane::Error::InvalidArgument {
            what: "the engine thread stopped while starting".into(),
        })??;
    Ok(EngineHandle {
        commands,
        next_ticket: Arc::new(AtomicU64::new(0)),
        alive,
        n_ctx,
        n_embd,
    })
}

impl Worker {
    fn run(&mut self, commands: mpsc::Receiver<Command>) {
        loop {
            if !self.engine.has_work() {
                self.publish_load();
                // Nothing to compute: sleep until a command comes; all senders gone = exit.
                match commands.recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => return,
                }
            }
            loop {
                match commands.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            if self.engine.has_work() {
                let events = self.engine.step();
                for event in events {
                    self.route(event);
                }
                self.publish_load();
            }
        }
    }

    fn publish_load(&self) {
        let stats = self.engine.stats();
        self.metrics
            .load(stats.running, stats.queued, stats.cached_bytes);
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit {
                ticket,
                requests,
                events,
                arrived,
                reply,
            } => {
                let result = self.submit(ticket, requests, events, arrived);
                if reply.send(result).is_err() {
                    // The handler went away while we worked: its guard's Cancel is queued
                    // behind us and cleans up.
                }
            }
            Command::Cancel(ticket) => self.cancel(ticket),
            Command::CancelAll => {
                let tickets: Vec<Ticket> = self.tickets.keys().copied().collect();
                for ticket in tickets {
                    self.cancel(ticket);
                }
            }
            Command::Embed { tokens, reply } => {
                let result = self.engine.embed(&tokens);
                if result.is_ok() {
                    self.metrics.tokens(tokens.len(), 0, 0);
                }
                let _ = reply.send(result);
            }
        }
        self.publish_load();
    }

    fn submit(
        &mut self,
        ticket: Ticket,
        requests: Vec<Request>,
        events: tokio_mpsc::UnboundedSender<ChoiceUpdate>,
        arrived: Instant,
    ) -> Result<(), SubmitError> {
        let stats = self.engine.stats();
        if stats.running + stats.queued + requests.len() > self.capacity {
            return Err(SubmitError::QueueFull);
        }
        let mut ids = Vec::with_capacity(requests.len());
        for (index, request) in requests.into_iter().enumerate() {
            match self.engine.submit(request) {
                Ok(id) => {
                    ids.push(id);
                    self.live.insert(
                        id,
                        Live {
                            ticket,
                            index,
                            events: events.clone(),
                            arrived,
                            first_token_seen: false,
                        },
                    );
                }
                Err(e) => {
                    // All or none: withdraw the choices already queued.
                    for id in ids {
                        self.engine.cancel(id);
                        self.live.remove(&id);
                    }
                    return Err(match e {
                        tramontane::Error::QueueFull { .. } => SubmitError::QueueFull,
                        e => SubmitError::Invalid(e.to_string()),
                    });
                }
            }
        }
        self.tickets.insert(ticket, ids);
        Ok(())
    }

    fn cancel(&mut self, ticket: Ticket) {
        for id in self.tickets.remove(&ticket).unwrap_or_default() {
            self.engine.cancel(id);
            self.live.remove(&id);
        }
    }

    fn route(&mut self, event: Event) {
        let (id, update) = match event {
            Event::Token {
                id,
                token,
                text,
                logprobs,
            } => (
                id,
                Update::Token {
                    token,
                    text,
                    logprobs,
                },
            ),
            Event::Finished {
                id,
                reason,
                text,
                usage,
            } => (
                id,
                Update::Finished {
                    reason,
                    text,
                    usage,
                },
            ),
            Event::Failed { id, error } => (id, Update::Failed(error.to_string())),
        };
        let ended = !matches!(update, Update::Token { .. });
        let Some(live) = self.live.get_mut(&id) else {
            return; // cancelled meanwhile
        };
        match &update {
            Update::Token { .. } if !live.first_token_seen => {
                live.first_token_seen = true;
                self.metrics.first_token(live.arrived.elapsed());
            }
            Update::Finished { usage, .. } => self.metrics.tokens(
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.completion_tokens,
            ),
            _ => {}
        }
        let ticket = live.ticket;
        let sent = live.events.send(ChoiceUpdate {
            index: live.index,
            update,
        });
        if sent.is_err() {
            // Nobody reads this request any more: free its slots now, not at its last token.
            self.cancel(ticket);
        } else if ended {
            self.live.remove(&id);
            if let Some(ids) = self.tickets.get_mut(&ticket) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    self.tickets.remove(&ticket);
                }
            }
        }
    }
}
