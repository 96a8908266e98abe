//! Q4_0 matmul, tramontane-kernels against candle-core's QMatMul, in one process run.
//!
//! `cargo bench -- [--rounds N] [--threads T] [--rows R --cols C]` (run from benches/vs-candle,
//! whose .cargo/config.toml builds with target-cpu=native; candle picks its AVX2 path at
//! compile time). Defaults: shapes 4096x4096 and 14336x4096, threads 1 and 2, 3 rounds at
//! batch 512 and 5x as many at batch 1.

mod setup;
mod timing;

use std::process::ExitCode;

use setup::{candle_forward, differences, max_abs, Activations, BoxResult, Rng, Weights};
use timing::{medians, Variant};
use tramontane_kernels::matmul::{matmul, Parallelism};
use tramontane_kernels::{active_kernels, GgmlType};

const BATCH: usize = 512;
/// Needed by the issue: ours GEMM-512 / 512 of our matvecs, and ours / candle at batch 512.
const NEED_GEMM_OVER_MATVECS: f64 = 3.0;
const NEED_OURS_OVER_CANDLE: f64 = 5.0;
/// Output agreement. Both libraries quantize activations to Q8_0 with d = amax/127, but ours
/// (like ggml's AVX2 quantize_row_q8_0) rounds x * (127/amax) half-to-even while candle (like
/// ggml's reference) rounds x * (1/d) half-away: now and then one code differs by one, which
/// moves every output of that token by up to max|w| * max|x| / 127. Otherwise only the f32
/// summation order differs (a few ulp of the partial sums). So: every output within
/// TIGHT * max|y| + CODE_STEPS codes' worth, and all but OFF_FRACTION of them within the tight
/// bound (a flip touches one token, i.e. 1/512 of the outputs at batch 512: about 1% were
/// measured off); a wrong scale, block or row would put most outputs off by O(max|y|).
const TIGHT: f32 = 1e-5;
const CODE_STEPS: f32 = 3.0;
const OFF_FRACTION: f64 = 0.1;

struct Options {
    rounds: usize,
    threads: Vec<usize>,
    shapes: Vec<(usize, usize)>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        rounds: 3,
        threads: vec![1, 2],
        shapes: vec![(4096, 4096), (14336, 4096)],
    };
    let (mut rows, mut cols) = (None, None);
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> Result<usize, String> {
        match v.as_deref().map(str::parse::<usize>) {
            Some(Ok(n)) if n > 0 => Ok(n),
            _ => Err(format!("{flag} needs a positive integer")),
        }
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {} // added by `cargo bench`
            "--rounds" => o.rounds = number(args.next(), "--rounds")?,
            "--threads" => o.threads = vec![number(args.next(), "--threads")?],
            "--rows" => rows = Some(number(args.next(), "--rows")?),
            "--cols" => cols = Some(number(args.next(), "--cols")?),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: vs_candle [--rounds N] [--threads T] [--rows R --cols C]"
                ))
            }
        }
    }
    match (rows, cols) {
        (Some(r), Some(c)) if c % 32 == 0 => o.shapes = vec![(r, c)],
        (Some(_), Some(_)) => return Err("--cols must be a multiple of 32 (Q4_0 blocks)".into()),
        (None, None) => {}
        _ => return Err("--rows and --cols go together".into()),
    }
    Ok(o)
}

/// Our matmul of all of `x`'s tokens in one call.
fn ours(w: &Weights, x: &Activations, y: &mut [f32]) -> BoxResult<()> {
    let (rows, cols) = (w.rows, w.cols);
    matmul(
        &w.ours,
        GgmlType::Q4_0,
        rows,
        cols,
        &x.f32s,
        x.n_tokens,
        y,
        Parallelism::CurrentPool,
    )?;
    Ok(())
}

/// Our matmul called once per token (`n_tokens = 1`): what a decode loop would do.
fn ours_matvecs(w: &Weights, x: &Activations, y: &mut [f32]) -> BoxResult<()> {
    let (rows, cols) = (w.rows, w.cols);
    for (xt, yt) in x.f32s.chunks_exact(cols).zip(y.chunks_exact_mut(rows)) {
        matmul(&w.ours, GgmlType::Q4_0, rows, cols, xt, 1, yt, Parallelism::CurrentPool)?;
    }
    Ok(())
}

/// Checks that both libraries give the same outputs on `x`; prints the differences.
fn check_agreement(w: &Weights, x: &Activations) -> BoxResult<()> {
    let mut y = vec![0f32; w.rows * x.n_tokens];
    ours(w, x, &mut y)?;
    let theirs = candle_forward(w, x)?;
    let tight = TIGHT * max_abs(&theirs);
    let code = w.max_abs * max_abs(&x.f32s) / 127.0;
    let d = differences(&y, &theirs, tight);
    println!(
        "  agreement at batch {}: max |ours - candle| = {:.3e} (one activation code: {code:.3e}), max |y| = {:.3e}, {} of {} outputs beyond {tight:.1e}",
        x.n_tokens, d.max_diff, d.max_abs, d.beyond_tight, y.len()
    );
    let too_many = d.beyond_tight as f64 > OFF_FRACTION * y.len() as f64;
    if d.max_diff > tight + CODE_STEPS * code || too_many {
        return Err("our outputs and candle's disagree beyond the stated bounds".into());
    }
    Ok(())
}

fn report(name: &str, ns: f64, w: &Weights, tokens: usize) {
    let ops = 2.0 * (w.rows * w.cols * tokens) as f64;
    println!(
        "  {name:<24} {:>10.3} ms {:>8.1} GOP/s {:>8.2} GB/s",
        ns / 1e6,
        ops / ns,
        (w.ours.len() * tokens) as f64 / ns
    );
}

fn verdict(ratio: f64, need: f64) -> &'static str {
    if ratio >= need {
        "met"
    } else {
        "NOT met"
    }
}

fn run(o: &Options) -> BoxResult<()> {
    println!("our kernels: {}", active_kernels());
    let mut rng = Rng(0x5EED_0FCA_4D1E);
    for &(rows, cols) in &o.shapes {
        println!("Q4_0 {rows}x{cols}");
        let w = Weights::q4_0(rows, cols, &mut rng)?;
        println!("  Q4_0 bytes identical ({} bytes)", w.ours.len());
        let x1 = Activations::new(cols, 1, &mut rng)?;
        let xb = Activations::new(cols, BATCH, &mut rng)?;
        check_agreement(&w, &x1)?;
        check_agreement(&w, &xb)?;
        let mut y1 = vec![0f32; rows];
        let mut yb = vec![0f32; rows * BATCH];
        let mut ym = vec![0f32; rows * BATCH];
        for &threads in &o.threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()?;
            println!("  threads {threads} (medians; w GB/s counts the weights once per token)");
            let m1 = medians(
                &mut [
                    Variant {
                        run: Box::new(|| pool.install(|| ours(&w, &x1, &mut y1))),
                    },
                    Variant {
                        run: Box::new(|| pool.install(|| candle_forward(&w, &x1).map(drop))),
                    },
                ],
                o.rounds * 5,
            )?;
            report("ours batch 1", m1[0], &w, 1);
            report("candle batch 1", m1[1], &w, 1);
            let mb = medians(
                &mut [
                    Variant {
                        run: Box::new(|| pool.install(|| ours(&w, &xb, &mut yb))),
                    },
                    Variant {
                        run: Box::new(|| pool.install(|| ours_matvecs(&w, &xb, &mut ym))),
                    },
                    Variant {
                        run: Box::new(|| pool.install(|| candle_forward(&w, &xb).map(drop))),
                    },
                ],
                o.rounds,
            )?;
            report("ours GEMM 512", mb[0], &w, BATCH);
            report("ours 512 matvecs", mb[1], &w, BATCH);
            report("candle batch 512", mb[2], &w, BATCH);
            let gemm_over_mv = mb[1] / mb[0];
            let over_candle_512 = mb[2] / mb[0];
            println!(
                "  ratios: ours/candle batch 1 {:.2}x; ours GEMM-512 / 512 matvecs {gemm_over_mv:.2}x (need {NEED_GEMM_OVER_MATVECS}x: {}); ours/candle batch 512 {over_candle_512:.2}x (need {NEED_OURS_OVER_CANDLE}x: {})",
                m1[1] / m1[0],
                verdict(gemm_over_mv, NEED_GEMM_OVER_MATVECS),
                verdict(over_candle_512, NEED_OURS_OVER_CANDLE),
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = parse().map_err(Into::into).and_then(|o| run(&o));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vs_candle: {e}");
            ExitCode::FAILURE
        }
    }
}
