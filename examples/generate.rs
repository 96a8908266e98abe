//! Generates text from a prompt. See the command-line contract in DESIGN.md:
//! `generate --model PATH --prompt TEXT [-n N] [--temperature T] [--top-k K] [--top-p P]
//! [--min-p P] [--repeat-penalty R] [--seed S] [--chat] [--no-special] [--json] [--threads N]`

#[path = "common/cli.rs"]
mod cli;

use std::io::Write;

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
    let prompt = args
        .value(&["--prompt", "-p"])?
        .ok_or("--prompt TEXT is required")?;
    let n_predict: usize = args.parsed(&["-n", "--n-predict"])?.unwrap_or(128);
    let mut sampling = Sampling::default();
    if let Some(t) = args.parsed(&["--temperature", "--temp"])? {
        sampling.temperature = t;
    }
    if let Some(k) = args.parsed(&["--top-k"])? {
        sampling.top_k = k;
    }
    if let Some(p) = args.parsed(&["--top-p"])? {
        sampling.top_p = p;
    }
    if let Some(p) = args.parsed(&["--min-p"])? {
        sampling.min_p = p;
    }
    if let Some(r) = args.parsed(&["--repeat-penalty"])? {
        sampling.repeat_penalty = r;
    }
    if let Some(s) = args.parsed(&["--seed"])? {
        sampling.seed = s;
    }
    let chat = args.flag(&["--chat"]);
    let no_special = args.flag(&["--no-special"]);
    let json = args.flag(&["--json"]);
    let threads = cli::threads(&mut args)?;
    args.finish()?;

    let model = Model::load(&model_path).map_err(|e| e.to_string())?;
    let text = if chat {
        let chat = model
            .chat_template()
            .render(
                &[ChatMessage::user(prompt)],
                RenderOptions::for_generation(),
            )
            .map_err(|e| e.to_string())?;
        if matches!(chat.used, TemplateUsed::Fallback { .. }) {
            eprintln!("note: chat prompt rendered with {}", chat.used);
        }
        chat.text
    } else {
        prompt
    };
    let tok = model.tokenizer();
    let prompt_ids = tok
        .encode(&text, true, !no_special)
        .map_err(|e| e.to_string())?;
    let context = (prompt_ids.len() + n_predict + 1).min(model.config().context_length);
    let mut session = model
        .session(SessionOptions {
            context,
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .map_err(|e| e.to_string())?;
    let mut gen = session
        .generate_tokens(&prompt_ids, &sampling)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let mut stdout = std::io::stdout().lock();
    for _ in 0..n_predict {
        match gen.next() {
            None => break,
            Some(piece) => {
                let piece = piece.map_err(|e| e.to_string())?;
                if !json {
                    let _ = write!(stdout, "{piece}");
                    let _ = stdout.flush();
                }
                out.push_str(&piece);
            }
        }
    }
    if json {
        let logits = gen.prompt_logits();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let top: Vec<serde_json::Value> = order
            .iter()
            .take(10)
            .map(|&i| serde_json::json!([i, logits[i]]))
            .collect();
        let obj = serde_json::json!({
            "prompt_tokens": gen.prompt_tokens(),
            "tokens": gen.tokens(),
            "text": out,
            "top_logits": top,
            "prompt_ms": gen.prompt_duration().as_secs_f64() * 1e3,
            "decode_ms": gen.decode_duration().as_secs_f64() * 1e3,
        });
        let _ = writeln!(stdout, "{obj}");
    } else {
        let _ = writeln!(stdout);
    }
    Ok(())
}
