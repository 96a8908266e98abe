#!/usr/bin/env python3
"""llama.cpp's --pure requantization of the test models, as sha256 tables
(tests/fixtures/quant/requant-sha256.json, read by tests/quantize_*.rs and tests/conformance_requant.rs).

usage: PEER_PYTHON=... scripts/make-requant-sha.py [--check] [--out FILE]
  (default PEER_PYTHON: target/peer-venv-avx2/bin/python; the script re-runs itself with it)

For each input below and each target type, llama_model_quantize (llama-cpp-python 0.3.36,
llama.cpp 0c1e57098) writes the output with the parameters of
`llama-quantize --allow-requantize --pure IN OUT TYPE 2`: pure = true, allow_requantize = true,
nthread = 2, everything else at llama_model_quantize_default_params(). The table records, per
input, its sha256, general.file_type and tensor table, and per output the whole file's sha256
and size, general.file_type and every tensor's name, type, shape (ggml order, ne0 first),
byte count and the sha256 of exactly its data bytes. The outputs are deleted afterwards.

--check writes nothing: it makes the table in a temporary file and compares each input's entry
with the committed one.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "quant", "requant-sha256.json")
NTHREAD = 2

# llama_ftype of llama-quantize's type names (include/llama.h); the K names map to the _M mixes,
# whose --pure output is all of the K type.
FTYPES = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q5_0": 8, "Q5_1": 9, "Q2_K": 10, "Q3_K": 12, "Q4_K": 15,
          "Q5_K": 17, "Q6_K": 18, "IQ4_NL": 25, "IQ4_XS": 30, "MXFP4_MOE": 38}
INPUTS = [
    ("SmolLM2-135M-Instruct.Q4_1.gguf",
     ["Q4_0", "Q8_0", "Q5_0", "Q5_1", "Q4_1", "Q4_K", "Q6_K", "IQ4_NL", "IQ4_XS"], None),
    ("moe-s101-f32.gguf", ["Q4_K", "Q5_K", "Q6_K", "Q4_0", "Q8_0", "MXFP4_MOE", "Q2_K", "Q3_K"],
     "made by scripts/fetch-models moe: scripts/make-moe.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "moe-s101-f32.gguf --seed 101 --type F32 --n-layer 2"),
    ("phi3-s307-f32.gguf", ["Q4_K"],
     "made by scripts/fetch-models families: scripts/make-family.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "phi3-s307-f32.gguf --arch phi3 --seed 307 --type F32 --n-ctx 1024"),
    ("qwen3moe-s308-f32.gguf", ["Q4_K"],
     "made by scripts/fetch-models families: scripts/make-family.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "qwen3moe-s308-f32.gguf --arch qwen3moe --seed 308 --type F32 --n-head 8 --head-dim 64 "
     "--n-expert 32 --n-expert-used 8 --n-ff-exp 256"),
    ("gpt-oss-s309-f32.gguf", ["MXFP4_MOE", "Q4_K"],
     "made by scripts/fetch-models families: scripts/make-family.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "gpt-oss-s309-f32.gguf --arch gpt-oss --seed 309 --type F32 --n-head 8 --n-head-kv 2 --head-dim 64 "
     "--n-expert 16 --n-expert-used 4 --n-ff-exp 256 --n-layer 3"),
    ("qwen2-s312-f32.gguf", ["Q4_K"],
     "made by scripts/fetch-models families: scripts/make-family.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "qwen2-s312-f32.gguf --arch qwen2 --seed 312 --type F32"),
    ("qwen3-s313-f32.gguf", ["Q4_K"],
     "made by scripts/fetch-models families: scripts/make-family.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "qwen3-s313-f32.gguf --arch qwen3 --seed 313 --type F32 --n-head 8 --head-dim 64"),
    ("qwen2moe-s310-f32.gguf", ["Q4_K"],
     "made by scripts/fetch-models families: scripts/make-family.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "qwen2moe-s310-f32.gguf --arch qwen2moe --seed 310 --type F32 --n-expert 8 --n-expert-used 4 --n-ff-exp 256 --n-ff-shexp 512"),
    ("olmoe-s311-f32.gguf", ["Q4_K"],
     "made by scripts/fetch-models families: scripts/make-family.py SmolLM2-135M-Instruct.Q4_1.gguf "
     "olmoe-s311-f32.gguf --arch olmoe --seed 311 --type F32 --n-head-kv 4 --n-expert 16 --n-expert-used 4 --n-ff 256"),
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def tensors_of(path):
    import gguf
    r = gguf.GGUFReader(path)
    table = [{
        "name": t.name,
        "type": t.tensor_type.name,
        "shape": [int(d) for d in t.shape],
        "n_bytes": int(t.n_bytes),
        "sha256": hashlib.sha256(t.data.tobytes()).hexdigest(),
    } for t in r.tensors]
    ft = r.fields.get("general.file_type")
    return table, (int(ft.contents()) if ft is not None else None)


def quantize(src, dst, ftype):
    import ctypes
    import llama_cpp as L
    p = L.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = NTHREAD
    p.allow_requantize = True
    p.pure = True
    rc = L.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize {src} -> {dst} returned {rc}")


def make(out_path):
    import llama_cpp as L

    @L.llama_log_callback
    def quiet(level, text, user_data):
        pass

    L.llama_log_set(quiet, None)
    L.llama_backend_init()
    entries = []
    with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "target")) as work:
        for name, types, note in INPUTS:
            src = os.path.join(ROOT, "models", name)
            if not os.path.exists(src):
                group = " moe" if name.startswith("moe-") else " families" if "-s3" in name else ""
                sys.exit(f"{src} is missing: run scripts/fetch-models{group}")
            in_table, in_ft = tensors_of(src)
            entry = {"input_file": name, "input_sha256": sha256_file(src), "input_file_type": in_ft}
            if note:
                entry["input_note"] = note
            entry["input_tensors"] = in_table
            entry["outputs"] = []
            for ty in types:
                out_name = f"{name[:-len('.gguf')]}.requant-pure.{ty}.gguf"
                dst = os.path.join(work, out_name)
                quantize(src, dst, FTYPES[ty])
                table, ft = tensors_of(dst)
                entry["outputs"].append({
                    "type": ty,
                    "command": f"llama-quantize --allow-requantize --pure {name} {out_name} {ty} {NTHREAD}",
                    "made_with": f"llama_model_quantize(ftype={FTYPES[ty]}, pure, allow_requantize, nthread={NTHREAD})",
                    "output_file": out_name,
                    "output_file_sha256": sha256_file(dst),
                    "output_file_size": os.path.getsize(dst),
                    "general_file_type": ft,
                    "tensors": table,
                })
                os.remove(dst)
                print(f"{name} -> {ty}: {len(table)} tensors", file=sys.stderr)
            entries.append(entry)
    head = {
        "generator": "tramontane scripts/make-requant-sha.py",
        "llama_cpp_python_version": L.__version__,
        "llama_cpp_system_info": L.llama_print_system_info().decode().strip(),
        "hash_rule": "sha256 over exactly the tensor's data bytes as stored in the GGUF (no padding); "
                     "shape is in ggml order (ne0 = row length first)",
    }
    # one tensor per line: reviewable diffs
    with open(out_path, "w") as f:
        f.write(json.dumps(head)[:-1] + ',"inputs":[\n')
        for i, e in enumerate(entries):
            head_e = {k: v for k, v in e.items() if k not in ("input_tensors", "outputs")}
            f.write(json.dumps(head_e)[:-1] + ',"input_tensors":[\n')
            f.write(",\n".join(json.dumps(t, separators=(",", ":")) for t in e["input_tensors"]))
            f.write('\n],"outputs":[\n')
            for j, o in enumerate(e["outputs"]):
                head_o = {k: v for k, v in o.items() if k != "tensors"}
                f.write(json.dumps(head_o)[:-1] + ',"tensors":[\n')
                f.write(",\n".join(json.dumps(t, separators=(",", ":")) for t in o["tensors"]))
                f.write("\n]}" + (",\n" if j + 1 < len(e["outputs"]) else "\n"))
            f.write("]}" + (",\n" if i + 1 < len(entries) else "\n"))
        f.write("]}\n")


def compare(new_path, old_path):
    new = json.load(open(new_path))
    old = json.load(open(old_path))
    olds = {e["input_file"]: e for e in old["inputs"]}
    keys_in = ("input_sha256", "input_file_type", "input_tensors")
    keys_out = ("type", "output_file_sha256", "output_file_size", "general_file_type", "tensors")
    ok = True
    for e in new["inputs"]:
        o = olds.get(e["input_file"])
        if o is None:
            print(f"{e['input_file']}: not in the committed table")
            ok = False
            continue
        bad = [k for k in keys_in if e[k] != o[k]]
        if len(e["outputs"]) != len(o["outputs"]):
            bad.append("number of outputs")
        for a, b in zip(e["outputs"], o["outputs"]):
            bad += [f"{a['type']}.{k}" for k in keys_out if a[k] != b[k]]
        print(f"{e['input_file']}: " + ("reproduced (every input and output field identical)" if not bad
                                         else f"differs: {bad}"))
        ok &= not bad
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--in-peer", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.in_peer:
        py = os.environ.get("PEER_PYTHON", os.path.join(ROOT, "target", "peer-venv-avx2", "bin", "python"))
        cmd = [py, os.path.abspath(__file__), "--in-peer", "--out", args.out] + (["--check"] if args.check else [])
        sys.exit(subprocess.run(cmd).returncode)
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "requant-sha256.json")
            make(path)
            sys.exit(0 if compare(path, args.out) else 1)
    make(args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
