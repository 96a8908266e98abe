//! Our reader and writer against the PyPI `gguf` package's GGUFReader (the reference reader):
//! files we write must read back identically there, and on the real models our parse must
//! match it on every key (type and full value), tensor (name, type, dims, offset, size) and the
//! CRC-32 of every tensor's bytes. Needs `python3` with `pip install gguf numpy`.

mod gguf_support;

use gguf_support::*;
use serde_json::{json, Value as Json};
use tramontane::{GgufFile, Value};

/// What a file written from `meta` and `tensors` must contain, by reasoning: keys in order with
/// their values, tensors in order, each at the previous one's end rounded up to `alignment`.
fn expected(meta: &[(&str, Value)], tensors: &[TestTensor], alignment: u64) -> (Json, Json) {
    let keys: Vec<Json> = meta
        .iter()
        .map(|(k, v)| json!({"key": k, "value": canonical(v)}))
        .collect();
    let mut offset = 0u64;
    let mut infos = Vec::new();
    for t in tensors {
        infos.push(json!({
            "name": t.name, "type": t.ty.id(), "dims": t.dims, "offset": offset,
            "n_bytes": t.data.len(), "crc32": crc32(&t.data),
        }));
        offset = (offset + t.data.len() as u64).div_ceil(alignment) * alignment;
    }
    (Json::Array(keys), Json::Array(infos))
}

fn check_written_file(name: &str, meta: Vec<(&str, Value)>, alignment: u64) {
    let tensors = some_tensors();
    let bytes = write(&meta, &tensors).expect("write");
    let path = scratch(name);
    std::fs::write(&path, &bytes).expect("write file under target/");

    let theirs = gguf_py(&path);
    let ours = describe(&GgufFile::open(&path).expect("our reader opens our file"));
    assert_same(&ours, &theirs, name);

    let (keys, infos) = expected(&meta, &tensors, alignment);
    assert_eq!(theirs["keys"], keys, "{name}: keys as gguf-py reads them");
    assert_eq!(
        theirs["tensors"], infos,
        "{name}: tensors as gguf-py reads them"
    );
    assert_eq!(theirs["version"], 3);
    assert_eq!(theirs["alignment"], alignment);
    let data_offset = theirs["data_offset"].as_u64().unwrap();
    assert_eq!(data_offset % alignment, 0, "{name}: data section aligned");
    // The writer pads after the last tensor too, as gguf-py and llama.cpp do.
    let last = tensors.last().unwrap().data.len() as u64;
    let last_offset = infos.as_array().unwrap().last().unwrap()["offset"]
        .as_u64()
        .unwrap();
    assert_eq!(
        bytes.len() as u64,
        data_offset + (last_offset + last).div_ceil(alignment) * alignment
    );
}

#[test]
fn every_value_type_reads_back_in_gguf_py() {
    check_written_file("all-types.gguf", every_value_type(), 32);
}

#[test]
fn general_alignment_is_honoured_as_gguf_py_reads_it() {
    let mut meta = every_value_type();
    meta.insert(3, ("general.alignment", Value::U32(256)));
    check_written_file("all-types-align256.gguf", meta, 256);
}

#[test]
fn smollm2_matches_gguf_py() {
    let path = model(SMOLLM2);
    let ours = describe(&GgufFile::open(&path).expect("open"));
    assert_same(&ours, &gguf_py(&path), SMOLLM2);
}

#[test]
fn gemma3_matches_gguf_py() {
    let path = model(GEMMA3);
    let ours = describe(&GgufFile::open(&path).expect("open"));
    assert_same(&ours, &gguf_py(&path), GEMMA3);
}
