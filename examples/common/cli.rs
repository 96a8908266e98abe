//! Tiny command-line helpers shared by the examples (no argument-parsing dependency).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The arguments after the program name, consumed flag by flag.
pub struct Args {
    rest: Vec<String>,
}

impl Args {
    /// The process arguments.
    pub fn from_env() -> Args {
        Args {
            rest: std::env::args().skip(1).collect(),
        }
    }

    /// Removes `--flag` (or any of `names`) and reports whether it was there.
    pub fn flag(&mut self, names: &[&str]) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| !names.contains(&a.as_str()));
        self.rest.len() != before
    }

    /// Removes `--name VALUE` and returns VALUE.
    pub fn value(&mut self, names: &[&str]) -> Result<Option<String>, String> {
        let Some(i) = self.rest.iter().position(|a| names.contains(&a.as_str())) else {
            return Ok(None);
        };
        if i + 1 >= self.rest.len() {
            return Err(format!("{} needs a value", self.rest[i]));
        }
        let v = self.rest.remove(i + 1);
        self.rest.remove(i);
        Ok(Some(v))
    }

    /// Removes `--name VALUE` and parses VALUE.
    pub fn parsed<T: std::str::FromStr>(&mut self, names: &[&str]) -> Result<Option<T>, String> {
        match self.value(names)? {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{}: cannot parse '{v}'", names[0])),
        }
    }

    /// Errors on anything left over.
    pub fn finish(self) -> Result<(), String> {
        match self.rest.first() {
            None => Ok(()),
            Some(a) => Err(format!("unexpected argument '{a}'")),
        }
    }
}

/// `--threads N`, default all cores; 0 is refused.
pub fn threads(args: &mut Args) -> Result<usize, String> {
    match args.parsed::<usize>(&["--threads", "-t"])? {
        Some(0) => Err("--threads must be at least 1".into()),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The default model (SmolLM2-135M-Instruct Q4_1), fetched with `scripts/fetch-models` first
/// when it is missing.
pub fn default_model() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.exists() {
        eprintln!(
            "{} is missing; running scripts/fetch-models smollm2",
            path.display()
        );
        let status = Command::new(root.join("scripts/fetch-models"))
            .arg("smollm2")
            .status()
            .map_err(|e| format!("cannot run scripts/fetch-models: {e}"))?;
        if !status.success() {
            return Err(format!("scripts/fetch-models smollm2 failed ({status})"));
        }
    }
    Ok(path)
}

/// Runs `body`, printing an error as one line on stderr with exit status 1.
pub fn main_with(body: impl FnOnce() -> Result<(), String>) -> std::process::ExitCode {
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
