//! The examples as a user runs them: `--help`, bad arguments, odd paths given as models, and
//! quantize outputs that must not destroy data. Every failure must be exit status 1 with one
//! `error: ...` line on stderr, within seconds: never a panic (101), an abort (134) or a hang.
//!
//! The binaries are the ones `cargo test` builds into target/<profile>/examples/ (built here
//! first when this test runs alone). The models are small GGUF files written by the tests.

mod files_support;

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tramontane::kernels::GgmlType;
use tramontane::GgufFile;

const EXAMPLES: &[&str] = &[
    "generate", "chat", "inspect", "tokenize", "quantize", "bench", "kernels", "trace",
];

/// Longest any refusal may take (they all happen before any real work).
const QUICK: Duration = Duration::from_secs(20);

/// target/<profile>/examples/NAME, brought up to date (once per run: a no-op after a full
/// `cargo test`, which builds the examples with the same profile).
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile dir>/deps/examples_cli-HASH -> target/<profile dir>/examples
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps");
        // `cargo test` builds into target/debug with the test profile.
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "test",
            Some(other) => other,
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--examples", "--profile", profile])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .status()
            .expect("run cargo build --examples");
        assert!(status.success(), "cargo build --examples failed");
        profile_dir.join("examples")
    });
    let bin = dir.join(name);
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// Held while a child process is started (and, by the closed-stdout test, until it closed
/// its end of a pipe): a process forked meanwhile by another test thread would hold a copy
/// of the pipe's other end until its exec, keeping the pipe open.
static SPAWNING: Mutex<()> = Mutex::new(());

/// `cmd.spawn()`, one at a time.
fn spawn(cmd: &mut Command) -> Child {
    let _one = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
    cmd.spawn().expect("spawn")
}

/// What a run gave.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// Exit status 1 and exactly one line on stderr, `error: ...`; returns that line.
    fn one_line_error(&self, what: &str) -> &str {
        assert_eq!(self.code, Some(1), "{what}: exit status, {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{what}: one line on stderr, {self:#?}");
        assert!(lines[0].starts_with("error: "), "{what}: {self:#?}");
        assert!(!self.stderr.contains("panicked"), "{what}: {self:#?}");
        assert!(self.took < QUICK, "{what}: took {:?}", self.took);
        lines[0]
    }
}

/// Runs example `name` with `args` (stdin empty), killing it after `limit`.
fn run_with(name: &str, args: &[OsString], limit: Duration) -> Run {
    let bin = example(name); // may build first: not part of the time allowed
    let start = Instant::now();
    let mut child = spawn(
        Command::new(bin)
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // Drained on threads, so a chatty child never blocks on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} still running after {limit:?} (it hangs)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout thread"),
        stderr: err.join().expect("stderr thread"),
        took: start.elapsed(),
    }
}

fn run(name: &str, args: &[&str]) -> Run {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    run_with(name, &args, QUICK)
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// `mkfifo PATH`.
fn mkfifo(path: &Path) {
    let status = spawn(Command::new("mkfifo").arg(path))
        .wait()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Every way each example takes a model path, with `model` in that place.
fn model_invocations(model: &str, scratch: &Path) -> Vec<(&'static str, Vec<OsString>)> {
    let out = scratch.join("out.gguf").into_os_string();
    let trace_dir = scratch.join("trace").into_os_string();
    vec![
        ("inspect", os(&[model])),
        ("tokenize", os(&["--model", model, "--text", "hi"])),
        (
            "generate",
            os(&["--model", model, "--prompt", "hi", "-n", "1"]),
        ),
        ("chat", os(&["--model", model])),
        ("bench", os(&["--model", model, "-p", "1", "-n", "1"])),
        ("trace", {
            let mut a = os(&["--model", model, "--ids", "1", "--out"]);
            a.push(trace_dir);
            a
        }),
        ("quantize", {
            let mut a = os(&[model]);
            a.push(out);
            a.extend(os(&["Q8_0", "--pure"]));
            a
        }),
    ]
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    for name in EXAMPLES {
        for flag in ["--help", "-h"] {
            let r = run(name, &[flag]);
            assert_eq!(r.code, Some(0), "{name} {flag}: {r:#?}");
            assert!(r.stdout.starts_with("usage: "), "{name} {flag}: {r:#?}");
            assert!(r.stdout.contains(name), "{name} {flag}: {r:#?}");
            assert!(r.stderr.is_empty(), "{name} {flag}: {r:#?}");
        }
    }
}

#[test]
fn a_non_utf8_argument_is_one_line_error() {
    let bad = OsString::from_vec(b"caf\xe9".to_vec());
    for name in EXAMPLES {
        let r = run_with(name, std::slice::from_ref(&bad), QUICK);
        r.one_line_error(&format!("{name} <non-UTF-8>"));
    }
    // Where text is expected: named, not a panic.
    let mut args = os(&["--prompt"]);
    args.push(bad.clone());
    let r = run_with("generate", &args, QUICK);
    let line = r.one_line_error("generate --prompt <non-UTF-8>");
    assert!(
        line.contains("--prompt") && line.contains("UTF-8"),
        "{line}"
    );
    // Where a path is expected, any bytes are a path (here a missing one), also after `=`.
    let args = [
        OsString::from_vec(b"--model=caf\xe9.gguf".to_vec()),
        "--text".into(),
        "x".into(),
    ];
    let r = run_with("tokenize", &args, QUICK);
    let line = r.one_line_error("tokenize --model=<non-UTF-8>");
    assert!(line.starts_with("error: cannot open caf"), "{line}");
}

#[test]
fn bad_arguments_are_one_line_errors_with_status_1() {
    let cases: &[(&str, &[&str])] = &[
        ("bench", &["--threads", "0"]),
        ("bench", &["--threads", "100000"]),
        ("kernels", &["--threads", "0"]),
        ("generate", &["--prompt", "x", "--threads", "99999"]),
        ("chat", &["--threads", "-1"]),
        ("trace", &["--threads", "0"]),
        ("tokenize", &["--text", "x", "--threads", "many"]),
        ("inspect", &["x.gguf", "--threads", "0"]),
        ("quantize", &["a.gguf", "b.gguf", "Q8_0", "0"]),
        ("quantize", &["a.gguf", "b.gguf"]),
        ("quantize", &["a.gguf", "b.gguf", "Q9_9"]),
        ("quantize", &["--frobnicate"]),
        ("generate", &["--prompt"]),
        ("generate", &["--prompt", "x", "--temperature", "nan"]),
        ("generate", &["--prompt", "x", "--json=yes"]),
        ("bench", &["--model"]),
        ("kernels", &["--rows", "4096"]),
        ("kernels", &["--rows", "4000000000", "--cols", "4000000000"]),
        (
            "kernels",
            &["--type", "Q4_0", "--rows", "8", "--cols", "33"],
        ),
        (
            "trace",
            &["--model", "x.gguf", "--ids", "1,x", "--out", "o"],
        ),
    ];
    for (name, args) in cases {
        let r = run(name, args);
        r.one_line_error(&format!("{name} {args:?}"));
    }
    let r = run("bench", &["--threads", "100000"]);
    let line = r.one_line_error("bench --threads 100000");
    assert!(line.contains("logical CPUs"), "{line}");
}

#[test]
fn directories_fifos_and_devices_are_refused_by_name() {
    let dir = files_support::scratch("examples-cli-tests", "odd-paths");
    let fifo = dir.join("model.fifo");
    mkfifo(&fifo);
    let subdir = dir.join("a-directory.gguf");
    std::fs::create_dir(&subdir).expect("mkdir");
    let cases = [
        (subdir.to_str().expect("utf-8"), "directory"),
        (fifo.to_str().expect("utf-8"), "FIFO"),
        ("/dev/null", "character device"),
    ];
    for (path, kind) in cases {
        for (name, args) in model_invocations(path, &dir) {
            let r = run_with(name, &args, QUICK);
            let line = r.one_line_error(&format!("{name} with {path}"));
            assert!(
                line.contains(path) && line.contains(kind),
                "{name} with {path}: {line}"
            );
        }
    }
    // Nothing was written beside them.
    assert_eq!(
        files_support::listing(&dir),
        ["a-directory.gguf", "model.fifo"]
    );
}

#[test]
fn a_truncated_model_is_named_in_the_error() {
    let dir = files_support::scratch("examples-cli-tests", "truncated");
    let full = dir.join("full.gguf");
    files_support::write_small_model(&full, false);
    let bytes = std::fs::read(&full).expect("read");
    for cut in [10, 40, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.join(format!("cut-{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let p = path.to_str().expect("utf-8");
        for (name, args) in model_invocations(p, &dir) {
            let r = run_with(name, &args, QUICK);
            let line = r.one_line_error(&format!("{name} with {p}"));
            assert!(line.contains(p), "{name} with {p}: {line}");
        }
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = files_support::scratch("examples-cli-tests", "closed-stdout");
    let model = dir.join("m.gguf");
    files_support::write_small_model(&model, false);
    let inspect = example("inspect");
    let child = {
        let _one = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = Command::new(inspect)
            .arg(&model)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take()); // the reader goes away, like `| head -0`
        child
    };
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn quantize_refuses_to_overwrite_its_input() {
    let dir = files_support::scratch("examples-cli-tests", "in-is-out");
    let input = dir.join("in.gguf");
    files_support::write_small_model(&input, false);
    let before = std::fs::read(&input).expect("read");
    let link = dir.join("link.gguf");
    std::os::unix::fs::symlink("in.gguf", &link).expect("symlink");
    let hard = dir.join("hard.gguf");
    std::fs::hard_link(&input, &hard).expect("hard link");
    let i = input.to_str().expect("utf-8");
    for out in [&input, &link, &hard] {
        let o = out.to_str().expect("utf-8");
        let r = run("quantize", &[i, o, "Q8_0", "--pure"]);
        let line = r.one_line_error(&format!("quantize IN {o}"));
        assert!(line.contains("is the input"), "{line}");
        assert_eq!(
            std::fs::read(&input).expect("read"),
            before,
            "input changed"
        );
    }
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(
        files_support::listing(&dir),
        ["hard.gguf", "in.gguf", "link.gguf"]
    );
}

#[test]
fn quantize_refuses_special_outputs_before_any_work() {
    let dir = files_support::scratch("examples-cli-tests", "special-outputs");
    let input = dir.join("in.gguf");
    files_support::write_small_model(&input, false);
    let i = input.to_str().expect("utf-8");
    let subdir = dir.join("out.gguf");
    std::fs::create_dir(&subdir).expect("mkdir");
    std::fs::write(subdir.join("keep"), b"kept").expect("write");
    let fifo = dir.join("out.fifo");
    mkfifo(&fifo);
    for (out, kind) in [
        ("/dev/full", "character device"),
        ("/dev/null", "character device"),
        (subdir.to_str().expect("utf-8"), "directory"),
        (fifo.to_str().expect("utf-8"), "FIFO"),
    ] {
        // One line: no progress line, so no tensor was converted.
        let r = run("quantize", &[i, out, "Q8_0", "--pure"]);
        let line = r.one_line_error(&format!("quantize IN {out}"));
        assert!(line.contains(out) && line.contains(kind), "{line}");
    }
    use std::os::unix::fs::FileTypeExt;
    for dev in ["/dev/full", "/dev/null"] {
        let t = std::fs::symlink_metadata(dev).expect("stat").file_type();
        assert!(t.is_char_device(), "{dev} was replaced");
    }
    assert_eq!(files_support::listing(&subdir), ["keep"]);
    assert_eq!(
        files_support::listing(&dir),
        ["in.gguf", "out.fifo", "out.gguf"]
    );
}

#[test]
fn quantize_writes_through_a_symlinked_output() {
    let dir = files_support::scratch("examples-cli-tests", "symlinked-output");
    let input = dir.join("in.gguf");
    files_support::write_small_model(&input, false);
    std::fs::create_dir(dir.join("store")).expect("mkdir");
    std::fs::write(dir.join("store/model.gguf"), b"old contents").expect("write");
    let link = dir.join("current.gguf");
    std::os::unix::fs::symlink("store/model.gguf", &link).expect("symlink");
    let dangling = dir.join("next.gguf");
    std::os::unix::fs::symlink("store/new.gguf", &dangling).expect("symlink");
    let i = input.to_str().expect("utf-8");
    for out in [&link, &dangling] {
        let r = run(
            "quantize",
            &[i, out.to_str().expect("utf-8"), "Q8_0", "--pure"],
        );
        assert_eq!(r.code, Some(0), "{r:#?}");
    }
    for (link, target) in [(&link, "store/model.gguf"), (&dangling, "store/new.gguf")] {
        let meta = std::fs::symlink_metadata(link).expect("link");
        assert!(
            meta.file_type().is_symlink(),
            "{} was replaced",
            link.display()
        );
        assert_eq!(
            std::fs::read_link(link).expect("read link"),
            Path::new(target)
        );
        let f = GgufFile::open(dir.join(target)).expect("the target is the new model");
        assert_eq!(
            f.tensor("blk.0.attn_q.weight").expect("tensor").ty(),
            GgmlType::Q8_0
        );
    }
    assert_eq!(
        files_support::listing(&dir.join("store")),
        ["model.gguf", "new.gguf"]
    );
}

#[test]
fn output_directory_errors_name_the_users_path() {
    let dir = files_support::scratch("examples-cli-tests", "output-dirs");
    let input = dir.join("in.gguf");
    files_support::write_small_model(&input, false);
    let i = input.to_str().expect("utf-8");
    // Missing, a file where a directory should be, and unwritable.
    std::fs::write(dir.join("plain"), b"x").expect("write");
    let mut outs = vec![dir.join("no/such/dir/o.gguf"), dir.join("plain/o.gguf")];
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if std::fs::write(locked.join("probe"), b"").is_err() {
        outs.push(locked.join("o.gguf"));
    } else if std::fs::write("/sys/tramontane-probe", b"").is_err() {
        // Root writes anywhere its mode bits forbid: /sys refuses even root.
        outs.push(PathBuf::from("/sys/o.gguf"));
    }
    for out in &outs {
        let o = out.to_str().expect("utf-8");
        let r = run("quantize", &[i, o, "Q8_0", "--pure"]);
        let line = r.one_line_error(&format!("quantize IN {o}"));
        assert!(line.contains(o), "{line}");
        assert!(
            !line.contains("partial"),
            "names the temporary file: {line}"
        );
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The pid of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = spawn(&mut Command::new("true"));
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[test]
fn stale_temporaries_are_removed_or_reported() {
    let dir = files_support::scratch("examples-cli-tests", "stale");
    let input = dir.join("in.gguf");
    files_support::write_small_model(&input, false);
    let host = files_support::host();
    let dead = format!("out.gguf.partial-{}-0-{host}", dead_pid());
    // This test's own pid: alive, and not the quantizer's.
    let live = format!("out.gguf.partial-{}-0-{host}", std::process::id());
    let legacy = "out.gguf.partial".to_string();
    let other_output = format!("other.gguf.partial-{}-0-{host}", dead_pid());
    for name in [&dead, &live, &legacy, &other_output] {
        std::fs::write(dir.join(name), vec![0u8; 4096]).expect("write");
    }
    let out = dir.join("out.gguf");
    let r = run(
        "quantize",
        &[
            input.to_str().expect("utf-8"),
            out.to_str().expect("utf-8"),
            "Q8_0",
            "--pure",
        ],
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(
        r.stderr
            .contains(&format!("removed {}", dir.join(&dead).display())),
        "{r:#?}"
    );
    for kept in [&live, &legacy] {
        assert!(
            r.stderr
                .contains(&format!("note: {}", dir.join(kept).display())),
            "{r:#?}"
        );
    }
    let mut expected = vec![
        "in.gguf".to_string(),
        legacy,
        live,
        other_output,
        "out.gguf".into(),
    ];
    expected.sort();
    assert_eq!(files_support::listing(&dir), expected);
}

#[test]
fn quantize_leaves_no_temporary_file() {
    let dir = files_support::scratch("examples-cli-tests", "no-temporaries");
    let input = dir.join("in.gguf");
    files_support::write_small_model(&input, false);
    let i = input.to_str().expect("utf-8");
    let o = dir.join("out.gguf");
    let r = run(
        "quantize",
        &[i, o.to_str().expect("utf-8"), "Q8_0", "--pure"],
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    let before = std::fs::read(&o).expect("read");
    // Failures before and after the temporary file was created: a mix needs hyperparameters
    // this model lacks; a NaN weight fails its conversion midway.
    let r = run("quantize", &[i, o.to_str().expect("utf-8"), "Q4_K_M"]);
    r.one_line_error("quantize IN OUT Q4_K_M");
    let bad = dir.join("nan.gguf");
    files_support::write_small_model(&bad, true);
    let r = run(
        "quantize",
        &[
            bad.to_str().expect("utf-8"),
            o.to_str().expect("utf-8"),
            "Q4_0",
            "--pure",
        ],
    );
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r.stderr.contains("invalid data"), "{r:#?}");
    assert_eq!(
        files_support::listing(&dir),
        ["in.gguf", "nan.gguf", "out.gguf"]
    );
    assert_eq!(
        std::fs::read(&o).expect("read"),
        before,
        "output changed by a failed run"
    );
}

/// `-n` counts tokens: the prompt that used to run the example out of the context it sized
/// itself (each CJK character and emoji takes several tokens) gives exactly 32 tokens, and
/// `text` is their detokenization.
#[test]
fn generate_json_gives_n_tokens_and_their_text() {
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.exists(), "run scripts/fetch-models smollm2");
    let prompt =
        "Café crème brûlée, naïve façade, Straße, 日本語のテキスト, Ελληνικά, emoji 🦀🚀👍🏽 \
                  and © — the word for coffee in French is";
    let model_arg = model.to_str().expect("UTF-8 path");
    let args = os(&[
        "--model",
        model_arg,
        "--prompt",
        prompt,
        "-n",
        "32",
        "--temperature",
        "0",
        "--json",
        "--threads",
        "2",
    ]);
    let r = run_with("generate", &args, Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "{r:#?}");
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    let ids: Vec<u32> = v["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t.as_u64().expect("id") as u32)
        .collect();
    assert_eq!(ids.len(), 32, "{v}");
    assert_eq!(v["finish_reason"], "length");
    let tok =
        tramontane::tokenizer::Tokenizer::from_gguf(&GgufFile::open(&model).unwrap()).unwrap();
    let text = tok
        .decode(&ids, tramontane::tokenizer::DecodeOptions::default())
        .unwrap();
    assert_eq!(v["text"].as_str(), Some(text.as_str()));
}
