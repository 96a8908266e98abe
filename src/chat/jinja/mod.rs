//! The Jinja engine: minijinja set up like transformers' `apply_chat_template` environment
//! (`ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
//! extensions=[loopcontrols])` with `tojson`, `raise_exception` and `strftime_now`), plus what
//! makes minijinja behave like Python's jinja2 on chat templates: Python's `str()` when printing,
//! Python string and dict methods, Python's `str.strip()` for `trim`.

mod methods;
mod python;
mod strftime;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value};
use minijinja::{AutoEscape, Environment, ErrorKind};

use super::{ChatMessage, RenderOptions, TemplateTokens};

/// The name the template is stored under (no extension: no auto-escaping).
const NAME: &str = "chat_template";

/// Work allowed per rendering, in minijinja fuel (one instruction, or 64 bytes of data made or
/// written): a fixed allowance plus some per byte and per message of the conversation. Real
/// templates use a few hundred instructions per message; the bound stops a hostile template
/// (nested `range` loops, strings doubled in a loop) in well under a second and before it
/// exhausts memory.
const FUEL_BASE: u64 = 2_000_000;
const FUEL_PER_BYTE: u64 = 4;
const FUEL_PER_MESSAGE: u64 = 10_000;

/// A compiled template, with its environment.
#[derive(Clone)]
pub(crate) struct Compiled {
    env: Arc<Environment<'static>>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled").finish_non_exhaustive()
    }
}

/// Why a rendering failed.
#[derive(Debug)]
pub(crate) enum RenderError {
    /// The template called `raise_exception(message)`.
    Raised(String),
    /// Anything else (the engine's message).
    Failed(String),
}

/// The error `raise_exception` returns, kept as the source of minijinja's error so that it can
/// be told apart from the engine's own failures.
#[derive(Debug)]
struct Raised(String);

impl fmt::Display for Raised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl Compiled {
    /// Compiles `source`; the error is minijinja's message.
    pub(crate) fn new(source: &str) -> Result<Compiled, String> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?;
        // keep_trailing_newline stays off, as in jinja2: a final newline of the source is dropped.
        env.set_syntax(syntax);
        // transformers' sandbox does not auto-escape.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(python::format_value);
        env.set_unknown_method_callback(methods::call_method);
        env.add_filter("tojson", python::tojson);
        env.add_filter("trim", methods::trim_filter);
        env.add_filter("string", python::string_filter);
        env.add_test("iterable", python::is_iterable);
        env.add_test("sequence", python::is_sequence);
        env.add_function("raise_exception", raise_exception);
        env.add_function(GENERATION, generation_block);
        env.add_template_owned(NAME, rewrite_generation_tags(source))
            .map_err(|e| e.to_string())?;
        Ok(Compiled { env: Arc::new(env) })
    }

    /// Renders a conversation (without cutting BOS: the caller does that for every engine).
    pub(crate) fn render(
        &self,
        messages: &[ChatMessage],
        options: RenderOptions,
        tokens: &TemplateTokens,
    ) -> Result<String, RenderError> {
        let input: usize = messages.iter().map(|m| m.content.len()).sum();
        let fuel = FUEL_BASE
            .saturating_add(FUEL_PER_BYTE.saturating_mul(input as u64))
            .saturating_add(FUEL_PER_MESSAGE.saturating_mul(messages.len() as u64));
        // Fuel is a setting of the environment: a clone (reference-counted parts) carries this
        // rendering's budget.
        let mut env = Environment::clone(&self.env);
        env.set_fuel(Some(fuel));
        let template = env
            .get_template(NAME)
            .map_err(|e| RenderError::Failed(e.to_string()))?;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| Value::from_object(Message::new(m)))
            .collect();
        let now = options.now.unwrap_or_else(SystemTime::now);
        let mut ctx = vec![
            ("messages", Value::from(messages)),
            // transformers passes these two as None when there are no tools or documents.
            ("tools", Value::from(())),
            ("documents", Value::from(())),
            (
                "add_generation_prompt",
                Value::from(options.add_generation_prompt),
            ),
            ("bos_token", Value::from(tokens.bos.as_str())),
            ("eos_token", Value::from(tokens.eos.as_str())),
            (
                "strftime_now",
                Value::from_function(move |format: &str| strftime::format(now, format)),
            ),
        ];
        if let Some(thinking) = options.enable_thinking {
            ctx.push(("enable_thinking", Value::from(thinking)));
        }
        template.render(Value::from_pairs(ctx)).map_err(classify)
    }
}

/// The function a `{% generation %}` block calls (see [`rewrite_generation_tags`]).
const GENERATION: &str = "__tramontane_generation";

/// transformers' `AssistantTracker` extension adds a `{% generation %}...{% endgeneration %}`
/// block (marking the assistant's text for training masks), rendered as a call block whose
/// output is its body. minijinja has no custom tags: each such tag becomes
/// `{% call __tramontane_generation() %}` / `{% endcall %}`, with the same whitespace control
/// and the same scoping as transformers' call block.
fn rewrite_generation_tags(source: &str) -> String {
    if !source.contains("generation") {
        return source.to_string();
    }
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(at) = rest.find("{%") {
        let (before, tag) = rest.split_at(at + 2);
        out.push_str(before);
        let modifier = tag.len() - tag.trim_start_matches(['-', '+']).len();
        let modifier = modifier.min(1);
        let (head, body) = tag.split_at(modifier);
        let word_start = body.len() - body.trim_start().len();
        let word = &body[word_start..];
        let ident_end = word
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word.len());
        let replacement = match &word[..ident_end] {
            "generation" => Some(format!("call {GENERATION}()")),
            "endgeneration" => Some("endcall".to_string()),
            _ => None,
        };
        match replacement {
            Some(r) => {
                out.push_str(head);
                out.push_str(&body[..word_start]);
                out.push_str(&r);
                rest = &word[ident_end..];
            }
            None => rest = tag,
        }
    }
    out.push_str(rest);
    out
}

/// The body of a `{% generation %}` block, as it is.
fn generation_block(
    state: &mut minijinja::State,
    kwargs: Kwargs,
) -> Result<Value, minijinja::Error> {
    let caller: Value = kwargs.get("caller")?;
    kwargs.assert_all_used()?;
    caller.call(state, &[])
}

/// `raise_exception(message)`: ends the rendering with the template's message.
fn raise_exception(message: Option<Value>) -> Result<Value, minijinja::Error> {
    let message = message.map(|m| python::to_str(&m)).unwrap_or_default();
    Err(
        minijinja::Error::new(ErrorKind::InvalidOperation, message.clone())
            .with_source(Raised(message)),
    )
}

/// Tells a `raise_exception` apart from the engine's failures.
fn classify(e: minijinja::Error) -> RenderError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(Raised(message)) = err.downcast_ref::<Raised>() {
            return RenderError::Raised(message.clone());
        }
        source = err.source();
    }
    RenderError::Failed(e.to_string())
}

/// A message as templates see it: a mapping with `role` and `content`, enumerated in that order
/// like the Python dict transformers passes (minijinja's own maps would sort the keys).
#[derive(Debug)]
struct Message {
    role: Value,
    content: Value,
}

impl Message {
    fn new(m: &ChatMessage) -> Message {
        Message {
            role: Value::from(m.role.as_str()),
            content: Value::from(m.content.as_str()),
        }
    }
}

impl Object for Message {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "role" => Some(self.role.clone()),
            "content" => Some(self.content.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["role", "content"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_tags_become_call_blocks() {
        let src = "{%- generation -%}x{% endgeneration %}{%+generation%}{% generation_x %}{{ generation }}";
        assert_eq!(
            rewrite_generation_tags(src),
            "{%- call __tramontane_generation() -%}x{% endcall %}{%+call __tramontane_generation()%}\
             {% generation_x %}{{ generation }}"
        );
        assert_eq!(rewrite_generation_tags("{% if x %}{%"), "{% if x %}{%");
    }

    #[test]
    fn generation_blocks_render_their_body_in_their_own_scope() {
        let c = Compiled::new(
            "{% set x = 1 %}{% for m in messages %}{% generation %}[{{ m.role }}{% set x = 2 %}{{ x }}]\n{% endgeneration %}{% endfor %}{{ x }}",
        )
        .unwrap();
        let out = c
            .render(
                &[ChatMessage::user("a")],
                RenderOptions::default(),
                &TemplateTokens::default(),
            )
            .unwrap();
        assert_eq!(out, "[user2]\n1");
    }
}
