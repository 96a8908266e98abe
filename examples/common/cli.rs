//! The examples' small command-line layer, shared by all of them (no argument-parsing
//! dependency).
//!
//! Arguments are read left to right ([`Args::next`]); `-h`/`--help` anywhere an option may
//! stand prints the usage on stdout and exits 0; `--name=value` is the same as `--name value`;
//! `--` ends the options. Every failure is one line on stderr, `error: ` and the error with its
//! whole chain of causes ([`chain`]), and exit status 1.
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     cli::main_with(USAGE, run)
//! }
//! fn run(mut args: cli::Args) -> Result<(), cli::Error> {
//!     while let Some(arg) = args.next()? {
//!         match arg.as_flag() {
//!             Some("--model" | "-m") => model = Some(args.path("--model")?),
//!             Some("--threads" | "-t") => threads = cli::threads(&mut args, "--threads")?,
//!             _ => return Err(arg.unexpected()),
//!         }
//!     }
//!     ...
//! }
//! ```
#![allow(dead_code)] // each example uses a different subset

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::str::FromStr;

use tramontane::{GgufFile, Model};

/// Why an example stops early.
#[derive(Debug)]
pub enum Error {
    /// `-h`/`--help`: the usage goes to stdout, exit status 0.
    Help,
    /// Stdout was closed by its reader (`inspect x | head`): stop quietly, exit status 0, as
    /// the programs that print long listings do.
    StdoutClosed,
    /// A failure: `error: MESSAGE` on stderr, exit status 1.
    Failed(String),
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::Failed(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::Failed(message.to_string())
    }
}

impl From<tramontane::Error> for Error {
    fn from(e: tramontane::Error) -> Self {
        Error::Failed(chain(&e))
    }
}

impl From<tramontane::kernels::KernelError> for Error {
    fn from(e: tramontane::kernels::KernelError) -> Self {
        Error::Failed(chain(&e))
    }
}

/// `e` and its causes ([`source`](std::error::Error::source) after source), joined by ": ".
/// The library's errors leave the cause out of their own message (`Error::Io` says "cannot
/// open PATH", its source says why), so `to_string()` alone would lose it; a cause whose text
/// the message already ends with is not repeated.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !part.is_empty() && !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}

/// One argument, as [`Args::next`] reads it.
#[derive(Debug)]
pub enum Arg {
    /// `-x` or `--name` (without the `=value`, which [`Args::value`] then returns).
    Flag(String),
    /// Anything else, including an argument that is not UTF-8 (a path may not be).
    Positional(OsString),
}

impl Arg {
    /// The option's name, or None for a positional argument.
    pub fn as_flag(&self) -> Option<&str> {
        match self {
            Arg::Flag(f) => Some(f),
            Arg::Positional(_) => None,
        }
    }

    /// The error for an argument the example does not take.
    pub fn unexpected(&self) -> Error {
        match self {
            Arg::Flag(f) => format!("unknown option '{f}' (see --help)").into(),
            Arg::Positional(p) => {
                format!("unexpected argument '{}' (see --help)", p.to_string_lossy()).into()
            }
        }
    }
}

/// The command-line arguments after the program name, read left to right.
#[derive(Debug)]
pub struct Args {
    rest: VecDeque<OsString>,
    /// The `value` of a `--name=value` just read, waiting for [`Args::value`].
    inline: Option<(String, OsString)>,
    /// After `--`: everything is positional.
    positional_only: bool,
}

impl Args {
    /// The process's arguments (not necessarily UTF-8: nothing here panics on them).
    pub fn from_env() -> Args {
        Args::new(std::env::args_os().skip(1))
    }

    /// Arguments from a list.
    pub fn new(args: impl IntoIterator<Item = OsString>) -> Args {
        Args {
            rest: args.into_iter().collect(),
            inline: None,
            positional_only: false,
        }
    }

    /// The next option or positional argument; `Err(Error::Help)` for `-h`/`--help`.
    pub fn next(&mut self) -> Result<Option<Arg>, Error> {
        if let Some((flag, _)) = self.inline.take() {
            return Err(format!("option '{flag}' takes no value").into());
        }
        loop {
            let Some(arg) = self.rest.pop_front() else {
                return Ok(None);
            };
            if self.positional_only {
                return Ok(Some(Arg::Positional(arg)));
            }
            let Some(text) = arg.to_str() else {
                // `--name=VALUE` with a value that is not UTF-8 (a path may not be).
                if let Some((name, value)) = split_inline_os(&arg) {
                    self.inline = Some((name.clone(), value));
                    return Ok(Some(Arg::Flag(name)));
                }
                return Ok(Some(Arg::Positional(arg)));
            };
            match text {
                "--" => self.positional_only = true,
                "-h" | "--help" => return Err(Error::Help),
                // "-" alone is a positional argument by convention (stdin).
                t if t.len() > 1 && t.starts_with('-') => {
                    if let Some((name, value)) = t.split_once('=').filter(|_| t.starts_with("--")) {
                        self.inline = Some((name.to_string(), OsString::from(value)));
                        return Ok(Some(Arg::Flag(name.to_string())));
                    }
                    return Ok(Some(Arg::Flag(t.to_string())));
                }
                _ => return Ok(Some(Arg::Positional(arg))),
            }
        }
    }

    /// The value of the option `flag` just read, as given (possibly not UTF-8).
    pub fn value_os(&mut self, flag: &str) -> Result<OsString, Error> {
        if let Some((_, value)) = self.inline.take() {
            return Ok(value);
        }
        self.rest
            .pop_front()
            .ok_or_else(|| format!("{flag} needs a value (see --help)").into())
    }

    /// The value of the option `flag` just read, which must be UTF-8 text.
    pub fn value(&mut self, flag: &str) -> Result<String, Error> {
        let value = self.value_os(flag)?;
        value.into_string().map_err(|v| {
            format!(
                "{flag}: the value '{}' is not valid UTF-8",
                v.to_string_lossy()
            )
            .into()
        })
    }

    /// The value of the option `flag` just read, as a path (any bytes).
    pub fn path(&mut self, flag: &str) -> Result<PathBuf, Error> {
        self.value_os(flag).map(PathBuf::from)
    }

    /// The value of the option `flag` just read, parsed.
    pub fn parse<T: FromStr>(&mut self, flag: &str) -> Result<T, Error> {
        let value = self.value(flag)?;
        parse_value(flag, &value)
    }
}

/// The value of the option `flag` just read, as a finite number (NaN and infinities are
/// refused: no sampler setting means them).
pub fn finite(args: &mut Args, flag: &str) -> Result<f32, Error> {
    let x: f32 = args.parse(flag)?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!("{flag}: {x} is not a finite number").into())
    }
}

/// `--name=VALUE` split where VALUE is not UTF-8 (but the name is); None for anything else.
fn split_inline_os(arg: &OsString) -> Option<(String, OsString)> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let bytes = arg.as_bytes();
        if !bytes.starts_with(b"--") {
            return None;
        }
        let eq = bytes.iter().position(|&b| b == b'=')?;
        let name = std::str::from_utf8(&bytes[..eq]).ok()?;
        Some((
            name.to_string(),
            OsString::from_vec(bytes[eq + 1..].to_vec()),
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = arg;
        None
    }
}

/// `value` of `what` (an option or argument name) parsed as a `T`.
pub fn parse_value<T: FromStr>(what: &str, value: &str) -> Result<T, Error> {
    let wanted = match std::any::type_name::<T>() {
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number >= 0",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        other => other,
    };
    value
        .trim()
        .parse()
        .map_err(|_| format!("{what}: '{value}' is not {wanted}").into())
}

/// A UTF-8 positional argument, or an error naming `what` it should be.
pub fn text(what: &str, arg: OsString) -> Result<String, Error> {
    arg.into_string()
        .map_err(|a| format!("{what} '{}' is not valid UTF-8", a.to_string_lossy()).into())
}

/// The number of logical CPUs (1 if unknown): the default thread count.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A thread count: at least 1, at most 4 x the logical CPUs (more only thrashes, and a typo
/// such as 1000 would otherwise spawn a thousand threads).
pub fn check_threads(n: usize) -> Result<usize, Error> {
    let cores = all_cores();
    let max = 4 * cores;
    match n {
        0 => Err("--threads must be at least 1".into()),
        n if n > max => Err(format!(
            "--threads {n} is too many: at most {max} (4 x the {cores} logical CPUs)"
        )
        .into()),
        n => Ok(n),
    }
}

/// The value of the `--threads` option `flag` just read, checked by [`check_threads`].
pub fn threads(args: &mut Args, flag: &str) -> Result<usize, Error> {
    let value = args.value(flag)?;
    check_threads(parse_value(flag, &value)?)
}

/// Opens a model, every error naming the file (also the ones the model finds in its metadata
/// after the file parsed).
pub fn load_model(path: &Path) -> Result<Model, Error> {
    let file = GgufFile::open(path)?;
    Ok(Model::from_gguf(file).map_err(|e| tramontane::Error::in_file(path, e))?)
}

/// The default model (SmolLM2-135M-Instruct Q4_1), fetched with `scripts/fetch-models` first
/// when it is missing.
pub fn default_model() -> Result<PathBuf, Error> {
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
            .map_err(|e| format!("cannot run scripts/fetch-models: {}", chain(&e)))?;
        if !status.success() {
            return Err(format!("scripts/fetch-models smollm2 failed ({status})").into());
        }
    }
    Ok(path)
}

/// Writes `text` to stdout; a reader that went away ends the program quietly
/// ([`Error::StdoutClosed`]) instead of a panic in `print!`.
pub fn print(text: std::fmt::Arguments<'_>) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(text).and_then(|()| out.flush()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Error::StdoutClosed
        } else {
            format!("cannot write to stdout: {}", chain(&e)).into()
        }
    })
}

/// `println!` through [`print`]: `outln!("{x}")?`.
#[allow(unused_macros)]
macro_rules! outln {
    ($($arg:tt)*) => {
        cli::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Runs `body` on the process's arguments: `--help` prints `usage` on stdout with exit status
/// 0; an error prints `error: ...` as one line on stderr with exit status 1.
pub fn main_with(usage: &str, body: impl FnOnce(Args) -> Result<(), Error>) -> ExitCode {
    match body(Args::from_env()) {
        Ok(()) | Err(Error::StdoutClosed) => ExitCode::SUCCESS,
        Err(Error::Help) => {
            // A closed stdout has nobody to read the usage: nothing left to do.
            let _ = writeln!(std::io::stdout(), "{}", usage.trim_end());
            ExitCode::SUCCESS
        }
        Err(Error::Failed(message)) => {
            // One line, whatever the message holds.
            let line = message.replace('\r', "\\r").replace('\n', "\\n");
            let _ = writeln!(std::io::stderr(), "error: {line}");
            ExitCode::FAILURE
        }
    }
}
