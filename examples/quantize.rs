//! Requantizes a GGUF model, byte for byte as llama.cpp's `llama-quantize` (without an
//! importance matrix).
//!
//! ```text
//! quantize IN OUT TYPE [NTHREADS] [--pure] [--threads N] [--dry-run]
//! ```
//! `--dry-run` prints each tensor's planned type on stdout (`name from to dims`) and writes
//! nothing.
//! TYPE is a llama-quantize type name (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S, Q3_K_M,
//! Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS, F16, BF16, F32; Q3_K, Q4_K and
//! Q5_K mean the _M mixes) or its number. `--allow-requantize` is accepted and implied.

use std::process::ExitCode;
use std::time::Instant;

use tramontane::quantize::{plan, quantize_model, FileType, Progress, QuantizeOptions};
use tramontane::GgufFile;

const USAGE: &str = "usage: quantize IN OUT TYPE [NTHREADS] [--pure] [--threads N] [--dry-run]";

struct Args {
    input: String,
    output: String,
    ftype: FileType,
    pure: bool,
    threads: Option<usize>,
    dry_run: bool,
}

fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "bad thread count '{text}' (want a positive integer)"
        )),
    }
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let mut pure = false;
    let mut dry_run = false;
    let mut threads = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--pure" => pure = true,
            "--dry-run" => dry_run = true,
            "--allow-requantize" => {}
            "--threads" | "-t" => {
                let n = args.next().ok_or("--threads needs a value")?;
                threads = Some(parse_threads(&n)?);
            }
            s if s.starts_with("--threads=") => {
                threads = Some(parse_threads(&s["--threads=".len()..])?);
            }
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option '{s}'")),
            _ => positional.push(a),
        }
    }
    let (input, output, ty) = match positional.as_slice() {
        [i, o, t] | [i, o, t, _] => (i.clone(), o.clone(), t.clone()),
        _ => return Err(format!("expected IN OUT TYPE; {USAGE}")),
    };
    // llama-quantize takes the thread count as an optional 4th positional argument.
    if let [_, _, _, n] = positional.as_slice() {
        threads = Some(parse_threads(n)?);
    }
    let names: Vec<&str> = FileType::all().map(FileType::name).collect();
    let ftype = FileType::parse(&ty).ok_or_else(|| {
        format!(
            "unknown or unsupported type '{ty}' (supported: {}, Q3_K, Q4_K, Q5_K)",
            names.join(", ")
        )
    })?;
    Ok(Some(Args {
        input,
        output,
        ftype,
        pure,
        threads,
        dry_run,
    }))
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

fn run(args: Args) -> tramontane::Result<()> {
    let start = Instant::now();
    let input = GgufFile::open(&args.input)?;
    if args.dry_run {
        for t in plan(&input, args.ftype, args.pure)? {
            println!("{} {} {} {:?}", t.name, t.from, t.to, t.dims);
        }
        return Ok(());
    }
    let options = QuantizeOptions {
        pure: args.pure,
        threads: args.threads,
        progress: Some(&report),
    };
    let s = quantize_model(&input, &args.output, args.ftype, &options)?;
    eprintln!(
        "{} -> {}: {} ({}general.file_type = {}), {} tensors, {} requantized, {} fallback; {:.2} MiB -> {:.2} MiB in {:.1} s",
        args.input,
        args.output,
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
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("quantize: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quantize: {e}");
            ExitCode::FAILURE
        }
    }
}
