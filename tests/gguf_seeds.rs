//! The fuzzer's seed corpus (fuzz/seeds/gguf_reader/): small valid files made by our writer.
//! This test checks the committed seeds are what the writer makes now and that each one reads;
//! `TRAMONTANE_WRITE_SEEDS=1 cargo test --test gguf_seeds` (re)writes them.

mod gguf_support;

use std::path::Path;

use gguf_support::*;
use tramontane::kernels::GgmlType;
use tramontane::{Array, GgufFile, Value};

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let s = |k: &str| Value::String(k.to_string());
    let strings =
        |v: &[&str]| Value::Array(Array::String(v.iter().map(|x| x.to_string()).collect()));

    let mut v2 = write(&[("general.name", s("v2"))], &some_tensors()[..1]).unwrap();
    v2[4..8].copy_from_slice(&2u32.to_le_bytes());

    let tokenizer = vec![
        ("general.architecture", s("llama")),
        ("llama.block_count", Value::U32(2)),
        ("llama.rope.freq_base", Value::F32(10000.0)),
        ("tokenizer.ggml.model", s("gpt2")),
        (
            "tokenizer.ggml.tokens",
            strings(&["<s>", "</s>", "a", "b", "ab", "Ġ"]),
        ),
        (
            "tokenizer.ggml.scores",
            Value::Array(Array::F32(vec![0.0, 0.0, -1.0, -2.0, -0.5, -3.0])),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(Array::I32(vec![3, 3, 1, 1, 1, 1])),
        ),
        ("tokenizer.ggml.merges", strings(&["a b"])),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
    ];

    let mut nested = Array::U8(vec![1, 2]);
    for _ in 1..tramontane::gguf::MAX_ARRAY_DEPTH {
        nested = Array::Array(vec![nested, Array::String(["x"].into_iter().collect())]);
    }

    // One row of one block of every known type.
    let every_type: Vec<TestTensor> = GgmlType::all()
        .zip(0u64..)
        .map(|(ty, i)| TestTensor {
            name: Box::leak(format!("t.{}", ty.name()).into_boxed_str()),
            ty,
            dims: vec![ty.block_size() as u64],
            data: filler(ty.block_bytes(), i),
        })
        .collect();

    vec![
        ("minimal.gguf", write(&[], &[]).unwrap()),
        ("v2.gguf", v2),
        (
            "all-types.gguf",
            write(&every_value_type(), &some_tensors()).unwrap(),
        ),
        (
            "align64.gguf",
            write(
                &[("general.alignment", Value::U32(64))],
                &some_tensors()[..2],
            )
            .unwrap(),
        ),
        ("tokenizer.gguf", write(&tokenizer, &[]).unwrap()),
        (
            "nested.gguf",
            write(&[("deep", Value::Array(nested))], &[]).unwrap(),
        ),
        ("every-ggml-type.gguf", write(&[], &every_type).unwrap()),
    ]
}

#[test]
fn committed_seeds_are_what_the_writer_makes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/gguf_reader");
    let regenerate = std::env::var_os("TRAMONTANE_WRITE_SEEDS").is_some();
    for (name, bytes) in seeds() {
        assert!(bytes.len() <= 8192, "{name}: {} bytes", bytes.len());
        GgufFile::from_bytes(bytes.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let path = dir.join(name);
        if regenerate {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} is stale: run TRAMONTANE_WRITE_SEEDS=1 cargo test --test gguf_seeds",
            path.display()
        );
    }
}
