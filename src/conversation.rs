//! Multi-turn chat over a session, by tokens: every turn renders the whole conversation with
//! the model's chat template, and the session keeps the longest common token prefix with what
//! it already holds, so only the new tokens are evaluated.
//!
//! ```no_run
//! use tramontane::{ChatMessage, Conversation, GenerateOptions, Model, SessionOptions};
//! # fn main() -> tramontane::Result<()> {
//! let model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let mut chat = Conversation::new(model.session(SessionOptions::default())?);
//! let options = GenerateOptions { max_tokens: Some(128), ..Default::default() };
//! for question in ["What is the capital of France?", "And of Italy?"] {
//!     chat.push(ChatMessage::new("user", question));
//!     for piece in chat.reply(&options)? {
//!         print!("{}", piece?);
//!     }
//!     println!();
//! }
//! # Ok(()) }
//! ```

use crate::chat::ChatMessage;
use crate::session::{FinishReason, Generate, GenerateOptions, Session};
use crate::tokenizer::EncodeOptions;
use crate::Result;

/// A conversation: its messages and the session that holds their tokens.
#[derive(Debug)]
pub struct Conversation<'m> {
    session: Session<'m>,
    messages: Vec<ChatMessage>,
}

impl<'m> Conversation<'m> {
    /// A conversation with no messages over `session` (whatever the session holds is reused
    /// as far as it matches the rendered conversation).
    pub fn new(session: Session<'m>) -> Self {
        Conversation {
            session,
            messages: Vec::new(),
        }
    }

    /// The messages so far, replies included.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Adds a message (a system prompt, a user turn, or an assistant turn written by hand).
    pub fn push(&mut self, message: ChatMessage) {
        self.messages.push(message);
    }

    /// Removes and returns the last message (e.g. to regenerate a reply).
    pub fn pop(&mut self) -> Option<ChatMessage> {
        self.messages.pop()
    }

    /// The session.
    pub fn session(&self) -> &Session<'m> {
        &self.session
    }

    /// The session, to save or fork it.
    pub fn session_mut(&mut self) -> &mut Session<'m> {
        &mut self.session
    }

    /// Ends the conversation, keeping its session.
    pub fn into_session(self) -> Session<'m> {
        self.session
    }

    /// Renders the conversation with the opening of an assistant turn, brings the session to
    /// its tokens (reusing the longest common prefix) and streams the assistant's reply. The
    /// reply joins the messages when the returned iterator is exhausted or dropped.
    ///
    /// # Errors
    /// Bad options, a conversation longer than the context ([`crate::Error::ContextFull`];
    /// nothing changes then), or a failed evaluation.
    pub fn reply(&mut self, options: &GenerateOptions) -> Result<Reply<'_, 'm>> {
        options.sampling.validate()?;
        let model = self.session.model();
        let text = model.chat_template().render(&self.messages, true);
        let tokens = model.tokenizer().encode(&text, EncodeOptions::PROMPT)?;
        self.session.set_tokens(&tokens)?;
        let generate = self.session.generate_tokens(&[], options)?;
        Ok(Reply {
            generate,
            messages: &mut self.messages,
            text: String::new(),
        })
    }
}

/// The assistant's reply, streamed as text pieces; see [`Conversation::reply`].
pub struct Reply<'c, 'm> {
    generate: Generate<'c, 'm>,
    messages: &'c mut Vec<ChatMessage>,
    text: String,
}

impl std::fmt::Debug for Reply<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("generate", &self.generate)
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl<'c, 'm> Reply<'c, 'm> {
    /// The generation behind the reply: its tokens, finish reason and timings.
    pub fn generation(&self) -> &Generate<'c, 'm> {
        &self.generate
    }

    /// Why the reply ended; `None` while it goes on.
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.generate.finish_reason()
    }

    /// The text so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Iterator for Reply<'_, '_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        let piece = self.generate.next()?;
        if let Ok(p) = &piece {
            self.text.push_str(p);
        }
        Some(piece)
    }
}

impl Drop for Reply<'_, '_> {
    fn drop(&mut self) {
        let text = std::mem::take(&mut self.text);
        self.messages.push(ChatMessage::new("assistant", &text));
    }
}
