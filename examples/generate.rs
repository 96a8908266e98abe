//! Generates text from a prompt. See the command-line contract in DESIGN.md:
//! `generate --model PATH --prompt TEXT [-n N] [--temperature T] [--top-k K] [--top-p P]
//! [--min-p P] [--repeat-penalty R] [--seed S] [--chat] [--no-special] [--json] [--threads N]`

#[path = "common/cli.rs"]
mod cli;

use std::io::Write;

use tramontane::tokenizer::EncodeOptions;
use tramontane::{ChatMessage, GenerateOptions, Model, Sampling, SessionOptions};

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
        model
            .chat_template()
            .render(&[ChatMessage::new("user", &prompt)], true)
    } else {
        prompt
    };
    let tok = model.tokenizer();
    let encode = EncodeOptions {
        add_special: true,
        parse_special: !no_special,
    };
    let prompt_ids = tok.encode(&text, encode).map_err(|e| e.to_string())?;
    // Room for the prompt and every token asked for (the last one is never evaluated), within
    // what the model was trained for.
    let context = (prompt_ids.len() + n_predict).clamp(1, model.config().context_length);
    let mut session = model
        .session(SessionOptions {
            context,
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .map_err(|e| e.to_string())?;
    let options = GenerateOptions {
        sampling,
        max_tokens: Some(n_predict),
        stop: Vec::new(),
    };
    let mut gen = session
        .generate_tokens(&prompt_ids, &options)
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    let mut stdout = std::io::stdout().lock();
    for piece in &mut gen {
        let piece = piece.map_err(|e| e.to_string())?;
        if !json {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        }
        out.push_str(&piece);
    }
    if json {
        let top: Vec<serde_json::Value> = gen
            .prompt_top_logits()
            .iter()
            .map(|&(id, logit)| serde_json::json!([id, logit]))
            .collect();
        let obj = serde_json::json!({
            "prompt_tokens": gen.prompt_tokens(),
            "tokens": gen.tokens(),
            "text": out,
            "finish_reason": gen.finish_reason().map(|r| r.as_str()),
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
