//! Prompt-processing and generation speed, measured like llama-bench:
//! pp = one batch of p tokens, tg = n single-token steps, each after d tokens already in the
//! KV cache (evaluated untimed, like llama-bench's `@ dN`), each the median of R repetitions
//! (after one warm-up).
//! `bench --model PATH [-p 512] [-n 128] [-d 0] [--threads N] [--reps R] [--json]`

#[path = "common/cli.rs"]
mod cli;

use std::time::Instant;

use tramontane::sampling::Rng;
use tramontane::{Session, SessionOptions};

const USAGE: &str = "\
usage: bench [--model PATH] [-p 512] [-n 128] [-d 0] [--threads N] [--reps R] [--json]

Measures prompt processing (pp: one batch of p tokens) and generation (tg: n single-token
steps) in tokens/s like llama-bench, each after d tokens already in the KV cache (untimed).
  -m, --model PATH   the GGUF model (default: SmolLM2-135M-Instruct Q4_1, fetched if missing)
  -p N               prompt tokens (0 skips pp; default 512)
  -n N               generated tokens (0 skips tg; default 128)
  -d N               depth: tokens in the KV cache before each measurement (default 0)
  -t, --threads N    worker threads (default: all logical CPUs)
  -r, --reps R       repetitions, the median is reported (default 5)
  --json             one JSON object: pp_tps, tg_tps, pp_tokens, tg_tokens, depth, threads,
                     kernels (the kernel level)
  -h, --help         this text";

/// Depth tokens are evaluated in batches of this many (llama-bench's default batch).
const DEPTH_BATCH: usize = 512;

fn main() -> std::process::ExitCode {
    cli::main_with(USAGE, run)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Empties the session and fills the first `tokens.len()` positions, untimed.
fn fill(session: &mut Session<'_>, tokens: &[u32]) -> Result<(), cli::Error> {
    session.reset();
    for batch in tokens.chunks(DEPTH_BATCH) {
        session.eval(batch)?;
    }
    Ok(())
}

fn run(mut args: cli::Args) -> Result<(), cli::Error> {
    let mut model_path = None;
    let (mut pp, mut tg, mut depth, mut reps) = (512usize, 128usize, 0usize, 5usize);
    let mut json = false;
    let mut threads = cli::all_cores();
    while let Some(arg) = args.next()? {
        match arg.as_flag() {
            Some("--model" | "-m") => model_path = Some(args.path("--model")?),
            Some("-p") => pp = args.parse("-p")?,
            Some("-n") => tg = args.parse("-n")?,
            Some("-d") => depth = args.parse("-d")?,
            Some("--reps" | "-r") => reps = args.parse::<usize>("--reps")?.max(1),
            Some("--json") => json = true,
            Some("--threads" | "-t") => threads = cli::threads(&mut args, "--threads")?,
            _ => return Err(arg.unexpected()),
        }
    }
    let model_path = match model_path {
        Some(p) => p,
        None => cli::default_model()?,
    };
    let model = cli::load_model(&model_path)?;
    // The KV cache is allocated whole: a context past the model's would only measure the
    // allocator (or abort on it).
    let limit = model.config().context_length;
    let context = depth.saturating_add(pp.max(tg).max(1));
    if context > limit {
        return Err(format!(
            "-d {depth} plus max(-p {pp}, -n {tg}) is {context} tokens, more than the model's context length {limit}"
        )
        .into());
    }
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
    let mut session = model.session(SessionOptions {
        context,
        threads: Some(threads),
        ..SessionOptions::default()
    })?;

    let mut pp_tps = Vec::new();
    if pp > 0 {
        for rep in 0..=reps {
            let tokens = random_tokens(depth + pp);
            let (prefix, tokens) = tokens.split_at(depth);
            fill(&mut session, prefix)?;
            let t0 = Instant::now();
            session.eval(tokens)?;
            if rep > 0 {
                pp_tps.push(pp as f64 / t0.elapsed().as_secs_f64());
            }
        }
    }
    let mut tg_tps = Vec::new();
    if tg > 0 {
        for rep in 0..=reps {
            let tokens = random_tokens(depth + tg);
            let (prefix, tokens) = tokens.split_at(depth);
            fill(&mut session, prefix)?;
            let t0 = Instant::now();
            for &t in tokens {
                session.eval(&[t])?;
            }
            if rep > 0 {
                tg_tps.push(tg as f64 / t0.elapsed().as_secs_f64());
            }
        }
    }
    let (pp_m, tg_m) = (median(pp_tps), median(tg_tps));
    if json {
        cli::print(format_args!(
            "{{\"pp_tps\":{pp_m:.3},\"tg_tps\":{tg_m:.3},\"pp_tokens\":{pp},\"tg_tokens\":{tg},\"depth\":{depth},\"threads\":{threads},\"kernels\":\"{}\"}}\n",
            tramontane_kernels::active_kernels()
        ))
    } else {
        let at = if depth > 0 {
            format!(" @ d{depth}")
        } else {
            String::new()
        };
        cli::print(format_args!(
            "pp{pp}{at}: {pp_m:.2} tokens/s   tg{tg}{at}: {tg_m:.2} tokens/s   ({threads} threads, median of {reps})\n"
        ))
    }
}
