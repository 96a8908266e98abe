//! Parses arbitrary bytes as GGUF. Any input must give a value or an error, never a panic, an
//! abort or a hang. For every file the reader accepts, it also walks every key and tensor (reading
//! every tensor's bytes) and checks that our writer can write it again and the reader reads back
//! the same metadata, tensor index and bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tramontane::gguf::GgufWriter;
use tramontane::{Array, GgufFile, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let mut sink = 0u64;
    for (key, value) in f.metadata().iter() {
        sink = sink
            .wrapping_add(key.len() as u64)
            .wrapping_add(walk(value));
        assert!(f.metadata().get(key).is_some());
    }
    for t in f.tensors() {
        let tensor = f.tensor(&t.name).expect("a listed tensor can be read");
        assert_eq!(tensor.data.len() as u64, t.n_bytes);
        sink = tensor
            .data
            .iter()
            .fold(sink, |s, &b| s.wrapping_add(u64::from(b)));
    }
    std::hint::black_box(sink);
    round_trip(&f);
});

/// Touches every element of a value; returns a number so nothing is optimised away.
fn walk(v: &Value) -> u64 {
    match v {
        Value::Array(a) => walk_array(a),
        Value::String(s) => s.len() as u64,
        other => other.as_u64().unwrap_or(1),
    }
}

fn walk_array(a: &Array) -> u64 {
    let sum = |it: &mut dyn Iterator<Item = u64>| it.fold(0u64, u64::wrapping_add);
    match a {
        Array::String(v) => sum(&mut v.iter().map(|s| s.len() as u64)),
        Array::Array(v) => sum(&mut v.iter().map(walk_array)),
        other => sum(&mut (0..other.len())
            .filter_map(|i| other.get(i))
            .map(|x| walk(&x))),
    }
}

/// Writes the accepted file again with our writer and checks the reader gets the same back.
fn round_trip(f: &GgufFile) {
    let mut w = GgufWriter::new();
    for (key, value) in f.metadata().iter() {
        w.add(key, value.clone())
            .expect("the writer takes what the reader accepted");
    }
    for t in f.tensors() {
        w.add_tensor(t.name.clone(), t.ty, &t.dims)
            .expect("the writer takes every tensor the reader accepted");
    }
    let mut out = w.write_header(Vec::new()).expect("header");
    for t in f.tensors() {
        out.write_tensor(f.tensor_of(t).expect("bytes").data)
            .expect("tensor bytes");
    }
    let g = GgufFile::from_bytes(out.finish().expect("finish")).expect("reads back");
    // Debug output compares floats by their printed bits-exact form, NaN included.
    assert_eq!(
        format!("{:?}", f.metadata().iter().collect::<Vec<_>>()),
        format!("{:?}", g.metadata().iter().collect::<Vec<_>>())
    );
    assert_eq!(f.alignment(), g.alignment());
    assert_eq!(f.n_tensors(), g.n_tensors());
    for (a, b) in f.tensors().zip(g.tensors()) {
        assert_eq!(
            (&a.name, a.ty, &a.dims, a.n_bytes),
            (&b.name, b.ty, &b.dims, b.n_bytes)
        );
        assert_eq!(
            f.tensor_of(a).expect("a").data,
            g.tensor_of(b).expect("b").data
        );
    }
}
