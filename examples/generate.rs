//! Generates text from a prompt. See the command-line contract in DESIGN.md:
//! `generate --model PATH --prompt TEXT [-n N] [--temperature T] [--top-k K] [--top-p P]
//! [--min-p P] [--repeat-penalty R] [--seed S] [--chat] [--no-special] [--json] [--threads N]`

#[macro_use]
#[path = "common/cli.rs"]
mod cli;

use tramontane::tokenizer::EncodeOptions;
use tramontane::{ChatMessage, GenerateOptions, Sampling, SessionOptions};

const USAGE: &str = "\
usage: generate [--model PATH] --prompt TEXT [-n N] [--temperature T] [--top-k K] [--top-p P]
                [--min-p P] [--repeat-penalty R] [--seed S] [--chat] [--no-special] [--json]
                [--threads N]

Generates text from a prompt.
  -m, --model PATH        the GGUF model (default: SmolLM2-135M-Instruct Q4_1, fetched if missing)
  -p, --prompt TEXT       the prompt (required)
  -n, --n-predict N       tokens to generate (default 128)
  --temperature, --temp T softmax temperature; 0 is greedy (default 0.8)
  --top-k K               keep the K most likely tokens, 0 = all (default 40)
  --top-p P               nucleus sampling (default 0.95)
  --min-p P               drop tokens below P x the most likely (default 0.05)
  --repeat-penalty R      penalty on recent tokens, 1 = off (default 1)
  --seed S                sampling seed (default 0)
  --chat                  wrap the prompt in the model's chat template
  --no-special            special tokens written in the prompt are plain text
  --json                  one JSON object: prompt_tokens, tokens, text, finish_reason,
                          top_logits, prompt_ms, decode_ms
  -t, --threads N         worker threads (default: all logical CPUs)
  -h, --help              this text";

fn main() -> std::process::ExitCode {
    cli::main_with(USAGE, run)
}

/// `-n` above this is refused: no context holds more tokens, and the sums stay far from
/// overflowing.
const MAX_TOKENS: usize = u32::MAX as usize;

fn run(mut args: cli::Args) -> Result<(), cli::Error> {
    let mut model_path = None;
    let mut prompt = None;
    let mut n_predict: usize = 128;
    let mut sampling = Sampling::default();
    let (mut chat, mut no_special, mut json) = (false, false, false);
    let mut threads = cli::all_cores();
    while let Some(arg) = args.next()? {
        match arg.as_flag() {
            Some("--model" | "-m") => model_path = Some(args.path("--model")?),
            Some("--prompt" | "-p") => prompt = Some(args.value("--prompt")?),
            Some("-n" | "--n-predict") => n_predict = args.parse("-n")?,
            Some("--temperature" | "--temp") => {
                sampling.temperature = cli::finite(&mut args, "--temperature")?
            }
            Some("--top-k") => sampling.top_k = args.parse("--top-k")?,
            Some("--top-p") => sampling.top_p = cli::finite(&mut args, "--top-p")?,
            Some("--min-p") => sampling.min_p = cli::finite(&mut args, "--min-p")?,
            Some("--repeat-penalty") => {
                sampling.repeat_penalty = cli::finite(&mut args, "--repeat-penalty")?
            }
            Some("--seed") => sampling.seed = args.parse("--seed")?,
            Some("--chat") => chat = true,
            Some("--no-special") => no_special = true,
            Some("--json") => json = true,
            Some("--threads" | "-t") => threads = cli::threads(&mut args, "--threads")?,
            _ => return Err(arg.unexpected()),
        }
    }
    if n_predict > MAX_TOKENS {
        return Err(format!("-n {n_predict} is too many tokens (at most {MAX_TOKENS})").into());
    }
    let prompt = prompt.ok_or("--prompt TEXT is required (see --help)")?;
    let model_path = match model_path {
        Some(p) => p,
        None => cli::default_model()?,
    };

    let model = cli::load_model(&model_path)?;
    let text = if chat {
        model
            .chat_template()
            .render(&[ChatMessage::new("user", &prompt)], true)
    } else {
        prompt
    };
    let encode = EncodeOptions {
        add_special: true,
        parse_special: !no_special,
    };
    let prompt_ids = model.tokenizer().encode(&text, encode)?;
    // Room for the prompt and every token asked for (the last one is never evaluated), within
    // what the model was trained for.
    let context = (prompt_ids.len() + n_predict).clamp(1, model.config().context_length);
    let mut session = model.session(SessionOptions {
        context,
        threads: Some(threads),
        ..SessionOptions::default()
    })?;
    let options = GenerateOptions {
        sampling,
        max_tokens: Some(n_predict),
        stop: Vec::new(),
    };
    let mut gen = session.generate_tokens(&prompt_ids, &options)?;
    let mut out = String::new();
    for piece in &mut gen {
        let piece = piece?;
        if !json {
            cli::print(format_args!("{piece}"))?;
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
        outln!("{obj}")
    } else {
        outln!("")
    }
}
