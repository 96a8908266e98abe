//! The command line: what the server is started with. No argument-parsing dependency, like the
//! library's examples: the options are few and all take one value.
//!
//! Bad arguments are one line on stderr and exit status 2 (the usual status for a usage error);
//! arguments that are not UTF-8 are reported, never a panic.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

/// The usage text, printed by `--help`.
pub const USAGE: &str = "\
tramontane-server: an OpenAI-compatible HTTP server over one GGUF model

usage: tramontane-server --model PATH [options]

options:
  --model PATH         the GGUF model to serve (required)
  --model-alias NAME   the model id in /v1/models and in responses (default: the file stem)
  --host ADDR          address to listen on (default 127.0.0.1: this machine only)
  --port N             port to listen on (default 8080; 0 picks a free one)
  --threads N          compute threads (default: all cores)
  --parallel N         requests decoded at once (default 4)
  --ctx N              context of each request in tokens, prompt and reply (default 4096,
                       or the model's training context if smaller; 0: the training context)
  --queue N            requests that may wait for a free slot (default 64); more get 503
  --api-key KEY        require 'Authorization: Bearer KEY' on /v1/* (default: no key;
                       the environment variable TRAMONTANE_API_KEY works too)
  --shutdown-grace S   seconds in-flight requests may finish after SIGINT/SIGTERM (default 10)
  -h, --help           this text

endpoints: GET /health, GET /metrics, GET /v1/models, POST /v1/chat/completions,
POST /v1/completions, POST /v1/embeddings
";

/// Everything the server is started with.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The GGUF file.
    pub model: PathBuf,
    /// The model's id in the API; `None`: the file stem.
    pub model_alias: Option<String>,
    /// Listening address.
    pub host: IpAddr,
    /// Listening port.
    pub port: u16,
    /// Compute threads; `None`: all cores.
    pub threads: Option<usize>,
    /// Engine slots.
    pub parallel: usize,
    /// Context per request; `None`: the default (4096 or the training context if smaller).
    pub ctx: Option<usize>,
    /// Waiting requests allowed.
    pub queue: usize,
    /// Bearer token required on /v1/*.
    pub api_key: Option<String>,
    /// Seconds in-flight requests may run on after a shutdown signal.
    pub shutdown_grace: u64,
}

/// Why the arguments were not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help`: print the usage, exit 0.
    Help,
    /// A usage error: print it, exit 2.
    Bad(String),
}

impl From<String> for ArgsError {
    fn from(message: String) -> Self {
        ArgsError::Bad(message)
    }
}

/// Upper bounds: a typo such as `--parallel 100000` would otherwise allocate for that many.
const MAX_PARALLEL: usize = 256;
const MAX_QUEUE: usize = 65_536;

/// Parses the arguments after the program name (`--name value` or `--name=value`).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Config, ArgsError> {
    let mut config = Config {
        model: PathBuf::new(),
        model_alias: None,
        host: IpAddr::from([127, 0, 0, 1]),
        port: 8080,
        threads: None,
        parallel: 4,
        ctx: None,
        queue: 64,
        api_key: None,
        shutdown_grace: 10,
    };
    let mut model = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // A path may be any bytes; every flag is ASCII, so split `--name=value` on bytes.
        let (flag, inline) = split_flag(arg)?;
        let mut value = || -> Result<OsString, ArgsError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value (see --help)"))),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(ArgsError::Help),
            "--model" | "-m" => model = Some(PathBuf::from(value()?)),
            "--model-alias" => config.model_alias = Some(nonempty(&flag, text(&flag, value()?)?)?),
            "--host" => {
                let v = text(&flag, value()?)?;
                config.host = v.parse().map_err(|_| {
                    format!("--host: '{v}' is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)")
                })?;
            }
            "--port" => config.port = number(&flag, value()?)?,
            "--threads" | "-t" => {
                let n: usize = number(&flag, value()?)?;
                config.threads = Some(bounded(&flag, n, 1, 4 * cores())?);
            }
            "--parallel" | "-np" => {
                config.parallel = bounded(&flag, number(&flag, value()?)?, 1, MAX_PARALLEL)?
            }
            "--ctx" | "-c" => config.ctx = Some(number(&flag, value()?)?),
            "--queue" => config.queue = bounded(&flag, number(&flag, value()?)?, 1, MAX_QUEUE)?,
            "--api-key" => config.api_key = Some(nonempty(&flag, text(&flag, value()?)?)?),
            "--shutdown-grace" => {
                config.shutdown_grace = bounded(&flag, number(&flag, value()?)?, 0, 3600)?
            }
            _ => {
                return Err(ArgsError::Bad(format!(
                    "unknown option '{flag}' (see --help)"
                )))
            }
        }
    }
    config.model =
        model.ok_or_else(|| ArgsError::Bad("--model PATH is required (see --help)".into()))?;
    Ok(config)
}

/// The flag and, for `--name=value`, its value. Anything that is not a flag is refused: the
/// server takes no positional arguments.
fn split_flag(arg: OsString) -> Result<(String, Option<OsString>), ArgsError> {
    let bytes = arg.as_encoded_bytes();
    let (name, value) = match bytes.iter().position(|&b| b == b'=') {
        Some(eq) if bytes.starts_with(b"--") => (&bytes[..eq], Some(&bytes[eq + 1..])),
        _ => (bytes, None),
    };
    let Ok(name) = std::str::from_utf8(name) else {
        return Err(ArgsError::Bad(format!(
            "unexpected argument '{}' (see --help)",
            arg.to_string_lossy()
        )));
    };
    if !name.starts_with('-') || name.len() < 2 {
        return Err(ArgsError::Bad(format!(
            "unexpected argument '{}' (see --help)",
            arg.to_string_lossy()
        )));
    }
    Ok((name.to_string(), value.map(os_from_bytes)))
}

/// The bytes after `--name=` as an OsString (`from_encoded_bytes_unchecked` would need
/// `unsafe`; on Unix the bytes are the OsString).
fn os_from_bytes(bytes: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(bytes.to_vec())
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

fn text(flag: &str, value: OsString) -> Result<String, ArgsError> {
    value.into_string().map_err(|v| {
        ArgsError::Bad(format!(
            "{flag}: '{}' is not valid UTF-8",
            v.to_string_lossy()
        ))
    })
}

fn nonempty(flag: &str, value: String) -> Result<String, ArgsError> {
    if value.trim().is_empty() {
        Err(ArgsError::Bad(format!("{flag} must not be empty")))
    } else {
        Ok(value)
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: OsString) -> Result<T, ArgsError> {
    let v = text(flag, value)?;
    v.trim()
        .parse()
        .map_err(|_| ArgsError::Bad(format!("{flag}: '{v}' is not a whole number in range")))
}

fn bounded<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    n: T,
    min: T,
    max: T,
) -> Result<T, ArgsError> {
    if n < min || n > max {
        Err(ArgsError::Bad(format!(
            "{flag} {n} is out of range ({min} to {max})"
        )))
    } else {
        Ok(n)
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Config, ArgsError> {
        parse(list.iter().map(OsString::from))
    }

    #[test]
    fn defaults_and_values() {
        let c = args(&["--model", "m.gguf"]).unwrap();
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!((c.port, c.parallel, c.queue), (8080, 4, 64));
        let c = args(&[
            "--model=m.gguf",
            "--port=0",
            "--parallel",
            "2",
            "--ctx",
            "512",
            "--api-key",
            "k",
        ])
        .unwrap();
        assert_eq!((c.port, c.parallel, c.ctx), (0, 2, Some(512)));
        assert_eq!(c.api_key.as_deref(), Some("k"));
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert_eq!(args(&["--help"]), Err(ArgsError::Help));
        for bad in [
            &["--port", "x", "--model", "m"][..],
            &["--model"],
            &[],
            &["--port", "70000", "--model", "m"],
            &["--parallel", "0", "--model", "m"],
            &["--host", "nowhere", "--model", "m"],
            &["stray", "--model", "m"],
            &["--frobnicate", "--model", "m"],
        ] {
            assert!(matches!(args(bad), Err(ArgsError::Bad(_))), "{bad:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_is_an_error_not_a_panic() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'-', b'-', 0xff]);
        assert!(matches!(parse([bad]), Err(ArgsError::Bad(_))));
        let port = vec![OsString::from("--port"), OsString::from_vec(vec![0xff])];
        assert!(matches!(parse(port), Err(ArgsError::Bad(_))));
        // A path that is not UTF-8 is fine.
        let model = vec![OsString::from_vec(b"--model=\xffm".to_vec())];
        assert!(parse(model).is_ok());
    }
}
