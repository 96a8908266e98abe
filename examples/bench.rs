//! Prompt-processing and generation speed, measured like llama-bench:
//! pp = one batch of p tokens on an empty context, tg = n single-token steps from an empty
//! context, each the median of R repetitions (after one warm-up).
//! `bench --model PATH [-p 512] [-n 128] [--threads N] [--reps R] [--json]`

#[path = "common/cli.rs"]
mod cli;

use std::time::Instant;

use tramontane::sampling::Rng;
use tramontane::{Model, SessionOptions};

fn main() -> std::process::ExitCode {
    cli::main_with(run)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn run() -> Result<(), String> {
    let mut args = cli::Args::from_env();
    let model_path = match args.value(&["--model", "-m"])? {
        Some(p) => p.into(),
        None => cli::default_model()?,
    };
    let pp: usize = args.parsed(&["-p"])?.unwrap_or(512);
    let tg: usize = args.parsed(&["-n"])?.unwrap_or(128);
    let reps: usize = args.parsed(&["--reps", "-r"])?.unwrap_or(5).max(1);
    let json = args.flag(&["--json"]);
    let threads = cli::threads(&mut args)?;
    args.finish()?;

    let model = Model::load(&model_path).map_err(|e| e.to_string())?;
    let n_vocab = model.config().n_vocab as u64;
    let mut rng = Rng::new(1234);
    let mut random_tokens = |n: usize| -> Vec<u32> {
        let mut v: Vec<u32> = (0..n).map(|_| (rng.next_u64() % n_vocab) as u32).collect();
        if let (Some(first), Some(bos), true) = (
            v.first_mut(),
            model.tokenizer().bos(),
            model.tokenizer().add_bos(),
        ) {
            *first = bos;
        }
        v
    };
    let mut session = model
        .session(SessionOptions {
            context: pp.max(tg).max(1),
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .map_err(|e| e.to_string())?;

    let mut pp_tps = Vec::new();
    if pp > 0 {
        for rep in 0..=reps {
            let tokens = random_tokens(pp);
            session.reset();
            let t0 = Instant::now();
            session.eval(&tokens).map_err(|e| e.to_string())?;
            if rep > 0 {
                pp_tps.push(pp as f64 / t0.elapsed().as_secs_f64());
            }
        }
    }
    let mut tg_tps = Vec::new();
    if tg > 0 {
        for rep in 0..=reps {
            let tokens = random_tokens(tg);
            session.reset();
            let t0 = Instant::now();
            for &t in &tokens {
                session.eval(&[t]).map_err(|e| e.to_string())?;
            }
            if rep > 0 {
                tg_tps.push(tg as f64 / t0.elapsed().as_secs_f64());
            }
        }
    }
    let (pp_m, tg_m) = (median(pp_tps), median(tg_tps));
    if json {
        println!(
            "{{\"pp_tps\":{pp_m:.3},\"tg_tps\":{tg_m:.3},\"pp_tokens\":{pp},\"tg_tokens\":{tg},\"threads\":{threads}}}"
        );
    } else {
        println!("pp{pp}: {pp_m:.2} tokens/s   tg{tg}: {tg_m:.2} tokens/s   ({threads} threads, median of {reps})");
    }
    Ok(())
}
