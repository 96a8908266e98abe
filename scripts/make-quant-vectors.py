#!/usr/bin/env python3
"""ggml's quantization bytes on fixed input rows (tests/fixtures/quant/vectors.json, read by
kernels/tests/reference_fixtures.rs).

usage: PEER_PYTHON=... scripts/make-quant-vectors.py [--check] [--inputs FILE] [--out FILE]
  (default PEER_PYTHON: target/peer-venv-avx2/bin/python; the script re-runs itself with it and
  loads libggml-base.so / libggml-cpu.so from that llama-cpp-python's llama_cpp/lib)

The input rows are data: the 6 rows of 512 values under `inputs` and the 2 under
`activation_probe_rows` of --inputs (default: the committed file; how they were drawn is in
tests/fixtures/README.md). From them, through ctypes into ggml (llama.cpp 0c1e57098):
  weight_types.T      quantized_b64: ggml_quantize_chunk(T, rows, start 0, 6 rows, 512, no imatrix),
                      one entry per row; dequantized_f32_b64: type_traits(T)->to_float of those bytes
  activation_types.T  for Q8_0, Q8_1, Q8_K: ref_b64 = quantize_row_<T>_ref (ggml-base, the
                      portable reference), cpu_from_float_b64 = type_traits_cpu(T)->from_float (what
                      ggml-cpu really runs on activations: AVX2 code on this build), and whether
                      they are equal; the same under activation_probe_rows.types.T
  vec_dot_type_per_weight_type  type_traits_cpu(T)->vec_dot_type
--check writes nothing: it compares every field it makes with the committed file.
"""
import argparse
import base64
import ctypes
import json
import os

import ggml_ctypes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "quant", "vectors.json")
WEIGHT_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS"]
ACT_TYPES = ["Q8_0", "Q8_1", "Q8_K"]
GGML_TYPE_COUNT = 43



class Ggml:
    def __init__(self):
        self.base, self.cpu = ggml_ctypes.load()
        b, c = self.base, self.cpu
        # enum ggml_type by name, read from the library's traits table; GGML_TYPE_COUNT is 43 at
        # llama.cpp 0c1e57098 (ggml.h), and the table has no bound check
        self.ids, self.names = {}, {}
        for t in range(GGML_TYPE_COUNT):
            tr = b.ggml_get_type_traits(t).contents
            if tr.type_name and tr.blck_size > 0:
                name = tr.type_name.decode().upper()
                self.ids[name] = t
                self.names[t] = name
        assert (self.ids["F32"], self.ids["Q4_0"], self.ids["Q8_K"], self.ids["IQ4_XS"]) == (0, 2, 15, 23)

    def traits(self, name):
        return self.base.ggml_get_type_traits(self.ids[name]).contents

    def cpu_traits(self, name):
        return self.cpu.ggml_get_type_traits_cpu(self.ids[name]).contents

    def ref_quantizer(self, name):
        """quantize_row_<type>_ref of ggml-base (not every type has it in its traits: Q8_K)."""
        sym = "quantize_row_" + name.lower().replace("_k", "_K") + "_ref"
        return ctypes.cast(getattr(self.base, sym), ctypes.c_void_p).value

    def row_size(self, name, n):
        return self.base.ggml_row_size(self.ids[name], n)

    def quantize_chunk(self, name, rows):
        n_rows, n = len(rows), len(rows[0]) // 4
        src = ctypes.create_string_buffer(b"".join(rows), n_rows * n * 4)
        rs = self.row_size(name, n)
        dst = ctypes.create_string_buffer(rs * n_rows)
        got = self.base.ggml_quantize_chunk(self.ids[name], src, dst, 0, n_rows, n, None)
        assert got == rs * n_rows, (name, got)
        return [dst.raw[i * rs:(i + 1) * rs] for i in range(n_rows)]



def b64(raw):
    return base64.b64encode(raw).decode("ascii")


def unb64(s):
    return base64.b64decode(s)


def activations(g, rows, n):
    out = {}
    for name in ACT_TYPES:
        rs = g.row_size(name, n)
        ref = ggml_ctypes.per_row(g.ref_quantizer(name), rows, n, rs)
        cpu = ggml_ctypes.per_row(g.cpu_traits(name).from_float, rows, n, rs)
        out[name] = {"ref_b64": [b64(x) for x in ref], "cpu_from_float_b64": [b64(x) for x in cpu],
                     "ref_equals_cpu_from_float": [a == b for a, b in zip(ref, cpu)]}
    return out


def make(inputs_path):
    import llama_cpp
    g = Ggml()
    with open(inputs_path) as f:
        src = json.load(f)
    rows = [unb64(s) for s in src["inputs"]["rows_f32_b64"]]
    probes = [unb64(s) for s in src["activation_probe_rows"]["rows_f32_b64"]]
    n = src["inputs"]["n_per_row"]
    assert all(len(r) == 4 * n for r in rows + probes)

    out = {
        "generator": "tramontane scripts/make-quant-vectors.py",
        "ggml": f"llama-cpp-python {llama_cpp.__version__} (llama.cpp 0c1e57098): "
                + llama_cpp.llama_print_system_info().decode().strip(),
        "encoding": "all *_b64 fields are base64 of the raw little-endian bytes; f32 arrays are little-endian float32",
        "inputs": src["inputs"],
        "weight_types": {},
        "activation_types": {},
    }
    for name in WEIGHT_TYPES:
        tr = g.traits(name)
        q = g.quantize_chunk(name, rows)
        deq = ggml_ctypes.per_row(tr.to_float, q, n, 4 * n)
        out["weight_types"][name] = {
            "ggml_type": g.ids[name], "block_size": tr.blck_size, "type_size": tr.type_size,
            "row_size": g.row_size(name, n),
            "quantized_b64": [b64(x) for x in q], "dequantized_f32_b64": [b64(x) for x in deq],
        }
    for name, v in activations(g, rows, n).items():
        tr = g.traits(name)
        out["activation_types"][name] = {"ggml_type": g.ids[name], "block_size": tr.blck_size,
                                         "type_size": tr.type_size, "row_size": g.row_size(name, n), **v}
    probe = {k: v for k, v in src["activation_probe_rows"].items() if k != "types"}
    probe["types"] = activations(g, probes, n)
    out["activation_probe_rows"] = probe
    out["vec_dot_type_per_weight_type"] = {
        name: g.names[g.cpu_traits(name).vec_dot_type] for name in WEIGHT_TYPES + ["F16", "F32"]}
    return out


def compare(new, old, path=""):
    """Paths of the fields of `new` that differ from `old` (fields only `old` has are ignored)."""
    if isinstance(new, dict):
        if not isinstance(old, dict):
            return [path]
        return [p for k, v in new.items() if k not in ("generator", "ggml", "encoding")
                for p in (compare(v, old[k], f"{path}.{k}") if k in old else [f"{path}.{k} (missing)"])]
    return [] if new == old else [path]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--inputs", default=FIXTURE)
    ap.add_argument("--out", default=FIXTURE)
    ap.add_argument("--in-peer", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    ggml_ctypes.in_peer(__file__, a.in_peer)
    ggml_ctypes.write_or_check(make(a.inputs), a.out, a.check, compare)


if __name__ == "__main__":
    main()
