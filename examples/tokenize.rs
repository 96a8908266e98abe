//! `tokenize --model PATH --text TEXT [--no-special] [--json] [--threads N]`: prints the token
//! ids of TEXT as llama.cpp's `llama_tokenize` gives them (BOS/EOS as the model's metadata says;
//! special tokens written in the text are parsed unless `--no-special`).
//!
//! Output: the ids separated by spaces, or with `--json` one object `{"tokens":[ids]}`.
//! `--model` defaults to models/SmolLM2-135M-Instruct.Q4_1.gguf. `--threads` is accepted for the
//! examples' common contract and ignored. Errors: one line on stderr, exit status 1.

#[path = "common/cli.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use tramontane::tokenizer::{EncodeOptions, Tokenizer};
use tramontane::GgufFile;

const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
const USAGE: &str = "\
usage: tokenize --model PATH --text TEXT [--no-special] [--json] [--threads N]

Prints the token ids of TEXT, as llama.cpp's llama_tokenize gives them.
  -m, --model PATH   the GGUF model (default models/SmolLM2-135M-Instruct.Q4_1.gguf)
  -p, --text TEXT    the text to tokenize (required)
  --no-special       special tokens written in TEXT are plain text
  --json             print {\"tokens\":[ids]}
  -t, --threads N    accepted like every example's, unused
  -h, --help         this text";

fn main() -> ExitCode {
    cli::main_with(USAGE, run)
}

fn run(mut args: cli::Args) -> Result<(), cli::Error> {
    let mut model = PathBuf::from(DEFAULT_MODEL);
    let mut text = None;
    let mut parse_special = true;
    let mut json = false;
    while let Some(arg) = args.next()? {
        match arg.as_flag() {
            Some("--model" | "-m") => model = args.path("--model")?,
            Some("--text" | "-p") => text = Some(args.value("--text")?),
            Some("--threads" | "-t") => {
                cli::threads(&mut args, "--threads")?;
            }
            Some("--no-special") => parse_special = false,
            Some("--json") => json = true,
            _ => return Err(arg.unexpected()),
        }
    }
    let text = text.ok_or("--text is required (see --help)")?;
    if !model.exists() && model.as_os_str() == DEFAULT_MODEL {
        return Err(format!(
            "{DEFAULT_MODEL}: no such file (run scripts/fetch-models for the default models)"
        )
        .into());
    }
    let f = GgufFile::open(&model)?;
    let tok = Tokenizer::from_gguf(&f).map_err(|e| tramontane::Error::in_file(&model, e))?;
    let ids = tok.encode(
        &text,
        EncodeOptions {
            add_special: true,
            parse_special,
        },
    )?;
    let list: Vec<String> = ids.iter().map(u32::to_string).collect();
    if json {
        cli::print(format_args!("{{\"tokens\":[{}]}}\n", list.join(",")))
    } else {
        cli::print(format_args!("{}\n", list.join(" ")))
    }
}
