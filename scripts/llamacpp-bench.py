#!/usr/bin/env python3
"""llama.cpp speed as llama-bench measures it, through llama-cpp-python's C API (no llama.cpp
tools needed): prompt processing (pp) and text generation (tg) tokens per second.

usage: llamacpp-bench.py MODEL.gguf [-p 512] [-n 128] [-d 0] [-t THREADS] [-r 5]
                         [-b 2048] [-ub 512] [--flash-attn] [--no-warmup] [--poll 50]

Each test gets its own context (n_ctx = tokens + depth, f16 K/V cache, flash attention off
unless --flash-attn, swa_full off, as llama-bench), with a ggml threadpool of THREADS threads
and the given poll level attached. Then, like llama-bench:
  warmup   one untimed run first: the whole pp test, or a 1-token tg test (--no-warmup skips it);
  per rep  the KV cache is cleared, DEPTH random tokens are decoded untimed (`-d`, in batches of
           -b), then the timed part:
  pp       the P tokens (BOS first when the vocabulary adds one, then random ids) in one
           llama_decode (split into n_batch pieces only when P > -b), output for the last
           token only, then llama_synchronize;
  tg       N single-token llama_decode calls (BOS first when the vocabulary adds one, then random
           ids), llama_synchronize after each; the whole loop is timed.
tokens/s = the mean over repetitions of tokens / seconds (llama-bench's avg_ts).
Random ids come from Python's random.Random(1).

Prints one JSON object on stdout: pp_tps, tg_tps (null for a skipped test), their standard
deviations, threads and the settings, and per test the samples in nanoseconds.
Note: llama-bench's own default is flash attention "auto" (on for CPU): compare with -fa 0.
"""
import argparse
import ctypes
import json
import os
import random
import statistics
import sys
import time

import llama_cpp as L

GGML_MAX_N_THREADS = 512


class ThreadpoolParams(ctypes.Structure):  # struct ggml_threadpool_params (ggml.h)
    _fields_ = [("cpumask", ctypes.c_bool * GGML_MAX_N_THREADS), ("n_threads", ctypes.c_int),
                ("prio", ctypes.c_int), ("poll", ctypes.c_uint32), ("strict_cpu", ctypes.c_bool),
                ("paused", ctypes.c_bool)]


class Threadpools:
    def __init__(self):
        libdir = os.path.join(os.path.dirname(L.__file__), "lib")
        self.base = ctypes.CDLL(os.path.join(libdir, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
        self.cpu = ctypes.CDLL(os.path.join(libdir, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
        self.base.ggml_threadpool_params_default.argtypes = [ctypes.c_int]
        self.base.ggml_threadpool_params_default.restype = ThreadpoolParams
        self.cpu.ggml_threadpool_new.argtypes = [ctypes.POINTER(ThreadpoolParams)]
        self.cpu.ggml_threadpool_new.restype = ctypes.c_void_p
        self.cpu.ggml_threadpool_free.argtypes = [ctypes.c_void_p]
        attach = L.llama_cpp._lib.llama_attach_threadpool
        attach.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        attach.restype = None
        self.attach = attach

    def new(self, ctx, n_threads, poll):
        p = self.base.ggml_threadpool_params_default(n_threads)
        p.poll = poll
        tp = self.cpu.ggml_threadpool_new(ctypes.byref(p))
        if not tp:
            sys.exit(f"ggml_threadpool_new failed for {n_threads} threads")
        self.attach(ctx, tp, None)
        return tp

    def free(self, tp):
        self.cpu.ggml_threadpool_free(tp)


@L.llama_log_callback
def _quiet(level, text, user_data):
    pass


class Bench:
    def __init__(self, a):
        self.a = a
        L.llama_log_set(_quiet, None)
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = L.llama_model_load_from_file(a.model.encode(), mp)
        if not self.model:
            sys.exit(f"llama.cpp cannot load {a.model}")
        vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(vocab)
        self.first = L.llama_vocab_bos(vocab) if L.llama_vocab_get_add_bos(vocab) else None
        self.rng = random.Random(1)
        self.pools = Threadpools()

    def ids(self, n, start):
        out = [self.rng.randrange(self.n_vocab) for _ in range(n)]
        if start and self.first is not None and out:
            out[0] = self.first
        return out

    def decode_batches(self, ctx, n):
        """n random tokens in pieces of n_batch (the first piece starts with BOS when added)."""
        done = 0
        while done < n:
            k = min(self.a.batch, n - done)
            toks = (L.llama_token * k)(*self.ids(k, done == 0))
            rc = L.llama_decode(ctx, L.llama_batch_get_one(toks, k))
            if rc != 0:
                sys.exit(f"llama_decode returned {rc}")
            done += k
        L.llama_synchronize(ctx)

    def pp(self, ctx, n):
        t0 = time.perf_counter_ns()
        self.decode_batches(ctx, n)
        return time.perf_counter_ns() - t0

    def tg(self, ctx, n):
        mem = L.llama_get_memory(ctx)
        pos = L.llama_memory_seq_pos_max(mem, 0) + 1
        toks = self.ids(n, True)
        batch = L.llama_batch_init(1, 0, 1)
        batch.n_tokens = 1
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = 0
        batch.logits[0] = 1
        t0 = time.perf_counter_ns()
        for i, t in enumerate(toks):
            batch.token[0] = t
            batch.pos[0] = pos + i
            rc = L.llama_decode(ctx, batch)
            if rc != 0:
                sys.exit(f"llama_decode returned {rc}")
            L.llama_synchronize(ctx)
        elapsed = time.perf_counter_ns() - t0
        L.llama_batch_free(batch)
        return elapsed

    def run(self, kind, n):
        a = self.a
        cp = L.llama_context_default_params()
        cp.n_ctx = n + a.depth
        cp.n_batch = a.batch
        cp.n_ubatch = a.ubatch
        cp.n_threads = cp.n_threads_batch = a.threads
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_ENABLED if a.flash_attn else L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cp.swa_full = False
        ctx = L.llama_init_from_model(self.model, cp)
        if not ctx:
            sys.exit("llama.cpp cannot create a context")
        tp = self.pools.new(ctx, a.threads, a.poll)
        L.llama_set_n_threads(ctx, a.threads, a.threads)
        mem = L.llama_get_memory(ctx)
        test = self.pp if kind == "pp" else self.tg
        if not a.no_warmup:
            L.llama_memory_clear(mem, False)
            test(ctx, n if kind == "pp" else 1)
        samples = []
        for _ in range(a.reps):
            L.llama_memory_clear(mem, False)
            if a.depth:
                self.decode_batches(ctx, a.depth)
            samples.append(test(ctx, n))
        L.llama_free(ctx)
        self.pools.free(tp)
        tps = [n * 1e9 / ns for ns in samples]
        return {"tps": statistics.mean(tps), "stdev_tps": statistics.stdev(tps) if len(tps) > 1 else 0.0,
                "samples_ns": samples}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-d", "--depth", type=int, default=0)
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count())
    ap.add_argument("-r", "--reps", type=int, default=5)
    ap.add_argument("-b", "--batch", type=int, default=2048)
    ap.add_argument("-ub", "--ubatch", type=int, default=512)
    ap.add_argument("--flash-attn", action="store_true")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--poll", type=int, default=50)
    a = ap.parse_args()
    if a.reps < 1:
        ap.error("--reps must be at least 1")

    b = Bench(a)
    result = {"pp_tps": None, "tg_tps": None, "pp_stdev": None, "tg_stdev": None}
    detail = {}
    for kind, n in (("pp", a.n_prompt), ("tg", a.n_gen)):
        if n > 0:
            r = b.run(kind, n)
            result[f"{kind}_tps"], result[f"{kind}_stdev"] = r["tps"], r["stdev_tps"]
            detail[kind] = r
    result.update({
        "threads": a.threads, "model": os.path.basename(a.model),
        "n_prompt": a.n_prompt, "n_gen": a.n_gen, "depth": a.depth, "reps": a.reps,
        "n_batch": a.batch, "n_ubatch": a.ubatch, "flash_attn": a.flash_attn, "kv_cache": "f16",
        "poll": a.poll, "warmup": not a.no_warmup,
        "llama_cpp_python": L.__version__, "system_info": L.llama_print_system_info().decode().strip(),
        "detail": detail,
    })
    L.llama_model_free(b.model)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
