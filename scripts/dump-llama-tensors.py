#!/usr/bin/env python3
"""Dumps llama.cpp's intermediate tensors for one prompt, to find where our forward pass first
departs from it (a diagnostic, not a test).

usage: dump-llama-tensors.py MODEL.gguf OUTDIR --prompt TEXT [--steps N] [--threads 2]

Same settings as scripts/llama-logit-refs.py (n_ctx 512, one batch for the prompt, flash
attention off, f16 KV cache, logits for every position), then N single-token greedy steps.
Every graph node the scheduler reports through `cb_eval` is written as OUTDIR/EVAL/NAME.npy
(EVAL = 0 for the prompt batch, 1.. for the steps; numpy shape = ggml ne reversed), plus
OUTDIR/tokens.json. Run it with an AVX2-only build of llama-cpp-python, like the references.
"""
import argparse
import ctypes
import json
import os

import numpy as np
import llama_cpp
from llama_cpp import Llama

# ggml_tensor: type (int32, padded to 8), buffer*, ne[4] int64 at 16, nb[4] size_t at 48.
NE_OFF, NB_OFF = 16, 48
F32, F16 = 0, 1

base = ctypes.CDLL(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
base.ggml_get_name.restype = ctypes.c_char_p
base.ggml_get_name.argtypes = [ctypes.c_void_p]
base.ggml_get_data.restype = ctypes.c_void_p
base.ggml_get_data.argtypes = [ctypes.c_void_p]


def tensor_array(t):
    ty = ctypes.c_int32.from_address(t).value
    ne = [ctypes.c_int64.from_address(t + NE_OFF + 8 * i).value for i in range(4)]
    nb = [ctypes.c_size_t.from_address(t + NB_OFF + 8 * i).value for i in range(4)]
    if ty not in (F32, F16):
        return None
    dtype = np.float32 if ty == F32 else np.float16
    data = base.ggml_get_data(t)
    if not data:
        return None
    span = sum((n - 1) * s for n, s in zip(ne, nb)) + np.dtype(dtype).itemsize
    buf = (ctypes.c_char * span).from_address(data)
    flat = np.frombuffer(buf, dtype=np.uint8)
    arr = np.lib.stride_tricks.as_strided(
        flat.view(dtype) if nb[0] == np.dtype(dtype).itemsize else flat,
        shape=tuple(reversed(ne)),
        strides=tuple(reversed(nb)),
    )
    return np.array(arr, dtype=dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("outdir")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    state = {"eval": 0, "seen": {}}

    @llama_cpp.ggml_backend_sched_eval_callback
    def cb(t, ask, _user):
        if ask:
            return True
        name = base.ggml_get_name(t).decode()
        arr = tensor_array(t)
        if arr is not None:
            d = os.path.join(args.outdir, str(state["eval"]))
            os.makedirs(d, exist_ok=True)
            n = state["seen"].get((state["eval"], name), 0)
            state["seen"][(state["eval"], name)] = n + 1
            fname = name if n == 0 else f"{name}#{n}"
            np.save(os.path.join(d, fname.replace("/", "_") + ".npy"), arr)
        return True

    # Llama() builds its context from llama_context_default_params(): hand it one with the
    # callback installed.
    default_params = llama_cpp.llama_cpp.llama_context_default_params

    def params_with_callback():
        p = default_params()
        p.cb_eval = cb
        p.cb_eval_user_data = None
        return p

    llama_cpp.llama_cpp.llama_context_default_params = params_with_callback
    llm = Llama(
        model_path=args.model,
        n_ctx=512, n_batch=512, n_ubatch=512,
        n_threads=args.threads, n_threads_batch=args.threads,
        logits_all=True, seed=1234, n_gpu_layers=0, flash_attn=False, verbose=False,
    )

    toks = llm.tokenize(args.prompt.encode(), add_bos=True, special=True)
    llm.reset()
    llm.eval(toks)
    gen = []
    row = np.array(llm.scores[len(toks) - 1], dtype=np.float32)
    for step in range(args.steps):
        t = int(np.argsort(-row, kind="stable")[0])
        gen.append(t)
        state["eval"] += 1
        llm.eval([t])
        row = np.array(llm.scores[len(toks) + step], dtype=np.float32)
    with open(os.path.join(args.outdir, "tokens.json"), "w") as f:
        json.dump({"prompt": toks, "steps": gen}, f)


if __name__ == "__main__":
    main()
