//! The built-in template families: recognised from a template's marker strings (as llama.cpp's
//! `llm_chat_detect_template` does) and rendered by hand, exactly as the family's reference
//! template renders an ordinary conversation under Python's jinja2. They serve when a file has
//! no template, when its template cannot be used, and when the `chat-templates` feature is off.

use std::fmt;
use std::str::FromStr;

use super::pystr::trim;
use super::{ChatMessage, Role};
use crate::{Error, Result};

/// A built-in chat template family. Each renders like its reference template (named on each
/// variant) for conversations of system, user and assistant messages. Beyond those they are
/// lenient where the references raise or drop: ChatML, Llama 3 and Gemma write any role by its
/// name, as their references do; the Mistral and Phi-3 families render a tool message (and, for
/// Mistral v1/v3, a system message after the first) as a user turn; no family raises the
/// references' "roles must alternate" errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// `<|im_start|>role\ncontent<|im_end|>\n` (llama.cpp's ChatML template; SmolLM2, Qwen and
    /// many others use this layout, often with a default system message of their own).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`, content trimmed
    /// (Meta-Llama-3-8B-Instruct; Llama 3.1+ add a dated system message of their own).
    Llama3,
    /// ` [INST] user [/INST] assistant</s>`, the system message before the first user message
    /// (Mistral-7B-Instruct-v0.2/v0.3, mistral-common "v1").
    MistralV1,
    /// `[INST] user[/INST] assistant</s>`, assistant trimmed, the system message before the
    /// *last* user message (Mistral-Large-Instruct-2407, "v3").
    MistralV3,
    /// `[INST]user[/INST]assistant</s>`, the system message before the last user message
    /// (Mistral-Nemo-Instruct-2407, "v3-tekken").
    MistralV3Tekken,
    /// `[SYSTEM_PROMPT] system[/SYSTEM_PROMPT][INST] user[/INST] assistant</s>`
    /// (Mistral-Large-Instruct-2411, "v7").
    MistralV7,
    /// `[SYSTEM_PROMPT]system[/SYSTEM_PROMPT][INST]user[/INST]assistant</s>` (Mistral-Small-3.x,
    /// "v7-tekken"; the real templates add a long default system message when there is none).
    MistralV7Tekken,
    /// `<start_of_turn>user\ncontent<end_of_turn>\n`, assistant called `model`, content trimmed,
    /// the system message prepended to the first turn (Gemma 3; Gemma 2 for conversations
    /// without a system message).
    Gemma,
    /// `<|user|>\ncontent<|end|>\n`, EOS after the conversation when no generation prompt is
    /// asked for (Phi-3.5-mini-instruct).
    Phi3,
}

impl Family {
    /// Every family, in a fixed order.
    pub const ALL: [Family; 9] = [
        Family::ChatMl,
        Family::Llama3,
        Family::MistralV1,
        Family::MistralV3,
        Family::MistralV3Tekken,
        Family::MistralV7,
        Family::MistralV7Tekken,
        Family::Gemma,
        Family::Phi3,
    ];

    /// The family a Jinja template belongs to, from its marker strings (llama.cpp's
    /// `llm_chat_detect_template`, restricted to these families), or `None`.
    pub fn detect(source: &str) -> Option<Family> {
        let has = |s: &str| source.contains(s);
        if has("<|im_start|>") {
            Some(Family::ChatMl)
        } else if has("[INST]") {
            if has("[SYSTEM_PROMPT]") {
                // v7 puts a space after each tag, v7-tekken does not.
                Some(if has("[SYSTEM_PROMPT] ") {
                    Family::MistralV7
                } else {
                    Family::MistralV7Tekken
                })
            } else if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
                // The official v1, v3 and v3-tekken templates.
                Some(if has(" [INST]") {
                    Family::MistralV1
                } else if has("\"[INST]\"") {
                    Family::MistralV3Tekken
                } else {
                    Family::MistralV3
                })
            } else {
                // Llama 2 and its variants: v1's layout is the closest we have.
                Some(Family::MistralV1)
            }
        } else if has("<|assistant|>") && has("<|end|>") {
            Some(Family::Phi3)
        } else if has("<start_of_turn>") {
            Some(Family::Gemma)
        } else if has("<|start_header_id|>") && has("<|end_header_id|>") {
            Some(Family::Llama3)
        } else {
            None
        }
    }

    /// llama.cpp's name for the family (`llama-cli --chat-template NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Family::ChatMl => "chatml",
            Family::Llama3 => "llama3",
            Family::MistralV1 => "mistral-v1",
            Family::MistralV3 => "mistral-v3",
            Family::MistralV3Tekken => "mistral-v3-tekken",
            Family::MistralV7 => "mistral-v7",
            Family::MistralV7Tekken => "mistral-v7-tekken",
            Family::Gemma => "gemma",
            Family::Phi3 => "phi3",
        }
    }

    /// Renders a conversation as the family's reference template does, with `bos`/`eos` as the
    /// template's `bos_token`/`eos_token` (the caller removes a BOS the tokenizer adds itself).
    pub(crate) fn render(
        self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        bos: &str,
        eos: &str,
    ) -> String {
        let total: usize = messages.iter().map(|m| m.content.len() + 32).sum();
        let mut out = String::with_capacity(total + bos.len() + 32);
        match self {
            Family::ChatMl => {
                for m in messages {
                    push_all(&mut out, &["<|im_start|>", m.role.as_str(), "\n"]);
                    push_all(&mut out, &[&m.content, "<|im_end|>\n"]);
                }
                if add_generation_prompt {
                    out += "<|im_start|>assistant\n";
                }
            }
            Family::Llama3 => {
                if !messages.is_empty() {
                    out += bos;
                }
                for m in messages {
                    push_all(&mut out, &["<|start_header_id|>", m.role.as_str()]);
                    push_all(&mut out, &["<|end_header_id|>\n\n", trim(&m.content)]);
                    out += "<|eot_id|>";
                }
                if add_generation_prompt {
                    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                }
            }
            Family::MistralV1 | Family::MistralV3 | Family::MistralV3Tekken => {
                let (system, turns) = split_system(messages);
                // v1: " [INST] user [/INST] answer</s>"; v3: "[INST] user[/INST] answer</s>";
                // v3-tekken: "[INST]user[/INST]answer</s>".
                let (open, close, answer) = match self {
                    Family::MistralV1 => (" [INST] ", " [/INST]", " "),
                    Family::MistralV3 => ("[INST] ", "[/INST]", " "),
                    _ => ("[INST]", "[/INST]", ""),
                };
                out += bos;
                let last = turns.len().saturating_sub(1);
                for (i, m) in turns.iter().enumerate() {
                    match m.role {
                        Role::Assistant => {
                            let text = if self == Family::MistralV3 {
                                trim(&m.content)
                            } else {
                                &m.content
                            };
                            push_all(&mut out, &[answer, text, eos]);
                        }
                        _ => {
                            out += open;
                            // v1 puts the system message in the first turn, v3 in the last.
                            let here = if self == Family::MistralV1 {
                                i == 0
                            } else {
                                i == last
                            };
                            if let (Some(s), true) = (system, here) {
                                push_all(&mut out, &[s, "\n\n"]);
                            }
                            push_all(&mut out, &[&m.content, close]);
                        }
                    }
                }
            }
            Family::MistralV7 | Family::MistralV7Tekken => {
                let sp = if self == Family::MistralV7 { " " } else { "" };
                out += bos;
                for m in messages {
                    match m.role {
                        Role::System => {
                            push_all(&mut out, &["[SYSTEM_PROMPT]", sp, &m.content]);
                            out += "[/SYSTEM_PROMPT]";
                        }
                        Role::Assistant => push_all(&mut out, &[sp, &m.content, eos]),
                        _ => push_all(&mut out, &["[INST]", sp, &m.content, "[/INST]"]),
                    }
                }
            }
            Family::Gemma => {
                let (system, turns) = split_system(messages);
                out += bos;
                for (i, m) in turns.iter().enumerate() {
                    let role = match m.role {
                        Role::Assistant => "model",
                        r => r.as_str(),
                    };
                    push_all(&mut out, &["<start_of_turn>", role, "\n"]);
                    if let (Some(s), 0) = (system, i) {
                        // The system text is not trimmed, the message is.
                        push_all(&mut out, &[s, "\n\n"]);
                    }
                    push_all(&mut out, &[trim(&m.content), "<end_of_turn>\n"]);
                }
                if add_generation_prompt {
                    out += "<start_of_turn>model\n";
                }
            }
            Family::Phi3 => {
                for m in messages {
                    let tag = match m.role {
                        // The reference skips an empty system message.
                        Role::System if m.content.is_empty() => continue,
                        Role::System => "<|system|>\n",
                        Role::Assistant => "<|assistant|>\n",
                        _ => "<|user|>\n",
                    };
                    push_all(&mut out, &[tag, &m.content, "<|end|>\n"]);
                }
                out += if add_generation_prompt {
                    "<|assistant|>\n"
                } else {
                    eos
                };
            }
        }
        out
    }
}

/// A leading system message (its content) and the messages after it.
fn split_system(messages: &[ChatMessage]) -> (Option<&str>, &[ChatMessage]) {
    match messages.split_first() {
        Some((first, rest)) if first.role == Role::System => (Some(&first.content), rest),
        _ => (None, messages),
    }
}

fn push_all(out: &mut String, parts: &[&str]) {
    for p in parts {
        out.push_str(p);
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = Error;

    /// Parses llama.cpp's family names ([`Family::name`]).
    fn from_str(s: &str) -> Result<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| Error::InvalidArgument {
                what: format!(
                    "unknown chat template family '{s}' (known: {})",
                    Family::ALL.map(Family::name).join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convo() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("Be brief."),
            ChatMessage::user("Hi"),
            ChatMessage::assistant(" Hello! "),
            ChatMessage::user("Bye"),
        ]
    }

    #[test]
    fn detects_the_families_like_llama_cpp() {
        let cases = [
            ("{{'<|im_start|>' + role}}", Some(Family::ChatMl)),
            (
                "<|start_header_id|>x<|end_header_id|>",
                Some(Family::Llama3),
            ),
            ("{{ ' [INST] ' + system_message }}", Some(Family::MistralV1)),
            (
                "{{ '[INST] ' + x }}[AVAILABLE_TOOLS]",
                Some(Family::MistralV3),
            ),
            (
                "{{ \"[INST]\" + x }}[AVAILABLE_TOOLS]",
                Some(Family::MistralV3Tekken),
            ),
            ("'[SYSTEM_PROMPT] ' [INST]", Some(Family::MistralV7)),
            ("'[SYSTEM_PROMPT]' [INST]", Some(Family::MistralV7Tekken)),
            ("{{ '[INST] ' + x }}", Some(Family::MistralV1)),
            ("<start_of_turn>user", Some(Family::Gemma)),
            ("<|user|> <|assistant|> <|end|>", Some(Family::Phi3)),
            ("{{ weird }}", None),
        ];
        for (source, family) in cases {
            assert_eq!(Family::detect(source), family, "{source}");
        }
    }

    #[test]
    fn names_round_trip() {
        for f in Family::ALL {
            assert_eq!(f.name().parse::<Family>().ok(), Some(f));
            assert_eq!(f.to_string(), f.name());
        }
        let e = "chatml2".parse::<Family>().unwrap_err().to_string();
        assert!(
            e.contains("chatml2") && e.contains("mistral-v7-tekken"),
            "{e}"
        );
    }

    #[test]
    fn layouts() {
        let r = |f: Family, gen| f.render(&convo(), gen, "<s>", "</s>");
        assert_eq!(
            r(Family::ChatMl, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
             <|im_start|>assistant\n Hello! <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(
            r(Family::MistralV1, true),
            "<s> [INST] Be brief.\n\nHi [/INST]  Hello! </s> [INST] Bye [/INST]"
        );
        assert_eq!(
            r(Family::MistralV3, false),
            "<s>[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nBye[/INST]"
        );
        assert_eq!(
            r(Family::MistralV3Tekken, false),
            "<s>[INST]Hi[/INST] Hello! </s>[INST]Be brief.\n\nBye[/INST]"
        );
        assert_eq!(
            r(Family::MistralV7Tekken, false),
            "<s>[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST]Hi[/INST] Hello! </s>[INST]Bye[/INST]"
        );
        assert_eq!(
            r(Family::Gemma, true),
            "<s><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!\
             <end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(
            r(Family::Phi3, false),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n Hello! <|end|>\n\
             <|user|>\nBye<|end|>\n</s>"
        );
        // No messages: only what the reference prints outside its loop.
        assert_eq!(
            Family::Llama3.render(&[], true, "<s>", "</s>"),
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_eq!(Family::Gemma.render(&[], false, "<s>", "</s>"), "<s>");
    }
}
