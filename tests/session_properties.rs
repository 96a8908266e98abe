//! Session properties on SmolLM2: a Model shared by two threads (two sessions) gives the same
//! tokens as one session alone; the same seed gives the same text across runs and thread counts;
//! a full context is a clean error; a traced evaluation reports every layer and changes nothing.

mod support;

use tramontane::{Error, GenerateOptions, Model, Sampling, SessionOptions};

const PROMPT: &str = "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\n";
const N: usize = 12;

fn sampled(seed: u64) -> Sampling {
    Sampling {
        temperature: 0.9,
        seed,
        ..Sampling::default()
    }
}

fn run(model: &Model, sampling: &Sampling, threads: usize) -> (Vec<u32>, String) {
    let mut s = model
        .session(SessionOptions {
            context: 128,
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .expect("session");
    let options = GenerateOptions {
        sampling: sampling.clone(),
        max_tokens: Some(N),
        ..GenerateOptions::default()
    };
    let mut g = s.generate(PROMPT, &options).expect("generate");
    let text: String = g.by_ref().map(|p| p.expect("piece")).collect();
    (g.tokens().to_vec(), text)
}

#[test]
fn shared_model_two_threads_match_one() {
    let model = Model::load(support::smollm2_path()).expect("load");
    let alone_a = run(&model, &Sampling::greedy(), 1);
    let alone_b = run(&model, &sampled(3), 1);
    let (a, b) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| run(&model, &Sampling::greedy(), 1));
        let hb = scope.spawn(|| run(&model, &sampled(3), 1));
        (ha.join().expect("thread a"), hb.join().expect("thread b"))
    });
    assert_eq!(a, alone_a);
    assert_eq!(b, alone_b);
    assert!(!a.0.is_empty());
}

#[test]
fn same_seed_same_text_across_runs_and_thread_counts() {
    let model = Model::load(support::smollm2_path()).expect("load");
    let one = run(&model, &sampled(42), 1);
    let again = run(&model, &sampled(42), 1);
    let two = run(&model, &sampled(42), 2);
    assert_eq!(one, again);
    assert_eq!(one, two);
    // A different seed is allowed to agree, but over 3 seeds at temperature 0.9 they should not all.
    let others: Vec<_> = (43..46).map(|s| run(&model, &sampled(s), 2)).collect();
    assert!(others.iter().any(|o| o.0 != one.0), "seed has no effect");
}

#[test]
fn full_context_is_an_error_not_a_panic() {
    let model = Model::load(support::smollm2_path()).expect("load");
    let mut s = model
        .session(SessionOptions {
            context: 4,
            threads: Some(1),
            ..SessionOptions::default()
        })
        .expect("session");
    s.eval(&[1, 2, 3]).expect("fits");
    match s.eval(&[4, 5]) {
        Err(Error::ContextFull { n_ctx: 4 }) => {}
        other => panic!("expected ContextFull, got {other:?}"),
    }
    // A token outside the vocabulary is refused too.
    assert!(matches!(
        s.eval(&[u32::MAX]),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn model_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Model>();
}

#[test]
fn traced_evaluation_reports_every_layer_and_returns_the_same_logits() {
    let model = Model::load(support::smollm2_path()).expect("load");
    let opts = SessionOptions {
        context: 64,
        threads: Some(2),
        ..SessionOptions::default()
    };
    let ids = [1u32, 504, 20184, 5334];
    let plain = model.session(opts.clone()).unwrap().eval_all(&ids).unwrap();
    let seen = std::sync::Mutex::new(Vec::<(String, Option<usize>, Vec<f32>)>::new());
    let trace = |name: &str, layer: Option<usize>, values: &[f32]| {
        seen.lock()
            .unwrap()
            .push((name.to_string(), layer, values.to_vec()));
    };
    let traced = model
        .session(opts)
        .unwrap()
        .eval_traced(&ids, &trace)
        .unwrap();
    assert_eq!(plain, traced);
    let seen = seen.into_inner().unwrap();
    let n_layer = model.config().n_layer;
    let n_embd = model.config().n_embd;
    for l in 0..n_layer {
        let out = seen
            .iter()
            .find(|(n, layer, _)| n == "l_out" && *layer == Some(l))
            .unwrap_or_else(|| panic!("no l_out for layer {l}"));
        assert_eq!(out.2.len(), ids.len() * n_embd);
    }
    let last = seen.last().expect("something traced");
    assert_eq!((last.0.as_str(), last.1), ("result_output", None));
    assert_eq!(last.2, traced);
}
