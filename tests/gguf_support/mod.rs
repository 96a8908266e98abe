//! Helpers shared by the tests/gguf_*.rs integration tests.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value as Json};
use tramontane::gguf::{GgufWriter, TensorDataWriter};
use tramontane::kernels::GgmlType;
use tramontane::{Array, GgufFile, Value};

/// `<workspace root>/models/NAME`, or a panic that says how to get it.
pub fn model(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/fetch-models",
        p.display()
    );
    p
}

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// A scratch path under target/ for files the tests write.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-gguf");
    std::fs::create_dir_all(&dir).expect("create target/test-gguf");
    dir.join(name)
}

/// CRC-32 (IEEE, as zlib.crc32), to compare tensor bytes with gguf-py without a dependency.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The payload of a value in the canonical encoding of scripts/check-gguf-py.py.
fn payload(v: &Value) -> Json {
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F32(x) => json!(x.to_bits()),
        Value::F64(x) => json!(x.to_bits()),
        Value::Bool(x) => json!(x),
        Value::String(s) => json!(s),
        Value::Array(a) => array_payload(a),
    }
}

fn array_payload(a: &Array) -> Json {
    let items: Vec<Json> = (0..a.len())
        .map(|i| payload(&a.get(i).expect("index in range")))
        .collect();
    json!([a.element_type_name(), items])
}

/// A value in the canonical encoding: [type, payload], or ["array", element type, [payloads]].
pub fn canonical(v: &Value) -> Json {
    match v {
        Value::Array(a) => {
            let Json::Array(p) = array_payload(a) else {
                unreachable!()
            };
            json!(["array", p[0], p[1]])
        }
        other => json!([other.type_name(), payload(other)]),
    }
}

/// Our parse of `f` in the JSON shape that scripts/check-gguf-py.py prints.
pub fn describe(f: &GgufFile) -> Json {
    let keys: Vec<Json> = f
        .metadata()
        .iter()
        .map(|(k, v)| json!({"key": k, "value": canonical(v)}))
        .collect();
    let tensors: Vec<Json> = f
        .tensors()
        .map(|t| {
            let data = f.tensor_of(t).expect("tensor bytes").data;
            json!({
                "name": t.name,
                "type": t.ty.id(),
                "dims": t.dims,
                "offset": t.offset,
                "n_bytes": t.n_bytes,
                "crc32": crc32(data),
            })
        })
        .collect();
    json!({
        "version": f.version(),
        "alignment": f.alignment(),
        "data_offset": f.data_offset(),
        "keys": keys,
        "tensors": tensors,
    })
}

/// gguf-py's view of the file at `path` (runs scripts/check-gguf-py.py).
pub fn gguf_py(path: &Path) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-gguf-py.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install Python 3, then `pip install gguf numpy`")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(3),
        "gguf-py missing: `pip install gguf numpy` ({stderr})"
    );
    assert!(
        out.status.success(),
        "gguf-py could not read {}: {stderr}",
        path.display()
    );
    serde_json::from_slice(&out.stdout).expect("check-gguf-py.py prints JSON")
}

/// Asserts two descriptions are equal, naming the first key or tensor that differs.
pub fn assert_same(ours: &Json, theirs: &Json, what: &str) {
    for field in ["version", "alignment", "data_offset"] {
        assert_eq!(ours[field], theirs[field], "{what}: {field}");
    }
    for list in ["keys", "tensors"] {
        let (a, b) = (
            ours[list].as_array().unwrap(),
            theirs[list].as_array().unwrap(),
        );
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "{what}: first differing entry of {list}");
        }
        assert_eq!(a.len(), b.len(), "{what}: number of {list}");
    }
    assert_eq!(ours, theirs, "{what}");
}

/// One tensor to write: name, type, dims and bytes.
pub struct TestTensor {
    pub name: &'static str,
    pub ty: GgmlType,
    pub dims: Vec<u64>,
    pub data: Vec<u8>,
}

/// Deterministic filler bytes (a xorshift stream), so every tensor's bytes differ.
pub fn filler(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 32) as u8
        })
        .collect()
}

/// Writes `meta` and `tensors` with our writer into memory.
pub fn write(meta: &[(&str, Value)], tensors: &[TestTensor]) -> tramontane::Result<Vec<u8>> {
    let mut w = GgufWriter::new();
    for (k, v) in meta {
        w.add(*k, v.clone())?;
    }
    for t in tensors {
        w.add_tensor(t.name, t.ty, &t.dims)?;
    }
    let mut d: TensorDataWriter<Vec<u8>> = w.write_header(Vec::new())?;
    for t in tensors {
        d.write_tensor(&t.data)?;
    }
    d.finish()
}

/// Every metadata value type, with edge values, including nested arrays.
pub fn every_value_type() -> Vec<(&'static str, Value)> {
    vec![
        ("t.u8", Value::U8(255)),
        ("t.i8", Value::I8(-128)),
        ("t.u16", Value::U16(65535)),
        ("t.i16", Value::I16(-32768)),
        ("t.u32", Value::U32(u32::MAX)),
        ("t.i32", Value::I32(i32::MIN)),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f32", Value::F32(-1.5e-7)),
        ("t.f64", Value::F64(std::f64::consts::PI)),
        ("t.bool.true", Value::Bool(true)),
        ("t.bool.false", Value::Bool(false)),
        ("t.string", Value::String("héllo ✓ wörld".into())),
        ("t.string.empty", Value::String(String::new())),
        ("t.a.u8", Value::Array(Array::U8(vec![0, 1, 255]))),
        ("t.a.i8", Value::Array(Array::I8(vec![-1, 0, 127]))),
        ("t.a.u16", Value::Array(Array::U16(vec![1, 65535]))),
        ("t.a.i16", Value::Array(Array::I16(vec![-2, 300]))),
        ("t.a.u32", Value::Array(Array::U32(vec![7, u32::MAX]))),
        ("t.a.i32", Value::Array(Array::I32(vec![-7, i32::MAX]))),
        ("t.a.u64", Value::Array(Array::U64(vec![u64::MAX, 0]))),
        ("t.a.i64", Value::Array(Array::I64(vec![i64::MAX, -1]))),
        (
            "t.a.f32",
            Value::Array(Array::F32(vec![0.5, -0.0, f32::INFINITY, 1e-30])),
        ),
        ("t.a.f64", Value::Array(Array::F64(vec![1e300, -2.25]))),
        (
            "t.a.bool",
            Value::Array(Array::Bool(vec![true, false, true])),
        ),
        (
            "t.a.string",
            Value::Array(Array::String(
                vec!["a".into(), String::new(), "ü€😀".into()].into(),
            )),
        ),
        ("t.a.empty", Value::Array(Array::F32(vec![]))),
        (
            "t.a.nested",
            Value::Array(Array::Array(vec![
                Array::U32(vec![1, 2, 3]),
                Array::String(["x"].into_iter().collect()),
                Array::Array(vec![Array::I8(vec![-5]), Array::Bool(vec![])]),
            ])),
        ),
    ]
}

/// A few tensors of different types and ranks, with the sizes ggml gives them.
pub fn some_tensors() -> Vec<TestTensor> {
    let t = |name, ty: GgmlType, dims: Vec<u64>, seed| {
        let n = ty.row_bytes(dims[0]).unwrap() * dims[1..].iter().product::<u64>();
        TestTensor {
            name,
            ty,
            dims,
            data: filler(n as usize, seed),
        }
    };
    vec![
        t("norm.weight", GgmlType::F32, vec![5], 1),
        t("emb.weight", GgmlType::Q4_0, vec![64, 3], 2),
        t("blk.0.w", GgmlType::Q4_K, vec![256, 2, 1], 3),
        t("blk.0.f16", GgmlType::F16, vec![3, 1, 2, 1], 4),
        t("blk.0.q8", GgmlType::Q8_0, vec![32], 5),
    ]
}
