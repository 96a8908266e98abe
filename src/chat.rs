//! Chat templates, recognised from the `tokenizer.chat_template` Jinja text by their marker
//! tokens (we do not run Jinja): ChatML (SmolLM2, Qwen), Mistral `[INST]`, Llama 3 and Gemma.
//! Anything else falls back to ChatML with a warning on stderr, printed once per process.

use std::sync::Once;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// "system", "user" or "assistant".
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with the given role.
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// The template families we can render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n`.
    ChatMl,
    /// `[INST] user [/INST] assistant</s>`, system text prepended to the first user turn.
    Mistral,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    Llama3,
    /// `<start_of_turn>user\ncontent<end_of_turn>\n`, assistant called "model", system text
    /// prepended to the first user turn.
    Gemma,
}

static FALLBACK_WARNING: Once = Once::new();

impl ChatTemplate {
    /// Recognises a template by its markers; `None` or an unknown template gives ChatML (with a
    /// one-time warning for an unknown one).
    pub fn detect(template: Option<&str>) -> ChatTemplate {
        let Some(t) = template else {
            return ChatTemplate::ChatMl;
        };
        if t.contains("<|im_start|>") {
            ChatTemplate::ChatMl
        } else if t.contains("<|start_header_id|>") {
            ChatTemplate::Llama3
        } else if t.contains("<start_of_turn>") {
            ChatTemplate::Gemma
        } else if t.contains("[INST]") {
            ChatTemplate::Mistral
        } else {
            FALLBACK_WARNING.call_once(|| {
                eprintln!("warning: unrecognised chat template; using ChatML");
            });
            ChatTemplate::ChatMl
        }
    }

    /// Renders a conversation; with `add_assistant` it ends with the opening of an assistant
    /// turn, ready for generation. BOS is not included (the tokenizer adds it when the model
    /// asks for it).
    pub fn render(&self, messages: &[ChatMessage], add_assistant: bool) -> String {
        let mut out = String::new();
        match self {
            ChatTemplate::ChatMl => {
                for m in messages {
                    out += &format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
                }
                if add_assistant {
                    out += "<|im_start|>assistant\n";
                }
            }
            ChatTemplate::Llama3 => {
                for m in messages {
                    out += &format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role,
                        m.content.trim()
                    );
                }
                if add_assistant {
                    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                }
            }
            ChatTemplate::Mistral => {
                let mut system: Option<&str> = None;
                for m in messages {
                    match m.role.as_str() {
                        "system" => system = Some(&m.content),
                        "user" => {
                            out += "[INST] ";
                            if let Some(s) = system.take() {
                                out += &format!("{s}\n\n");
                            }
                            out += &format!("{} [/INST]", m.content.trim());
                        }
                        _ => out += &format!(" {}</s>", m.content.trim()),
                    }
                }
            }
            ChatTemplate::Gemma => {
                let mut system: Option<&str> = None;
                for m in messages {
                    match m.role.as_str() {
                        "system" => system = Some(&m.content),
                        "user" => {
                            out += "<start_of_turn>user\n";
                            if let Some(s) = system.take() {
                                out += &format!("{}\n\n", s.trim());
                            }
                            out += &format!("{}<end_of_turn>\n", m.content.trim());
                        }
                        _ => {
                            out += &format!(
                                "<start_of_turn>model\n{}<end_of_turn>\n",
                                m.content.trim()
                            )
                        }
                    }
                }
                if add_assistant {
                    out += "<start_of_turn>model\n";
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo() -> Vec<ChatMessage> {
        vec![
            ChatMessage::new("system", "Be brief."),
            ChatMessage::new("user", "Hi"),
            ChatMessage::new("assistant", "Hello!"),
            ChatMessage::new("user", "Bye"),
        ]
    }

    #[test]
    fn detects_the_four_families_and_falls_back() {
        assert_eq!(
            ChatTemplate::detect(Some("{{'<|im_start|>' + role}}")),
            ChatTemplate::ChatMl
        );
        assert_eq!(
            ChatTemplate::detect(Some("<|start_header_id|>")),
            ChatTemplate::Llama3
        );
        assert_eq!(
            ChatTemplate::detect(Some("{{ '[INST] ' + x }}")),
            ChatTemplate::Mistral
        );
        assert_eq!(
            ChatTemplate::detect(Some("<start_of_turn>user")),
            ChatTemplate::Gemma
        );
        assert_eq!(
            ChatTemplate::detect(Some("{{ weird }}")),
            ChatTemplate::ChatMl
        );
        assert_eq!(ChatTemplate::detect(None), ChatTemplate::ChatMl);
    }

    #[test]
    fn chatml_matches_the_fixture_prompt_layout() {
        // The layout of the refs' chatml_chat prompt (llama.cpp's chatml rendering).
        let s = ChatTemplate::ChatMl.render(&convo()[..2], true);
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn mistral_gemma_llama3_layouts() {
        assert_eq!(
            ChatTemplate::Mistral.render(&convo(), true),
            "[INST] Be brief.\n\nHi [/INST] Hello!</s>[INST] Bye [/INST]"
        );
        assert_eq!(
            ChatTemplate::Gemma.render(&convo(), true),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(
            ChatTemplate::Llama3.render(&convo()[1..2], true),
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }
}
