//! Quantized files load back, with our reader and with gguf-py's `GGUFReader` (the Python
//! package llama.cpp ships), and the default (non-pure) mixes give the types llama.cpp's rules
//! give.

mod quantize_support;

use std::path::Path;
use std::process::Command;

use quantize_support::{model_path, scratch_dir, sha256_hex};
use tramontane::kernels::GgmlType;
use tramontane::quantize::{quantize_model, FileType, Progress, QuantizeOptions};
use tramontane::GgufFile;

/// Name, type, shape and data sha256 of every tensor, as gguf-py reads the file.
fn read_with_gguf_py(path: &Path) -> Vec<(String, String, Vec<u64>, String)> {
    const SCRIPT: &str = r#"
import hashlib, sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
ft = r.fields["general.file_type"].contents()
qv = r.fields["general.quantization_version"].contents()
print("meta", ft, qv)
for t in r.tensors:
    h = hashlib.sha256(bytes(t.data.reshape(-1).view("uint8"))).hexdigest()
    print(t.name, t.tensor_type.name, ",".join(str(int(d)) for d in t.shape), h)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .output()
        .expect("python3 runs (install python3, then `pip install gguf numpy`)");
    assert!(
        out.status.success(),
        "gguf-py could not read {}: {} (needs `pip install gguf numpy`)",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut lines = text.lines();
    let meta = lines.next().expect("meta line");
    let rows: Vec<_> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "{l}");
            let dims = f[2].split(',').map(|d| d.parse().expect("dim")).collect();
            (f[0].to_string(), f[1].to_string(), dims, f[3].to_string())
        })
        .collect();
    // file type and quantization version, as our reader sees them, must agree too
    let ours = GgufFile::open(path).expect("open");
    let want = format!(
        "meta {} {}",
        ours.get_u32("general.file_type").expect("file type"),
        ours.get_u32("general.quantization_version").expect("qv")
    );
    assert_eq!(meta, want);
    rows
}

/// Quantizes `model` with the default mix of `ftype`, checks the file with both readers, and
/// returns (name, type) of every output tensor.
fn quantize_and_reload(model: &str, ftype: FileType, test: &str) -> Vec<(String, GgmlType)> {
    let input = GgufFile::open(model_path(model)).expect("open input");
    let dir = scratch_dir(test);
    let out_path = dir.join("out.gguf");
    let seen = std::cell::Cell::new(0usize);
    let progress = |p: &Progress<'_>| {
        assert_eq!(p.index, seen.get() + 1, "progress comes in order");
        seen.set(p.index);
    };
    let options = QuantizeOptions {
        pure: false,
        threads: Some(2),
        progress: Some(&progress),
    };
    let summary = quantize_model(&input, &out_path, ftype, &options).expect("quantize");
    assert_eq!(seen.get(), summary.n_tensors);
    assert!(
        !dir.join("out.gguf.partial").exists(),
        "temporary file renamed"
    );

    let out = GgufFile::open(&out_path).expect("our reader opens the output");
    assert_eq!(out.get_u32("general.file_type").ok(), Some(ftype.id()));
    assert_eq!(out.get_u32("general.quantization_version").ok(), Some(2));
    // Every other key is copied unchanged, in the input's order.
    let moved = ["general.file_type", "general.quantization_version"];
    let keep = |(k, _): &(&str, &tramontane::Value)| !moved.contains(k);
    let a: Vec<_> = input.metadata().iter().filter(keep).collect();
    let b: Vec<_> = out.metadata().iter().filter(keep).collect();
    assert_eq!(a, b);
    let n = out.metadata().len();
    let last: Vec<_> = out.metadata().iter().skip(n - 2).map(|(k, _)| k).collect();
    assert_eq!(last, ["general.quantization_version", "general.file_type"]);

    let py = read_with_gguf_py(&out_path);
    assert_eq!(py.len(), out.n_tensors());
    let mut types = Vec::new();
    for (t, (name, ty, dims, sha)) in out.tensors().zip(&py) {
        assert_eq!(&t.name, name);
        assert_eq!(t.ty.name(), ty, "{name}");
        assert_eq!(&t.dims, dims, "{name}");
        let data = out.tensor_of(t).expect("bytes");
        assert_eq!(
            &sha256_hex(data.data),
            sha,
            "{name}: both readers see the same bytes"
        );
        types.push((t.name.clone(), t.ty));
    }
    drop(out);
    std::fs::remove_dir_all(&dir).expect("remove test output");
    types
}

#[test]
fn smollm2_q4_0_mix_reloads() {
    let types = quantize_and_reload(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        FileType::Q4_0,
        "reload-smollm2-q4_0",
    );
    for (name, ty) in &types {
        let want = if name.ends_with("_norm.weight") {
            GgmlType::F32
        } else if name == "token_embd.weight" {
            // No output.weight: the embedding is tied and gets the output's Q6_K, whose
            // 256-blocks do not tile rows of 576, so Q8_0.
            GgmlType::Q8_0
        } else {
            GgmlType::Q4_0
        };
        assert_eq!(*ty, want, "{name}");
    }
}

#[test]
fn moe_q4_k_m_mix_reloads() {
    let types = quantize_and_reload("moe-s101-f32.gguf", FileType::Q4_K_M, "reload-moe-q4_k_m");
    for (name, ty) in &types {
        // 2 layers, 8 experts: llama.cpp's Q4_K_M rules for this shape of model.
        let want = match name.as_str() {
            n if n.ends_with("_norm.weight") || n.ends_with("ffn_gate_inp.weight") => GgmlType::F32,
            "output.weight" => GgmlType::Q6_K,
            // 8 experts: value and key projections are kept at 8 bits, attention output at 5.
            n if n.ends_with("attn_v.weight") || n.ends_with("attn_k.weight") => GgmlType::Q8_0,
            n if n.ends_with("attn_output.weight") => GgmlType::Q5_K,
            // use_more_bits(layer, 2) holds for the last layer only (layer >= 7 * 2 / 8).
            "blk.1.ffn_down_exps.weight" => GgmlType::Q6_K,
            _ => GgmlType::Q4_K,
        };
        assert_eq!(*ty, want, "{name}");
    }
}
