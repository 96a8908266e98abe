//! The batch engine on SmolLM2 and Gemma 3: replies do not depend on what else is in the
//! batch, the prefix cache and running requests share prompt prefixes, and requests are
//! checked and bounded.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use tramontane::chat::{ChatMessage, RenderOptions};
use tramontane::engine::{
    Engine, EngineOptions, Event, Request, RequestId, Usage, MIN_SHARED_PREFIX,
};
use tramontane::tokenizer::EncodeOptions;
use tramontane::{Error, FinishReason, GenerateOptions, Model, Sampling};

const PROMPTS: [&str; 8] = [
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a quiet village by the sea,",
    "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n",
    "日本語のテキスト: 東京は",
    "The three primary colours are",
    "Multiples of nine: 9, 18, 27, 36, 45,",
];

fn smollm2() -> Arc<Model> {
    Arc::new(Model::load(support::smollm2_path()).expect("SmolLM2"))
}

fn request(model: &Model, text: &str, max_tokens: usize, sampling: Sampling) -> Request {
    Request {
        prompt: model
            .tokenizer()
            .encode(text, EncodeOptions::PROMPT)
            .unwrap(),
        options: GenerateOptions {
            sampling,
            max_tokens: Some(max_tokens),
            ..GenerateOptions::default()
        },
        logprobs: None,
    }
}

/// Reply text, tokens, finish reason and usage of a finished request.
#[derive(Clone, Debug, Default, PartialEq)]
struct Reply {
    text: String,
    tokens: Vec<u32>,
    finish: Option<FinishReason>,
    usage: Usage,
}

/// Runs the engine until it has no work; the replies by request.
fn drain(engine: &mut Engine) -> HashMap<RequestId, Reply> {
    let mut replies: HashMap<RequestId, Reply> = HashMap::new();
    while engine.has_work() {
        for event in engine.step() {
            match event {
                Event::Token {
                    id, token, text, ..
                } => {
                    let r = replies.entry(id).or_default();
                    r.text += &text;
                    r.tokens.push(token);
                }
                Event::Finished {
                    id,
                    reason,
                    text,
                    usage,
                } => {
                    let r = replies.entry(id).or_default();
                    r.text += &text;
                    r.finish = Some(reason);
                    r.usage = usage;
                }
                Event::Failed { id, error } => panic!("request {id} failed: {error}"),
            }
        }
    }
    replies
}

fn options(slots: usize) -> EngineOptions {
    EngineOptions {
        slots,
        context: 512,
        threads: Some(2),
        // Small, so that prompts are cut into pieces among the decoding requests.
        batch: 16,
        prefix_cache_bytes: 0,
        ..EngineOptions::default()
    }
}

#[test]
fn replies_do_not_depend_on_the_rest_of_the_batch() {
    let model = smollm2();
    let sampled = |seed| Sampling {
        temperature: 0.8,
        seed,
        ..Sampling::default()
    };
    // Alone, one request at a time.
    let mut alone = Vec::new();
    for (i, text) in PROMPTS.iter().enumerate() {
        let mut engine = Engine::new(Arc::clone(&model), options(1)).unwrap();
        let sampling = if i % 2 == 0 {
            Sampling::greedy()
        } else {
            sampled(i as u64)
        };
        let id = engine.submit(request(&model, text, 24, sampling)).unwrap();
        alone.push(drain(&mut engine).remove(&id).unwrap());
    }
    // All at once, in 8 slots, and in 3 slots (so that some wait and join mid-way).
    for slots in [8, 3] {
        let mut engine = Engine::new(Arc::clone(&model), options(slots)).unwrap();
        let ids: Vec<RequestId> = PROMPTS
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let sampling = if i % 2 == 0 {
                    Sampling::greedy()
                } else {
                    sampled(i as u64)
                };
                engine.submit(request(&model, text, 24, sampling)).unwrap()
            })
            .collect();
        let mut together = drain(&mut engine);
        for (i, id) in ids.iter().enumerate() {
            let got = together.remove(id).unwrap();
            assert_eq!(got, alone[i], "prompt {i} with {slots} slots");
            let tok = model.tokenizer();
            let decoded = tok
                .decode(&got.tokens, tramontane::tokenizer::DecodeOptions::default())
                .unwrap();
            assert_eq!(got.text, decoded, "prompt {i}: text vs tokens");
            assert!(got.finish.is_some());
        }
    }
}

#[test]
fn the_prefix_cache_reuses_a_shared_system_prompt() {
    let model = smollm2();
    let mut engine = Engine::new(
        Arc::clone(&model),
        EngineOptions {
            prefix_cache_bytes: 64 << 20,
            ..options(2)
        },
    )
    .unwrap();
    let system = "<|im_start|>system\nYou are a terse assistant who answers in one short sentence.<|im_end|>\n";
    let first =
        format!("{system}<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
    let second =
        format!("{system}<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n");
    let a = engine
        .submit(request(&model, &first, 8, Sampling::greedy()))
        .unwrap();
    let ra = drain(&mut engine).remove(&a).unwrap();
    assert_eq!(ra.usage.cached_tokens, 0);
    assert!(engine.stats().cached_sequences == 1);
    let b = engine
        .submit(request(&model, &second, 8, Sampling::greedy()))
        .unwrap();
    let rb = drain(&mut engine).remove(&b).unwrap();
    let system_tokens = model
        .tokenizer()
        .encode(system, EncodeOptions::PROMPT)
        .unwrap()
        .len();
    assert!(
        rb.usage.cached_tokens >= system_tokens,
        "{} cached, the system prompt has {system_tokens}",
        rb.usage.cached_tokens
    );
    // The same reply as without the cache.
    let mut cold = Engine::new(Arc::clone(&model), options(1)).unwrap();
    let c = cold
        .submit(request(&model, &second, 8, Sampling::greedy()))
        .unwrap();
    assert_eq!(drain(&mut cold).remove(&c).unwrap().tokens, rb.tokens);
}

/// Chats with one long system message, differing only in the user's question: rendered by the
/// model's template, so they share a long token prefix.
fn shared_system_chats(model: &Model) -> Vec<String> {
    let system = "You are a careful assistant for a small bakery. Answer questions about opening \
                  hours, bread, pastries and cakes in one short, friendly sentence, and never \
                  make up prices you were not told.";
    [
        "When do you open?",
        "Do you sell rye bread?",
        "What is your best cake?",
        "Can I order a birthday cake?",
        "Are the croissants made with butter?",
        "Do you have anything without gluten?",
    ]
    .iter()
    .map(|question| {
        let messages = [ChatMessage::system(system), ChatMessage::user(*question)];
        model
            .chat_template()
            .render(&messages, RenderOptions::for_generation())
            .unwrap()
            .text
    })
    .collect()
}

/// Each text's greedy reply, run alone on a fresh engine.
fn alone(model: &Arc<Model>, texts: &[impl AsRef<str>], max_tokens: usize) -> Vec<Reply> {
    texts
        .iter()
        .map(|text| {
            let mut engine = Engine::new(Arc::clone(model), options(1)).unwrap();
            let ids = submit_greedy(&mut engine, model, std::slice::from_ref(text), max_tokens);
            drain(&mut engine).remove(&ids[0]).unwrap()
        })
        .collect()
}

/// Submits a greedy request of `max_tokens` for each text, in order; their ids.
fn submit_greedy(
    engine: &mut Engine,
    model: &Model,
    texts: &[impl AsRef<str>],
    max_tokens: usize,
) -> Vec<RequestId> {
    texts
        .iter()
        .map(|t| {
            engine
                .submit(request(model, t.as_ref(), max_tokens, Sampling::greedy()))
                .unwrap()
        })
        .collect()
}

/// The number of leading tokens all of `prompts` share.
fn common_prefix(prompts: &[Vec<u32>]) -> usize {
    let first = &prompts[0];
    prompts
        .iter()
        .map(|p| p.iter().zip(first).take_while(|(a, b)| a == b).count())
        .min()
        .unwrap_or(0)
}

#[test]
fn requests_arriving_together_share_their_common_prefix() {
    let model = smollm2();
    let texts = shared_system_chats(&model);
    let prompts: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| request(&model, t, 1, Sampling::greedy()).prompt)
        .collect();
    let shared = common_prefix(&prompts);
    assert!(shared >= 40, "the prompts share only {shared} tokens");
    let alone = alone(&model, &texts, 12);
    // With a batch that holds a whole prompt, the first request reads the shared prefix in
    // the first step and the others copy it in the next. With a small one they wait while it
    // advances, and copy it once what is left to read is less than MIN_SHARED_PREFIX.
    for (batch, least_cached) in [(512, shared), (16, shared + 1 - MIN_SHARED_PREFIX)] {
        let mut engine = Engine::new(
            Arc::clone(&model),
            EngineOptions {
                batch,
                ..options(6)
            },
        )
        .unwrap();
        let ids = submit_greedy(&mut engine, &model, &texts, 12);
        let mut together = drain(&mut engine);
        for (i, id) in ids.iter().enumerate() {
            let got = together.remove(id).unwrap();
            assert_eq!(got.tokens, alone[i].tokens, "request {i}, batch {batch}");
            assert_eq!(got.text, alone[i].text, "request {i}, batch {batch}");
            assert_eq!(got.finish, alone[i].finish, "request {i}, batch {batch}");
            let cached = got.usage.cached_tokens;
            if i == 0 {
                assert_eq!(cached, 0, "batch {batch}");
            } else {
                assert!(
                    cached >= least_cached,
                    "request {i}, batch {batch}: {cached} tokens reused of {shared} shared"
                );
            }
        }
    }
}

#[test]
fn followers_do_not_wait_for_a_leader_that_is_gone_or_stalled() {
    let model = smollm2();
    let texts = shared_system_chats(&model);
    let alone = alone(&model, &texts[..3], 6);
    let submit = |engine: &mut Engine, text: &str, max_tokens: usize| {
        engine
            .submit(request(&model, text, max_tokens, Sampling::greedy()))
            .unwrap()
    };

    // Cancelled after one step, before it has read the shared prefix (16 of the batch).
    let mut engine = Engine::new(Arc::clone(&model), options(3)).unwrap();
    let leader = submit(&mut engine, &texts[0], 6);
    let followers = [
        submit(&mut engine, &texts[1], 6),
        submit(&mut engine, &texts[2], 6),
    ];
    engine.step();
    assert_eq!((engine.stats().running, engine.stats().queued), (1, 2));
    assert!(engine.cancel(leader));
    let mut replies = drain(&mut engine);
    let got: Vec<Reply> = followers
        .iter()
        .map(|id| replies.remove(id).unwrap())
        .collect();
    for (i, (got, want)) in got.iter().zip(&alone[1..]).enumerate() {
        assert_eq!(
            (&got.tokens, &got.text),
            (&want.tokens, &want.text),
            "follower {i}"
        );
    }
    // The first follower read the prefix itself; the second waited for it, and copied it.
    assert_eq!(got[0].usage.cached_tokens, 0);
    assert!(got[1].usage.cached_tokens > 0);

    // A leader with no token budget evaluates nothing: nobody waits for it.
    let mut engine = Engine::new(Arc::clone(&model), options(3)).unwrap();
    let leader = submit(&mut engine, &texts[0], 0);
    let follower = submit(&mut engine, &texts[1], 6);
    engine.step();
    assert_eq!(engine.stats().queued, 0);
    let mut replies = drain(&mut engine);
    assert_eq!(replies.remove(&follower).unwrap(), alone[1]);
    assert!(!replies.contains_key(&leader) || replies[&leader].tokens.is_empty());

    // A leader whose prompt gets no room in the batch (two decoding requests fill it): its
    // follower waits one step, sees that it did not advance, and goes in.
    let mut engine = Engine::new(
        Arc::clone(&model),
        EngineOptions {
            batch: 2,
            ..options(4)
        },
    )
    .unwrap();
    let decoding = [
        submit(&mut engine, PROMPTS[7], 48),
        submit(&mut engine, PROMPTS[3], 48),
    ];
    let mut started = std::collections::HashSet::new();
    while started.len() < 2 {
        for event in engine.step() {
            if let Event::Token { id, .. } = event {
                started.insert(id);
            }
        }
    }
    let leader = submit(&mut engine, &texts[0], 6);
    let follower = submit(&mut engine, &texts[1], 6);
    engine.step();
    assert_eq!((engine.stats().running, engine.stats().queued), (3, 1));
    engine.step();
    assert_eq!((engine.stats().running, engine.stats().queued), (4, 0));
    let mut replies = drain(&mut engine);
    assert_eq!(replies.remove(&leader).unwrap(), alone[0]);
    assert_eq!(replies.remove(&follower).unwrap(), alone[1]);
    for id in decoding {
        assert_eq!(replies[&id].usage.completion_tokens, 48);
    }
}

#[test]
fn requests_are_checked_bounded_and_cancellable() {
    let model = smollm2();
    let mut engine = Engine::new(
        Arc::clone(&model),
        EngineOptions {
            queue: 2,
            ..options(1)
        },
    )
    .unwrap();
    let bad = |r: Request, engine: &mut Engine| match engine.submit(r) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("{other:?}"),
    };
    bad(Request::default(), &mut engine);
    bad(
        Request {
            prompt: vec![1; 600],
            ..Request::default()
        },
        &mut engine,
    );
    bad(
        Request {
            prompt: vec![u32::MAX],
            ..Request::default()
        },
        &mut engine,
    );
    let mut nan = request(&model, "Hi", 4, Sampling::greedy());
    nan.options.sampling.top_p = f32::NAN;
    bad(nan, &mut engine);
    let mut many = request(&model, "Hi", 4, Sampling::greedy());
    many.logprobs = Some(21);
    bad(many, &mut engine);

    let a = engine
        .submit(request(&model, PROMPTS[1], 40, Sampling::greedy()))
        .unwrap();
    let b = engine
        .submit(request(&model, PROMPTS[2], 4, Sampling::greedy()))
        .unwrap();
    assert!(matches!(
        engine.submit(request(&model, PROMPTS[3], 4, Sampling::greedy())),
        Err(Error::QueueFull { capacity: 2 })
    ));
    // a runs, b waits; cancelling a lets b through.
    engine.step();
    assert_eq!(engine.stats().running, 1);
    assert!(engine.cancel(a));
    assert!(!engine.cancel(a));
    let replies = drain(&mut engine);
    assert!(!replies.contains_key(&a) || replies[&a].finish.is_none());
    assert_eq!(replies[&b].finish, Some(FinishReason::MaxTokens));
    assert_eq!(replies[&b].usage.completion_tokens, 4);
}

#[test]
fn logprobs_and_embeddings() {
    let model = smollm2();
    let mut engine = Engine::new(Arc::clone(&model), options(1)).unwrap();
    let mut r = request(&model, PROMPTS[1], 3, Sampling::greedy());
    r.logprobs = Some(5);
    engine.submit(r).unwrap();
    let mut seen = 0;
    while engine.has_work() {
        for event in engine.step() {
            if let Event::Token {
                token, logprobs, ..
            } = event
            {
                let lp = logprobs.expect("asked for");
                assert_eq!(lp.top.len(), 5);
                // Greedy: the token is the most likely one.
                assert_eq!(lp.top[0].0, token);
                assert_eq!(lp.top[0].1, lp.logprob);
                assert!(lp.logprob <= 0.0);
                assert!(lp.top.windows(2).all(|w| w[0].1 >= w[1].1));
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 3);

    let tok = model.tokenizer();
    let e = |text: &str, engine: &mut Engine| {
        engine
            .embed(&tok.encode(text, EncodeOptions::PROMPT).unwrap())
            .unwrap()
    };
    let a = e("The cat sat on the mat.", &mut engine);
    let a2 = e("The cat sat on the mat.", &mut engine);
    let b = e("Quarterly revenue rose by four percent.", &mut engine);
    assert_eq!(a.len(), model.config().n_embd);
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    assert!((dot(&a, &a) - 1.0).abs() < 1e-4);
    assert_eq!(a, a2);
    assert!(dot(&a, &b) < 0.9999);
    assert!(engine.embed(&[]).is_err());
}

#[test]
fn gemma3_replies_do_not_depend_on_the_batch_either() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models/gemma-3-270m-q4_k_m.gguf");
    let model = Arc::new(Model::load(path).expect("Gemma 3"));
    let texts = [
        "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
        "The capital of France is",
        "def fibonacci(n):\n    ",
    ];
    let alone = alone(&model, &texts, 12);
    let mut engine = Engine::new(Arc::clone(&model), options(3)).unwrap();
    let ids = submit_greedy(&mut engine, &model, &texts, 12);
    let mut together = drain(&mut engine);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(together.remove(id).unwrap(), alone[i], "prompt {i}");
    }
}
