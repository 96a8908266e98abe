//! `/v1/chat/completions` request fields and the JSON shapes of its replies.

use serde::Deserialize;
use serde_json::{json, Value};
use tramontane::engine::TokenLogprobs;
use tramontane::tokenizer::{DecodeOptions, Tokenizer};
use tramontane::{ChatMessage, Role};

use super::error::ApiError;
use crate::generate::logprob_value;

/// The chat-only fields (the shared ones are [`super::params::GenerationParams`]).
#[derive(Debug, Deserialize)]
pub struct ChatFields {
    /// The conversation.
    pub messages: Vec<Message>,
    /// The newer name of `max_tokens`; wins when both are given.
    pub max_completion_tokens: Option<usize>,
    /// Return each token's log-probability.
    pub logprobs: Option<bool>,
    /// And this many alternatives (0 to 20; needs `logprobs: true`).
    pub top_logprobs: Option<usize>,
}

/// One message.
#[derive(Debug, Deserialize)]
pub struct Message {
    /// system, developer, user, assistant, tool (or the legacy function).
    pub role: String,
    /// Text, or a list of parts of which only text parts are understood; null for an
    /// assistant message that only called tools.
    pub content: Option<Content>,
}

/// `content`: a string or a list of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// `[{"type": "text", "text": "..."}, ...]`.
    Parts(Vec<Part>),
}

/// A content part.
#[derive(Debug, Deserialize)]
pub struct Part {
    /// The part's type; only "text" is supported.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a text part.
    pub text: Option<String>,
}

/// The messages as the chat template takes them.
pub fn messages(list: Vec<Message>) -> Result<Vec<ChatMessage>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::bad_request(
            "messages must hold at least one message",
            Some("messages"),
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                // OpenAI's newer name for system instructions.
                "system" | "developer" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "tool" | "function" => Role::Tool,
                other => {
                    return Err(ApiError::bad_request(
                        format!(
                            "unknown role '{other}' (system, developer, user, assistant, tool)"
                        ),
                        Some(&format!("messages[{i}].role")),
                    ))
                }
            };
            let content = match m.content {
                None => String::new(),
                Some(Content::Text(text)) => text,
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, part) in parts.into_iter().enumerate() {
                        match (part.kind.as_str(), part.text) {
                            ("text", Some(t)) => text += &t,
                            (kind, _) => {
                                return Err(ApiError::bad_request(
                                    format!(
                                        "content part of type '{kind}' is not supported \
                                         (text parts only: this server has no vision or audio)"
                                    ),
                                    Some(&format!("messages[{i}].content[{j}]")),
                                ))
                            }
                        }
                    }
                    text
                }
            };
            Ok(ChatMessage::new(role, content))
        })
        .collect()
}

/// `top_logprobs` when `logprobs` is on; a 400 for values OpenAI refuses.
pub fn logprobs(fields: &ChatFields) -> Result<Option<usize>, ApiError> {
    let top = fields.top_logprobs.unwrap_or(0);
    if top > tramontane::engine::MAX_TOP_LOGPROBS {
        return Err(ApiError::bad_request(
            format!(
                "top_logprobs must be between 0 and {}",
                tramontane::engine::MAX_TOP_LOGPROBS
            ),
            Some("top_logprobs"),
        ));
    }
    match fields.logprobs {
        Some(true) => Ok(Some(top)),
        _ if top > 0 => Err(ApiError::bad_request(
            "top_logprobs needs logprobs: true",
            Some("top_logprobs"),
        )),
        _ => Ok(None),
    }
}

/// A token's text and bytes, as logprobs show them (control tokens have none).
fn piece(tokenizer: &Tokenizer, id: u32) -> (String, Vec<u8>) {
    let bytes = tokenizer.token_to_piece(id, DecodeOptions::default());
    (String::from_utf8_lossy(&bytes).into_owned(), bytes)
}

/// One entry of `logprobs.content`: the token, its log-probability and bytes, and the top
/// alternatives in the same shape.
pub fn logprob_entry(tokenizer: &Tokenizer, token: u32, lp: &TokenLogprobs) -> Value {
    let one = |id: u32, logprob: f32| {
        let (text, bytes) = piece(tokenizer, id);
        json!({"token": text, "logprob": logprob_value(logprob), "bytes": bytes})
    };
    let mut entry = one(token, lp.logprob);
    entry["top_logprobs"] = lp.top.iter().map(|&(id, l)| one(id, l)).collect();
    entry
}

/// `logprobs` of a choice: `{"content": [...], "refusal": null}`.
pub fn logprobs_object(entries: Vec<Value>) -> Value {
    json!({"content": entries, "refusal": null})
}
