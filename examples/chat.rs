//! Interactive chat on stdin (works with a pipe): one user message per line, the reply is
//! streamed, then tokens/s is printed on stderr. The session keeps the conversation's tokens;
//! each turn evaluates only the tokens past their longest common prefix with the rendered
//! conversation.
//! `chat [--model PATH] [--system TEXT] [-n N] [--temperature T] [--seed S] [--threads N]`

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use std::io::BufRead;
use std::time::Instant;

use tramontane::{ChatMessage, Conversation, GenerateOptions, Sampling, SessionOptions};

const USAGE: &str = "\
usage: chat [--model PATH] [--system TEXT] [-n N] [--temperature T] [--seed S] [--threads N]

Interactive chat on stdin (works with a pipe): one user message per line, the reply streamed
on stdout, tokens/s on stderr.
  -m, --model PATH        the GGUF model (default: SmolLM2-135M-Instruct Q4_1, fetched if missing)
  --system TEXT           a system message
  -n, --n-predict N       at most N tokens per reply (default 256)
  --temperature, --temp T softmax temperature; 0 is greedy (default 0.8)
  --seed S                sampling seed (default 0)
  -t, --threads N         worker threads (default: all logical CPUs)
  -h, --help              this text";

fn main() -> std::process::ExitCode {
    cli::main_with(USAGE, run)
}

/// `-n` above this is refused: no context holds more tokens.
const MAX_TOKENS: usize = u32::MAX as usize;

fn run(mut args: cli::Args) -> Result<(), cli::Error> {
    let mut model_path = None;
    let mut system = None;
    let mut n_predict: usize = 256;
    let mut sampling = Sampling::default();
    let mut threads = cli::all_cores();
    while let Some(arg) = args.next()? {
        match arg.as_flag() {
            Some("--model" | "-m") => model_path = Some(args.path("--model")?),
            Some("--system") => system = Some(args.value("--system")?),
            Some("-n" | "--n-predict") => n_predict = args.parse("-n")?,
            Some("--temperature" | "--temp") => {
                sampling.temperature = cli::finite(&mut args, "--temperature")?
            }
            Some("--seed") => sampling.seed = args.parse("--seed")?,
            Some("--threads" | "-t") => threads = cli::threads(&mut args, "--threads")?,
            _ => return Err(arg.unexpected()),
        }
    }
    if n_predict > MAX_TOKENS {
        return Err(format!("-n {n_predict} is too many tokens (at most {MAX_TOKENS})").into());
    }
    let model_path = match model_path {
        Some(p) => p,
        None => cli::default_model()?,
    };

    let model = cli::load_model(&model_path)?;
    let session = model.session(SessionOptions {
        context: model.config().context_length.min(4096),
        threads: Some(threads),
        ..SessionOptions::default()
    })?;
    let mut chat = Conversation::new(session);
    if let Some(s) = system {
        chat.push(ChatMessage::new("system", &s));
    }
    let options = GenerateOptions {
        sampling,
        max_tokens: Some(n_predict),
        stop: Vec::new(),
    };
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        chat.push(ChatMessage::new("user", line));
        let start = Instant::now();
        let evaluated_before = chat.session().evaluated_tokens();
        let mut reply = chat.reply(&options)?;
        for piece in &mut reply {
            cli::print(format_args!("{}", piece?))?;
        }
        outln!("")?;
        let gen = reply.generation();
        let n_tokens = gen.tokens().len();
        let secs = gen.decode_duration().as_secs_f64();
        let finish = gen.finish_reason().map_or("error", |r| r.as_str());
        drop(reply);
        eprintln!(
            "[{n_tokens} tokens, {:.1} tokens/s, {:.2} s with the prompt, {} tokens evaluated, {finish}]",
            n_tokens as f64 / secs.max(1e-9),
            start.elapsed().as_secs_f64(),
            chat.session().evaluated_tokens() - evaluated_before,
        );
    }
    Ok(())
}
