"""ctypes access to the ggml libraries of a llama-cpp-python install (llama.cpp 0c1e57098), shared
by the fixture generators (scripts/make-quant-vectors.py, scripts/make-mxfp4-vectors.py) that
re-run themselves under the peer's Python (`in_peer`).
"""
import ctypes
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# quantize_row / to_float: (const void * src, void * dst, int64 n).
ROW_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


# vec_dot: (int n, float * s, size_t bs, const void * x, size_t bx, const void * y, size_t by, int nrc).
VEC_DOT_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
                              ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


def per_row(fn_ptr, rows, n, out_size):
    """A ROW_FN (quantize_row / to_float / from_float) applied to each byte string of `rows`
    (n values each): the `out_size` bytes it writes per row."""
    fn, out = ROW_FN(fn_ptr), []
    for r in rows:
        src, dst = ctypes.create_string_buffer(r, len(r)), ctypes.create_string_buffer(out_size)
        fn(src, dst, n)
        out.append(dst.raw)
    return out


def vec_dot_pairs(fn_ptr, n, weights, acts):
    """A type's vec_dot (nrc 1) of every (activation row, weight row), activation-major."""
    vec_dot, out = VEC_DOT_FN(fn_ptr), []
    for a in acts:
        for w in weights:
            s = ctypes.c_float()
            vec_dot(n, ctypes.byref(s), 0, w, 0, a, 0, 1)
            out.append(s.value)
    return out


class TypeTraits(ctypes.Structure):  # struct ggml_type_traits (ggml.h)
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


class TypeTraitsCpu(ctypes.Structure):  # struct ggml_type_traits_cpu (ggml-cpu.h)
    _fields_ = [("from_float", ctypes.c_void_p), ("vec_dot", ctypes.c_void_p),
                ("vec_dot_type", ctypes.c_int), ("nrows", ctypes.c_int64)]


def load():
    """(libggml-base, libggml-cpu) of the running Python's llama_cpp, with the signatures of the
    functions the generators call and the CPU backend initialised."""
    import llama_cpp
    libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    b = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    c = ctypes.CDLL(os.path.join(libdir, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
    b.ggml_get_type_traits.argtypes = [ctypes.c_int]
    b.ggml_get_type_traits.restype = ctypes.POINTER(TypeTraits)
    b.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    b.ggml_row_size.restype = ctypes.c_size_t
    b.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                      ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    b.ggml_quantize_chunk.restype = ctypes.c_size_t
    c.ggml_cpu_init.argtypes = []
    c.ggml_cpu_init()
    c.ggml_get_type_traits_cpu.argtypes = [ctypes.c_int]
    c.ggml_get_type_traits_cpu.restype = ctypes.POINTER(TypeTraitsCpu)
    return b, c


def in_peer(script, in_peer_flag):
    """Unless `in_peer_flag`, re-runs `script` (with its arguments and --in-peer) under
    PEER_PYTHON (default target/peer-venv-avx2/bin/python) and exits with its status."""
    if in_peer_flag:
        return
    py = os.environ.get("PEER_PYTHON", os.path.join(ROOT, "target", "peer-venv-avx2", "bin", "python"))
    sys.exit(subprocess.run([py, os.path.abspath(script), "--in-peer"] + sys.argv[1:]).returncode)


def write_or_check(new, path, check, differences):
    """With `check`, compares `new` with the committed JSON at `path` (`differences(new, old)`
    lists the fields that differ) and exits 0 when none do, 1 otherwise; else writes it."""
    import json
    if check:
        with open(path) as f:
            bad = differences(new, json.load(f))
        print(f"{path}: " + (f"differs in {bad}" if bad else "reproduced (every field this script makes is identical)"))
        sys.exit(1 if bad else 0)
    with open(path, "w") as f:
        json.dump(new, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}", file=sys.stderr)


def differing_fields(new, old):
    """The fields of a generated fixture that differ from the committed one, headers aside."""
    return [k for k, v in new.items() if k not in ("generator", "ggml") and old.get(k) != v]


def generator_main(script, doc, default_out, make):
    """The command line of a fixture generator that takes no inputs: `[--check] [--out FILE]`;
    re-runs `script` under the peer's Python, then writes `make()` or compares it."""
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--out", default=default_out)
    ap.add_argument("--in-peer", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    in_peer(script, a.in_peer)
    write_or_check(make(), a.out, a.check, differing_fields)
