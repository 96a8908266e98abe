//! Kernel microbenchmarks: matvec / GEMM throughput per weight type and shape, next to a
//! plain streaming read of a buffer the size of the weights, measured right before each kernel
//! (best of the passes of a four-accumulator u64 sum made in 100 ms).
//!
//! `kernels [--type T] [--rows R --cols C] [--batch N] [--threads N] [--rows-alone] [--json]`
//! Without options: every SIMD type, shapes 4096x4096, 14336x4096, 1536x576, batches 1, 32,
//! 512, 1 thread and all cores. JSON: one object per line with type, rows, cols, batch,
//! threads, ns, weight_gbps, gops, stream_gbps.

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tramontane_kernels::matmul::{
    matmul_quantized_as, GgmlOp, Parallelism::CurrentPool, QuantizedActivations,
};
use tramontane_kernels::{active_kernels, reference, GgmlType};

const SIMD_TYPES: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ4_XS,
];
const SHAPES: &[(usize, usize)] = &[(4096, 4096), (14336, 4096), (1536, 576)];

const USAGE: &str = "\
usage: kernels [--type T] [--rows R --cols C] [--batch N] [--threads N] [--rows-alone] [--json]

Kernel microbenchmarks (matvec/GEMM per weight type and shape) beside a streaming read of a
buffer the size of the weights. Without options: every SIMD type (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0
Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS), shapes 4096x4096, 14336x4096, 1536x576, batches 1,
32, 512, 1 and all threads.
  --type T           one weight type
  --rows R --cols C  one shape (C a multiple of the type's block size)
  --batch N          one batch size
  -t, --threads N    one thread count
  --rows-alone       every activation row summed as if alone (GgmlOp::RowIndependent, what
                     the batch engine runs), not in llama.cpp's batch order
  --json             one JSON object per line (with the kernel level as \"level\")
  -h, --help         this text

The kernel level is the best this CPU has; another one runs with
TRAMONTANE_KERNELS=scalar|avx2|avxvnni|avx512|neon|dotprod|i8mm, to compare levels on one machine.";

struct Options {
    types: Vec<GgmlType>,
    shapes: Vec<(usize, usize)>,
    batches: Vec<usize>,
    threads: Vec<usize>,
    /// `GgmlOp::RowIndependent` instead of llama.cpp's `mul_mat` order.
    rows_alone: bool,
    json: bool,
}

/// A positive whole number given to `flag`.
fn positive(args: &mut cli::Args, flag: &str) -> Result<usize, cli::Error> {
    match args.parse::<usize>(flag)? {
        0 => Err(format!("{flag} must be at least 1").into()),
        n => Ok(n),
    }
}

fn parse(mut args: cli::Args) -> Result<Options, cli::Error> {
    let all_cores = cli::all_cores();
    let mut o = Options {
        types: SIMD_TYPES.to_vec(),
        shapes: SHAPES.to_vec(),
        batches: vec![1, 32, 512],
        threads: if all_cores > 1 {
            vec![1, all_cores]
        } else {
            vec![1]
        },
        rows_alone: false,
        json: false,
    };
    let (mut rows, mut cols) = (None, None);
    while let Some(arg) = args.next()? {
        match arg.as_flag() {
            Some("--type") => {
                let v = args.value("--type")?;
                let t = GgmlType::from_name(&v).ok_or(format!("--type: unknown type '{v}'"))?;
                o.types = vec![t];
            }
            Some("--rows") => rows = Some(positive(&mut args, "--rows")?),
            Some("--cols") => cols = Some(positive(&mut args, "--cols")?),
            Some("--batch") => o.batches = vec![positive(&mut args, "--batch")?],
            Some("--threads" | "-t") => o.threads = vec![cli::threads(&mut args, "--threads")?],
            Some("--json") => o.json = true,
            Some("--rows-alone") => o.rows_alone = true,
            _ => return Err(arg.unexpected()),
        }
    }
    match (rows, cols) {
        (Some(r), Some(c)) => o.shapes = vec![(r, c)],
        (None, None) => {}
        _ => return Err("--rows and --cols go together".into()),
    }
    for &(rows, cols) in &o.shapes {
        for &ty in &o.types {
            for &batch in &o.batches {
                check_memory(ty, rows, cols, batch)?;
            }
        }
    }
    Ok(o)
}

/// Refuses a shape whose buffers (weights and their streaming copy, activations in f32 and
/// quantized, outputs) do not fit in the memory available, before allocating any: a failed
/// allocation aborts the process.
fn check_memory(ty: GgmlType, rows: usize, cols: usize, batch: usize) -> Result<(), cli::Error> {
    let row = reference::row_bytes(ty, cols)?;
    let act_row = reference::row_bytes(reference::vec_dot_type(ty), cols).unwrap_or(4 * cols);
    let need = (|| {
        let weights = row.checked_mul(rows)?.checked_mul(2)?;
        let acts = cols.checked_mul(batch)?.checked_mul(4)?;
        let quantized = act_row.checked_mul(batch)?;
        let out = rows.checked_mul(batch)?.checked_mul(4)?;
        weights
            .checked_add(acts)?
            .checked_add(quantized)?
            .checked_add(out)
    })();
    let available = available_memory();
    match need {
        Some(n) if available.map_or(isize::MAX as usize / 2, |a| a) >= n => Ok(()),
        _ => Err(format!(
            "{ty} {rows}x{cols} batch {batch} needs {} of memory{}",
            need.map_or("more than the address space".into(), |n| format!(
                "{:.1} GiB",
                n as f64 / (1u64 << 30) as f64
            )),
            available.map_or(String::new(), |a| format!(
                ", {:.1} GiB available",
                a as f64 / (1u64 << 30) as f64
            ))
        )
        .into()),
    }
}

/// MemAvailable from /proc/meminfo, in bytes (None where there is no such file).
fn available_memory() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
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
fn random_weights(ty: GgmlType, rows: usize, cols: usize) -> Result<Vec<u8>, cli::Error> {
    let row = reference::row_bytes(ty, cols)?;
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
fn time(mut f: impl FnMut() -> Result<(), cli::Error>) -> Result<f64, cli::Error> {
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

fn run(o: &Options) -> Result<(), cli::Error> {
    if !o.json {
        outln!("kernels: {}", active_kernels())?;
        outln!(
            "{:<6} {:>6} {:>6} {:>5} {:>3} {:>12} {:>8} {:>8} {:>8} {:>6}",
            "type",
            "rows",
            "cols",
            "batch",
            "thr",
            "ns",
            "w GB/s",
            "GOP/s",
            "strm",
            "w/strm"
        )?;
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
                        QuantizedActivations::new(reference::vec_dot_type(ty), &x, cols, batch)?;
                    let mut y = vec![0f32; rows * batch];
                    let op = if o.rows_alone {
                        GgmlOp::RowIndependent
                    } else {
                        GgmlOp::MulMat { matrix_rows: rows }
                    };
                    let ns = time(|| {
                        Ok(pool.install(|| {
                            matmul_quantized_as(op, &w, ty, rows, cols, &acts, &mut y, CurrentPool)
                        })?)
                    })?;
                    let weight_gbps = w.len() as f64 / ns;
                    let gops = 2.0 * (rows * cols * batch) as f64 / ns;
                    if o.json {
                        let level = active_kernels();
                        outln!(
                            "{{\"level\":\"{level}\",\"type\":\"{ty}\",\"rows\":{rows},\"cols\":{cols},\"batch\":{batch},\"threads\":{threads},\"ns\":{ns:.0},\"weight_gbps\":{weight_gbps:.3},\"gops\":{gops:.3},\"stream_gbps\":{stream_gbps:.3}}}"
                        )?;
                    } else {
                        outln!(
                            "{:<6} {:>6} {:>6} {:>5} {:>3} {:>12.0} {:>8.2} {:>8.2} {:>8.2} {:>6.2}",
                            ty.name(), rows, cols, batch, threads, ns, weight_gbps, gops, stream_gbps,
                            weight_gbps / stream_gbps
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    cli::main_with(USAGE, |args| run(&parse(args)?))
}
