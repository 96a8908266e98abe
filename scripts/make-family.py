#!/usr/bin/env python3
"""Synthetic dense GGUF files of the model families beyond llama and gemma3, for the
conformance tests against llama.cpp (tests/family_conformance.rs).

usage: make-family.py DONOR.gguf OUT.gguf --arch ARCH [--seed N] [--type Q8_0|...]
                      [--n-embd 256] [--n-ff 512] [--n-layer 2] [--n-head 4] [--n-head-kv 2]
                      [--head-dim N] [--n-ctx 512]
                      [--n-expert N --n-expert-used K] [--n-ff-exp N] [--n-ff-shexp N]
                      [--identical-experts] [--shared-expert zero|none]
ARCH: qwen2, qwen3, qwen3moe, qwen2moe, olmoe, phi3, gpt-oss.

Each file carries its family's real metadata keys and tensor names, as llama.cpp's loader
reads them (src/models/<arch>.cpp), with small dimensions:
  qwen2  Q/K/V biases (F32, `blk.N.attn_{q,k,v}.bias`), NeoX RoPE (base 1e6), and an
         `output.bias` (llama.cpp's qwen2 loader takes one where a file has it).
  qwen3  per-head Q/K RMS norms (`blk.N.attn_{q,k}_norm.weight`, head_dim values), NeoX RoPE,
         and `qwen3.attention.key_length` set to --head-dim, which may differ from
         n_embd / n_head (Qwen3 0.6B: 1024 wide, 16 heads of 128), so the attention is wider
         than the residual stream.
  qwen3moe  qwen3's attention and a mixture of experts: F32 router `blk.N.ffn_gate_inp`, experts
         merged in `blk.N.ffn_{gate,up,down}_exps` (the only layout llama.cpp loads for the
         family), each `qwen3moe.expert_feed_forward_length` (--n-ff-exp) wide.
  qwen2moe  qwen2's attention, merged experts (--n-ff-exp wide) and a shared expert:
         `ffn_gate_inp_shexp` (one F32 row) and `ffn_{gate,up,down}_shexp`
         (`expert_shared_feed_forward_length`, --n-ff-shexp).
  olmoe  NeoX RoPE, Q/K norms over the whole projection (n_embd weights each, so
         --n-head-kv must equal --n-head, as llama.cpp requires), merged experts n_ff wide.
  phi3   fused `blk.N.attn_qkv` (Q rows, then K, then V) and `blk.N.ffn_up` of 2 * n_ff rows
         (gate rows, then up rows; no `ffn_gate`), NeoX RoPE at base 10000 with LongRoPE:
         `rope_factors_short.weight` / `rope_factors_long.weight` (n_rot/2 F32 each: 1 + |N(0,1)|
         and 1 + 4|N(0,1)|), `phi3.rope.scaling.attn_factor` 1.19 and
         `phi3.rope.scaling.original_context_length` --orig-ctx (256): llama.cpp uses the long
         factors in a context above it, the short ones otherwise.
  gpt-oss  Q/K/V and output-projection biases, per-head attention sinks (`blk.N.attn_sinks`,
         F32), the FFN norm named `post_attention_norm`, a sliding window (--window, 64) on
         every other layer (the even ones, llama.cpp's pattern 2), YaRN RoPE (factor 32,
         original context 4096, base 150000, NeoX), and merged experts of --n-ff-exp with
         biases (`ffn_{gate,up,down}_exps.bias`, F32) and a router bias; llama.cpp routes by the
         top-k router logits and a softmax over those k, and gates with its clamped SwiGLU.
         Experts take --type like every other matrix (the real files ship them in MXFP4).
Invariance files:
  --identical-experts  every expert holds the dense FFN of the same seed (the tensors a dense
                       file of the family would have as `blk.N.ffn_{gate,up,down}`), so the
                       file computes what the dense file with n_ff = --n-ff-exp computes.
  --shared-expert zero  the shared expert's down projection is zero: it adds exactly nothing.
  --shared-expert none  no shared-expert tensors (llama.cpp refuses such a qwen2moe file; we
                       read the shared expert where present), the same values otherwise.
The vocabulary, merges and BOS/EOS ids come from DONOR (the SmolLM2 file). Weights are seeded
random (scripts/synthetic_gguf.py): token_embd 1, output 4/sqrt(n_embd) (logits spread
about 4, so greedy margins are meaningful), output bias 1 N(0,1), projections
1/sqrt(fan-in), norms 1 + 0.1 N(0,1), Q biases 0.2 N(0,1), K biases 1.0 N(0,1) (Qwen2's K biases
are large), V biases 0.2 N(0,1). Norms and biases stay F32; matrices take --type.
"""
import argparse

import numpy as np
import gguf

from synthetic_gguf import TYPES, Weights, copy_tokenizer, finish, new_writer, tensor_writer

ARCHS = ("qwen2", "qwen3", "qwen3moe", "qwen2moe", "olmoe", "phi3", "gpt-oss")
MOE = ("qwen3moe", "qwen2moe", "olmoe", "gpt-oss")


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
    ap.add_argument("--n-expert", type=int, default=8)
    ap.add_argument("--n-expert-used", type=int, default=2)
    ap.add_argument("--n-ff-exp", type=int, default=0, help="qwen*moe expert width (0: n_ff)")
    ap.add_argument("--n-ff-shexp", type=int, default=0, help="qwen2moe shared expert width (0: n_ff)")
    ap.add_argument("--identical-experts", action="store_true")
    ap.add_argument("--shared-expert", choices=["random", "zero", "none"], default="random")
    ap.add_argument("--orig-ctx", type=int, default=256, help="phi3 rope.scaling.original_context_length")
    ap.add_argument("--window", type=int, default=64, help="gpt-oss attention.sliding_window")
    a = ap.parse_args()
    a.n_ff_exp = a.n_ff_exp or a.n_ff
    a.n_ff_shexp = a.n_ff_shexp or a.n_ff
    if a.arch in MOE and not 0 < a.n_expert_used <= a.n_expert:
        ap.error("need 0 < n_expert_used <= n_expert")
    if a.arch == "olmoe" and a.n_head_kv != a.n_head:
        ap.error("olmoe needs n_head_kv == n_head (its K norm is n_embd wide)")
    if a.head_dim == 0:
        if a.n_embd % a.n_head:
            ap.error("n_embd must be a multiple of n_head")
        a.head_dim = a.n_embd // a.n_head
    elif a.arch not in ("qwen3", "qwen3moe", "gpt-oss") and a.head_dim * a.n_head != a.n_embd:
        ap.error("only qwen3, qwen3moe and gpt-oss may have head_dim * n_head != n_embd")
    if a.n_head % a.n_head_kv:
        ap.error("n_head must be a multiple of n_head_kv")
    return a


def main():
    a = parse_args()
    qtype, ftype = TYPES[a.type]
    donor = gguf.GGUFReader(a.donor)

    # llama.cpp sets special-token attributes by model name: a name containing "phi3" makes it
    # look up "</s>", which the donor vocabulary lacks (it then refuses the file).
    family = "Phi family" if a.arch == "phi3" else a.arch
    name = f"tramontane synthetic {family} {a.type} seed {a.seed}"
    w = new_writer(a.out, a.arch, name, "make-family.py", ftype, a)
    if a.arch in ("qwen3", "qwen3moe", "gpt-oss"):
        w.add_key_length(a.head_dim)
        w.add_value_length(a.head_dim)
    if a.arch == "gpt-oss":
        w.add_sliding_window(a.window)
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(32.0)
        w.add_rope_scaling_orig_ctx_len(4096)
    if a.arch in MOE:
        w.add_expert_count(a.n_expert)
        w.add_expert_used_count(a.n_expert_used)
    if a.arch in ("qwen3moe", "qwen2moe", "gpt-oss"):
        w.add_expert_feed_forward_length(a.n_ff_exp)
    if a.arch == "qwen2moe":
        w.add_expert_shared_feed_forward_length(a.n_ff_shexp)
    w.add_rope_freq_base({"phi3": 10000.0, "gpt-oss": 150000.0}.get(a.arch, 1000000.0))
    if a.arch == "phi3":
        w.add_rope_dimension_count(a.head_dim)
        w.add_rope_scaling_attn_factors(1.19)
        w.add_rope_scaling_orig_ctx_len(a.orig_ctx)
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
        if a.arch == "phi3":
            matrix("attn_qkv.weight", q_dim + 2 * kv_dim, a.n_embd)
        else:
            for proj, rows in (("attn_q", q_dim), ("attn_k", kv_dim), ("attn_v", kv_dim)):
                matrix(f"{proj}.weight", rows, a.n_embd)
        if a.arch in ("qwen2", "qwen2moe", "gpt-oss"):
            for proj, rows, scale in (("attn_q", q_dim, 0.2), ("attn_k", kv_dim, 1.0), ("attn_v", kv_dim, 0.2)):
                add(blk(f"{proj}.bias"), r.normal(blk(f"{proj}.bias"), (rows,), scale), keep_f32=True)
        if a.arch in ("qwen3", "qwen3moe"):
            for norm in ("attn_q_norm", "attn_k_norm"):
                add(blk(f"{norm}.weight"), r.norm(blk(f"{norm}.weight"), a.head_dim), keep_f32=True)
        if a.arch == "olmoe":
            for norm, width in (("attn_q_norm", q_dim), ("attn_k_norm", kv_dim)):
                add(blk(f"{norm}.weight"), r.norm(blk(f"{norm}.weight"), width), keep_f32=True)
        matrix("attn_output.weight", a.n_embd, q_dim)
        if a.arch == "gpt-oss":
            add(blk("attn_output.bias"), r.normal(blk("attn_output.bias"), (a.n_embd,), 0.2), keep_f32=True)
            # Sink logits about the size of the scores, so that they take a real share.
            add(blk("attn_sinks.weight"), r.normal(blk("attn_sinks.weight"), (a.n_head,), 2.0), keep_f32=True)
        ffn_norm = "post_attention_norm" if a.arch == "gpt-oss" else "ffn_norm"
        add(blk(f"{ffn_norm}.weight"), r.norm(blk(f"{ffn_norm}.weight"), a.n_embd), keep_f32=True)
        if a.arch == "phi3":
            matrix("ffn_up.weight", 2 * a.n_ff, a.n_embd)
            matrix("ffn_down.weight", a.n_embd, a.n_ff)
            continue
        if a.arch not in MOE:
            matrix("ffn_gate.weight", a.n_ff, a.n_embd)
            matrix("ffn_up.weight", a.n_ff, a.n_embd)
            matrix("ffn_down.weight", a.n_embd, a.n_ff)
            continue
        n_exp, n_ff = a.n_expert, (a.n_ff if a.arch == "olmoe" else a.n_ff_exp)
        add(blk("ffn_gate_inp.weight"), r.normal(blk("ffn_gate_inp.weight"), (n_exp, a.n_embd), 3.0 / np.sqrt(a.n_embd)),
            keep_f32=True)
        if a.arch == "gpt-oss":
            add(blk("ffn_gate_inp.bias"), r.normal(blk("ffn_gate_inp.bias"), (n_exp,), 0.5), keep_f32=True)
            for proj, width in (("gate", n_ff), ("up", n_ff), ("down", a.n_embd)):
                name = f"ffn_{proj}_exps.bias"
                add(blk(name), r.normal(blk(name), (n_exp, width), 0.5), keep_f32=True)
        if a.identical_experts:
            def experts(proj, rows, cols):
                one = r.normal(blk(f"ffn_{proj}.weight"), (rows, cols), 1.0 / np.sqrt(cols))
                return np.ascontiguousarray(np.broadcast_to(one, (n_exp, rows, cols)))
        else:
            def experts(proj, rows, cols):
                return r.normal(blk(f"ffn_{proj}_exps.weight"), (n_exp, rows, cols), 1.0 / np.sqrt(cols))
        add(blk("ffn_gate_exps.weight"), experts("gate", n_ff, a.n_embd))
        add(blk("ffn_up_exps.weight"), experts("up", n_ff, a.n_embd))
        add(blk("ffn_down_exps.weight"), experts("down", a.n_embd, n_ff))
        if a.arch == "qwen2moe" and a.shared_expert != "none":
            add(blk("ffn_gate_inp_shexp.weight"), r.normal(blk("ffn_gate_inp_shexp.weight"), (a.n_embd,), 1.0),
                keep_f32=True)
            matrix("ffn_gate_shexp.weight", a.n_ff_shexp, a.n_embd)
            matrix("ffn_up_shexp.weight", a.n_ff_shexp, a.n_embd)
            if a.shared_expert == "zero":
                add(blk("ffn_down_shexp.weight"), np.zeros((a.n_embd, a.n_ff_shexp), dtype=np.float32))
            else:
                matrix("ffn_down_shexp.weight", a.n_embd, a.n_ff_shexp)
    if a.arch == "phi3":
        half = a.head_dim // 2
        short = 1.0 + np.abs(r.normal("rope_factors_short.weight", (half,), 1.0))
        long = 1.0 + np.abs(r.normal("rope_factors_long.weight", (half,), 4.0))
        add("rope_factors_short.weight", short.astype(np.float32), keep_f32=True)
        add("rope_factors_long.weight", long.astype(np.float32), keep_f32=True)
    add("output_norm.weight", r.norm("output_norm.weight", a.n_embd), keep_f32=True)
    add("output.weight", r.normal("output.weight", (n_vocab, a.n_embd), 4.0 / np.sqrt(a.n_embd)))
    if a.arch == "qwen2":  # (llama.cpp's qwen2moe loader has no output bias)
        add("output.bias", r.normal("output.bias", (n_vocab,), 1.0), keep_f32=True)
    finish(w, a.out)


if __name__ == "__main__":
    main()
