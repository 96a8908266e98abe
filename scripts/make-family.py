#!/usr/bin/env python3
"""Synthetic dense GGUF files of the model families beyond llama and gemma3, for the
conformance tests against llama.cpp (tests/family_conformance.rs).

usage: make-family.py DONOR.gguf OUT.gguf --arch qwen2|qwen3 [--seed N] [--type Q8_0|...]
                      [--n-embd 256] [--n-ff 512] [--n-layer 2] [--n-head 4] [--n-head-kv 2]
                      [--head-dim N] [--n-ctx 512]

Each file carries its family's real metadata keys and tensor names, as llama.cpp's loader
reads them (src/models/<arch>.cpp), with small dimensions:
  qwen2  Q/K/V biases (F32, `blk.N.attn_{q,k,v}.bias`), NeoX RoPE (base 1e6), and an
         `output.bias` (llama.cpp's qwen2 loader takes one where a file has it).
  qwen3  per-head Q/K RMS norms (`blk.N.attn_{q,k}_norm.weight`, head_dim values), NeoX RoPE,
         and `qwen3.attention.key_length` set to --head-dim, which may differ from
         n_embd / n_head (Qwen3 0.6B: 1024 wide, 16 heads of 128), so the attention is wider
         than the residual stream.
The vocabulary, merges and BOS/EOS ids come from DONOR (the SmolLM2 file). Weights are seeded
random (scripts/synthetic_gguf.py): token_embd 1, output 4/sqrt(n_embd) (logits spread
about 4, so greedy margins are meaningful), output bias 1 N(0,1), projections
1/sqrt(fan-in), norms 1 + 0.1 N(0,1), Q biases 0.2 N(0,1), K biases 1.0 N(0,1) (Qwen2's K biases
are large), V biases 0.2 N(0,1). Norms and biases stay F32; matrices take --type.
"""
import argparse

import numpy as np
import gguf

from synthetic_gguf import TYPES, Weights, copy_tokenizer, finish, tensor_writer

ARCHS = ("qwen2", "qwen3")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("donor", help="GGUF file whose tokenizer is copied")
    ap.add_argument("out")
    ap.add_argument("--arch", required=True, choices=ARCHS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--type", default="Q8_0", choices=sorted(TYPES))
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--n-ff", type=int, default=512)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-head-kv", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=0, help="0: n_embd / n_head (qwen3 may set another)")
    ap.add_argument("--n-ctx", type=int, default=512, help="<arch>.context_length")
    a = ap.parse_args()
    if a.head_dim == 0:
        if a.n_embd % a.n_head:
            ap.error("n_embd must be a multiple of n_head")
        a.head_dim = a.n_embd // a.n_head
    elif a.arch != "qwen3" and a.head_dim * a.n_head != a.n_embd:
        ap.error("only qwen3 may have head_dim * n_head != n_embd")
    if a.n_head % a.n_head_kv:
        ap.error("n_head must be a multiple of n_head_kv")
    return a


def main():
    a = parse_args()
    qtype, ftype = TYPES[a.type]
    donor = gguf.GGUFReader(a.donor)

    w = gguf.GGUFWriter(a.out, a.arch)
    w.add_name(f"tramontane synthetic {a.arch} {a.type} seed {a.seed}")
    w.add_description("random weights for conformance tests, made by tramontane scripts/make-family.py")
    w.add_file_type(int(ftype))
    w.add_context_length(a.n_ctx)
    w.add_embedding_length(a.n_embd)
    w.add_block_count(a.n_layer)
    w.add_feed_forward_length(a.n_ff)
    w.add_head_count(a.n_head)
    w.add_head_count_kv(a.n_head_kv)
    if a.arch == "qwen3":
        w.add_key_length(a.head_dim)
        w.add_value_length(a.head_dim)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    n_vocab = copy_tokenizer(w, donor)

    add = tensor_writer(w, qtype)
    r = Weights(a.seed)
    q_dim, kv_dim = a.n_head * a.head_dim, a.n_head_kv * a.head_dim
    add("token_embd.weight", r.normal("token_embd.weight", (n_vocab, a.n_embd), 1.0))
    for il in range(a.n_layer):
        def blk(suffix):
            return f"blk.{il}.{suffix}"

        def matrix(name, rows, cols):
            add(blk(name), r.normal(blk(name), (rows, cols), 1.0 / np.sqrt(cols)))

        add(blk("attn_norm.weight"), r.norm(blk("attn_norm.weight"), a.n_embd), keep_f32=True)
        for proj, rows in (("attn_q", q_dim), ("attn_k", kv_dim), ("attn_v", kv_dim)):
            matrix(f"{proj}.weight", rows, a.n_embd)
        if a.arch == "qwen2":
            for proj, rows, scale in (("attn_q", q_dim, 0.2), ("attn_k", kv_dim, 1.0), ("attn_v", kv_dim, 0.2)):
                add(blk(f"{proj}.bias"), r.normal(blk(f"{proj}.bias"), (rows,), scale), keep_f32=True)
        if a.arch == "qwen3":
            for norm in ("attn_q_norm", "attn_k_norm"):
                add(blk(f"{norm}.weight"), r.norm(blk(f"{norm}.weight"), a.head_dim), keep_f32=True)
        matrix("attn_output.weight", a.n_embd, q_dim)
        add(blk("ffn_norm.weight"), r.norm(blk("ffn_norm.weight"), a.n_embd), keep_f32=True)
        matrix("ffn_gate.weight", a.n_ff, a.n_embd)
        matrix("ffn_up.weight", a.n_ff, a.n_embd)
        matrix("ffn_down.weight", a.n_embd, a.n_ff)
    add("output_norm.weight", r.norm("output_norm.weight", a.n_embd), keep_f32=True)
    add("output.weight", r.normal("output.weight", (n_vocab, a.n_embd), 4.0 / np.sqrt(a.n_embd)))
    if a.arch == "qwen2":
        add("output.bias", r.normal("output.bias", (n_vocab,), 1.0), keep_f32=True)
    finish(w, a.out)


if __name__ == "__main__":
    main()
