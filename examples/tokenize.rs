//! `tokenize --model PATH --text TEXT [--no-special] [--json] [--threads N]`: prints the token
//! ids of TEXT as llama.cpp's `llama_tokenize` gives them (BOS/EOS as the model's metadata says;
//! special tokens written in the text are parsed unless `--no-special`).
//!
//! Output: the ids separated by spaces, or with `--json` one object `{"tokens":[ids]}`.
//! `--model` defaults to models/SmolLM2-135M-Instruct.Q4_1.gguf. `--threads` is accepted for the
//! examples' common contract and ignored. Errors: one line on stderr, exit status 1.

use std::process::ExitCode;

use tramontane::tokenizer::{EncodeOptions, Tokenizer};
use tramontane::GgufFile;

const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
const USAGE: &str =
    "usage: tokenize --model PATH --text TEXT [--no-special] [--json] [--threads N]";

struct Args {
    model: String,
    text: String,
    parse_special: bool,
    json: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenize: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args(std::env::args().skip(1))?;
    if !std::path::Path::new(&args.model).exists() {
        return Err(format!(
            "{}: no such file (run scripts/fetch-models for the default models)",
            args.model
        ));
    }
    let f = GgufFile::open(&args.model).map_err(|e| e.to_string())?;
    let tok = Tokenizer::from_gguf(&f).map_err(|e| format!("{}: {e}", args.model))?;
    let ids = tok
        .encode(
            &args.text,
            EncodeOptions {
                add_special: true,
                parse_special: args.parse_special,
            },
        )
        .map_err(|e| e.to_string())?;
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    if args.json {
        println!("{{\"tokens\":[{}]}}", list.join(","));
    } else {
        println!("{}", list.join(" "));
    }
    Ok(())
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        model: DEFAULT_MODEL.to_string(),
        text: String::new(),
        parse_special: true,
        json: false,
    };
    let mut have_text = false;
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--model" | "-m" => args.model = value("--model")?,
            "--text" | "-p" => {
                args.text = value("--text")?;
                have_text = true;
            }
            "--threads" | "-t" => {
                let n = value("--threads")?;
                n.parse::<usize>()
                    .map_err(|_| format!("--threads: not a number: {n:?}"))?;
            }
            "--no-special" => args.parse_special = false,
            "--json" => args.json = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unexpected argument {other:?}; {USAGE}")),
        }
    }
    if !have_text {
        return Err(format!("--text is required; {USAGE}"));
    }
    Ok(args)
}
