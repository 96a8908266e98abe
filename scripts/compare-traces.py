#!/usr/bin/env python3
"""Where does our forward pass first depart from llama.cpp's? Dumps llama.cpp's intermediate
tensors (scripts/dump-llama-tensors.py, run with PEER_PYTHON, an AVX2-only llama-cpp-python
like the references) and ours (examples/trace, release build) for one prompt and a few greedy
steps, then prints per evaluation and layer the max |difference| of each tensor ('=' when
bit-identical).

usage: compare-traces.py MODEL.gguf --prompt TEXT [--steps 2] [--work DIR]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Our name -> llama.cpp's (a '#k' suffix: the k-th callback of that name in one evaluation).
NAMES = [
    ("attn_norm", "attn_norm"), ("Qcur", "Qcur"), ("Kcur", "Kcur"), ("Vcur", "Vcur"),
    ("Qcur_normed", "Qcur_normed"), ("Kcur_normed", "Kcur_normed"),
    ("Qcur_rope", "Qcur#2"), ("Kcur_rope", "Kcur#2"), ("kqv_out", "kqv_out"),
    ("attn_out", "attn_out"), ("attn_post_norm", "attn_post_norm"),
    ("ffn_inp", "ffn_inp|sa_out"), ("ffn_norm", "ffn_norm"),
    ("ffn_gate", "ffn_gate"), ("ffn_up", "ffn_up"), ("ffn_swiglu", "ffn_swiglu"),
    ("ffn_geglu", "ffn_geglu"), ("ffn_out", "ffn_out|ffn_moe_out"),
    ("ffn_post_norm", "ffn_post_norm"), ("l_out", "l_out"),
]


def load(path):
    return np.load(path).astype(np.float32).reshape(-1) if os.path.exists(path) else None


def ref_path(d, name, layer):
    for cand in name.split("|"):
        base, _, k = cand.partition("#")
        f = f"{base}-{layer}" + (f"#{k}" if k else "") + ".npy"
        if os.path.exists(os.path.join(d, f)):
            return os.path.join(d, f)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "traces"))
    args = ap.parse_args()
    peer = os.environ.get("PEER_PYTHON", "python3")
    ref_dir, our_dir = os.path.join(args.work, "llama"), os.path.join(args.work, "ours")
    subprocess.run(["rm", "-rf", ref_dir, our_dir], check=True)
    subprocess.run([peer, os.path.join(ROOT, "scripts", "dump-llama-tensors.py"), args.model,
                    ref_dir, "--prompt", args.prompt, "--steps", str(args.steps)], check=True)
    toks = json.load(open(os.path.join(ref_dir, "tokens.json")))
    subprocess.run(["cargo", "build", "--release", "--example", "trace"], cwd=ROOT, check=True)
    subprocess.run([os.path.join(ROOT, "target", "release", "examples", "trace"),
                    "--model", args.model, "--ids", ",".join(map(str, toks["prompt"])),
                    "--steps", ",".join(map(str, toks["steps"])), "--out", our_dir,
                    "--threads", "2"], check=True)
    for ev in sorted(os.listdir(our_dir), key=int):
        print(f"evaluation {ev} ({'prompt batch' if ev == '0' else 'one token'})")
        layer = 0
        while os.path.exists(os.path.join(our_dir, ev, f"l_out-{layer}.npy")):
            cells = []
            for ours, theirs in NAMES:
                o = load(os.path.join(our_dir, ev, f"{ours}-{layer}.npy"))
                p = ref_path(os.path.join(ref_dir, ev), theirs, layer)
                r = load(p) if p else None
                if o is None or r is None or o.size != r.size:
                    continue
                d = float(np.abs(o - r).max())
                cells.append(f"{ours}:{'=' if d == 0 else f'{d:.1e}'}")
            print(f"  layer {layer:2}: " + " ".join(cells))
            layer += 1
        for name in ("result_norm", "result_output"):
            o = load(os.path.join(our_dir, ev, f"{name}.npy"))
            r = load(os.path.join(ref_dir, ev, f"{name}.npy"))
            if o is not None and r is not None:
                r = r[-o.size:]
                print(f"  {name}: max |diff| {float(np.abs(o - r).max()):.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
