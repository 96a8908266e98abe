#!/usr/bin/env python3
"""llama.cpp's own dot products for the 32-value types Q4_1, Q5_0, Q5_1, Q8_0 and IQ4_NL
(tests/fixtures/quant/legacy-vec-dot.json, read by kernels/tests/legacy_fixtures.rs).

usage: PEER_PYTHON=... scripts/make-legacy-dot-vectors.py [--check] [--out FILE]
  (default PEER_PYTHON: target/peer-venv-avx2/bin/python, an AVX2-only build of
  llama-cpp-python; the script re-runs itself with it and loads libggml-base.so /
  libggml-cpu.so from its llama_cpp/lib)

For each type: 8 weight rows and 3 activation rows of 544 values (17 blocks: an odd count, so
IQ4_NL's unpaired last block is covered), drawn here (numpy default_rng(seed 51), standard
normals times a per-row scale) and stored in the file. Through ctypes into ggml (llama.cpp
0c1e57098):
  quantized     ggml_quantize_chunk of the weight rows (= quantize_row_<type>_ref)
  activations   type_traits_cpu(vec_dot_type)->from_float of the activation rows (Q8_1 for Q4_1 and
                Q5_1, Q8_0 otherwise: the quantizer llama.cpp runs on activations)
  vec_dot       type_traits_cpu(type)->vec_dot of every (activation row, weight row), nrc 1:
                `ggml_vec_dot_<type>_q8_<0|1>` of the AVX2 build (for IQ4_NL the order of the
                matrices llama.cpp does not repack)
  repacked_gemv IQ4_NL only: ggml::cpu::repack::gemv<block_iq4_nl, 8, 8, Q8_0> over the 8 weight
                rows repacked as repack_iq4_nl_to_iq4_nl_8_bl does, one activation row at a time
                (the order of the matrices of a multiple of 8 rows, which llama.cpp repacks)
--check writes nothing: it compares every field it makes with the committed file.
"""
import base64
import ctypes
import os
import struct

import ggml_ctypes

FIXTURE = os.path.join(ggml_ctypes.ROOT, "tests", "fixtures", "quant", "legacy-vec-dot.json")
N, W_ROWS, A_ROWS = 544, 8, 3
# ggml type ids
TYPES = {"Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "IQ4_NL": 20}
IQ4_NL_GEMV = "_ZN4ggml3cpu6repack4gemvI12block_iq4_nlLl8ELl8EL9ggml_type8EEEviPfmPKvS7_ii"
Q8_0, Q8_1 = 8, 9

def b64(x):
    return base64.b64encode(x).decode()


def repack_iq4_nl_8(rows):
    """repack_iq4_nl_to_iq4_nl_8_bl (interleave 8): per block column x, block_iq4_nlx8
    { d[8]; qs[128] }, qs chunk i (8 bytes) = bytes (i // 8) * 8.. of row i % 8's qs."""
    out = bytearray()
    for x in range(N // 32):
        blocks = [r[x * 18:(x + 1) * 18] for r in rows]
        out += b"".join(b[0:2] for b in blocks)
        for i in range(16):
            off = 2 + (i // 8) * 8
            out += blocks[i % 8][off:off + 8]
    return bytes(out)


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
        from_float = cpu.ggml_get_type_traits_cpu(act_ty).contents.from_float
        aq = ggml_ctypes.per_row(from_float, [a.tobytes() for a in acts], N, a_rs)
        dots = ggml_ctypes.vec_dot_pairs(traits.vec_dot, N, wq, aq)
        entry = {
            "weights_f32_b64": [b64(w.tobytes()) for w in weights],
            "quantized_b64": [b64(w) for w in wq],
            "activations_f32_b64": [b64(a.tobytes()) for a in acts],
            "activations_quantized_b64": [b64(a) for a in aq],
            "vec_dot_f32_b64": b64(struct.pack(f"<{len(dots)}f", *dots)),
        }
        if name == "IQ4_NL":
            gemv = getattr(cpu, IQ4_NL_GEMV)
            gemv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_int, ctypes.c_int]
            gemv.restype = None
            packed = ctypes.create_string_buffer(repack_iq4_nl_8(wq))
            values = []
            for a in aq:
                s = (ctypes.c_float * W_ROWS)()
                gemv(N, s, W_ROWS, packed, a, 1, W_ROWS)
                values += list(s)
            entry["repacked_gemv_f32_b64"] = b64(struct.pack(f"<{len(values)}f", *values))
        out["types"][name] = entry
    return out


def main():
    ggml_ctypes.generator_main(__file__, __doc__, FIXTURE, make)


if __name__ == "__main__":
    main()
