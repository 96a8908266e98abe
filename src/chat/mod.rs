//! Chat templates: a conversation rendered into the prompt text an instruct model was trained on.
//!
//! With the default feature `chat-templates`, [`ChatTemplate`] runs the GGUF file's own Jinja
//! template (`tokenizer.chat_template`) in [minijinja](https://docs.rs/minijinja), set up like
//! Hugging Face transformers' `apply_chat_template` (trim_blocks, lstrip_blocks, loop controls,
//! `raise_exception`, `strftime_now`, a `tojson` that is Python's `json.dumps`, and the Python
//! string and dict methods templates call, such as `.strip()` and `.items()`). The built-in
//! [`Family`] renderers serve when the file has no template, when its template does not compile
//! or fails, and when the feature is off; [`RenderedChat::used`] tells which one rendered.
//! The library prints nothing: reporting a fallback is the caller's choice.
//!
//! BOS follows llama.cpp's `common_chat` rules: the template sees the BOS and EOS token texts as
//! `bos_token` / `eos_token`, and when the tokenizer adds BOS itself a leading BOS text is cut
//! from the rendering, so the prompt does not start with two.
//!
//! ```
//! use tramontane::chat::{ChatMessage, ChatTemplate, RenderOptions, TemplateTokens, TemplateUsed};
//!
//! # fn main() -> tramontane::Result<()> {
//! let source = "{% for m in messages %}<|{{ m.role }}|>{{ m.content | trim }}\n{% endfor %}\
//!               {% if add_generation_prompt %}<|assistant|>{% endif %}";
//! let template = ChatTemplate::from_jinja(source, TemplateTokens::default());
//! let chat = template.render(
//!     &[ChatMessage::system("Be brief."), ChatMessage::user(" Hi ")],
//!     RenderOptions::for_generation(),
//! )?;
//! # #[cfg(feature = "chat-templates")] {
//! assert_eq!(chat.text, "<|system|>Be brief.\n<|user|>Hi\n<|assistant|>");
//! assert_eq!(chat.used, TemplateUsed::File);
//! # }
//! # Ok(())
//! # }
//! ```

mod family;
#[cfg(feature = "chat-templates")]
mod jinja;
mod pystr;

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use crate::tokenizer::{DecodeOptions, Tokenizer};

/// Token texts as templates see them: control tokens rendered.
const RENDER_SPECIAL: DecodeOptions = DecodeOptions {
    remove_special: false,
    render_special: true,
};
use crate::{Error, Result};

pub use family::Family;

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Instructions for the whole conversation.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, fed back to the model.
    Tool,
}

impl Role {
    /// The name templates see in `message['role']`: "system", "user", "assistant", "tool".
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    /// Parses the names [`Role::as_str`] gives.
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" => Ok(Role::Tool),
            _ => Err(Error::InvalidArgument {
                what: format!("unknown chat role '{s}' (system, user, assistant or tool)"),
            }),
        }
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// The text, as the template receives it (templates trim it or not, as they choose).
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role,
            content: content.into(),
        }
    }

    /// A [`Role::System`] message.
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::System, content)
    }

    /// A [`Role::User`] message.
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::User, content)
    }

    /// A [`Role::Assistant`] message.
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::Assistant, content)
    }

    /// A [`Role::Tool`] message (a tool's result).
    pub fn tool(content: impl Into<String>) -> ChatMessage {
        ChatMessage::new(Role::Tool, content)
    }
}

/// How to render: `RenderOptions { add_generation_prompt: true, ..Default::default() }`, or
/// [`RenderOptions::for_generation`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// End with the opening of an assistant turn, so that the model's continuation is its reply
    /// (the template's `add_generation_prompt`). Off to render a finished conversation.
    pub add_generation_prompt: bool,
    /// The template's `enable_thinking` (Qwen 3 and other reasoning models: `Some(false)` asks
    /// for an answer without a reasoning block). `None` leaves it undefined, as transformers does
    /// unless asked; the built-in families ignore it.
    pub enable_thinking: Option<bool>,
    /// The instant `strftime_now()` formats (Llama 3.2 and Mistral Small put today's date in the
    /// system message); `None` is the current time. Always rendered in UTC: the library has no
    /// time zone database, where transformers uses the local time.
    pub now: Option<SystemTime>,
}

impl RenderOptions {
    /// The options for a prompt to generate from: `add_generation_prompt` on, the rest default.
    pub fn for_generation() -> RenderOptions {
        RenderOptions {
            add_generation_prompt: true,
            ..RenderOptions::default()
        }
    }
}

/// The special-token side of a template: the texts it sees as `bos_token` / `eos_token`, and
/// whether the tokenizer adds BOS / EOS itself (then a leading BOS / trailing EOS text is cut
/// from the rendering, as llama.cpp does, so that the token is not doubled).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateTokens {
    /// The BOS token's text (`<s>`, `<|begin_of_text|>`, ...), empty if there is none.
    pub bos: String,
    /// The EOS token's text, empty if there is none.
    pub eos: String,
    /// The tokenizer adds BOS when encoding with special tokens.
    pub tokenizer_adds_bos: bool,
    /// The tokenizer adds EOS when encoding with special tokens.
    pub tokenizer_adds_eos: bool,
}

impl TemplateTokens {
    /// The texts and flags of a tokenizer (token texts as llama.cpp renders them for templates:
    /// the special token's piece).
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> TemplateTokens {
        let text = |id: Option<u32>| {
            id.map(|id| {
                String::from_utf8_lossy(&tokenizer.token_to_piece(id, RENDER_SPECIAL)).into_owned()
            })
            .unwrap_or_default()
        };
        TemplateTokens {
            bos: text(tokenizer.bos()),
            eos: text(tokenizer.eos()),
            tokenizer_adds_bos: tokenizer.add_bos(),
            tokenizer_adds_eos: tokenizer.add_eos(),
        }
    }
}

/// Which template rendered a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateUsed {
    /// The file's own Jinja template.
    File,
    /// A built-in family, because there is no Jinja template to run (the file has none, or the
    /// template was built with [`ChatTemplate::builtin`]).
    Builtin(Family),
    /// A built-in family in place of a Jinja template that could not be used.
    Fallback {
        /// The family that rendered: recognised from the template's markers, or ChatML.
        family: Family,
        /// Why the Jinja template was not used.
        reason: FallbackReason,
    },
}

impl fmt::Display for TemplateUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateUsed::File => f.write_str("the model's own chat template"),
            TemplateUsed::Builtin(family) => write!(f, "the built-in {family} template"),
            TemplateUsed::Fallback { family, reason } => {
                write!(f, "the built-in {family} template, because {reason}")
            }
        }
    }
}

/// Why a Jinja template gave way to a built-in family.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackReason {
    /// The library was built without the `chat-templates` feature.
    JinjaDisabled,
    /// The template does not compile (the engine's message).
    Compile(String),
    /// The template failed on this conversation other than by `raise_exception` (the engine's
    /// message): an unsupported filter or method, an undefined value used as an object, ...
    Render(String),
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackReason::JinjaDisabled => {
                f.write_str("Jinja support (feature chat-templates) is not compiled in")
            }
            FallbackReason::Compile(e) => write!(f, "the chat template does not compile: {e}"),
            FallbackReason::Render(e) => write!(f, "the chat template failed: {e}"),
        }
    }
}

/// A rendered conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedChat {
    /// The prompt text, to be tokenized with special tokens parsed.
    pub text: String,
    /// Which template produced it.
    pub used: TemplateUsed,
}

/// What renders: the Jinja template, or why not.
#[derive(Clone, Debug)]
enum Engine {
    /// No Jinja source: the family renders.
    Builtin,
    /// The compiled template.
    #[cfg(feature = "chat-templates")]
    Jinja(jinja::Compiled),
    /// A source that cannot be used: the family renders, and says why.
    Unusable(FallbackReason),
}

/// A chat template, built once (the Jinja source is compiled then) and used for any number of
/// conversations; `Send + Sync`, like the [`Model`](crate::Model) it comes from.
#[derive(Clone, Debug)]
pub struct ChatTemplate {
    source: Option<String>,
    family: Family,
    tokens: TemplateTokens,
    engine: Engine,
}

impl ChatTemplate {
    /// A template from Jinja source (a file's `tokenizer.chat_template`). It never fails: a
    /// source that does not compile (or any source, without the `chat-templates` feature) makes
    /// a template that renders with the family recognised from its markers, or ChatML, and
    /// reports it in [`RenderedChat::used`].
    pub fn from_jinja(source: impl Into<String>, tokens: TemplateTokens) -> ChatTemplate {
        let source = source.into();
        let family = Family::detect(&source).unwrap_or(Family::ChatMl);
        #[cfg(feature = "chat-templates")]
        let engine = match jinja::Compiled::new(&source) {
            Ok(compiled) => Engine::Jinja(compiled),
            Err(e) => Engine::Unusable(FallbackReason::Compile(e)),
        };
        #[cfg(not(feature = "chat-templates"))]
        let engine = Engine::Unusable(FallbackReason::JinjaDisabled);
        ChatTemplate {
            source: Some(source),
            family,
            tokens,
            engine,
        }
    }

    /// A built-in family, for a model without a template (or to override one).
    pub fn builtin(family: Family, tokens: TemplateTokens) -> ChatTemplate {
        ChatTemplate {
            source: None,
            family,
            tokens,
            engine: Engine::Builtin,
        }
    }

    /// The Jinja source, if the template has one.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The built-in family: the one that renders without Jinja, or in its place on failure.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The special-token texts and flags.
    pub fn tokens(&self) -> &TemplateTokens {
        &self.tokens
    }

    /// Renders a conversation. An error only when the template itself rejects the conversation
    /// with `raise_exception` (e.g. "roles must alternate"): [`Error::InvalidArgument`] with the
    /// template's message. Any other failure of the Jinja template falls back to the family.
    pub fn render(&self, messages: &[ChatMessage], options: RenderOptions) -> Result<RenderedChat> {
        let (text, used) = match &self.engine {
            Engine::Builtin => (self.render_family(messages, options), self.builtin_used()),
            #[cfg(feature = "chat-templates")]
            Engine::Jinja(compiled) => match compiled.render(messages, options, &self.tokens) {
                Ok(text) => (text, TemplateUsed::File),
                Err(jinja::RenderError::Raised(message)) => {
                    return Err(Error::InvalidArgument {
                        what: format!("the chat template rejects the conversation: {message}"),
                    })
                }
                Err(jinja::RenderError::Failed(e)) => (
                    self.render_family(messages, options),
                    TemplateUsed::Fallback {
                        family: self.family,
                        reason: FallbackReason::Render(e),
                    },
                ),
            },
            Engine::Unusable(reason) => (
                self.render_family(messages, options),
                TemplateUsed::Fallback {
                    family: self.family,
                    reason: reason.clone(),
                },
            ),
        };
        Ok(RenderedChat {
            text: self.strip_added_tokens(text),
            used,
        })
    }

    fn builtin_used(&self) -> TemplateUsed {
        TemplateUsed::Builtin(self.family)
    }

    fn render_family(&self, messages: &[ChatMessage], options: RenderOptions) -> String {
        self.family.render(
            messages,
            options.add_generation_prompt,
            &self.tokens.bos,
            &self.tokens.eos,
        )
    }

    /// llama.cpp's `common_chat_template_direct_apply`: a leading BOS text goes when the
    /// tokenizer adds BOS itself, a trailing EOS text when it adds EOS.
    fn strip_added_tokens(&self, mut text: String) -> String {
        let t = &self.tokens;
        if t.tokenizer_adds_bos && !t.bos.is_empty() && text.starts_with(&t.bos) {
            text.drain(..t.bos.len());
        }
        if t.tokenizer_adds_eos && !t.eos.is_empty() && text.ends_with(&t.eos) {
            text.truncate(text.len() - t.eos.len());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(adds_bos: bool) -> TemplateTokens {
        TemplateTokens {
            bos: "<bos>".into(),
            eos: "<eos>".into(),
            tokenizer_adds_bos: adds_bos,
            tokenizer_adds_eos: false,
        }
    }

    #[test]
    fn roles_parse_and_print() {
        for r in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(r.as_str().parse::<Role>().ok(), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        let e = "model".parse::<Role>().unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        assert_eq!(ChatMessage::tool("x"), ChatMessage::new(Role::Tool, "x"));
    }

    #[test]
    fn leading_bos_is_cut_when_the_tokenizer_adds_it() {
        let m = [ChatMessage::user("Hi")];
        let gen = RenderOptions::for_generation();
        let with = ChatTemplate::builtin(Family::Gemma, tokens(false));
        let without = ChatTemplate::builtin(Family::Gemma, tokens(true));
        let a = with.render(&m, gen).unwrap();
        let b = without.render(&m, gen).unwrap();
        assert_eq!(a.text, format!("<bos>{}", b.text));
        assert_eq!(b.used, TemplateUsed::Builtin(Family::Gemma));
        // ChatML has no BOS: nothing to cut.
        let c = ChatTemplate::builtin(Family::ChatMl, tokens(true));
        assert!(c
            .render(&m, gen)
            .unwrap()
            .text
            .starts_with("<|im_start|>user"));
    }

    #[test]
    fn trailing_eos_is_cut_when_the_tokenizer_adds_it() {
        let mut t = tokens(false);
        t.tokenizer_adds_eos = true;
        let phi = ChatTemplate::builtin(Family::Phi3, t);
        let r = phi
            .render(&[ChatMessage::user("Hi")], RenderOptions::default())
            .unwrap();
        assert_eq!(r.text, "<|user|>\nHi<|end|>\n");
    }

    #[test]
    fn a_template_that_does_not_compile_falls_back_to_its_family() {
        let t = ChatTemplate::from_jinja("<start_of_turn>{% for %}", tokens(true));
        assert_eq!(t.family(), Family::Gemma);
        let r = t
            .render(&[ChatMessage::user("Hi")], RenderOptions::for_generation())
            .unwrap();
        assert_eq!(
            r.text,
            "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
        );
        match r.used {
            TemplateUsed::Fallback {
                family: Family::Gemma,
                reason,
            } => {
                #[cfg(feature = "chat-templates")]
                assert!(matches!(reason, FallbackReason::Compile(_)), "{reason:?}");
                #[cfg(not(feature = "chat-templates"))]
                assert_eq!(reason, FallbackReason::JinjaDisabled);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn templates_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<ChatTemplate>();
    }
}
