//! Renders arbitrary Jinja text as a model's chat template over a conversation taken from the
//! same input. A GGUF file carries its template, so the template is untrusted input: any input
//! must render, fall back to a built-in family, or be an error, never a panic, an abort or a
//! hang (each render has a fuel budget).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tramontane::{ChatMessage, ChatTemplate, RenderOptions, TemplateTokens};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The template, then up to four messages, separated by NUL.
    let mut parts = text.split('\0');
    let source = parts.next().unwrap_or_default().to_string();
    let messages: Vec<ChatMessage> = parts
        .take(4)
        .enumerate()
        .map(|(i, content)| match i % 2 {
            0 => ChatMessage::user(content),
            _ => ChatMessage::assistant(content),
        })
        .collect();
    let tokens = TemplateTokens {
        bos: "<s>".into(),
        eos: "</s>".into(),
        tokenizer_adds_bos: data.first().is_some_and(|b| b & 1 == 1),
        tokenizer_adds_eos: false,
    };
    let template = ChatTemplate::from_jinja(source, tokens);
    for add_generation_prompt in [false, true] {
        let options = RenderOptions {
            add_generation_prompt,
            ..RenderOptions::default()
        };
        if let Ok(rendered) = template.render(&messages, options) {
            std::hint::black_box(rendered.text.len());
        }
    }
});
