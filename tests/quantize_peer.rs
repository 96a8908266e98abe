//! Whole-file comparison with llama.cpp itself for the default (non-pure) mixes, which the
//! fixtures do not cover: llama.cpp's `llama_model_quantize` is run through llama-cpp-python
//! (0.3.36 is the fixtures' reference build) and its output must equal ours byte for byte.
//!
//! Opt-in, as it needs that package: `TRAMONTANE_PEER_PYTHON=/path/to/python cargo test
//! --test quantize_peer -- --ignored`.

mod quantize_support;

use std::path::Path;
use std::process::Command;

use quantize_support::{model_path, scratch_dir, sha256_file};
use tramontane::quantize::{quantize_model, FileType, QuantizeOptions};
use tramontane::GgufFile;

const SCRIPT: &str = r#"
import ctypes, sys
import llama_cpp
p = llama_cpp.llama_model_quantize_default_params()
p.ftype = int(sys.argv[3]); p.nthread = 2; p.allow_requantize = True; p.pure = sys.argv[4] == "1"
sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"#;

fn llama_cpp_quantize(python: &str, input: &Path, out: &Path, ftype: FileType, pure: bool) {
    let status = Command::new(python)
        .args(["-c", SCRIPT])
        .arg(input)
        .arg(out)
        .arg(ftype.id().to_string())
        .arg(if pure { "1" } else { "0" })
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run the peer python");
    assert!(status.success(), "llama.cpp failed on {ftype}");
}

fn compare(python: &str, model: &str, ftypes: &[FileType], pure: bool) -> Vec<String> {
    let in_path = model_path(model);
    let input = GgufFile::open(&in_path).expect("open");
    let dir = scratch_dir(&format!("peer-{model}"));
    let mut differing = Vec::new();
    for &ftype in ftypes {
        let ours = dir.join("ours.gguf");
        let theirs = dir.join("theirs.gguf");
        let options = QuantizeOptions {
            pure,
            ..QuantizeOptions::default()
        };
        quantize_model(&input, &ours, ftype, &options).expect("quantize");
        llama_cpp_quantize(python, &in_path, &theirs, ftype, pure);
        let same = sha256_file(&ours) == sha256_file(&theirs);
        eprintln!(
            "{model} {ftype} pure={pure}: {}",
            if same { "same" } else { "DIFFERENT" }
        );
        if !same {
            differing.push(format!("{model} {ftype} pure={pure}"));
        }
    }
    std::fs::remove_dir_all(&dir).expect("clean");
    differing
}

#[test]
#[ignore = "needs TRAMONTANE_PEER_PYTHON: a python with llama-cpp-python 0.3.36"]
fn default_mixes_equal_llama_cpp() {
    let python = std::env::var("TRAMONTANE_PEER_PYTHON")
        .expect("set TRAMONTANE_PEER_PYTHON to a python with llama-cpp-python");
    let all: Vec<FileType> = FileType::all().collect();
    let k_mixes = [
        FileType::Q2_K,
        FileType::Q3_K_M,
        FileType::Q4_K_S,
        FileType::Q4_K_M,
        FileType::Q5_K_M,
        FileType::Q6_K,
    ];
    let mut differing = compare(&python, "moe-s101-f32.gguf", &all, false);
    differing.extend(compare(
        &python,
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        &k_mixes,
        false,
    ));
    differing.extend(compare(
        &python,
        "gemma-3-270m-q4_k_m.gguf",
        &[FileType::Q5_K_S],
        false,
    ));
    differing.extend(compare(
        &python,
        "gemma-3-270m-q4_k_m.gguf",
        &[FileType::Q4_K_M],
        true,
    ));
    assert!(differing.is_empty(), "differ from llama.cpp: {differing:?}");
}
