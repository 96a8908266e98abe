#!/usr/bin/env python3
"""Check a scalar emulation of ggml's AVX2 Q2_K/Q3_K/Q5_K/Q6_K/IQ4_XS vec_dot order against the
real library.

Loads libggml-cpu from an AVX2-only llama-cpp-python venv (default target/peer-venv-avx2) through
ctypes, quantizes random rows with ggml's own quantizers (weights: ggml_quantize_chunk;
activations: the Q8_K `from_float`), computes `vec_dot` (nrc = 1) and compares it bit for bit
with `emulate()` below, which spells out the order of `ggml_vec_dot_q{5,6}_K_q8_K` (AVX2):
i32 lane L of `sumi` = products at positions 4L..4L+3 of every 32-value chunk, times the
chunk's (16-value group's) scale; Q6_K subtracts 32 * (sc[2L]*bsum[2L] + sc[2L+1]*bsum[2L+1]);
per super-block acc_L = fma(y.d * f16(x.d), f32(sumi_L), acc_L); hsum_float_8 at the end;
Q5_K adds summs (+= (-y.d * f16(x.dmin)) * mins_dot, per block) last. IQ4_XS: lane L = sum over
the eight 32-value sub-blocks of (ls - 32) times the products (table values x q8) at positions
4L..4L+3; acc_L = fma(f16(x.d) * y.d, f32(lane_L), acc_L); hsum_float_8. Q2_K and Q3_K: lane L
as Q6_K's (16-value sub-block scales: Q2_K's 4-bit, Q3_K's 6-bit minus 32), without the -32;
Q2_K first adds, per super-block, acc_L = fma(-(y.d * f16(x.dmin)), f32(min[2L] * bsum[2L] +
min[2L+1] * bsum[2L+1]), acc_L).

With --write FILE it also writes the committed fixture read by
kernels/tests/ggml_order_kquants.rs: records of
  u8 type (10 = Q2_K, 11 = Q3_K, 13 = Q5_K, 14 = Q6_K, 23 = IQ4_XS), u32 n, weight bytes, Q8_K
  bytes, u32 expected f32 bits
(little-endian), after a 8-byte magic b"KQORDER1".
With --write-q8k FILE it writes activation rows with ggml's Q8_K bytes (`from_float`):
b"Q8KQUAN1", then records of u32 n, n f32, the Q8_K bytes.
"""
import argparse
import ctypes as C
import glob
import os
import struct
import sys

import numpy as np

Q2_K, Q3_K, Q5_K, Q6_K, Q8_K, IQ4_XS = 10, 11, 13, 14, 15, 23
W_BYTES = {Q2_K: 84, Q3_K: 110, Q5_K: 176, Q6_K: 210, IQ4_XS: 136}
NAMES = {Q2_K: "Q2_K", Q3_K: "Q3_K", Q5_K: "Q5_K", Q6_K: "Q6_K", IQ4_XS: "IQ4_XS"}
IQ4NL_VALUES = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
Q8K_BYTES = 292


class TraitsCpu(C.Structure):
    _fields_ = [("from_float", C.c_void_p), ("vec_dot", C.c_void_p),
                ("vec_dot_type", C.c_int), ("nrows", C.c_int64)]


VEC_DOT = C.CFUNCTYPE(None, C.c_int, C.POINTER(C.c_float), C.c_size_t, C.c_void_p,
                      C.c_size_t, C.c_void_p, C.c_size_t, C.c_int)
FROM_FLOAT = C.CFUNCTYPE(None, C.POINTER(C.c_float), C.c_void_p, C.c_int64)


def load(venv):
    libdir = glob.glob(f"{venv}/lib/python3*/site-packages/llama_cpp/lib")[0]
    base = C.CDLL(f"{libdir}/libggml-base.so", mode=C.RTLD_GLOBAL)
    cpu = C.CDLL(f"{libdir}/libggml-cpu.so", mode=C.RTLD_GLOBAL)
    cpu.ggml_cpu_init()
    cpu.ggml_get_type_traits_cpu.restype = C.POINTER(TraitsCpu)
    base.ggml_quantize_chunk.restype = C.c_size_t
    base.ggml_quantize_chunk.argtypes = [C.c_int, C.POINTER(C.c_float), C.c_void_p, C.c_int64,
                                         C.c_int64, C.c_int64, C.c_void_p]
    return base, cpu


def f32(x):
    return np.float32(x)


def fma(a, b, c):
    # Exact product in f64 (24+24 bits), one f64 rounding of the sum, then f32: double rounding
    # can differ from a true fma only at an exact f32 midpoint (~2^-29 per operation).
    return np.float32(np.float64(a) * np.float64(b) + np.float64(c))


def hsum_float_8(a):
    r = [f32(a[4 + i] + a[i]) for i in range(4)]
    return f32(f32(r[0] + r[2]) + f32(r[1] + r[3]))


def f16(b, at):
    return np.frombuffer(b[at:at + 2], dtype=np.float16)[0].astype(np.float32)


def q5k_block(x):
    """(values 0..31 [256], scales [8], mins [8]) of one Q5_K block."""
    sc, mn = [0] * 8, [0] * 8
    s = x[4:16]
    for j in range(8):
        if j < 4:
            sc[j], mn[j] = s[j] & 63, s[j + 4] & 63
        else:
            sc[j] = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)
            mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4)
    qh, qs = x[16:48], x[48:176]
    q = [0] * 256
    for j in range(4):
        for l in range(32):
            q[64 * j + l] = (qs[32 * j + l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4)
            q[64 * j + 32 + l] = (qs[32 * j + l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)
    return q, sc, mn


def q6k_block(x):
    """(values 0..63 [256], scales i8 [16]) of one Q6_K block."""
    ql, qh = x[0:128], x[128:192]
    sc = list(np.frombuffer(x[192:208], dtype=np.int8).astype(int))
    q = [0] * 256
    for h in range(2):
        for l in range(32):
            b = qh[32 * h + l]
            q[128 * h + l] = (ql[64 * h + l] & 0xF) | ((b & 3) << 4)
            q[128 * h + 32 + l] = (ql[64 * h + 32 + l] & 0xF) | (((b >> 2) & 3) << 4)
            q[128 * h + 64 + l] = (ql[64 * h + l] >> 4) | (((b >> 4) & 3) << 4)
            q[128 * h + 96 + l] = (ql[64 * h + 32 + l] >> 4) | (((b >> 6) & 3) << 4)
    return q, sc


def q2k_block(x):
    """(codes 0..3 [256], scales [16], mins [16]) of one Q2_K block."""
    q = [0] * 256
    for i in range(256):
        j, k, p = i // 128, (i % 128) // 32, i % 32
        q[i] = (x[16 + 32 * j + p] >> (2 * k)) & 3
    return q, [x[g] & 0xF for g in range(16)], [x[g] >> 4 for g in range(16)]


def q3k_block(x):
    """(values -4..3 [256], scales - 32 [16]) of one Q3_K block."""
    q = [0] * 256
    for i in range(256):
        j, k, p = i // 128, (i % 128) // 32, i % 32
        low = (x[32 + 32 * j + p] >> (2 * k)) & 3
        q[i] = low - (0 if (x[p] >> (i // 32)) & 1 else 4)
    sc = []
    for g in range(16):
        low = x[96 + g] & 0xF if g < 8 else x[96 + g - 8] >> 4
        high = (x[96 + 8 + g % 4] >> (2 * (g // 4))) & 3
        sc.append((low | (high << 4)) - 32)
    return q, sc


def iq4xs_block(x):
    """(values [256] from the table, scales ls - 32 [8]) of one IQ4_XS block."""
    sh = x[2] | (x[3] << 8)
    sc = [(((x[4 + j // 2] >> (4 * (j % 2))) & 0xF) | (((sh >> (2 * j)) & 3) << 4)) - 32 for j in range(8)]
    q = [0] * 256
    for j in range(8):
        qs = x[8 + 16 * j:24 + 16 * j]
        for l in range(16):
            q[32 * j + l] = IQ4NL_VALUES[qs[l] & 0xF]
            q[32 * j + 16 + l] = IQ4NL_VALUES[qs[l] >> 4]
    return q, sc


def scaled_lanes(q, q8, scale):
    """ggml's eight i32 lanes: lane L sums, over the eight 32-value chunks c, scale(c, L) times
    the products at positions 4L..4L+3 of the chunk."""
    return [sum(scale(c, lane) * sum(q[32 * c + 4 * lane + t] * q8[32 * c + 4 * lane + t] for t in range(4))
                for c in range(8))
            for lane in range(8)]


def emulate(ty, n, w, a, summs_fused):
    acc = [f32(0)] * 8
    summs = f32(0)
    for b in range(n // 256):
        x = w[b * W_BYTES[ty]:(b + 1) * W_BYTES[ty]]
        y = a[b * Q8K_BYTES:(b + 1) * Q8K_BYTES]
        yd = np.frombuffer(y[0:4], dtype=np.float32)[0]
        q8 = np.frombuffer(y[4:260], dtype=np.int8).astype(int)
        bsums = np.frombuffer(y[260:292], dtype=np.int16).astype(int)
        # The scale of chunk c's 16-value group holding lane L (Q2_K, Q3_K, Q6_K).
        per16 = lambda sc: lambda c, lane: sc[2 * c + lane // 4]  # noqa: E731
        if ty == Q2_K:
            q, sc, mn = q2k_block(x)
            d = f32(yd * f16(x, 80))
            dmin = f32(-yd * f16(x, 82))
            for lane in range(8):
                m = mn[2 * lane] * bsums[2 * lane] + mn[2 * lane + 1] * bsums[2 * lane + 1]
                acc[lane] = fma(dmin, f32(m), acc[lane])
            lanes = scaled_lanes(q, q8, per16(sc))
        elif ty == Q3_K:
            q, sc = q3k_block(x)
            d = f32(yd * f16(x, 108))
            lanes = scaled_lanes(q, q8, per16(sc))
        elif ty == IQ4_XS:
            q, sc = iq4xs_block(x)
            d = f32(f16(x, 0) * yd)
            lanes = scaled_lanes(q, q8, lambda c, lane: sc[c])
        elif ty == Q6_K:
            q, sc = q6k_block(x)
            d = f32(yd * f16(x, 208))
            lanes = scaled_lanes(q, q8, per16(sc))
            for lane in range(8):
                lanes[lane] -= 32 * (sc[2 * lane] * bsums[2 * lane] + sc[2 * lane + 1] * bsums[2 * lane + 1])
        else:
            q, sc, mn = q5k_block(x)
            d = f32(yd * f16(x, 0))
            dmin = f32(-yd * f16(x, 2))
            lanes = scaled_lanes(q, q8, lambda c, lane: sc[c])
            m = sum(mn[j] * (bsums[2 * j] + bsums[2 * j + 1]) for j in range(8))
            summs = fma(dmin, f32(m), summs) if summs_fused else f32(summs + f32(dmin * f32(m)))
        acc = [fma(d, f32(lanes[i]), acc[i]) for i in range(8)]
    return f32(hsum_float_8(acc) + summs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                  "target", "peer-venv-avx2"))
    ap.add_argument("--rows", type=int, default=200, help="rows per type and length")
    ap.add_argument("--lengths", default="256,512,1536")
    ap.add_argument("--write", help="fixture file to write")
    ap.add_argument("--write-q8k", help="Q8_K quantizer fixture file to write")
    ap.add_argument("--fixture-rows", type=int, default=24, help="rows per type and length kept")
    args = ap.parse_args()
    base, cpu = load(args.venv)
    q8k = cpu.ggml_get_type_traits_cpu(Q8_K).contents
    from_float = FROM_FLOAT(q8k.from_float)
    rng = np.random.default_rng(20261129)
    records = []
    ok = True
    # IQ4_XS, Q2_K and Q3_K draw from generators of their own, so the Q5_K/Q6_K records and
    # the Q8_K file stay those of the earlier runs.
    rng_iq4 = np.random.default_rng(20261206)
    rng_low = np.random.default_rng(20261207)
    for ty in (Q5_K, Q6_K, IQ4_XS, Q2_K, Q3_K):
        g = rng_iq4 if ty == IQ4_XS else rng_low if ty in (Q2_K, Q3_K) else rng
        tr = cpu.ggml_get_type_traits_cpu(ty).contents
        assert tr.vec_dot_type == Q8_K
        vec_dot = VEC_DOT(tr.vec_dot)
        for n in map(int, args.lengths.split(",")):
            miss = {True: 0, False: 0}
            for r in range(args.rows):
                wf = (g.standard_normal(n) * g.uniform(0.01, 2)).astype(np.float32)
                af = (g.standard_normal(n) * g.uniform(0.01, 4)).astype(np.float32)
                wb = C.create_string_buffer(n // 256 * W_BYTES[ty])
                ab = C.create_string_buffer(n // 256 * Q8K_BYTES)
                base.ggml_quantize_chunk(ty, wf.ctypes.data_as(C.POINTER(C.c_float)), wb, 0, 1, n, None)
                from_float(af.ctypes.data_as(C.POINTER(C.c_float)), ab, n)
                out = C.c_float(0)
                vec_dot(n, C.byref(out), 0, wb, 0, ab, 0, 1)
                lib = np.float32(out.value)
                w, a = wb.raw, ab.raw
                for fused in (True, False) if ty == Q5_K else (True,):
                    if emulate(ty, n, w, a, fused).view(np.uint32) != lib.view(np.uint32):
                        miss[fused] += 1
                if r < args.fixture_rows:
                    records.append(struct.pack("<BI", ty, n) + w + a + struct.pack("<f", lib))
            name = NAMES[ty]
            print(f"{name} n={n}: emulation (fused summs) differs on {miss[True]}/{args.rows}"
                  + (f", (unfused summs) on {miss[False]}/{args.rows}" if ty == Q5_K else ""))
            ok &= miss[True] == 0
    if args.write:
        with open(args.write, "wb") as f:
            f.write(b"KQORDER1" + b"".join(records))
        print(f"wrote {len(records)} records to {args.write}")
    if args.write_q8k:
        q8_records = []
        for n in (256, 512, 1536):
            for r in range(16):
                af = (rng.standard_normal(n) * rng.uniform(0.001, 8)).astype(np.float32)
                if r % 4 == 3:
                    af[rng.integers(n)] *= 40  # an outlier, like real activations
                ab = C.create_string_buffer(n // 256 * Q8K_BYTES)
                from_float(af.ctypes.data_as(C.POINTER(C.c_float)), ab, n)
                q8_records.append(struct.pack("<I", n) + af.tobytes() + ab.raw)
        with open(args.write_q8k, "wb") as f:
            f.write(b"Q8KQUAN1" + b"".join(q8_records))
        print(f"wrote {len(q8_records)} records to {args.write_q8k}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
