//! Interactive chat on stdin (works with a pipe): one user message per line, the reply is
//! streamed, then tokens/s is printed on stderr. The KV cache keeps the conversation; each turn
//! feeds only the text the template adds.
//! `chat [--model PATH] [--system TEXT] [-n N] [--temperature T] [--seed S] [--threads N]`

#[path = "common/cli.rs"]
mod cli;

use std::io::{BufRead, Write};
use std::time::Instant;

use tramontane::{ChatMessage, Sampling, SessionOptions};

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
    let template = model.chat_template();
    let mut session = model
        .session(SessionOptions {
            context: model.config().context_length.min(4096),
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .map_err(|e| e.to_string())?;
    let mut messages: Vec<ChatMessage> = system
        .iter()
        .map(|s| ChatMessage::new("system", s))
        .collect();
    // The text whose tokens are in the session (plus its pending token).
    let mut fed = String::new();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        messages.push(ChatMessage::new("user", line));
        let rendered = template.render(&messages, true);
        let delta = match rendered.strip_prefix(fed.as_str()) {
            Some(d) if !fed.is_empty() => d.to_string(),
            _ => {
                session.reset();
                rendered.clone()
            }
        };
        let start = Instant::now();
        let mut reply = String::new();
        let mut n_tokens = 0;
        {
            let mut gen = session
                .generate(&delta, &sampling)
                .map_err(|e| e.to_string())?;
            for _ in 0..n_predict {
                let Some(piece) = gen.next() else { break };
                let piece = piece.map_err(|e| e.to_string())?;
                let _ = write!(stdout, "{piece}");
                let _ = stdout.flush();
                reply.push_str(&piece);
            }
            n_tokens += gen.tokens().len();
            let secs = gen.decode_duration().as_secs_f64();
            let _ = writeln!(stdout);
            eprintln!(
                "[{n_tokens} tokens, {:.1} tokens/s, {:.2} s with the prompt]",
                n_tokens as f64 / secs.max(1e-9),
                start.elapsed().as_secs_f64()
            );
        }
        // What the session now holds: the prompt, the reply and the token that ended it.
        let end = session
            .pending()
            .map(|t| {
                String::from_utf8_lossy(&model.tokenizer().token_to_piece(t, true)).into_owned()
            })
            .unwrap_or_default();
        fed = format!("{rendered}{reply}{end}");
        messages.push(ChatMessage::new("assistant", &reply));
    }
    Ok(())
}
