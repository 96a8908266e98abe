//! The two real models open, and every tensor has the byte size that lays the data section out
//! exactly as llama.cpp wrote it; the inspect example reports them and refuses bad files.

mod gguf_support;

use std::path::PathBuf;
use std::process::Command;

use gguf_support::*;
use tramontane::GgufFile;

/// Checks that the tensors tile the data section: llama.cpp writes each tensor at the previous
/// one's end rounded up to the alignment, and pads the last to the alignment too, so our byte
/// sizes are right only if every offset and the file end come out exactly.
fn check_layout(f: &GgufFile) {
    let a = f.alignment();
    let mut want = 0u64;
    for t in f.tensors() {
        assert_eq!(t.offset, want, "{} offset", t.name);
        assert_eq!(
            t.n_bytes,
            t.ty.row_bytes(t.ne0()).unwrap() * t.n_rows(),
            "{}",
            t.name
        );
        assert_eq!(f.tensor(&t.name).unwrap().data.len() as u64, t.n_bytes);
        want = (t.offset + t.n_bytes).div_ceil(a) * a;
    }
    assert_eq!(
        f.data_offset() + want,
        f.file_len(),
        "data section ends at file end"
    );
}

#[test]
fn smollm2_opens_and_lists_every_tensor() {
    let f = GgufFile::open(model(SMOLLM2)).unwrap();
    // Counts and values as gguf-py reads them (see gguf_py.rs for the full comparison).
    assert_eq!(
        (f.version(), f.metadata().len(), f.n_tensors()),
        (3, 33, 272)
    );
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 30);
    let tokens = f.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.as_strings().map(|t| t.len()), Some(49152));
    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dims(), &[576, 49152]);
    // Q8_0: 34 bytes per 32 values.
    assert_eq!(emb.data.len(), 576 * 49152 / 32 * 34);
    check_layout(&f);
}

#[test]
fn gemma3_opens_and_lists_every_tensor() {
    let f = GgufFile::open(model(GEMMA3)).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), "gemma3");
    assert_eq!(f.get_u32("gemma3.block_count").unwrap(), 18);
    assert_eq!(f.n_tensors(), 236);
    check_layout(&f);
}

/// The inspect example, built if `cargo test` was told to build only some targets.
fn inspect_exe() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop(); // deps/
    dir.pop(); // debug/
    let exe = dir.join("examples").join("inspect");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", "inspect"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build --example inspect");
    assert!(status.success(), "cargo build --example inspect failed");
    assert!(exe.is_file(), "{} missing", exe.display());
    exe
}

#[test]
fn inspect_prints_header_metadata_tensors_and_totals() {
    let exe = inspect_exe();
    let out = Command::new(&exe)
        .args([model(SMOLLM2).to_str().unwrap(), "--threads", "2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let f = GgufFile::open(model(SMOLLM2)).unwrap();
    assert!(text.contains(&format!("data offset: {}", f.data_offset())));
    assert!(text.contains("tokenizer.ggml.tokens [array[string; 49152]] = [\"<|endoftext|>\""));
    let rows: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for t in f.tensors() {
        let row = format!(
            "{} {} {} {} {}",
            t.name,
            t.ty.name(),
            t.shape_string(),
            t.offset,
            t.n_bytes
        );
        assert!(rows.contains(&row), "row {row:?}");
    }
    let params: u64 = f.tensors().map(|t| t.n_elements()).sum();
    assert!(text.contains(&format!("total parameters: {params}")));

    // A bad file: one line on stderr, non-zero exit, no panic.
    let bad = scratch("bad.gguf");
    std::fs::write(&bad, b"GGUF\x01\x00\x00\x00").unwrap();
    for args in [vec![bad.to_str().unwrap()], vec![], vec!["--threads"]] {
        let out = Command::new(&exe).args(&args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"));
    }
}
