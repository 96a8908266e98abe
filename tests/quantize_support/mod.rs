//! Shared by the quantize tests: the llama-quantize fixture, model paths, sha256.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

pub const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/quant/requant-sha256.json"
);

/// One tensor of a fixture table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureTensor {
    pub name: String,
    pub ty: String,
    pub dims: Vec<u64>,
    pub n_bytes: u64,
    pub sha256: String,
}

/// One llama-quantize run: its target type name and output table.
#[derive(Clone, Debug)]
pub struct FixtureOutput {
    pub ty: String,
    pub general_file_type: u32,
    pub output_file_sha256: String,
    pub output_file_size: u64,
    pub tensors: Vec<FixtureTensor>,
}

/// One input model of the fixture.
#[derive(Clone, Debug)]
pub struct FixtureInput {
    pub file: String,
    pub sha256: String,
    pub tensors: Vec<FixtureTensor>,
    pub outputs: Vec<FixtureOutput>,
}

fn table(v: &Json) -> Vec<FixtureTensor> {
    v.as_array()
        .expect("tensor table")
        .iter()
        .map(|t| FixtureTensor {
            name: t["name"].as_str().expect("name").to_string(),
            ty: t["type"].as_str().expect("type").to_string(),
            dims: t["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().expect("dim"))
                .collect(),
            n_bytes: t["n_bytes"].as_u64().expect("n_bytes"),
            sha256: t["sha256"].as_str().expect("sha256").to_string(),
        })
        .collect()
}

/// The whole fixture.
pub fn load_fixture() -> Vec<FixtureInput> {
    let text = std::fs::read_to_string(FIXTURE).unwrap_or_else(|e| {
        panic!("{FIXTURE}: {e} (tests/fixtures/quant is part of the repository)")
    });
    let json: Json = serde_json::from_str(&text).expect("fixture JSON");
    json["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| FixtureInput {
            file: i["input_file"].as_str().expect("input_file").to_string(),
            sha256: i["input_sha256"]
                .as_str()
                .expect("input_sha256")
                .to_string(),
            tensors: table(&i["input_tensors"]),
            outputs: i["outputs"]
                .as_array()
                .expect("outputs")
                .iter()
                .map(|o| FixtureOutput {
                    ty: o["type"].as_str().expect("type").to_string(),
                    general_file_type: o["general_file_type"].as_u64().expect("file type") as u32,
                    output_file_sha256: o["output_file_sha256"]
                        .as_str()
                        .expect("file sha")
                        .to_string(),
                    output_file_size: o["output_file_size"].as_u64().expect("file size"),
                    tensors: table(&o["tensors"]),
                })
                .collect(),
        })
        .collect()
}

/// The fixture input for `file`.
pub fn fixture_input(file: &str) -> FixtureInput {
    load_fixture()
        .into_iter()
        .find(|i| i.file == file)
        .unwrap_or_else(|| panic!("{file} is not in {FIXTURE}"))
}

/// `<workspace>/models/NAME`, or a panic that says how to get it.
pub fn model_path(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-models{}",
        p.display(),
        if name.starts_with("moe-") { " moe" } else { "" }
    );
    p
}

/// A fresh scratch directory under target/ for this test's outputs.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("quantize-tests")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir under target/");
    dir
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// sha256 of a whole file, read in pieces.
pub fn sha256_file(path: &Path) -> String {
    use std::io::Read;
    let mut f = std::fs::File::open(path).expect("open");
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
