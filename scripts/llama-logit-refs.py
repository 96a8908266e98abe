#!/usr/bin/env python3
"""llama.cpp logit references for one GGUF file, through llama-cpp-python's C API.

usage: llama-logit-refs.py MODEL.gguf OUT.json --set NAME [--prompts FILE] [--n-ctx 512]
                           [--threads 2] [--full-rows all|first|none] [--label TEXT]
                           [--meta KEY=VALUE ...] [--allow-avx512]

Run it with the Python of an AVX2-only llama-cpp-python 0.3.36 build (see
tests/fixtures/logits/README.md); it refuses a build that reports AVX512 unless --allow-avx512.

Prompts: the set NAME of tests/fixtures/logits/prompts.json (or --prompts). For each prompt, on
a context with n_ctx = n_batch = n_ubatch = --n-ctx, 2 threads, flash attention off and the
default f16 K/V cache, the KV cache cleared first:
  1. tokenize with llama_tokenize(add_special=true, parse_special=true);
  2. one llama_decode of the whole prompt, logits requested at every position;
  3. 32 greedy steps: the argmax of the current row (ties to the lowest id, the first of a
     stable descending sort), then one single-token llama_decode of it (EOS does not stop).
Per prompt it records the schema tests/support/conformance.rs reads: token_ids (and the
parse_special=false / add_special=false tokenizations), token_pieces, the argmax at every
prompt position, top10_last_position ([id, logit, piece]), greedy_ids, greedy_text,
greedy_steps ({token, logit, margin_to_2nd, second} of the row each token was chosen from),
min_greedy_margin and, for prompts marked full_logits (per --full-rows), logits_last_b64: the
whole float32 row of the last prompt position, base64 of its little-endian bytes.
Pieces use llama_token_to_piece(special=true), texts llama_detokenize(remove_special=false,
unparse_special=true), both with large buffers, decoded as UTF-8 with backslashreplace.
"""
import argparse
import base64
import ctypes
import hashlib
import json
import os
import platform
import sys

import numpy as np
import llama_cpp as L

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = os.path.join(ROOT, "tests", "fixtures", "logits", "prompts.json")
N_STEPS = 32
TOP = 10


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 22)
            if not block:
                return h.hexdigest()
            h.update(block)


@L.llama_log_callback
def _quiet(level, text, user_data):
    pass


class Runner:
    def __init__(self, model_path, n_ctx, threads, verbose=False):
        if not verbose:
            L.llama_log_set(_quiet, ctypes.c_void_p())
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        self.model = L.llama_model_load_from_file(model_path.encode(), mp)
        if not self.model:
            sys.exit(f"llama.cpp cannot load {model_path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        cp = L.llama_context_default_params()
        cp.n_ctx = cp.n_batch = cp.n_ubatch = n_ctx
        cp.n_threads = cp.n_threads_batch = threads
        cp.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self.ctx = L.llama_init_from_model(self.model, cp)
        if not self.ctx:
            sys.exit("llama.cpp cannot create a context")
        self.n_ctx = n_ctx
        self.batch = L.llama_batch_init(n_ctx, 0, 1)

    def close(self):
        L.llama_batch_free(self.batch)
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)

    def tokenize(self, text, add_special, parse_special):
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        while True:
            buf = (L.llama_token * cap)()
            n = L.llama_tokenize(self.vocab, raw, len(raw), buf, cap, add_special, parse_special)
            if n >= 0:
                return list(buf[:n])
            cap = -n

    def piece(self, tok):
        buf = ctypes.create_string_buffer(1024)
        n = L.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, True)
        assert 0 <= n <= len(buf)
        return buf.raw[:n].decode("utf-8", errors="backslashreplace")

    def text(self, ids):
        arr = (L.llama_token * max(1, len(ids)))(*ids)
        cap = 1024 + 256 * len(ids)
        buf = ctypes.create_string_buffer(cap)
        n = L.llama_detokenize(self.vocab, arr, len(ids), buf, cap, False, True)
        assert n >= 0
        return buf.raw[:n].decode("utf-8", errors="backslashreplace")

    def reset(self):
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)

    def decode(self, toks, pos0):
        """Decodes toks at positions pos0.. in one call; returns one float32 row per token."""
        b = self.batch
        b.n_tokens = len(toks)
        for i, t in enumerate(toks):
            b.token[i] = t
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1
        rc = L.llama_decode(self.ctx, b)
        if rc != 0:
            sys.exit(f"llama_decode returned {rc}")
        rows = np.empty((len(toks), self.n_vocab), dtype=np.float32)
        for i in range(len(toks)):
            ptr = L.llama_get_logits_ith(self.ctx, i)
            rows[i] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
        return rows


def ranked(row, k):
    """Ids by descending logit, equal logits by ascending id."""
    return np.argsort(-row, kind="stable")[:k]


def run_prompt(r, prompt, keep_row):
    text = prompt["text"]
    ids = r.tokenize(text, True, True)
    if len(ids) + N_STEPS > r.n_ctx:
        sys.exit(f"prompt {prompt['name']}: {len(ids)} tokens + {N_STEPS} steps exceed n_ctx {r.n_ctx}")
    r.reset()
    rows = r.decode(ids, 0)
    last = rows[-1].copy()
    rec = {
        "name": prompt["name"],
        "text": text,
        "token_ids": ids,
        "token_pieces": [r.piece(t) for t in ids],
        "token_ids_parse_special_false": r.tokenize(text, True, False),
        "token_ids_add_special_false": r.tokenize(text, False, True),
        "n_prompt_tokens": len(ids),
        "detokenized_roundtrip": r.text(ids),
        "prompt_argmax_per_position": [int(ranked(row, 1)[0]) for row in rows],
        "top10_last_position": [[int(i), float(last[i]), r.piece(int(i))] for i in ranked(last, TOP)],
    }
    greedy, steps = [], []
    row = last
    for step in range(N_STEPS):
        first, second = (int(i) for i in ranked(row, 2))
        greedy.append(first)
        steps.append({"token": first, "logit": float(row[first]),
                      "margin_to_2nd": float(row[first] - row[second]), "second": second})
        if step + 1 < N_STEPS:
            row = r.decode([first], len(ids) + step)[0]
    eos = L.llama_vocab_eos(r.vocab)
    rec.update({
        "greedy_ids": greedy,
        "greedy_text": r.text(greedy),
        "greedy_steps": steps,
        "greedy_first_eos_index": greedy.index(eos) if eos in greedy else None,
        "min_greedy_margin": min(s["margin_to_2nd"] for s in steps),
    })
    if keep_row:
        rec["logits_last_b64"] = base64.b64encode(last.astype("<f4").tobytes()).decode("ascii")
    return rec


def metadata(model):
    out = {}
    buf = ctypes.create_string_buffer(1 << 16)
    for i in range(L.llama_model_meta_count(model)):
        L.llama_model_meta_key_by_index(model, i, buf, len(buf))
        key = buf.value.decode("utf-8", errors="replace")
        if key == "tokenizer.chat_template":
            continue
        L.llama_model_meta_val_str_by_index(model, i, buf, len(buf))
        out[key] = buf.value.decode("utf-8", errors="replace")
    return out


def write(path, head, prompts):
    """Header on the first line, then one prompt per line (diffable, still one JSON value)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(head, ensure_ascii=False)[:-1] + ',"prompts":[\n')
        f.write(",\n".join(json.dumps(p, ensure_ascii=False, separators=(",", ":")) for p in prompts))
        f.write("\n]}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--set", required=True, dest="prompt_set")
    ap.add_argument("--prompts", default=PROMPTS)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full-rows", choices=["all", "first", "none"], default="all",
                    help="which full_logits prompts keep their whole last row")
    ap.add_argument("--label")
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                    help="extra header field (provenance)")
    ap.add_argument("--allow-avx512", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="let llama.cpp log to stderr")
    a = ap.parse_args()

    info = L.llama_print_system_info().decode()
    avx512 = "AVX512 = 1" in info
    if avx512 and not a.allow_avx512:
        sys.exit("this llama-cpp-python build uses AVX-512, whose sums differ from the AVX2 kernels "
                 "the references follow (--allow-avx512 overrides; the header records it)")
    with open(a.prompts, encoding="utf-8") as f:
        prompts = json.load(f)["sets"][a.prompt_set]

    r = Runner(a.model, a.n_ctx, a.threads, a.verbose)
    records, kept = [], 0
    for p in prompts:
        keep = bool(p.get("full_logits")) and (a.full_rows == "all" or (a.full_rows == "first" and kept == 0))
        kept += keep
        records.append(run_prompt(r, p, keep))
        print(f"  {p['name']}: {records[-1]['n_prompt_tokens']} tokens", file=sys.stderr)

    head = {
        "generator": "tramontane scripts/llama-logit-refs.py",
        "llama_cpp_python_version": L.__version__,
        "llama_cpp_system_info": info,
        "peer_avx512": avx512,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "label": a.label or os.path.basename(a.model),
        "model_file": os.path.basename(a.model),
        "model_sha256": file_sha256(a.model),
        "model_metadata": metadata(r.model),
        "prompt_set": a.prompt_set,
        "settings": {
            "n_ctx": a.n_ctx, "n_batch": a.n_ctx, "n_ubatch": a.n_ctx,
            "n_threads": a.threads, "n_threads_batch": a.threads,
            "flash_attn": False, "kv_cache_type": "f16 (default)", "n_gpu_layers": 0,
            "prompt_eval": "whole prompt in one llama_decode with logits at every position, then one token per decode",
            "decoding": f"greedy over raw logits, ties to the lowest id; exactly {N_STEPS} steps (EOS does not stop)",
            "full_rows": a.full_rows,
        },
        "vocab": {"n_vocab": r.n_vocab, "bos": L.llama_vocab_bos(r.vocab), "eos": L.llama_vocab_eos(r.vocab)},
    }
    for kv in a.meta:
        k, v = kv.split("=", 1)
        head[k] = v
    r.close()
    write(a.out, head, records)
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
