#!/usr/bin/env python3
"""llama.cpp's own MXFP4 numbers (tests/fixtures/quant/mxfp4.json, read by
kernels/tests/mxfp4_fixtures.rs).

usage: PEER_PYTHON=... scripts/make-mxfp4-vectors.py [--check] [--out FILE]
  (default PEER_PYTHON: target/peer-venv-avx2/bin/python; the script re-runs itself with it and
  loads libggml-base.so / libggml-cpu.so from that llama-cpp-python's llama_cpp/lib)

Inputs are drawn here (numpy default_rng(seed 4), standard normals times a per-row power of two,
plus hand-made edge rows) and stored in the file. Through ctypes into ggml (llama.cpp 0c1e57098):
  weights          ggml_quantize_chunk(MXFP4) (= quantize_row_mxfp4_ref) of the 24 weight rows
                   (16 random, 8 following the activation rows' common part: large, inexact block terms)
                   and the edge rows, and to_float (dequantize_row_mxfp4) of those bytes
  activations      type_traits_cpu(Q8_0)->from_float of 4 activation rows (the AVX2 quantizer
                   llama.cpp runs on activations), and whether ggml_quantize_mat_t<8, Q8_0>
                   (what the repacked gemm quantizes its 4-row groups with) gives the same bytes
  vec_dot          type_traits_cpu(MXFP4)->vec_dot (ggml_vec_dot_mxfp4_q8_0, AVX2) of every
                   (weight row, activation row): the order of unrepacked MXFP4 matrices
  repacked_gemv    ggml::cpu::repack::gemv<block_mxfp4, 8, 8, Q8_0> over the 24 weight rows
                   repacked as repack_mxfp4_to_mxfp4_8_bl does, one activation row at a time:
                   llama.cpp's mul_mat for one token and mul_mat_id for every routed row
  repacked_gemm    ggml::cpu::repack::gemm<block_mxfp4, 8, 8, Q8_0> of the 4 activation rows
                   (one quantize_mat_t group) against the same repacked rows: mul_mat batches
Every row has 224 values (7 blocks: an odd count, so vec_dot's unpaired last block is covered).
--check writes nothing: it compares every field it makes with the committed file.
"""
import base64
import ctypes
import os
import struct

import ggml_ctypes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "quant", "mxfp4.json")
N = 224
W_ROWS = 24
A_ROWS = 4
MXFP4 = 39
Q8_0 = 8
BLOCK = 17

GEMV = "_ZN4ggml3cpu6repack4gemvI11block_mxfp4Ll8ELl8EL9ggml_type8EEEviPfmPKvS7_ii"
GEMM = "_ZN4ggml3cpu6repack4gemmI11block_mxfp4Ll8ELl8EL9ggml_type8EEEviPfmPKvS7_ii"
QUANTIZE_MAT = "_Z19ggml_quantize_mat_tILl8EL9ggml_type8EEvPKfPvll"


def b64(raw):
    return base64.b64encode(raw).decode("ascii")


def f32_bytes(values):
    return struct.pack(f"<{len(values)}f", *values)


def inputs():
    import numpy as np
    rng = np.random.default_rng(4)
    weights = [(rng.standard_normal(N) * 2.0 ** (r - 8)).astype(np.float32) for r in range(16)]
    # A few outliers, as real weights have.
    for r in range(0, 16, 3):
        weights[r][(17 * r) % N] *= 9.0
    # Activation rows share a common part, and the last 8 weight rows follow it (plus noise),
    # so block sums are large and the scaled terms inexact in f32: roundings that uncorrelated
    # rows leave exact show here. Rows 20..24 shrink every block but the last (unpaired) one
    # by 2^-6, so that vec_dot's fused last step decides the result's rounding.
    # Rows 20..24 have the common part's signs (codes of every size) and the activations are
    # near full scale, so block sums have about 15 significant bits.
    sign = np.where(rng.standard_normal(N) < 0, -1.0, 1.0).astype(np.float32)
    common = (sign * rng.uniform(0.6, 1.0, N)).astype(np.float32)
    acts = [(common * (1 + np.float32(0.1) * rng.standard_normal(N))).astype(np.float32)
            for _ in range(A_ROWS)]
    weights += [None] * (W_ROWS - 16)
    for r in range(16, W_ROWS):
        k = np.float32(2.0 ** (r % 4 - 2))
        if r < 20:
            row = (common + np.float32(0.1) * rng.standard_normal(N)) * k
        else:
            row = sign * np.float32(1.5) * k * rng.uniform(0.1, 1.0, N).astype(np.float32)
            row[:N - 32] *= np.float32(2.0 ** -6)
        weights[r] = row.astype(np.float32)
    # Edge rows, block by block: the exponent at and just below powers of two, zero and tiny
    # blocks, exact table values and the midpoints between them (ties go to the first code).
    edge = []
    amaxes = [0.0, 4.0, np.nextafter(np.float32(8.0), np.float32(0.0)), 8.0 * (1 - 2.0 ** -24),
              2.0 ** -126, 1e-40, 3e38, 6.0, 0.75, 2.0 ** -120, 1.5, 96.0, 12.0, 1.0,
              2.0 ** -127, 0.1, 1e-3, 65504.0, 2.0 ** 20 * 1.0000001]
    base = rng.standard_normal(len(amaxes) * 32).astype(np.float32)
    for k, amax in enumerate(amaxes):
        blk = base[32 * k:32 * k + 32] * np.float32(amax / 4.0)
        blk = np.clip(blk, -np.float32(amax), np.float32(amax)).astype(np.float32)
        blk[k % 32] = np.float32(amax) * (1 if k % 2 else -1)
        edge.append(blk)
    # Table values and midpoints at half-scale 0.5 (amax 6: e = 127).
    table = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]
    mids = [(table[i] + table[i + 1]) / 4 for i in range(7)] + [-(table[i] + table[i + 1]) / 4 for i in range(7)]
    for vals in ([t / 2 for t in table] * 2, (mids + [6.0, -6.0]) * 2):
        edge.append(np.array(vals, dtype=np.float32))
    edge = np.concatenate(edge)
    assert len(edge) % N == 0
    edge_rows = [edge[i:i + N] for i in range(0, len(edge) - N + 1, N)]
    return ([w.tobytes() for w in weights], [a.tobytes() for a in acts], [e.tobytes() for e in edge_rows])


class Ggml:
    def __init__(self):
        self.base, self.cpu = ggml_ctypes.load()
        b, c = self.base, self.cpu
        tr = b.ggml_get_type_traits(MXFP4).contents
        assert (tr.type_name, tr.blck_size, tr.type_size) == (b"mxfp4", 32, BLOCK), tr.type_name
        assert c.ggml_get_type_traits_cpu(MXFP4).contents.vec_dot_type == Q8_0
        kernel = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                  ctypes.c_int, ctypes.c_int]
        self.gemv, self.gemm = getattr(c, GEMV), getattr(c, GEMM)
        for f in (self.gemv, self.gemm):
            f.argtypes, f.restype = kernel, None
        self.quantize_mat = getattr(c, QUANTIZE_MAT)
        self.quantize_mat.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
        self.quantize_mat.restype = None

    def quantize_mxfp4(self, rows):
        src = ctypes.create_string_buffer(b"".join(rows))
        rs = self.base.ggml_row_size(MXFP4, N)
        dst = ctypes.create_string_buffer(rs * len(rows))
        assert self.base.ggml_quantize_chunk(MXFP4, src, dst, 0, len(rows), N, None) == rs * len(rows)
        return [dst.raw[i * rs:(i + 1) * rs] for i in range(len(rows))]



def repack8(rows):
    """repack_mxfp4_to_mxfp4_8_bl with interleave 8: per group of 8 rows and block column x,
    block_mxfp4x8 { e[8]; qs[128] }, qs chunk i (8 bytes) = bytes (i // 8) * 8.. of row i % 8."""
    nb = N // 32
    out = bytearray()
    for g in range(0, len(rows), 8):
        for x in range(nb):
            blocks = [rows[g + i][x * BLOCK:(x + 1) * BLOCK] for i in range(8)]
            out += bytes(b[0] for b in blocks)
            for i in range(16):
                src, off = blocks[i % 8], 1 + (i // 8) * 8
                out += src[off:off + 8]
    return bytes(out)


def deinterleave_q8_0x4(raw):
    """block_q8_0x4 (d[4], qs[128] in 8-byte chunks round-robin over the 4 rows) -> 4 Q8_0 rows."""
    nb = N // 32
    rows = [bytearray() for _ in range(4)]
    for b in range(nb):
        blk = raw[b * 136:(b + 1) * 136]
        qs = [bytearray() for _ in range(4)]
        for i in range(16):
            qs[i % 4] += blk[8 + 8 * i:16 + 8 * i]
        for r in range(4):
            rows[r] += blk[2 * r:2 * r + 2] + qs[r]
    return [bytes(r) for r in rows]


def make():
    import llama_cpp
    g = Ggml()
    weights, acts, edges = inputs()
    wq = g.quantize_mxfp4(weights)
    eq = g.quantize_mxfp4(edges)
    to_float = g.base.ggml_get_type_traits(MXFP4).contents.to_float
    a_rs = g.base.ggml_row_size(Q8_0, N)
    aq = ggml_ctypes.per_row(g.cpu.ggml_get_type_traits_cpu(Q8_0).contents.from_float, acts, N, a_rs)
    a_src = ctypes.create_string_buffer(b"".join(acts))
    mat = ctypes.create_string_buffer(a_rs * A_ROWS)
    g.quantize_mat(a_src, mat, A_ROWS, N)
    dots = ggml_ctypes.vec_dot_pairs(g.cpu.ggml_get_type_traits_cpu(MXFP4).contents.vec_dot, N, wq, aq)
    packed = ctypes.create_string_buffer(repack8(wq))
    gemv = []
    for a in aq:
        s = (ctypes.c_float * W_ROWS)()
        g.gemv(N, s, W_ROWS, packed, a, 1, W_ROWS)
        gemv += list(s)
    s = (ctypes.c_float * (W_ROWS * A_ROWS))()
    g.gemm(N, s, W_ROWS, packed, mat, A_ROWS, W_ROWS)
    return {
        "generator": "tramontane scripts/make-mxfp4-vectors.py",
        "ggml": f"llama-cpp-python {llama_cpp.__version__} (llama.cpp 0c1e57098): "
                + llama_cpp.llama_print_system_info().decode().strip(),
        "encoding": "*_b64: base64 of raw little-endian bytes; f32 arrays little-endian float32; "
                    "outputs [activation row][weight row]",
        "n_per_row": N,
        "weights": {"inputs_f32_b64": [b64(x) for x in weights], "quantized_b64": [b64(x) for x in wq],
                    "dequantized_f32_b64": [b64(x) for x in ggml_ctypes.per_row(to_float, wq, N, 4 * N)]},
        "edge_rows": {"inputs_f32_b64": [b64(x) for x in edges], "quantized_b64": [b64(x) for x in eq],
                      "dequantized_f32_b64": [b64(x) for x in ggml_ctypes.per_row(to_float, eq, N, 4 * N)]},
        "activations": {"inputs_f32_b64": [b64(x) for x in acts], "q8_0_from_float_b64": [b64(x) for x in aq],
                        "quantize_mat_equals_from_float": deinterleave_q8_0x4(mat.raw) == aq},
        "vec_dot_f32_b64": b64(f32_bytes(dots)),
        "repacked_gemv_f32_b64": b64(f32_bytes(gemv)),
        "repacked_gemm_f32_b64": b64(f32_bytes(list(s))),
    }


def main():
    ggml_ctypes.generator_main(__file__, __doc__, FIXTURE, make)


if __name__ == "__main__":
    main()
