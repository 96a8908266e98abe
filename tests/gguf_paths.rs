//! Odd paths given to `GgufFile::open`: directories, FIFOs, devices and sockets are refused by
//! name without reading (a FIFO must not hang), and errors in a file's contents name the file.

mod files_support;

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use tramontane::gguf::{GgufWriter, Value};
use tramontane::kernels::GgmlType;
use tramontane::{Error, GgufFile, Model};

/// `GgufFile::open(path)` on another thread, failing the test if it does not return in time.
fn open_quickly(path: &Path) -> tramontane::Result<GgufFile> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    // Left running if it hangs: the test fails, and the process ends with it.
    std::thread::spawn(move || {
        let _ = tx.send(GgufFile::open(&p));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("opening {} hangs", path.display()))
}

fn expect_not_a_file(path: &Path, kind: &str) {
    match open_quickly(path) {
        Err(e @ Error::NotAFile { .. }) => {
            let Error::NotAFile { path: p, kind: k } = &e else {
                unreachable!()
            };
            assert_eq!((p.as_path(), *k), (path, kind));
            assert_eq!(
                e.to_string(),
                format!("{} is a {kind}, not a regular file", path.display())
            );
        }
        other => panic!("{}: {other:?}", path.display()),
    }
    // Model::load goes through the same door.
    assert!(matches!(Model::load(path), Err(Error::NotAFile { .. })));
}

#[test]
fn non_regular_files_are_refused_by_name() {
    let dir = files_support::scratch("gguf-paths-tests", "special");
    expect_not_a_file(&dir, "directory");
    let fifo = dir.join("model.fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success());
    expect_not_a_file(&fifo, "FIFO");
    expect_not_a_file(Path::new("/dev/null"), "character device");
    let socket = dir.join("model.sock");
    let _listener = UnixListener::bind(&socket).expect("bind");
    expect_not_a_file(&socket, "socket");
    // Through a symbolic link: the link is followed, the refusal names the path given.
    let link = dir.join("link.gguf");
    std::os::unix::fs::symlink(&fifo, &link).expect("symlink");
    expect_not_a_file(&link, "FIFO");
}

#[test]
fn errors_in_a_files_contents_name_the_file() {
    let dir = files_support::scratch("gguf-paths-tests", "contents");
    let path = dir.join("model.gguf");
    let mut w = GgufWriter::new();
    w.add("general.architecture", Value::String("llama".into()))
        .expect("key");
    w.add_tensor("t", GgmlType::F32, &[8]).expect("tensor");
    let mut data = w.create(&path).expect("create");
    data.write_tensor(&[0u8; 32]).expect("tensor");
    data.finish().expect("finish");
    let bytes = std::fs::read(&path).expect("read");

    let cut = dir.join("cut.gguf");
    std::fs::write(&cut, &bytes[..20]).expect("write");
    let e = GgufFile::open(&cut).expect_err("truncated");
    assert!(matches!(e.inner(), Error::Truncated { .. }), "{e:?}");
    assert!(
        matches!(&e, Error::InFile { path, .. } if *path == cut),
        "{e:?}"
    );
    // The chain reads once: the path, then the error.
    let source = std::error::Error::source(&e).expect("a source");
    assert_eq!(e.to_string(), cut.display().to_string());
    assert!(
        source.to_string().starts_with("GGUF truncated at offset"),
        "{source}"
    );

    let empty = dir.join("empty.gguf");
    std::fs::write(&empty, b"").expect("write");
    let e = GgufFile::open(&empty).expect_err("empty");
    assert!(matches!(e.inner(), Error::Truncated { .. }), "{e:?}");

    let magic = dir.join("magic.gguf");
    std::fs::write(&magic, b"GGML and then some more bytes").expect("write");
    let e = GgufFile::open(&magic).expect_err("bad magic");
    assert!(matches!(e.inner(), Error::BadMagic { .. }), "{e:?}");
    assert!(matches!(&e, Error::InFile { path, .. } if *path == magic));

    // A file that parses keeps its path; from_bytes has none, and its errors are not wrapped.
    assert_eq!(
        GgufFile::open(&path).expect("valid").path(),
        Some(path.as_path())
    );
    let e = GgufFile::from_bytes(bytes[..20].to_vec()).expect_err("truncated");
    assert!(matches!(e, Error::Truncated { .. }), "{e:?}");
}

#[test]
fn in_file_does_not_name_a_path_twice() {
    let p = PathBuf::from("m.gguf");
    let e = Error::in_file(&p, Error::MissingKey { key: "k".into() });
    let again = Error::in_file(&p, e);
    assert!(
        matches!(&again, Error::InFile { source, .. } if matches!(**source, Error::MissingKey { .. }))
    );
    let io = Error::io(
        "open",
        &p,
        std::io::Error::from(std::io::ErrorKind::NotFound),
    );
    assert!(matches!(Error::in_file(&p, io), Error::Io { .. }));
}
