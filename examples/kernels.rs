//! Kernel microbenchmarks: matvec / GEMM throughput per weight type and shape, next to a
//! plain streaming read of a buffer the size of the weights, measured right before each kernel
//! (best of the passes of a four-accumulator u64 sum made in 100 ms).
//!
//! `kernels [--type T] [--rows R --cols C] [--batch N] [--threads N] [--json]`
//! Without options: every SIMD type, shapes 4096x4096, 14336x4096, 1536x576, batches 1, 32,
//! 512, 1 thread and all cores. JSON: one object per line with type, rows, cols, batch,
//! threads, ns, weight_gbps, gops, stream_gbps.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tramontane_kernels::matmul::{
    matmul_quantized, Parallelism::CurrentPool, QuantizedActivations,
};
use tramontane_kernels::{active_kernels, reference, GgmlType};

const SIMD_TYPES: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];
const SHAPES: &[(usize, usize)] = &[(4096, 4096), (14336, 4096), (1536, 576)];

struct Options {
    types: Vec<GgmlType>,
    shapes: Vec<(usize, usize)>,
    batches: Vec<usize>,
    threads: Vec<usize>,
    json: bool,
}

fn parse() -> Result<Options, String> {
    let all_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut o = Options {
        types: SIMD_TYPES.to_vec(),
        shapes: SHAPES.to_vec(),
        batches: vec![1, 32, 512],
        threads: if all_cores > 1 {
            vec![1, all_cores]
        } else {
            vec![1]
        },
        json: false,
    };
    let (mut rows, mut cols) = (None, None);
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> Result<usize, String> {
        let v = v.ok_or(format!("{flag} needs a value"))?;
        match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{flag}: not a positive integer: {v}")),
        }
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--type" => {
                let v = args.next().ok_or("--type needs a value")?;
                let t = GgmlType::from_name(&v).ok_or(format!("unknown type {v}"))?;
                o.types = vec![t];
            }
            "--rows" => rows = Some(number(args.next(), "--rows")?),
            "--cols" => cols = Some(number(args.next(), "--cols")?),
            "--batch" => o.batches = vec![number(args.next(), "--batch")?],
            "--threads" => o.threads = vec![number(args.next(), "--threads")?],
            "--json" => o.json = true,
            "-h" | "--help" => return Err(
                "usage: kernels [--type T] [--rows R --cols C] [--batch N] [--threads N] [--json]"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    match (rows, cols) {
        (Some(r), Some(c)) => o.shapes = vec![(r, c)],
        (None, None) => {}
        _ => return Err("--rows and --cols go together".into()),
    }
    Ok(o)
}

/// Tiny deterministic generator for benchmark data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Random codes with small finite f16 scales (values do not matter for speed, finiteness
/// keeps the float paths honest).
fn random_weights(ty: GgmlType, rows: usize, cols: usize) -> Result<Vec<u8>, String> {
    let row = reference::row_bytes(ty, cols).map_err(|e| e.to_string())?;
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut w: Vec<u8> = (0..row * rows).map(|_| (rng.next() >> 56) as u8).collect();
    let halves: &[usize] = match ty {
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::F16 | GgmlType::F32 | GgmlType::BF16 => &[],
        _ => &[0],
    };
    for block in w.chunks_exact_mut(ty.block_bytes()) {
        for &off in halves {
            block[off..off + 2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        }
    }
    Ok(w)
}

/// Median wall time of `f` over enough repetitions to fill ~0.3 s (at least 3).
fn time(mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    f()?;
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 3 || (start.elapsed() < Duration::from_millis(300) && samples.len() < 200)
    {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_nanos() as f64);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// Sum of `part` as little-endian u64 words, four independent accumulators (so the loop is
/// bound by the loads, not by one add chain) over 32-byte steps; the tail is ignored.
fn sum_words(part: &[u8]) -> u64 {
    let word = |c: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_le_bytes(b)
    };
    let mut acc = [0u64; 4];
    for c in part.chunks_exact(32) {
        for (k, a) in acc.iter_mut().enumerate() {
            *a = a.wrapping_add(word(&c[8 * k..8 * k + 8]));
        }
    }
    acc.iter().fold(0, |s, &a| s.wrapping_add(a))
}

/// Streaming read of `buf` split over `threads` threads: the best ns of the passes made in
/// at least 100 ms (7 to 100 passes). A shared machine only ever slows a pass down, so the
/// minimum is the stable figure; the time window outlasts a neighbour's time slice.
fn stream_ns(buf: &[u8], threads: usize) -> f64 {
    let piece = buf.len().div_ceil(threads).max(64);
    let pass = || {
        let t = Instant::now();
        std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(piece)
                .map(|part| s.spawn(move || sum_words(black_box(part))))
                .collect();
            let total = handles
                .into_iter()
                .map(|h| h.join().unwrap_or(0))
                .fold(0u64, u64::wrapping_add);
            black_box(total);
        });
        t.elapsed().as_nanos() as f64
    };
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut passes = 0;
    while passes < 7 || (start.elapsed() < Duration::from_millis(100) && passes < 100) {
        best = best.min(pass());
        passes += 1;
    }
    best
}

fn run(o: &Options) -> Result<(), String> {
    if !o.json {
        println!("kernels: {}", active_kernels());
        println!(
            "{:<6} {:>6} {:>6} {:>5} {:>3} {:>12} {:>8} {:>8} {:>8} {:>6}",
            "type", "rows", "cols", "batch", "thr", "ns", "w GB/s", "GOP/s", "strm", "w/strm"
        );
    }
    for &(rows, cols) in &o.shapes {
        for &ty in &o.types {
            let w = random_weights(ty, rows, cols)?;
            let stream: Vec<u8> = w.iter().map(|b| b ^ 0x5A).collect();
            for &threads in &o.threads {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| format!("cannot start {threads} threads: {e}"))?;
                for &batch in &o.batches {
                    // Measured right before each kernel, so both see the same machine load.
                    let stream_gbps = w.len() as f64 / stream_ns(&stream, threads);
                    let mut rng = Rng(batch as u64 + 7);
                    let x: Vec<f32> = (0..cols * batch)
                        .map(|_| (rng.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5)
                        .collect();
                    let acts =
                        QuantizedActivations::new(reference::vec_dot_type(ty), &x, cols, batch)
                            .map_err(|e| e.to_string())?;
                    let mut y = vec![0f32; rows * batch];
                    let ns = time(|| {
                        pool.install(|| {
                            matmul_quantized(&w, ty, rows, cols, &acts, &mut y, CurrentPool)
                        })
                        .map_err(|e| e.to_string())
                    })?;
                    let weight_gbps = w.len() as f64 / ns;
                    let gops = 2.0 * (rows * cols * batch) as f64 / ns;
                    if o.json {
                        println!(
                            "{{\"type\":\"{ty}\",\"rows\":{rows},\"cols\":{cols},\"batch\":{batch},\"threads\":{threads},\"ns\":{ns:.0},\"weight_gbps\":{weight_gbps:.3},\"gops\":{gops:.3},\"stream_gbps\":{stream_gbps:.3}}}"
                        );
                    } else {
                        println!(
                            "{:<6} {:>6} {:>6} {:>5} {:>3} {:>12.0} {:>8.2} {:>8.2} {:>8.2} {:>6.2}",
                            ty.name(), rows, cols, batch, threads, ns, weight_gbps, gops, stream_gbps,
                            weight_gbps / stream_gbps
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse().and_then(|o| run(&o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kernels: {e}");
            ExitCode::FAILURE
        }
    }
}
