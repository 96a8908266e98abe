#!/usr/bin/env python3
"""llama.cpp's greedy generations and their detokenization, for tests/generation.rs.

usage: PEER_PYTHON=... scripts/make-generation-refs.py [--ring-only]
       (re-runs itself under PEER_PYTHON, default target/peer-venv-avx2/bin/python:
       llama-cpp-python 0.3.36 built for AVX2 only; --ring-only redoes only the ring section)

For each model variant and prompt: the prompt's ids (llama_tokenize, add_special and
parse_special on), then greedy decoding with llama.cpp (argmax of the raw logits, ties to the
lowest id; one batch for the prompt, then one token per decode), stopping at an
end-of-generation token or after N tokens; the generated ids (without the end-of-generation
token) and llama_detokenize(ids, remove_special=false, unparse_special=false), as base64 bytes.

The "ring" section: Gemma 3 on a prompt of over 800 tokens with n_ctx 1024 and 8-token
micro-batches, so that llama.cpp's sliding-window cache has pad(512 + 8, 256) = 768 cells and
wraps: the ten highest logits at the last prompt position, then 8 greedy tokens.

Variants: SmolLM2 as shipped (pre-tokenizer `smollm`, no space clean-up), SmolLM2 with
`tokenizer.ggml.pre` relabelled to `gpt-2` and to `llama-bpe` (both clean up spaces; the
copies are written under target/generation-refs/), and Gemma 3 (SentencePiece). Writes
tests/fixtures/generation/refs.json.
"""
import base64
import ctypes
import hashlib
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "generation", "refs.json")
WORK = os.path.join(ROOT, "target", "generation-refs")
SMOLLM2 = os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA3 = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")

ITEM2 = ("Café crème brûlée, naïve façade, Straße, 日本語のテキスト, Ελληνικά, emoji 🦀🚀👍🏽 "
         "and © — the word for coffee in French is")
PROMPTS = [
    ("english", "The capital of France is", 24),
    ("code", "def fibonacci(n):\n    ", 24),
    ("cjk", "日本語のテキスト: 東京は", 24),
    ("emoji", "Reply with emoji only: 🦀🚀👍🏽", 24),
    ("mixed", ITEM2, 32),
]
CHAT = {
    "smollm2": "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "gemma3": "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
}
N_CTX = 512
RING_UBATCH = 8
RING_CTX = 1024
RING_PARAGRAPH = ("The lighthouse keeper climbed the spiral stairs every evening at dusk, counting "
                  "the steps as his father had taught him: one hundred and twelve, no more and no "
                  "less. From the lamp room he could see the harbour, the fishing boats coming home, "
                  "and the long grey line of the breakwater. ")


def relabel(src, dst, pre):
    """A copy of `src` whose tokenizer.ggml.pre is `pre`: the header is rebuilt around the new
    string and padded to the alignment again; tensor offsets are relative to the data section,
    so the data section is copied unchanged."""
    import gguf
    r = gguf.GGUFReader(src)
    field = r.fields["tokenizer.ggml.pre"]
    # parts: key length, key, value type, string length, string bytes.
    len_part, str_part = field.parts[3], field.parts[4]
    start = len_part.ctypes.data - r.data.ctypes.data
    end = str_part.ctypes.data - r.data.ctypes.data + len(str_part)
    with open(src, "rb") as f:
        raw = f.read()
    align = int(r.fields["general.alignment"].parts[-1][0]) if "general.alignment" in r.fields else 32
    last = max(r.fields.values(), key=lambda fl: fl.offset)
    # The header ends after the last tensor info; everything from data_offset on is data.
    tensors_end = max(t.field.offset + sum(p.nbytes for p in t.field.parts)
                      for t in r.tensors) if r.tensors else last.offset
    head = raw[:start] + struct.pack("<Q", len(pre)) + pre.encode() + raw[end:tensors_end]
    head += b"\0" * ((-len(head)) % align)
    with open(dst, "wb") as f:
        f.write(head)
        f.write(raw[r.data_offset:])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generate(path, prompts):
    import llama_cpp
    import numpy as np
    info = llama_cpp.llama_print_system_info().decode()
    if "AVX512 = 1" in info:
        sys.exit("the peer reports AVX512; references need an AVX2-only build: " + info)
    llm = llama_cpp.Llama(model_path=path, n_ctx=N_CTX, n_batch=N_CTX, n_ubatch=N_CTX,
                          n_threads=2, n_threads_batch=2, flash_attn=False, verbose=False)
    vocab = llm._model.vocab
    n_vocab = llm.n_vocab()

    def tokenize(text):
        data = text.encode()
        buf = (llama_cpp.llama_token * (len(data) + 8))()
        n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, len(buf), True, True)
        assert n >= 0
        return list(buf[:n])

    def detokenize(ids):
        arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
        cap = 64 + 256 * len(ids)
        out = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, cap, False, False)
        assert n >= 0
        return out.raw[:n]

    cases = []
    for name, text, n_gen in prompts:
        llm.reset()
        llm._ctx.kv_cache_clear()
        prompt = tokenize(text)
        llm.eval(prompt)
        ids, eog = [], None
        for _ in range(n_gen):
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1),
                                        shape=(n_vocab,))
            tok = int(np.argmax(row))
            if llama_cpp.llama_vocab_is_eog(vocab, tok):
                eog = tok
                break
            ids.append(tok)
            llm.eval([tok])
        cases.append({
            "name": name, "text": text, "n": n_gen, "prompt_ids": prompt, "ids": ids,
            "eog": eog, "detok_b64": base64.b64encode(detokenize(ids)).decode(),
        })
    return info, cases


def ring_case(path):
    import llama_cpp
    import numpy as np
    # swa_full off: the ring llama-cli and llama-server use (the C API's default is a full-size
    # cache for the sliding-window layers).
    llm = llama_cpp.Llama(model_path=path, n_ctx=RING_CTX, n_batch=RING_CTX, n_ubatch=RING_UBATCH,
                          n_threads=2, n_threads_batch=2, flash_attn=False, swa_full=False,
                          verbose=False)
    text = RING_PARAGRAPH * 14
    prompt = llm.tokenize(text.encode(), add_bos=True, special=True)
    assert 768 < len(prompt) + 8 < RING_CTX, len(prompt)
    llm.eval(prompt)
    n_vocab = llm.n_vocab()

    def last_row():
        return np.array(np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1),
                                              shape=(n_vocab,)), dtype=np.float32)

    row = last_row()
    top = np.argsort(-row, kind="stable")[:10]
    greedy = []
    for _ in range(8):
        tok = int(np.argmax(last_row()))
        greedy.append(tok)
        llm.eval([tok])
    return {"text": text, "n_ctx": RING_CTX, "n_ubatch": RING_UBATCH, "swa_full": False,
            "prompt_ids": prompt,
            "top10": [[int(i), float(row[i])] for i in top], "greedy": greedy}


def peer_main():
    if "--ring-only" in sys.argv:
        with open(OUT) as f:
            out = json.load(f)
        out["ring"] = ring_case(GEMMA3)
        with open(OUT, "w") as f:
            json.dump(out, f, indent=1, ensure_ascii=False)
            f.write("\n")
        return
    os.makedirs(WORK, exist_ok=True)
    variants = [("smollm2", SMOLLM2, None), ("smollm2-gpt2", SMOLLM2, "gpt-2"),
                ("smollm2-llama-bpe", SMOLLM2, "llama-bpe"), ("gemma3", GEMMA3, None)]
    out = {"generator": "scripts/make-generation-refs.py", "n_ctx": N_CTX, "variants": []}
    for label, src, pre in variants:
        path = src
        if pre is not None:
            path = os.path.join(WORK, f"{label}.gguf")
            relabel(src, path, pre)
        chat = CHAT["gemma3" if label == "gemma3" else "smollm2"]
        info, cases = generate(path, PROMPTS + [("chat", chat, 32)])
        out["llama_cpp_system_info"] = info
        out["variants"].append({"label": label, "model_file": os.path.basename(src),
                                "model_sha256": sha256(src), "relabelled_pre": pre,
                                "cases": cases})
        print(f"{label}: " + ", ".join(f"{c['name']} {len(c['ids'])}{' eog' if c['eog'] is not None else ''}"
                                        for c in cases), file=sys.stderr)
    out["ring"] = ring_case(GEMMA3)
    print(f"ring: {len(out['ring']['prompt_ids'])} prompt tokens", file=sys.stderr)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if os.environ.get("GENERATION_REFS_IN_PEER") == "1":
        peer_main()
    else:
        peer = os.environ.get("PEER_PYTHON",
                              os.path.join(ROOT, "target", "peer-venv-avx2", "bin", "python"))
        env = dict(os.environ, GENERATION_REFS_IN_PEER="1")
        sys.exit(subprocess.run([peer, os.path.abspath(__file__)] + sys.argv[1:], env=env).returncode)
