//! `trace --model PATH --ids A,B,C [--steps X,Y] --out DIR [--threads N]`: evaluates the
//! prompt ids as one batch, then each step id alone, and writes every intermediate tensor of
//! each evaluation (see `tramontane::model::forward::Tracer`) as `DIR/EVAL/NAME-LAYER.npy`
//! (`EVAL` 0 for the prompt, 1.. for the steps; f32, one row per token).
//!
//! It is the other half of `scripts/dump-llama-tensors.py`, which writes llama.cpp's tensors
//! in the same layout; `scripts/compare-traces.py` runs both and prints, per layer, how far
//! each tensor is from llama.cpp's. Errors: one line on stderr, exit status 1.

#[path = "common/cli.rs"]
mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use tramontane::SessionOptions;

const USAGE: &str = "\
usage: trace --model PATH --ids A,B,C [--steps X,Y] --out DIR [--threads N]

Evaluates the prompt ids as one batch, then each step id alone, and writes every intermediate
tensor of each evaluation as DIR/EVAL/NAME-LAYER.npy (EVAL 0 for the prompt, 1.. the steps).
  -m, --model PATH   the GGUF model (required)
  --ids A,B,C        prompt token ids (required)
  --steps X,Y        token ids evaluated one at a time after the prompt
  --out DIR          where the .npy files go (required; created)
  -t, --threads N    worker threads (default: all logical CPUs)
  -h, --help         this text";

fn main() -> ExitCode {
    cli::main_with(USAGE, run)
}

fn ids(flag: &str, list: &str) -> Result<Vec<u32>, cli::Error> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| cli::parse_value(flag, s))
        .collect()
}

/// A little-endian f32 vector as a version 1.0 `.npy` file.
fn write_npy(path: &Path, values: &[f32]) -> std::io::Result<()> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        values.len()
    );
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes)
}

fn run(mut args: cli::Args) -> Result<(), cli::Error> {
    let (mut model, mut prompt, mut steps, mut out) = (None, None, Vec::new(), None);
    let mut threads = cli::all_cores();
    while let Some(arg) = args.next()? {
        match arg.as_flag() {
            Some("--model" | "-m") => model = Some(args.path("--model")?),
            Some("--ids") => prompt = Some(ids("--ids", &args.value("--ids")?)?),
            Some("--steps") => steps = ids("--steps", &args.value("--steps")?)?,
            Some("--out") => out = Some(args.path("--out")?),
            Some("--threads" | "-t") => threads = cli::threads(&mut args, "--threads")?,
            _ => return Err(arg.unexpected()),
        }
    }
    let model = model.ok_or("--model PATH is required (see --help)")?;
    let prompt = prompt.ok_or("--ids A,B,C is required (see --help)")?;
    let out: PathBuf = out.ok_or("--out DIR is required (see --help)")?;

    let model = cli::load_model(&model)?;
    let mut session = model.session(SessionOptions {
        context: 512,
        threads: Some(threads),
        ..SessionOptions::default()
    })?;
    let batches = std::iter::once(prompt).chain(steps.into_iter().map(|t| vec![t]));
    for (eval, tokens) in batches.enumerate() {
        let dir = out.join(eval.to_string());
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {}", dir.display(), cli::chain(&e)))?;
        let failed = Mutex::new(None);
        let trace = |name: &str, layer: Option<usize>, values: &[f32]| {
            let file = match layer {
                Some(l) => format!("{name}-{l}.npy"),
                None => format!("{name}.npy"),
            };
            let path = dir.join(&file);
            if let Err(e) = write_npy(&path, values) {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                    "cannot write {}: {}",
                    path.display(),
                    cli::chain(&e)
                ));
            }
        };
        session.eval_traced(&tokens, &trace)?;
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e.into());
        }
    }
    Ok(())
}
