//! Interactive chat on stdin (works with a pipe): one user message per line, the reply is
//! streamed, then tokens/s is printed on stderr. The KV cache keeps the conversation; each turn
//! feeds only the text the template adds.
//! `chat [--model PATH] [--system TEXT] [-n N] [--temperature T] [--seed S] [--threads N]`

#[path = "common/cli.rs"]
mod cli;

use std::io::{BufRead, Write};
use std::time::Instant;

use tramontane::{ChatMessage, Model, RenderOptions, Sampling, SessionOptions, TemplateUsed};

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
        .map(|s| ChatMessage::system(s.as_str()))
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
        messages.push(ChatMessage::user(line));
        let chat = template
            .render(&messages, RenderOptions::for_generation())
            .map_err(|e| e.to_string())?;
        if matches!(chat.used, TemplateUsed::Fallback { .. }) && fed.is_empty() {
            eprintln!("note: chat rendered with {}", chat.used);
        }
        let rendered = chat.text;
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
        messages.push(ChatMessage::assistant(reply));
    }
    Ok(())
}
