#!/usr/bin/env python3
"""llama.cpp's own dot products for the 32-value legacy types whose x86 kernels keep ggml's
8-lane AVX2 order (tests/fixtures/quant/legacy-vec-dot.json, read by kernels/tests/ggml_order.rs).

usage: PEER_PYTHON=... scripts/make-legacy-dot-vectors.py [--check] [--out FILE]
  (default PEER_PYTHON: target/peer-venv-avx2/bin/python, an AVX2-only build of
  llama-cpp-python; the script re-runs itself with it and loads libggml-base.so /
  libggml-cpu.so from its llama_cpp/lib)

For each of Q4_1, Q5_0, Q5_1 and Q8_0: 6 weight rows and 3 activation rows of 576 values (18
blocks), drawn here (numpy default_rng(seed 51), standard normals times a per-row scale) and
stored in the file. Through ctypes into ggml (llama.cpp 0c1e57098):
  quantized     ggml_quantize_chunk of the weight rows (= quantize_row_<type>_ref)
  activations   type_traits_cpu(vec_dot_type)->from_float of the activation rows (Q8_1 for Q4_1 and
                Q5_1, Q8_0 otherwise: the quantizer llama.cpp runs on activations)
  vec_dot       type_traits_cpu(type)->vec_dot of every (activation row, weight row), nrc 1:
                `ggml_vec_dot_<type>_q8_<0|1>` of the AVX2 build
--check writes nothing: it compares every field it makes with the committed file.
"""
import argparse
import base64
import ctypes
import os
import struct

import ggml_ctypes

FIXTURE = os.path.join(ggml_ctypes.ROOT, "tests", "fixtures", "quant", "legacy-vec-dot.json")
N, W_ROWS, A_ROWS = 576, 6, 3
# ggml type ids
TYPES = {"Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8}
Q8_0, Q8_1 = 8, 9
VEC_DOT_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                              ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                              ctypes.c_int)


def b64(x):
    return base64.b64encode(x).decode()


def make():
    import llama_cpp
    import numpy as np
    base, cpu = ggml_ctypes.load()
    rng = np.random.default_rng(51)
    out = {
        "generator": "tramontane scripts/make-legacy-dot-vectors.py",
        "ggml": f"llama-cpp-python {llama_cpp.__version__} (llama.cpp 0c1e57098): "
                + llama_cpp.llama_print_system_info().decode().strip(),
        "encoding": "*_b64: base64 of raw little-endian bytes; f32 arrays little-endian float32; "
                    "vec_dot [activation row][weight row]",
        "n_per_row": N,
        "types": {},
    }
    for name, ty in TYPES.items():
        traits = cpu.ggml_get_type_traits_cpu(ty).contents
        act_ty = traits.vec_dot_type
        assert act_ty == (Q8_1 if name in ("Q4_1", "Q5_1") else Q8_0), (name, act_ty)
        weights = [(rng.standard_normal(N) * rng.uniform(0.01, 2)).astype(np.float32) for _ in range(W_ROWS)]
        acts = [(rng.standard_normal(N) * rng.uniform(0.01, 4)).astype(np.float32) for _ in range(A_ROWS)]
        w_rs, a_rs = base.ggml_row_size(ty, N), base.ggml_row_size(act_ty, N)
        wq = []
        for w in weights:
            dst = ctypes.create_string_buffer(w_rs)
            assert base.ggml_quantize_chunk(ty, w.ctypes.data, dst, 0, 1, N, None) == w_rs
            wq.append(dst.raw)
        from_float = ggml_ctypes.ROW_FN(cpu.ggml_get_type_traits_cpu(act_ty).contents.from_float)
        aq = []
        for a in acts:
            dst = ctypes.create_string_buffer(a_rs)
            from_float(a.ctypes.data, dst, N)
            aq.append(dst.raw)
        vec_dot = VEC_DOT_FN(traits.vec_dot)
        dots = []
        for a in aq:
            for w in wq:
                s = ctypes.c_float()
                vec_dot(N, ctypes.byref(s), 0, w, 0, a, 0, 1)
                dots.append(s.value)
        out["types"][name] = {
            "weights_f32_b64": [b64(w.tobytes()) for w in weights],
            "quantized_b64": [b64(w) for w in wq],
            "activations_f32_b64": [b64(a.tobytes()) for a in acts],
            "activations_quantized_b64": [b64(a) for a in aq],
            "vec_dot_f32_b64": b64(struct.pack(f"<{len(dots)}f", *dots)),
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out", default=FIXTURE)
    ap.add_argument("--in-peer", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    ggml_ctypes.in_peer(__file__, a.in_peer)
    ggml_ctypes.write_or_check(make(), a.out, a.check, lambda new, old: [
        k for k, v in new.items() if k not in ("generator", "ggml") and old.get(k) != v])


if __name__ == "__main__":
    main()
