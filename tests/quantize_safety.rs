//! `quantize_model` cannot destroy data: it refuses an output that is its input or not a
//! regular file before converting anything, writes through a symbolic link, names the user's
//! path in every error, leaves nothing behind when it fails, and cleans up after killed runs.

mod files_support;

use std::cell::Cell;
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use tramontane::kernels::GgmlType;
use tramontane::quantize::{quantize_model, FileType, Progress, QuantizeOptions, QuantizeSummary};
use tramontane::{Error, GgufFile};

/// Quantizes `input` to Q8_0 (pure) into `out`, counting the tensors converted.
fn quantize(input: &GgufFile, out: &Path) -> (tramontane::Result<QuantizeSummary>, usize) {
    let done = Cell::new(0);
    let count = |_: &Progress<'_>| done.set(done.get() + 1);
    let options = QuantizeOptions {
        pure: true,
        progress: Some(&count),
        ..QuantizeOptions::default()
    };
    let r = quantize_model(input, out, FileType::Q8_0, &options);
    (r, done.get())
}

#[test]
fn the_input_is_never_the_output() {
    let dir = files_support::scratch("quantize-safety-tests", "input-is-output");
    let in_path = dir.join("in.gguf");
    files_support::write_small_model(&in_path, false);
    let before = std::fs::read(&in_path).expect("read");
    symlink("in.gguf", dir.join("link.gguf")).expect("symlink");
    std::fs::hard_link(&in_path, dir.join("hard.gguf")).expect("hard link");
    std::fs::create_dir(dir.join("sub")).expect("mkdir");
    let input = GgufFile::open(&in_path).expect("open");
    for out in [
        in_path.clone(),
        dir.join("link.gguf"),
        dir.join("hard.gguf"),
        dir.join("sub/../in.gguf"),
    ] {
        let (r, done) = quantize(&input, &out);
        match r {
            Err(Error::OutputIsInput { output, input }) => {
                assert_eq!(output, out);
                assert_eq!(input, in_path);
            }
            other => panic!("{}: {other:?}", out.display()),
        }
        assert_eq!(done, 0, "work was done");
    }
    assert_eq!(std::fs::read(&in_path).expect("read"), before);
    assert_eq!(
        files_support::listing(&dir),
        ["hard.gguf", "in.gguf", "link.gguf", "sub"]
    );
}

#[test]
fn outputs_that_are_not_regular_files_are_refused_before_any_work() {
    let dir = files_support::scratch("quantize-safety-tests", "special-outputs");
    let in_path = dir.join("in.gguf");
    files_support::write_small_model(&in_path, false);
    let input = GgufFile::open(&in_path).expect("open");
    std::fs::create_dir(dir.join("out.gguf")).expect("mkdir");
    let fifo = dir.join("out.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    symlink("/dev/full", dir.join("full-link")).expect("symlink");
    for (out, kind) in [
        (dir.join("out.gguf"), "directory"),
        (fifo.clone(), "FIFO"),
        (PathBuf::from("/dev/full"), "character device"),
        (dir.join("full-link"), "character device"),
    ] {
        let (r, done) = quantize(&input, &out);
        match r {
            Err(Error::NotAFile { path, kind: k }) => {
                assert_eq!((path, k), (out.clone(), kind));
            }
            other => panic!("{}: {other:?}", out.display()),
        }
        assert_eq!(done, 0, "work was done for {}", out.display());
    }
    let full = std::fs::symlink_metadata("/dev/full").expect("stat");
    assert!(full.file_type().is_char_device(), "/dev/full was replaced");
    assert!(std::fs::symlink_metadata(dir.join("full-link"))
        .expect("stat")
        .file_type()
        .is_symlink());
    assert_eq!(
        files_support::listing(&dir),
        ["full-link", "in.gguf", "out.fifo", "out.gguf"]
    );
}

#[test]
fn a_symlinked_output_is_written_through() {
    let dir = files_support::scratch("quantize-safety-tests", "symlink");
    let in_path = dir.join("in.gguf");
    files_support::write_small_model(&in_path, false);
    let input = GgufFile::open(&in_path).expect("open");
    std::fs::create_dir(dir.join("store")).expect("mkdir");
    let target = dir.join("store/model.gguf");
    std::fs::write(&target, b"old").expect("write");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    // A chain: current -> alias -> store/model.gguf.
    symlink("store/model.gguf", dir.join("alias.gguf")).expect("symlink");
    symlink("alias.gguf", dir.join("current.gguf")).expect("symlink");
    let (r, done) = quantize(&input, &dir.join("current.gguf"));
    r.expect("quantized");
    assert_eq!(done, 2);
    for link in ["alias.gguf", "current.gguf"] {
        let meta = std::fs::symlink_metadata(dir.join(link)).expect("stat");
        assert!(meta.file_type().is_symlink(), "{link} was replaced");
    }
    let f = GgufFile::open(&target).expect("the target holds the new model");
    assert_eq!(
        f.tensor("blk.0.attn_q.weight").expect("tensor").ty(),
        GgmlType::Q8_0
    );
    // Replaced with the mode it had.
    let mode = std::fs::metadata(&target)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(files_support::listing(&dir.join("store")), ["model.gguf"]);

    // A dangling link: its target is created.
    symlink("store/new.gguf", dir.join("next.gguf")).expect("symlink");
    quantize(&input, &dir.join("next.gguf"))
        .0
        .expect("quantized");
    assert!(std::fs::symlink_metadata(dir.join("next.gguf"))
        .expect("stat")
        .file_type()
        .is_symlink());
    GgufFile::open(dir.join("store/new.gguf")).expect("created through the link");
}

#[test]
fn directory_errors_name_the_users_path() {
    let dir = files_support::scratch("quantize-safety-tests", "directories");
    let in_path = dir.join("in.gguf");
    files_support::write_small_model(&in_path, false);
    let input = GgufFile::open(&in_path).expect("open");
    std::fs::write(dir.join("plain"), b"x").expect("write");
    for out in [dir.join("no/such/o.gguf"), dir.join("plain/o.gguf")] {
        let (r, done) = quantize(&input, &out);
        match r {
            Err(Error::Io { path, .. }) => assert_eq!(path, out),
            other => panic!("{}: {other:?}", out.display()),
        }
        assert_eq!(done, 0);
    }
    // A path naming no file.
    let (r, _) = quantize(&input, Path::new(""));
    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
    assert_eq!(files_support::listing(&dir), ["in.gguf", "plain"]);
}

#[test]
fn a_failed_run_leaves_the_old_output_and_no_temporary() {
    let dir = files_support::scratch("quantize-safety-tests", "failed-run");
    let bad = dir.join("nan.gguf");
    files_support::write_small_model(&bad, true);
    let out = dir.join("out.gguf");
    std::fs::write(&out, b"the previous output").expect("write");
    let input = GgufFile::open(&bad).expect("open");
    let (r, _) = quantize(&input, &out);
    assert!(matches!(r, Err(Error::TensorType { .. })), "{r:?}");
    assert_eq!(std::fs::read(&out).expect("read"), b"the previous output");
    assert_eq!(files_support::listing(&dir), ["nan.gguf", "out.gguf"]);
}

#[test]
fn temporaries_of_killed_runs_are_removed_the_others_reported() {
    let dir = files_support::scratch("quantize-safety-tests", "stale");
    let in_path = dir.join("in.gguf");
    files_support::write_small_model(&in_path, false);
    let input = GgufFile::open(&in_path).expect("open");
    let mut child = Command::new("true").spawn().expect("spawn");
    let dead = child.id();
    child.wait().expect("wait");
    // A live process that is not this one (whose own temporaries are runs in progress).
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("spawn");
    let live = sleeper.id();
    let host = files_support::host();
    let names = [
        format!("out.gguf.partial-{dead}-3-{host}"),
        format!("out.gguf.partial-{live}-0-{host}"),
        format!("out.gguf.partial-{dead}-0-elsewhere"),
        "out.gguf.partial".to_string(),
        format!("other.gguf.partial-{dead}-0-{host}"),
    ];
    for n in &names {
        std::fs::write(dir.join(n), b"stale").expect("write");
    }
    let (r, _) = quantize(&input, &dir.join("out.gguf"));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let summary = r.expect("quantized");
    assert_eq!(summary.stale.removed, [dir.join(&names[0])]);
    let mut kept: Vec<PathBuf> = names[1..4].iter().map(|n| dir.join(n)).collect();
    kept.sort();
    assert_eq!(summary.stale.kept, kept);
    let mut expected: Vec<String> = names[1..].to_vec();
    expected.extend(["in.gguf".into(), "out.gguf".into()]);
    expected.sort();
    assert_eq!(files_support::listing(&dir), expected);
}

#[test]
fn concurrent_runs_to_one_output_do_not_collide() {
    // Each run's temporary name is its own (pid and a per-process sequence), so runs on
    // several threads end with one complete output and no temporaries.
    let dir = files_support::scratch("quantize-safety-tests", "concurrent");
    let in_path = dir.join("in.gguf");
    files_support::write_small_model(&in_path, false);
    let input = GgufFile::open(&in_path).expect("open");
    let out = dir.join("out.gguf");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| quantize(&input, &out).0.expect("quantized"));
        }
    });
    GgufFile::open(&out).expect("a complete output");
    assert_eq!(files_support::listing(&dir), ["in.gguf", "out.gguf"]);
}
