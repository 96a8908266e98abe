//! Helpers of the tests about files we read and write (examples, quantize, model paths): scratch
//! directories, a tiny model, directory listings, and the temporary-file names of the output
//! layer.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tramontane::gguf::{GgufWriter, Value};
use tramontane::kernels::GgmlType;

/// A fresh scratch directory `target/GROUP/TEST`.
pub fn scratch(group: &str, test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(group)
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The values of the tiny model's 64 x 2 weight: (i / 128 - 0.5), with a NaN at index 100 if
/// `nan` (quantizing it then fails midway).
pub fn small_weight(nan: bool) -> Vec<f32> {
    let mut v: Vec<f32> = (0..128).map(|i| i as f32 / 128.0 - 0.5).collect();
    if nan {
        v[100] = f32::NAN;
    }
    v
}

/// The values of the tiny model's 64-value norm: (i / 64 - 0.5).
pub fn small_norm() -> Vec<f32> {
    (0..64).map(|i| i as f32 / 64.0 - 0.5).collect()
}

/// A tiny GGUF file quantize can requantize (`--pure`): one 64 x 2 F32 weight holding `weight`
/// and a 64-value norm holding `norm`.
pub fn write_model(path: &Path, weight: &[f32], norm: &[f32]) {
    let mut w = GgufWriter::new();
    w.add("general.architecture", Value::String("llama".into()))
        .expect("key");
    w.add_tensor("blk.0.attn_q.weight", GgmlType::F32, &[64, 2])
        .expect("tensor");
    w.add_tensor("blk.0.attn_norm.weight", GgmlType::F32, &[64])
        .expect("tensor");
    let mut data = w.create(path).expect("create");
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    data.write_tensor(&bytes(weight)).expect("weight");
    data.write_tensor(&bytes(norm)).expect("norm");
    data.finish().expect("finish");
}

/// [`write_model`] with the standard values ([`small_weight`], [`small_norm`]).
pub fn write_small_model(path: &Path, nan: bool) {
    write_model(path, &small_weight(nan), &small_norm());
}

/// The names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// This machine's name as the output layer writes it in temporary names
/// (`OUT.partial-PID-N-HOST`).
pub fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "unknown".into()
    } else {
        name
    }
}
