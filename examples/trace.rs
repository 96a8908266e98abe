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

use tramontane::{Model, SessionOptions};

const USAGE: &str = "usage: trace --model PATH --ids A,B,C [--steps X,Y] --out DIR [--threads N]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trace: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ids(list: &str) -> Result<Vec<u32>, String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().parse().map_err(|_| format!("bad token id '{s}'")))
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

fn run() -> Result<(), String> {
    let mut args = cli::Args::from_env();
    if args.flag(&["--help", "-h"]) {
        println!("{USAGE}");
        return Ok(());
    }
    let model = args.value(&["--model", "-m"])?.ok_or(USAGE)?;
    let prompt = ids(&args.value(&["--ids"])?.ok_or(USAGE)?)?;
    let steps = ids(&args.value(&["--steps"])?.unwrap_or_default())?;
    let out = PathBuf::from(args.value(&["--out"])?.ok_or(USAGE)?);
    let threads = cli::threads(&mut args)?;
    args.finish()?;

    // The load error names the file already.
    let model = Model::load(&model).map_err(|e| e.to_string())?;
    let mut session = model
        .session(SessionOptions {
            context: 512,
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .map_err(|e| e.to_string())?;
    let batches = std::iter::once(prompt).chain(steps.into_iter().map(|t| vec![t]));
    for (eval, tokens) in batches.enumerate() {
        let dir = out.join(eval.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let failed = Mutex::new(None);
        let trace = |name: &str, layer: Option<usize>, values: &[f32]| {
            let file = match layer {
                Some(l) => format!("{name}-{l}.npy"),
                None => format!("{name}.npy"),
            };
            if let Err(e) = write_npy(&dir.join(&file), values) {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{file}: {e}"));
            }
        };
        session
            .eval_traced(&tokens, &trace)
            .map_err(|e| e.to_string())?;
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
    }
    Ok(())
}
