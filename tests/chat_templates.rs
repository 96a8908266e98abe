//! Chat templates rendered by tramontane, byte for byte against Python's jinja2 configured as
//! transformers' `apply_chat_template` configures it: tests/fixtures/chat/refs.json, made by
//! scripts/make-chat-refs.py from the templates in tests/fixtures/chat/templates/.
//!
//! With the `chat-templates` feature every reference must come out of the Jinja engine; with or
//! without it, each built-in family must match its reference template on ordinary
//! conversations.

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value as Json;
use tramontane::chat::{
    ChatMessage, ChatTemplate, FallbackReason, Family, RenderOptions, Role, TemplateTokens,
    TemplateUsed,
};
#[cfg(feature = "chat-templates")]
use tramontane::Error;
use tramontane::Model;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat")
}

fn refs() -> Json {
    let path = fixtures().join("refs.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("refs.json parses")
}

fn source(file: &str) -> String {
    let path = fixtures().join("templates").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn messages(refs: &Json, conversation: &str) -> Vec<ChatMessage> {
    refs["conversations"][conversation]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let role: Role = m["role"]
                .as_str()
                .expect("role")
                .parse()
                .expect("known role");
            ChatMessage::new(role, m["content"].as_str().expect("content"))
        })
        .collect()
}

fn ordinary(refs: &Json, conversation: &str) -> bool {
    refs["conversations"][conversation]["ordinary"]
        .as_bool()
        .expect("ordinary")
}

/// The template's tokens as the references used them, with no BOS/EOS cutting (transformers
/// does not cut; llama.cpp's rule is tested separately).
fn tokens(template: &Json) -> TemplateTokens {
    TemplateTokens {
        bos: template["bos_token"].as_str().expect("bos").into(),
        eos: template["eos_token"].as_str().expect("eos").into(),
        tokenizer_adds_bos: false,
        tokenizer_adds_eos: false,
    }
}

fn options(refs: &Json, case: &Json) -> RenderOptions {
    RenderOptions {
        add_generation_prompt: case["add_generation_prompt"].as_bool().expect("flag"),
        enable_thinking: case["enable_thinking"].as_bool(),
        now: Some(UNIX_EPOCH + Duration::from_secs(refs["now"].as_u64().expect("now"))),
    }
}

fn templates(refs: &Json) -> &Vec<Json> {
    refs["templates"].as_array().expect("templates")
}

/// Every reference, rendered by the file's template in minijinja: the same text, the same
/// `raise_exception` message, and a fallback where jinja2 itself fails.
#[cfg(feature = "chat-templates")]
#[test]
fn jinja_renders_like_python_jinja2() {
    let refs = refs();
    let mut failures = Vec::new();
    let mut n_cases = 0;
    for t in templates(&refs) {
        let file = t["file"].as_str().expect("file");
        let template = ChatTemplate::from_jinja(source(file), tokens(t));
        for case in t["cases"].as_array().expect("cases") {
            n_cases += 1;
            let conversation = case["conversation"].as_str().expect("conversation");
            let what = format!("{file} / {conversation} / {case}", case = short(case));
            let result = template.render(&messages(&refs, conversation), options(&refs, case));
            if let Some(expected) = case["output"].as_str() {
                match result {
                    Ok(r) if r.text == expected && r.used == TemplateUsed::File => {}
                    Ok(r) if r.used != TemplateUsed::File => {
                        failures.push(format!("{what}: rendered by {:?}", r.used))
                    }
                    Ok(r) => failures.push(format!(
                        "{what}:\n  expected {expected:?}\n  got      {:?}",
                        r.text
                    )),
                    Err(e) => failures.push(format!("{what}: error {e}")),
                }
            } else if let Some(message) = case["raised"].as_str() {
                match result {
                    Err(Error::InvalidArgument { what: w }) if w.ends_with(message) => {}
                    other => {
                        failures.push(format!("{what}: expected raise {message:?}, got {other:?}"))
                    }
                }
            } else {
                // jinja2 fails on its own (e.g. messages[0] of no messages): so must we, and the
                // family takes over.
                match result {
                    Ok(r)
                        if matches!(
                            r.used,
                            TemplateUsed::Fallback {
                                reason: FallbackReason::Render(_),
                                ..
                            }
                        ) => {}
                    other => failures.push(format!(
                        "{what}: expected a failure ({}), got {other:?}",
                        case["failed"]
                    )),
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n_cases} cases differ from jinja2:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(n_cases > 500, "only {n_cases} cases");
}

fn short(case: &Json) -> String {
    format!(
        "gen={} thinking={}",
        case["add_generation_prompt"], case["enable_thinking"]
    )
}

/// The reference templates of the families, and which conversations each family must match:
/// all the ordinary ones, or only those that start with a system message where the real
/// template adds a default system message of its own (or, for Gemma 2, refuses one).
const FAMILY_REFERENCES: [(&str, Family, Which); 12] = [
    ("chatml.jinja", Family::ChatMl, Which::All),
    (
        "smollm2-135m-instruct.jinja",
        Family::ChatMl,
        Which::WithSystem,
    ),
    (
        "Qwen-Qwen2.5-7B-Instruct.jinja",
        Family::ChatMl,
        Which::WithSystem,
    ),
    ("llama-3-8b-instruct.jinja", Family::Llama3, Which::All),
    ("mistral-v1.jinja", Family::MistralV1, Which::All),
    ("mistral-v3.jinja", Family::MistralV3, Which::All),
    (
        "mistralai-Mistral-Nemo-Instruct-2407.jinja",
        Family::MistralV3Tekken,
        Which::All,
    ),
    ("mistral-v7.jinja", Family::MistralV7, Which::All),
    (
        "Mistral-Small-3.2-24B-Instruct-2506.jinja",
        Family::MistralV7Tekken,
        Which::WithSystem,
    ),
    ("gemma-3-it.jinja", Family::Gemma, Which::All),
    (
        "google-gemma-2-2b-it.jinja",
        Family::Gemma,
        Which::WithoutSystem,
    ),
    (
        "microsoft-Phi-3.5-mini-instruct.jinja",
        Family::Phi3,
        Which::All,
    ),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    All,
    WithSystem,
    WithoutSystem,
}

/// Each built-in family renders ordinary conversations exactly as its reference template does
/// under jinja2; each reference template is recognised as its family; and a template that cannot
/// run (no Jinja compiled in) falls back to that family with the same text.
#[test]
fn builtin_families_render_like_their_reference_templates() {
    let refs = refs();
    let mut compared = 0;
    let mut failures = Vec::new();
    for (file, family, which) in FAMILY_REFERENCES {
        let t = templates(&refs)
            .iter()
            .find(|t| t["file"] == file)
            .unwrap_or_else(|| panic!("{file} has no references"));
        let src = source(file);
        assert_eq!(Family::detect(&src), Some(family), "{file}");
        let builtin = ChatTemplate::builtin(family, tokens(t));
        let from_file = ChatTemplate::from_jinja(src, tokens(t));
        for case in t["cases"].as_array().expect("cases") {
            let conversation = case["conversation"].as_str().expect("conversation");
            let msgs = messages(&refs, conversation);
            let has_system = msgs.first().is_some_and(|m| m.role == Role::System);
            let wanted = match which {
                Which::All => true,
                Which::WithSystem => has_system,
                Which::WithoutSystem => !has_system,
            };
            let Some(expected) = case["output"].as_str() else {
                continue;
            };
            if !ordinary(&refs, conversation) || !wanted || !case["enable_thinking"].is_null() {
                continue;
            }
            compared += 1;
            let opts = options(&refs, case);
            let r = builtin.render(&msgs, opts).expect("builtin renders");
            assert_eq!(r.used, TemplateUsed::Builtin(family));
            if r.text != expected {
                failures.push(format!(
                    "{family} vs {file} / {conversation} / {}:\n  expected {expected:?}\n  got      {:?}",
                    short(case),
                    r.text
                ));
            }
            if !cfg!(feature = "chat-templates") {
                let r = from_file.render(&msgs, opts).expect("fallback renders");
                assert_eq!(
                    r.used,
                    TemplateUsed::Fallback {
                        family,
                        reason: FallbackReason::JinjaDisabled
                    }
                );
                assert_eq!(r.text, expected, "{file} fallback / {conversation}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} family renderings differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared > 100, "only {compared} comparisons");
}

/// The other reference templates are recognised as the family closest to them.
#[test]
fn other_templates_are_recognised() {
    let cases = [
        ("Qwen-Qwen3-0.6B.jinja", Some(Family::ChatMl)),
        ("HuggingFaceTB-SmolLM3-3B.jinja", Some(Family::ChatMl)),
        (
            "meta-llama-Llama-3.1-8B-Instruct.jinja",
            Some(Family::Llama3),
        ),
        (
            "meta-llama-Llama-3.2-3B-Instruct.jinja",
            Some(Family::Llama3),
        ),
        ("pycompat.jinja", None),
    ];
    for (file, family) in cases {
        assert_eq!(Family::detect(&source(file)), family, "{file}");
    }
}

/// llama.cpp's BOS rule on a real template: Llama 3 starts with `<|begin_of_text|>`, which goes
/// when the tokenizer adds it itself.
#[test]
fn leading_bos_text_is_cut_when_the_tokenizer_adds_bos() {
    let src = source("llama-3-8b-instruct.jinja");
    let mut tokens = TemplateTokens {
        bos: "<|begin_of_text|>".into(),
        eos: "<|eot_id|>".into(),
        tokenizer_adds_bos: false,
        tokenizer_adds_eos: false,
    };
    let msgs = [ChatMessage::user("Hi")];
    for template in [
        ChatTemplate::from_jinja(src.clone(), tokens.clone()),
        ChatTemplate::builtin(Family::Llama3, tokens.clone()),
    ] {
        let r = template
            .render(&msgs, RenderOptions::for_generation())
            .unwrap();
        assert!(
            r.text
                .starts_with("<|begin_of_text|><|start_header_id|>user"),
            "{r:?}"
        );
    }
    tokens.tokenizer_adds_bos = true;
    for template in [
        ChatTemplate::from_jinja(src, tokens.clone()),
        ChatTemplate::builtin(Family::Llama3, tokens),
    ] {
        let r = template
            .render(&msgs, RenderOptions::for_generation())
            .unwrap();
        assert_eq!(
            r.text,
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }
}

/// A template that is not Jinja at all, or uses what the engine lacks, falls back to its family
/// and says why; nothing panics.
#[test]
fn broken_templates_fall_back() {
    let msgs = [ChatMessage::system("S"), ChatMessage::user("Hi")];
    let broken = [
        "{% for m in messages %}<|im_start|>{{ m.role }}",
        "{{ unclosed",
        "{% if %}{% endif %}",
        "{% endfor %}",
        "{{ messages | no_such_filter }}<|im_start|>",
        "{{ messages[0].content.no_such_method() }}",
        "{{ raise_exception }}{{ 1 / 0 }}",
        "{{ messages[5]['role'] }}",
        "{% include 'other' %}",
        "\u{0}\u{ffff}{{",
        "",
    ];
    for src in broken {
        let t = ChatTemplate::from_jinja(src, TemplateTokens::default());
        let r = t.render(&msgs, RenderOptions::for_generation());
        let r = r.unwrap_or_else(|e| panic!("{src:?}: {e}"));
        if src.is_empty() && cfg!(feature = "chat-templates") {
            // An empty template is a valid one that renders nothing (Model treats it as none).
            assert_eq!((r.text.as_str(), r.used), ("", TemplateUsed::File));
            continue;
        }
        match &r.used {
            TemplateUsed::Fallback { family, reason } => {
                assert_eq!(*family, Family::ChatMl, "{src:?}");
                assert!(!reason.to_string().is_empty());
                assert!(
                    r.text.starts_with("<|im_start|>system\nS<|im_end|>"),
                    "{src:?}"
                );
            }
            other => panic!("{src:?} rendered by {other:?}"),
        }
    }
}

/// `raise_exception` is the caller's mistake, with the template's message, whatever it is given.
#[cfg(feature = "chat-templates")]
#[test]
fn raise_exception_is_an_invalid_argument() {
    let cases = [
        ("{{ raise_exception('No tools here!') }}", "No tools here!"),
        ("{{ raise_exception(42) }}", "42"),
        ("{{ raise_exception() }}", ""),
        (
            "{% macro f() %}{{ raise_exception('in a macro') }}{% endmacro %}{% for m in messages %}{{ f() }}{% endfor %}",
            "in a macro",
        ),
        ("{{ messages | map('upper') | list }}{{ raise_exception('x' ~ 'y') }}", "xy"),
    ];
    for (src, message) in cases {
        let t = ChatTemplate::from_jinja(src, TemplateTokens::default());
        match t.render(&[ChatMessage::user("Hi")], RenderOptions::default()) {
            Err(Error::InvalidArgument { what }) => {
                assert!(what.ends_with(&format!(": {message}")), "{src}: {what}")
            }
            other => panic!("{src}: {other:?}"),
        }
    }
}

/// Hostile templates end with a fallback (fuel, recursion limits), within a bounded time.
#[cfg(feature = "chat-templates")]
#[test]
fn hostile_templates_are_bounded() {
    let hostile = [
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}",
        "{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('x', ns.s) %}{% endfor %}",
        "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
        "{{ 'x' * 100000000000 }}",
        "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}{{ ns | tojson }}",
        "{{ ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))) }}",
    ];
    for src in hostile {
        let start = std::time::Instant::now();
        let t = ChatTemplate::from_jinja(src, TemplateTokens::default());
        let r = t
            .render(&[ChatMessage::user("Hi")], RenderOptions::default())
            .unwrap_or_else(|e| panic!("{src}: {e}"));
        assert!(
            matches!(r.used, TemplateUsed::Fallback { .. }),
            "{src}: {:?} ({} bytes)",
            r.used,
            r.text.len()
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{src}: {:?}",
            start.elapsed()
        );
    }
}

/// A long conversation with large messages renders completely with a real template.
#[cfg(feature = "chat-templates")]
#[test]
fn large_conversations_render() {
    let big = "Lorem ipsum dolor sit amet. ".repeat(40_000); // ~1.1 MB
    let mut msgs = vec![ChatMessage::system(big.clone())];
    for i in 0..2000 {
        msgs.push(ChatMessage::user(format!("question {i}")));
        msgs.push(ChatMessage::assistant(format!("answer {i}")));
    }
    msgs.push(ChatMessage::user(big));
    for file in [
        "Qwen-Qwen3-0.6B.jinja",
        "meta-llama-Llama-3.1-8B-Instruct.jinja",
        "gemma-3-it.jinja",
    ] {
        let t = ChatTemplate::from_jinja(source(file), TemplateTokens::default());
        let r = t.render(&msgs, RenderOptions::for_generation()).unwrap();
        assert_eq!(r.used, TemplateUsed::File, "{file}");
        assert!(
            r.text.len() > 2_200_000 && r.text.contains("answer 1999"),
            "{file}"
        );
    }
}

/// `Model::chat_template`: SmolLM2's file template, Gemma 3 270M's built-in fallback with its BOS
/// cut (the tokenizer adds it). Skipped, with a note, when the models are not fetched
/// (scripts/fetch-models smollm2 gemma3).
#[test]
fn model_chat_templates() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let smollm2 = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let gemma = dir.join("gemma-3-270m-q4_k_m.gguf");
    if !smollm2.exists() || !gemma.exists() {
        eprintln!(
            "skipped: models/ lacks SmolLM2 or Gemma 3 (scripts/fetch-models smollm2 gemma3)"
        );
        return;
    }
    let msgs = [ChatMessage::user("Hi")];
    let model = Model::load(&smollm2).expect("SmolLM2 loads");
    let t = model.chat_template();
    assert_eq!(
        t.source(),
        Some(source("smollm2-135m-instruct.jinja").as_str())
    );
    assert_eq!(t.family(), Family::ChatMl);
    assert_eq!(t.tokens().bos, "<|im_start|>");
    assert_eq!(t.tokens().eos, "<|im_end|>");
    assert!(!t.tokens().tokenizer_adds_bos);
    let r = t.render(&msgs, RenderOptions::for_generation()).unwrap();
    let expected = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
                    <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    if cfg!(feature = "chat-templates") {
        assert_eq!((r.text.as_str(), &r.used), (expected, &TemplateUsed::File));
    } else {
        // Without Jinja, plain ChatML: no default system message.
        assert_eq!(
            r.text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    let model = Model::load(&gemma).expect("Gemma 3 loads");
    let t = model.chat_template();
    assert_eq!(t.source(), None);
    assert!(t.tokens().tokenizer_adds_bos);
    assert_eq!(t.tokens().bos, "<bos>");
    let r = t.render(&msgs, RenderOptions::for_generation()).unwrap();
    assert_eq!(r.used, TemplateUsed::Builtin(Family::Gemma));
    assert_eq!(
        r.text,
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
}

/// Mutated real templates (cut, spliced, seeded with Jinja fragments and hostile calls) either
/// render or fall back: no panic, no error but `raise_exception`'s. A deterministic stand-in for
/// fuzzing.
#[cfg(feature = "chat-templates")]
#[test]
fn mutated_templates_never_panic() {
    const SNIPPETS: [&str; 26] = [
        "{%",
        "%}",
        "{{",
        "}}",
        "{#",
        "-%}",
        "{% endfor %}",
        "{% if x %}",
        "(",
        ")",
        "[",
        "'",
        "\"",
        "|",
        "loop.",
        "messages[-1]",
        "~",
        "** 99",
        "* 9999999",
        "{% for i in range(99999) %}{% for j in range(99999) %}{{ j }}",
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        ".split('')",
        ".format(",
        "|tojson(indent=99999)",
        "raise_exception(",
        "strftime_now('%-')",
    ];
    // xorshift64*: reproducible without a dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    };
    let refs = refs();
    let convs = [
        messages(&refs, "multi_turn"),
        messages(&refs, "unicode"),
        messages(&refs, "no_messages"),
    ];
    let files = [
        "Qwen-Qwen3-0.6B.jinja",
        "gemma-3-it.jinja",
        "mistral-v3.jinja",
        "syntax.jinja",
        "LFM2.5-8B-A1B.jinja",
        "meta-llama-Llama-3.2-3B-Instruct.jinja",
        "tojson.jinja",
    ];
    let start = std::time::Instant::now();
    let mut rendered = 0;
    for file in files {
        let original: Vec<char> = source(file).chars().collect();
        for _ in 0..200 {
            let mut t = original.clone();
            for _ in 0..1 + next(3) {
                let p = next(t.len());
                match next(4) {
                    0 => t.truncate(p),
                    1 => {
                        let end = (p + 1 + next(40)).min(t.len());
                        t.drain(p..end);
                    }
                    2 => {
                        let snippet = SNIPPETS[next(SNIPPETS.len())];
                        t.splice(p..p, snippet.chars());
                    }
                    _ => {
                        let q = next(t.len());
                        let (a, b) = (p.min(q), p.max(q));
                        let chunk: Vec<char> = t[a..b].to_vec();
                        t.splice(b..b, chunk);
                    }
                }
            }
            let src: String = t.into_iter().collect();
            let template = ChatTemplate::from_jinja(src.clone(), TemplateTokens::default());
            for conv in &convs {
                match template.render(conv, RenderOptions::for_generation()) {
                    Ok(r) => rendered += usize::from(r.used == TemplateUsed::File),
                    Err(Error::InvalidArgument { .. }) => {}
                    Err(e) => panic!("{src:?}: {e}"),
                }
            }
        }
    }
    assert!(rendered > 0);
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "{:?}",
        start.elapsed()
    );
}
