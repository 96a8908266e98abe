//! Interactive chat on stdin (works with a pipe): one user message per line, the reply is
//! streamed, then tokens/s is printed on stderr. The session keeps the conversation's tokens;
//! each turn evaluates only the tokens past their longest common prefix with the rendered
//! conversation.
//! `chat [--model PATH] [--system TEXT] [-n N] [--temperature T] [--seed S] [--threads N]`

#[path = "common/cli.rs"]
mod cli;

use std::io::{BufRead, Write};
use std::time::Instant;

use tramontane::{ChatMessage, Conversation, GenerateOptions, Model, Sampling, SessionOptions};

fn main() -> std::process::ExitCode {
    cli::main_with(run)
}

fn run() -> Result<(), String> {
    let mut args = cli::Args::from_env();
    let model_path = match args.value(&["--model", "-m"])? {
        Some(p) => p.into(),
        None => cli::default_model()?,
    };
    let system = args.value(&["--system"])?;
    let n_predict: usize = args.parsed(&["-n", "--n-predict"])?.unwrap_or(256);
    let mut sampling = Sampling::default();
    if let Some(t) = args.parsed(&["--temperature", "--temp"])? {
        sampling.temperature = t;
    }
    if let Some(s) = args.parsed(&["--seed"])? {
        sampling.seed = s;
    }
    let threads = cli::threads(&mut args)?;
    args.finish()?;

    let model = Model::load(&model_path).map_err(|e| e.to_string())?;
    let session = model
        .session(SessionOptions {
            context: model.config().context_length.min(4096),
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .map_err(|e| e.to_string())?;
    let mut chat = Conversation::new(session);
    if let Some(s) = system {
        chat.push(ChatMessage::new("system", &s));
    }
    let options = GenerateOptions {
        sampling,
        max_tokens: Some(n_predict),
        stop: Vec::new(),
    };
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        chat.push(ChatMessage::new("user", line));
        let start = Instant::now();
        let evaluated_before = chat.session().evaluated_tokens();
        let mut reply = chat.reply(&options).map_err(|e| e.to_string())?;
        for piece in &mut reply {
            let piece = piece.map_err(|e| e.to_string())?;
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        }
        let _ = writeln!(stdout);
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
