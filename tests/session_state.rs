//! Sessions as conversation state, on SmolLM2: token budgets and finish reasons, stop strings
//! that leave the session holding the returned text, multi-turn chat that evaluates each token
//! once, truncate / fork / save / load, owned sessions, bounded and validated resources.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tramontane::tokenizer::{DecodeOptions, EncodeOptions};
use tramontane::{
    ChatMessage, Conversation, Error, FinishReason, GenerateOptions, Model, OwnedSession, Sampling,
    Session, SessionOptions,
};

const CHAT: &str = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
const PLAIN: &str = "The capital of France is";

fn model() -> Model {
    Model::load(support::smollm2_path()).expect("SmolLM2")
}

fn options(context: usize) -> SessionOptions {
    SessionOptions {
        context,
        threads: Some(2),
        ..SessionOptions::default()
    }
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: Sampling::greedy(),
        max_tokens: Some(max_tokens),
        ..GenerateOptions::default()
    }
}

fn sampled(seed: u64, max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        sampling: Sampling {
            temperature: 0.9,
            seed,
            ..Sampling::default()
        },
        max_tokens: Some(max_tokens),
        ..GenerateOptions::default()
    }
}

/// Generates from `prompt` (may be empty: continue); returns (tokens, text, finish reason).
fn run(
    s: &mut Session<'_>,
    prompt: &str,
    opts: &GenerateOptions,
) -> (Vec<u32>, String, Option<FinishReason>) {
    let mut g = if prompt.is_empty() {
        s.generate_tokens(&[], opts).expect("generate")
    } else {
        s.generate(prompt, opts).expect("generate")
    };
    let text: String = g.by_ref().map(|p| p.expect("piece")).collect();
    (g.tokens().to_vec(), text, g.finish_reason())
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/session-state-tests");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

#[test]
fn finish_reasons_budget_end_of_generation_and_full_context() {
    let model = model();
    let tok = model.tokenizer();

    // A budget of 0: nothing sampled.
    let mut s = model.session(options(64)).unwrap();
    let (ids, text, finish) = run(&mut s, PLAIN, &greedy(0));
    assert!(ids.is_empty() && text.is_empty());
    assert_eq!(finish, Some(FinishReason::MaxTokens));

    // The chat turn ends with <|im_end|>, left pending in the session.
    let mut s = model.session(options(128)).unwrap();
    let (ids, text, finish) = run(&mut s, CHAT, &greedy(64));
    assert_eq!(finish, Some(FinishReason::EndOfGeneration));
    assert_eq!(text, tok.decode(&ids, DecodeOptions::default()).unwrap());
    let eog = *s.pending().last().expect("pending end-of-turn");
    assert!(tok.is_eog(eog));
    assert_eq!(s.pending().len(), 1);

    // A context with room for 3 generated tokens; the third stays pending.
    let prompt_len = tok.encode(PLAIN, EncodeOptions::PROMPT).unwrap().len();
    let mut s = model.session(options(prompt_len + 3)).unwrap();
    let (ids, text, finish) = run(
        &mut s,
        PLAIN,
        &GenerateOptions {
            sampling: Sampling::greedy(),
            ..GenerateOptions::default()
        },
    );
    assert_eq!(finish, Some(FinishReason::ContextFull));
    assert_eq!(ids.len(), 3);
    assert_eq!(text, tok.decode(&ids, DecodeOptions::default()).unwrap());
    assert_eq!(s.tokens().len(), s.n_ctx());
    // The full session refuses more, cleanly.
    assert!(matches!(s.eval(&[42]), Err(Error::ContextFull { .. })));
}

#[test]
fn stop_strings_leave_the_session_holding_exactly_the_returned_text() {
    let model = model();
    let tok = model.tokenizer();
    let prompt = tok.encode(PLAIN, EncodeOptions::PROMPT).unwrap();
    // Greedy SmolLM2 continues " Paris.\n\nThe United States has a population of ...".
    for (stop, want) in [
        ("United", " Paris.\n\nThe "),
        ("ris.", " Pa"),
        ("\n\n", " Paris."),
        (" Paris", ""),
    ] {
        let mut s = model.session(options(64)).unwrap();
        let opts = GenerateOptions {
            stop: vec![stop.to_string()],
            ..greedy(24)
        };
        let mut g = s.generate_tokens(&prompt, &opts).unwrap();
        let text: String = g.by_ref().map(|p| p.unwrap()).collect();
        assert_eq!(
            g.finish_reason(),
            Some(FinishReason::StopString),
            "{stop:?}"
        );
        assert_eq!(text, want, "{stop:?}");
        let ids = g.tokens().to_vec();
        assert!(g.n_sampled() >= ids.len());
        drop(g);
        let held = s.tokens();
        assert_eq!(&held[..prompt.len()], &prompt[..]);
        assert_eq!(&held[prompt.len()..], &ids[..], "{stop:?}");
        assert_eq!(tok.decode(&ids, DecodeOptions::default()).unwrap(), want);
        // The conversation continues from what was returned.
        let (next, _, _) = run(&mut s, "", &greedy(2));
        assert_eq!(next.len(), 2);
    }
}

#[test]
fn four_turns_with_a_reply_cut_by_the_budget_evaluate_each_token_once() {
    let model = model();
    let mut chat = Conversation::new(model.session(options(2048)).unwrap());
    chat.push(ChatMessage::system("You are a helpful assistant."));
    let turns = [
        ("Name three colours.", 5),
        ("What is 2+2?", 48),
        ("Write a long poem about the sea.", 7),
        ("Thanks! And the capital of France?", 48),
    ];
    for (i, (question, budget)) in turns.into_iter().enumerate() {
        chat.push(ChatMessage::user(question));
        let before = chat.session().evaluated_tokens();
        let held_before = chat.session().tokens().len();
        let mut reply = chat.reply(&greedy(budget)).unwrap();
        let text: String = reply.by_ref().map(|p| p.unwrap()).collect();
        let finish = reply.finish_reason();
        let n_reply = reply.generation().tokens().len();
        drop(reply);
        if budget < 10 {
            assert_eq!(finish, Some(FinishReason::MaxTokens), "turn {i}");
            assert_eq!(n_reply, budget);
        }
        assert_eq!(chat.messages().last().unwrap().content, text);
        let s = chat.session();
        let evaluated = s.evaluated_tokens() - before;
        // Only what the session did not hold yet: the turn's new template text and the reply
        // (its last token stays pending).
        assert!(
            (evaluated as usize) < s.tokens().len() - held_before + 2,
            "turn {i}: {evaluated} evaluated for {} new tokens",
            s.tokens().len() - held_before
        );
        // No token was ever evaluated twice.
        assert_eq!(s.evaluated_tokens(), s.n_cached() as u64, "turn {i}");
    }
    assert_eq!(chat.messages().len(), 9);
}

#[test]
fn save_load_continue_equals_an_uninterrupted_session() {
    let model = model();
    let path = scratch("continue.state");
    for continuation in [greedy(10), sampled(5, 10)] {
        let mut a = model.session(options(256)).unwrap();
        run(&mut a, CHAT, &greedy(6));
        a.save_state(&path).unwrap();
        let uninterrupted = run(&mut a, "", &continuation);

        let mut b = model.session(options(256)).unwrap();
        b.load_state(&path).unwrap();
        assert_eq!(
            b.tokens().len(),
            6 + model
                .tokenizer()
                .encode(CHAT, EncodeOptions::PROMPT)
                .unwrap()
                .len()
        );
        let resumed = run(&mut b, "", &continuation);
        assert_eq!(resumed, uninterrupted);
        assert_eq!(a.tokens(), b.tokens());
    }
    // Saved after the prompt only (logits of the last prompt token included).
    let mut a = model.session(options(256)).unwrap();
    a.eval(
        &model
            .tokenizer()
            .encode(PLAIN, EncodeOptions::PROMPT)
            .unwrap(),
    )
    .unwrap();
    a.save_state(&path).unwrap();
    let mut b = model.session(options(256)).unwrap();
    b.load_state(&path).unwrap();
    assert_eq!(a.logits(), b.logits());
    assert_eq!(run(&mut a, "", &greedy(8)), run(&mut b, "", &greedy(8)));
}

#[test]
fn a_fork_gives_two_independent_continuations() {
    let model = model();
    let mut a = model.session(options(256)).unwrap();
    a.eval(
        &model
            .tokenizer()
            .encode(CHAT, EncodeOptions::PROMPT)
            .unwrap(),
    )
    .unwrap();
    let mut b = a.fork().unwrap();
    let from_a = run(&mut a, "", &sampled(1, 12));
    let from_b = run(&mut b, "", &sampled(2, 12));
    // Each equals a fresh session's continuation with the same seed.
    for (seed, got) in [(1, &from_a), (2, &from_b)] {
        let mut fresh = model.session(options(256)).unwrap();
        assert_eq!(
            &run(&mut fresh, CHAT, &sampled(seed, 12)),
            got,
            "seed {seed}"
        );
    }
    assert_ne!(from_a.0, from_b.0, "two seeds, two continuations");
    assert_ne!(a.tokens(), b.tokens());
}

#[test]
fn truncate_rewinds_and_the_continuation_is_recomputed() {
    let model = model();
    let prompt = model
        .tokenizer()
        .encode(CHAT, EncodeOptions::PROMPT)
        .unwrap();
    let mut a = model.session(options(256)).unwrap();
    let (first, _, _) = run(&mut a, CHAT, &greedy(6));
    a.truncate(prompt.len() + 3).unwrap();
    assert_eq!(a.tokens().len(), prompt.len() + 3);
    assert!(
        a.logits().is_empty(),
        "logits of the cut history are unknown"
    );
    let after_cut = run(&mut a, "", &greedy(5));

    // The same history reached without a cut.
    let mut b = model.session(options(256)).unwrap();
    let (three, _, _) = run(&mut b, CHAT, &greedy(3));
    assert_eq!(three, first[..3]);
    assert_eq!(run(&mut b, "", &greedy(5)), after_cut);
    assert!(a.truncate(10_000).is_err());
}

#[test]
fn bad_state_files_are_errors_and_leave_the_session_unchanged() {
    let model = model();
    let path = scratch("good.state");
    let mut s = model.session(options(128)).unwrap();
    run(&mut s, PLAIN, &greedy(4));
    s.save_state(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    let mut target = model.session(options(128)).unwrap();
    run(&mut target, CHAT, &greedy(2));
    let before = target.tokens().to_vec();
    let mut check = |name: &str, bytes: &[u8], expect: &str| {
        let p = scratch(name);
        std::fs::write(&p, bytes).unwrap();
        match target.load_state(&p) {
            Err(Error::BadState { what }) => assert!(what.contains(expect), "{name}: {what}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(target.tokens(), &before[..], "{name} changed the session");
    };
    check("empty.state", &[], "ends early");
    check(
        "magic.state",
        &[b"NOTSTATE".as_slice(), &good[8..]].concat(),
        "magic",
    );
    let mut v = good.clone();
    v[8] = 99;
    check("version.state", &v, "version");
    check("short.state", &good[..good.len() - 100], "bytes");
    check(
        "long.state",
        &[good.as_slice(), &[0u8; 16]].concat(),
        "bytes",
    );
    let mut flipped = good.clone();
    let mid = flipped.len() - 200;
    flipped[mid] ^= 0x55;
    check("flipped.state", &flipped, "checksum");
    let mut huge = good.clone();
    // n_tokens (after magic and header: 8 + 52 bytes) set to 2^60.
    huge[60..68].copy_from_slice(&(1u64 << 60).to_le_bytes());
    check("huge.state", &huge, "do not fit");

    // Other settings, another model.
    let mut other_ctx = model.session(options(256)).unwrap();
    assert!(matches!(
        other_ctx.load_state(&path),
        Err(Error::BadState { .. })
    ));
    let gemma = Model::load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/gemma-3-270m-q4_k_m.gguf"),
    )
    .expect("Gemma 3");
    let mut g = gemma.session(options(128)).unwrap();
    match g.load_state(&path) {
        Err(Error::BadState { what }) => assert!(what.contains("another model"), "{what}"),
        other => panic!("{other:?}"),
    }
    // A directory and a missing file.
    assert!(target.load_state(scratch("")).is_err());
    assert!(target.load_state(scratch("missing.state")).is_err());
    assert_eq!(target.tokens(), &before[..]);
}

#[test]
fn saving_never_replaces_the_model_or_a_directory() {
    let model = model();
    let mut s = model.session(options(64)).unwrap();
    s.eval(&[1, 2, 3]).unwrap();
    let model_path = support::smollm2_path();
    let len = std::fs::metadata(&model_path).unwrap().len();
    assert!(matches!(
        s.save_state(&model_path),
        Err(Error::OutputIsInput { .. })
    ));
    assert!(matches!(
        s.save_state(scratch("")),
        Err(Error::NotAFile { .. })
    ));
    assert_eq!(std::fs::metadata(&model_path).unwrap().len(), len);
}

#[test]
fn session_options_are_validated_and_memory_follows_use() {
    let model = model();
    let train = model.config().context_length;
    let invalid = |opts: SessionOptions, field: &str| match model.session(opts) {
        Err(Error::InvalidArgument { what }) => assert!(what.contains(field), "{what}"),
        other => panic!("{field}: {other:?}"),
    };
    invalid(options(train + 1), "context");
    invalid(options(1 << 40), "context");
    invalid(options(usize::MAX), "context");
    for threads in [0, usize::MAX, 100_000] {
        invalid(
            SessionOptions {
                threads: Some(threads),
                ..options(64)
            },
            "threads",
        );
    }
    invalid(
        SessionOptions {
            batch: 0,
            ..options(64)
        },
        "batch",
    );
    // Asked for explicitly, a longer context is accepted; nothing is allocated up front.
    let mut long = model
        .session(SessionOptions {
            exceed_training_context: true,
            ..options(train * 2)
        })
        .unwrap();
    assert_eq!(long.kv_bytes(), 0);
    let c = model.config();
    let per_cell = c.n_layer * 2 * c.n_kv_head * c.head_dim * 2;
    long.eval(&[1, 2, 3]).unwrap();
    assert_eq!(long.kv_bytes(), 32 * per_cell, "one growth step");
    long.eval(&vec![42; 100]).unwrap();
    assert!(long.kv_bytes() <= 160 * per_cell, "{}", long.kv_bytes());
    // The training context (context 0) costs nothing until used either.
    assert_eq!(model.session(options(0)).unwrap().kv_bytes(), 0);

    // Bad sampling parameters are refused before the session changes.
    let mut s = model.session(options(64)).unwrap();
    let bad = GenerateOptions {
        sampling: Sampling {
            temperature: f32::NAN,
            ..Sampling::default()
        },
        ..GenerateOptions::default()
    };
    match s.generate(PLAIN, &bad) {
        Err(Error::InvalidArgument { what }) => assert!(what.contains("temperature"), "{what}"),
        other => panic!("{other:?}"),
    }
    assert!(s.tokens().is_empty());
}

#[test]
fn owned_sessions_live_in_a_map_and_move_between_threads() {
    let model = Arc::new(model());
    let want = {
        let mut s = model.session(options(128)).unwrap();
        run(&mut s, CHAT, &greedy(8))
    };
    let mut sessions: HashMap<u32, OwnedSession> = HashMap::new();
    for id in 0..2 {
        sessions.insert(id, model.owned_session(options(128)).unwrap());
    }
    let handles: Vec<_> = sessions
        .into_values()
        .map(|mut s| std::thread::spawn(move || run(&mut s, CHAT, &greedy(8))))
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}

#[test]
fn a_prefix_fork_continues_like_a_truncated_fork_and_copies_less() {
    let model = model();
    // A history several cache growth steps (32 cells) longer than the prefix.
    let tokens = model
        .tokenizer()
        .encode(&CHAT.repeat(8), EncodeOptions::PROMPT)
        .unwrap();
    let mut a = model.session(options(256)).unwrap();
    a.eval(&tokens).unwrap();
    let keep = 20;
    assert!(tokens.len() > 3 * 32, "{} tokens", tokens.len());
    let mut prefix = a.fork_prefix(keep).unwrap();
    assert_eq!(prefix.tokens(), &tokens[..keep]);
    assert_eq!(prefix.n_cached(), keep);
    assert!(prefix.logits().is_empty(), "no logits before an evaluation");
    assert!(prefix.kv_bytes() < a.kv_bytes(), "only the prefix's cells");
    let mut whole = a.fork().unwrap();
    whole.truncate(keep).unwrap();
    assert_eq!(whole.n_cached(), keep);
    // The same cells, then the same evaluation of the rest: the same bits.
    let rest = &tokens[keep..];
    assert_eq!(prefix.eval(rest).unwrap(), whole.eval(rest).unwrap());
    assert_eq!(
        run(&mut prefix, "", &greedy(8)),
        run(&mut whole, "", &greedy(8))
    );
    // Asking for more than is cached keeps what is cached.
    assert_eq!(a.fork_prefix(usize::MAX).unwrap().n_cached(), a.n_cached());
}
