#!/usr/bin/env python3
"""Synthetic Mixtral-architecture GGUF files for the MoE tests and benchmarks.

usage: make-moe.py DONOR.gguf OUT.gguf [--seed N] [--type F32|F16|Q8_0|Q4_0|Q4_1|Q5_0|Q5_1]
                   [--layout merged|per-expert] [--n-embd 256] [--n-ff 512] [--n-layer 2]
                   [--n-expert 8] [--n-expert-used 2] [--n-head 4] [--n-head-kv 2]

The file is what llama.cpp loads as a Mixtral: architecture `llama` with `llama.expert_count`
and `llama.expert_used_count`, an F32 router `blk.N.ffn_gate_inp.weight` per layer, and the
experts either merged into 3-D tensors `blk.N.ffn_{gate,up,down}_exps.weight` (ggml shape
[n_embd, n_ff, n_expert] for gate/up, [n_ff, n_embd, n_expert] for down) or, with
`--layout per-expert`, as 2-D tensors `blk.N.ffn_{gate,up,down}.E.weight` (the older Mixtral
conversion). The vocabulary, merges and BOS/EOS ids come from DONOR (the SmolLM2 file), so the
tests can tokenize real text; every weight is random.

Weights: every tensor draws from its own numpy Generator, seeded with (seed, crc32(name of the
merged tensor)); values are float32 standard normals times a scale:
  token_embd 1, output 2/sqrt(n_embd), attention projections 1/sqrt(n_embd),
  router 3/sqrt(n_embd) (routing logits spread about 3), expert gate/up 1/sqrt(n_embd),
  expert down 1/sqrt(n_ff), norm weights 1 + 0.1 * N(0,1).
Both layouts therefore hold the same values: a per-expert tensor is one slice of the merged
array. Norms and the router stay F32; the other matrices take --type, quantized by gguf-py's
numpy quantizers (their Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 bytes equal ggml's). The output is a function
of the arguments, the donor and the gguf-py version (0.19.0 was used for the recorded sha256s,
see scripts/fetch-models).
"""
import argparse

import numpy as np
import gguf

from synthetic_gguf import TYPES, Weights, copy_tokenizer, finish, new_writer, tensor_writer


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("donor", help="GGUF file whose tokenizer is copied")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--type", default="Q8_0", choices=sorted(TYPES))
    ap.add_argument("--layout", default="merged", choices=["merged", "per-expert"])
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-ff", type=int, default=512)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-expert", type=int, default=8)
    ap.add_argument("--n-expert-used", type=int, default=2)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-head-kv", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=512, help="llama.context_length")
    a = ap.parse_args()
    if a.n_embd % a.n_head or a.n_head % a.n_head_kv:
        ap.error("n_embd must be a multiple of n_head, and n_head of n_head_kv")
    if not 0 < a.n_expert_used <= a.n_expert:
        ap.error("need 0 < n_expert_used <= n_expert")
    return a


def main():
    a = parse_args()
    qtype, ftype = TYPES[a.type]
    donor = gguf.GGUFReader(a.donor)

    head_dim = a.n_embd // a.n_head

    name = f"tramontane synthetic MoE {a.n_expert}x{a.n_expert_used} {a.type} seed {a.seed}"
    w = new_writer(a.out, "llama", name, "make-moe.py", ftype, a)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_expert_count(a.n_expert)
    w.add_expert_used_count(a.n_expert_used)
    n_vocab = copy_tokenizer(w, donor)

    add = tensor_writer(w, qtype)

    r = Weights(a.seed)
    s_embd = 1.0 / np.sqrt(a.n_embd)
    kv_dim = a.n_head_kv * head_dim
    add("token_embd.weight", r.normal("token_embd.weight", (n_vocab, a.n_embd), 1.0))
    for il in range(a.n_layer):
        def blk(suffix):
            return f"blk.{il}.{suffix}"

        add(blk("attn_norm.weight"), r.norm(blk("attn_norm.weight"), a.n_embd), keep_f32=True)
        for proj, rows in (("attn_q", a.n_embd), ("attn_k", kv_dim), ("attn_v", kv_dim), ("attn_output", a.n_embd)):
            add(blk(f"{proj}.weight"), r.normal(blk(f"{proj}.weight"), (rows, a.n_embd), s_embd))
        add(blk("ffn_norm.weight"), r.norm(blk("ffn_norm.weight"), a.n_embd), keep_f32=True)
        add(blk("ffn_gate_inp.weight"), r.normal(blk("ffn_gate_inp.weight"), (a.n_expert, a.n_embd), 3.0 * s_embd),
            keep_f32=True)
        experts = {
            "gate": r.normal(blk("ffn_gate_exps.weight"), (a.n_expert, a.n_ff, a.n_embd), s_embd),
            "up": r.normal(blk("ffn_up_exps.weight"), (a.n_expert, a.n_ff, a.n_embd), s_embd),
            "down": r.normal(blk("ffn_down_exps.weight"), (a.n_expert, a.n_embd, a.n_ff), 1.0 / np.sqrt(a.n_ff)),
        }
        for proj, x in experts.items():
            if a.layout == "merged":
                add(blk(f"ffn_{proj}_exps.weight"), x)
            else:
                for e in range(a.n_expert):
                    add(blk(f"ffn_{proj}.{e}.weight"), np.ascontiguousarray(x[e]))
    add("output_norm.weight", r.norm("output_norm.weight", a.n_embd), keep_f32=True)
    add("output.weight", r.normal("output.weight", (n_vocab, a.n_embd), 2.0 * s_embd))

    finish(w, a.out)


if __name__ == "__main__":
    main()
