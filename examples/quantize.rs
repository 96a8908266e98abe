//! Requantizes a GGUF model, byte for byte as llama.cpp's `llama-quantize` (without an
//! importance matrix).
//!
//! ```text
//! quantize IN OUT TYPE [NTHREADS] [--pure] [--threads N] [--dry-run]
//! ```
//! `--dry-run` prints each tensor's planned type on stdout (`name from to dims`) and writes
//! nothing.
//! TYPE is a llama-quantize type name (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S, Q3_K_M,
//! Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS, MXFP4_MOE, F16, BF16, F32; Q3_K,
//! Q4_K and Q5_K mean the _M mixes) or its number. `--allow-requantize` is accepted and implied.

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use tramontane::quantize::{plan, quantize_model, FileType, Progress, QuantizeOptions};
use tramontane::GgufFile;

const USAGE: &str = "\
usage: quantize IN OUT TYPE [NTHREADS] [--pure] [--threads N] [--dry-run]

Requantizes every quantizable tensor of the GGUF model IN to TYPE and writes OUT, with the
tensor bytes llama-quantize writes for the same input and type (no importance matrix).
TYPE is a llama-quantize type name (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S, Q3_K_M,
Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS, MXFP4_MOE, F16, BF16, F32; Q3_K,
Q4_K and Q5_K mean the _M mixes; MXFP4_MOE puts expert tensors in MXFP4, the rest in
Q8_0) or its number.
OUT is never IN, never a directory, device, FIFO or socket; a link is written through. It is
written under a temporary name beside it and renamed into place when complete.
  NTHREADS, -t, --threads N  worker threads (default: all logical CPUs)
  --pure                     every quantizable tensor gets TYPE (no mix)
  --dry-run                  print each tensor's planned type (name from to dims), write nothing
  --allow-requantize         accepted (implied)
  -h, --help                 this text";

struct Args {
    input: PathBuf,
    output: PathBuf,
    ftype: FileType,
    pure: bool,
    threads: Option<usize>,
    dry_run: bool,
}

fn parse_args(mut args: cli::Args) -> Result<Args, cli::Error> {
    let mut positional = Vec::new();
    let (mut pure, mut dry_run, mut threads) = (false, false, None);
    while let Some(arg) = args.next()? {
        match arg {
            cli::Arg::Flag(f) => match f.as_str() {
                "--pure" => pure = true,
                "--dry-run" => dry_run = true,
                "--allow-requantize" => {}
                "--threads" | "-t" => threads = Some(cli::threads(&mut args, "--threads")?),
                _ => return Err(cli::Arg::Flag(f).unexpected()),
            },
            cli::Arg::Positional(p) => positional.push(p),
        }
    }
    let mut positional = positional.into_iter();
    let (Some(input), Some(output), Some(ty)) =
        (positional.next(), positional.next(), positional.next())
    else {
        return Err("expected IN OUT TYPE (see --help)".into());
    };
    // llama-quantize takes the thread count as an optional 4th positional argument.
    if let Some(n) = positional.next() {
        let n = cli::text("NTHREADS", n)?;
        threads = Some(cli::check_threads(cli::parse_value("NTHREADS", &n)?)?);
    }
    if let Some(extra) = positional.next() {
        return Err(cli::Arg::Positional(extra).unexpected());
    }
    let ty = cli::text("TYPE", ty)?;
    let names: Vec<&str> = FileType::all().map(FileType::name).collect();
    let ftype = FileType::parse(&ty).ok_or_else(|| {
        format!(
            "unknown or unsupported type '{ty}' (supported: {}, Q3_K, Q4_K, Q5_K)",
            names.join(", ")
        )
    })?;
    Ok(Args {
        input: input.into(),
        output: output.into(),
        ftype,
        pure,
        threads,
        dry_run,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn report(p: &Progress<'_>) {
    let t = p.tensor;
    let change = if t.from == t.to {
        format!("{:>6} (copied)", t.to.name())
    } else {
        format!(
            "{:>6} -> {:<6}{}",
            t.from.name(),
            t.to.name(),
            if t.fell_back { " (fallback)" } else { "" }
        )
    };
    eprintln!(
        "[{:>4}/{:>4}] {:<36} {:<18} {} {:>8.2} MiB -> {:>8.2} MiB",
        p.index,
        p.count,
        t.name,
        format!("{:?}", t.dims),
        change,
        mib(p.bytes_in),
        mib(p.bytes_out)
    );
}

fn run(args: cli::Args) -> Result<(), cli::Error> {
    let args = parse_args(args)?;
    let start = Instant::now();
    let input = GgufFile::open(&args.input)?;
    let options = QuantizeOptions {
        pure: args.pure,
        threads: args.threads,
        progress: Some(&report),
    };
    if args.dry_run {
        for t in plan(&input, args.ftype, &options)? {
            outln!("{} {} {} {:?}", t.name, t.from, t.to, t.dims)?;
        }
        return Ok(());
    }
    let s = quantize_model(&input, &args.output, args.ftype, &options)?;
    for path in &s.stale.removed {
        eprintln!(
            "note: removed {}, left by a run that was killed",
            path.display()
        );
    }
    for path in &s.stale.kept {
        eprintln!(
            "note: {} may belong to a quantization still running (or on another machine); remove it if none is",
            path.display()
        );
    }
    eprintln!(
        "{} -> {}: {} ({}general.file_type = {}), {} tensors, {} requantized, {} fallback; {:.2} MiB -> {:.2} MiB in {:.1} s",
        args.input.display(),
        args.output.display(),
        s.file_type.name(),
        if args.pure { "pure, " } else { "" },
        s.file_type.id(),
        s.n_tensors,
        s.n_converted,
        s.n_fallback,
        mib(s.bytes_in),
        mib(s.bytes_out),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    cli::main_with(USAGE, run)
}
