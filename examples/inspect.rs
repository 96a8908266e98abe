//! `inspect PATH [--threads N]`: prints a GGUF file's header, metadata and tensor table.
//!
//! Long arrays are summarised (length and first items), long strings cut. Errors: one line on
//! stderr and exit status 1. `--threads` is accepted for the examples' common contract and
//! ignored (nothing here computes).

#[path = "common/cli.rs"]
mod cli;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use tramontane::{Array, GgufFile, Value};

/// Array elements shown before "...".
const SHOWN_ITEMS: usize = 8;
/// Characters of a string shown before "...".
const SHOWN_CHARS: usize = 100;

const USAGE: &str = "\
usage: inspect PATH [--threads N]

Prints a GGUF file's header, metadata and tensor table (name, type, shape, offset, bytes).
  --threads N   accepted like every example's, unused (nothing here computes)
  -h, --help    this text";

fn main() -> ExitCode {
    cli::main_with(USAGE, run)
}

fn run(mut args: cli::Args) -> Result<(), cli::Error> {
    let mut path: Option<PathBuf> = None;
    while let Some(arg) = args.next()? {
        match arg {
            cli::Arg::Flag(f) if f == "--threads" || f == "-t" => {
                cli::threads(&mut args, &f)?;
            }
            cli::Arg::Positional(p) if path.is_none() => path = Some(p.into()),
            other => return Err(other.unexpected()),
        }
    }
    let path = path.ok_or("PATH is required (see --help)")?;
    let f = GgufFile::open(&path)?;
    let mut out = String::new();
    report(&f, &path.to_string_lossy(), &mut out).map_err(|e| e.to_string())?;
    cli::print(format_args!("{out}"))
}

fn report(f: &GgufFile, path: &str, out: &mut String) -> Result<(), std::fmt::Error> {
    writeln!(out, "file:        {path}")?;
    writeln!(out, "size:        {} bytes", f.file_len())?;
    writeln!(out, "version:     {}", f.version())?;
    writeln!(out, "alignment:   {}", f.alignment())?;
    writeln!(out, "keys:        {}", f.metadata().len())?;
    writeln!(out, "tensors:     {}", f.n_tensors())?;
    writeln!(out, "data offset: {}", f.data_offset())?;

    writeln!(out, "\nmetadata:")?;
    for (key, value) in f.metadata().iter() {
        writeln!(
            out,
            "  {key} [{}] = {}",
            type_label(value),
            show_value(value)
        )?;
    }

    writeln!(out, "\ntensors:")?;
    let name_width = f.tensors().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "  {:<name_width$}  {:<7}  {:<24}  {:>12}  {:>12}",
        "name", "type", "shape", "offset", "bytes"
    )?;
    // type name -> (tensors, parameters, bytes)
    let mut totals: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
    for t in f.tensors() {
        writeln!(
            out,
            "  {:<name_width$}  {:<7}  {:<24}  {:>12}  {:>12}",
            t.name,
            t.ty.name(),
            t.shape_string(),
            t.offset,
            t.n_bytes
        )?;
        let e = totals.entry(t.ty.name()).or_default();
        e.0 += 1;
        e.1 += t.n_elements();
        e.2 += t.n_bytes;
    }

    writeln!(out, "\ntotals by type:")?;
    writeln!(
        out,
        "  {:<7}  {:>7}  {:>14}  {:>14}",
        "type", "tensors", "parameters", "bytes"
    )?;
    for (ty, (n, params, bytes)) in &totals {
        writeln!(out, "  {ty:<7}  {n:>7}  {params:>14}  {bytes:>14}")?;
    }
    let params: u64 = totals.values().map(|t| t.1).sum();
    let bytes: u64 = totals.values().map(|t| t.2).sum();
    writeln!(out, "total parameters: {params}")?;
    writeln!(out, "total tensor bytes: {bytes}")?;
    Ok(())
}

fn type_label(v: &Value) -> String {
    match v {
        Value::Array(a) => format!("array[{}; {}]", a.element_type_name(), a.len()),
        other => other.type_name().to_string(),
    }
}

fn show_value(v: &Value) -> String {
    match v {
        Value::String(s) => show_str(s),
        Value::Array(a) => show_array(a),
        Value::F32(x) => format!("{x}"),
        Value::F64(x) => format!("{x}"),
        Value::Bool(b) => format!("{b}"),
        other => other
            .as_i64()
            .map(|x| x.to_string())
            .or_else(|| other.as_u64().map(|x| x.to_string()))
            .unwrap_or_default(),
    }
}

fn show_str(s: &str) -> String {
    let n = s.chars().count();
    if n <= SHOWN_CHARS {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(SHOWN_CHARS).collect();
        format!("{cut:?}... ({n} chars)")
    }
}

fn show_array(a: &Array) -> String {
    let shown: Vec<String> = (0..a.len().min(SHOWN_ITEMS))
        .filter_map(|i| a.get(i))
        .map(|v| show_value(&v))
        .collect();
    let more = if a.len() > SHOWN_ITEMS { ", ..." } else { "" };
    format!("[{}{more}]", shown.join(", "))
}
