#!/usr/bin/env python3
"""The dense twin of a merged-layout MoE GGUF (make-moe.py's Mixtral shape, or make-family.py's
qwen3moe): the same file with each layer's router and experts replaced by one dense FFN made of
the first `used` experts side by side (gate/up rows stacked, down rows concatenated), so its FFN
width is used x expert FFN and it has exactly the MoE's active parameter count per token.
Everything else (metadata, tokenizer, attention, embeddings) is copied byte for byte; no weight
is requantized. A qwen3moe file becomes a qwen3 file (its keys renamed, the expert keys
dropped); a llama-architecture Mixtral stays llama.

usage: make-dense-twin.py MOE.gguf OUT.gguf
Needs numpy and gguf (gguf-py).
"""
import sys

import numpy as np
import gguf
from gguf import GGUFReader, GGUFValueType, GGUFWriter

SKIP_KEYS = ("GGUF.",)
# The dense architecture of each MoE one (the same blocks with a dense FFN).
DENSE_ARCH = {"qwen3moe": "qwen3"}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    r = GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    dense_arch = DENSE_ARCH.get(arch, arch)
    used = int(r.fields[f"{arch}.expert_used_count"].contents())
    ff_key = f"{arch}.expert_feed_forward_length"
    if ff_key not in r.fields:
        ff_key = f"{arch}.feed_forward_length"
    ff = int(r.fields[ff_key].contents())
    drop = {f"{arch}.expert_count", f"{arch}.expert_used_count", f"{arch}.expert_feed_forward_length"}

    w = GGUFWriter(out, dense_arch)
    for key, field in r.fields.items():
        if key.startswith(SKIP_KEYS) or key == "general.architecture" or key in drop:
            continue
        val = field.contents()
        vtype = field.types[0]
        if key.startswith(f"{arch}."):
            key = f"{dense_arch}.{key[len(arch) + 1:]}"
        if key == f"{dense_arch}.feed_forward_length":
            val = ff * used
        elif key == "general.name":
            val = f"{val}-dense-twin"
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(key, val, vtype, sub)

    for t in r.tensors:
        name = t.name
        data = np.asarray(t.data)  # quantized: (rows..., bytes per row); float: (rows..., n)
        qtype = t.tensor_type
        if name.endswith("ffn_gate_inp.weight"):
            continue
        if name.endswith(("ffn_gate_exps.weight", "ffn_up_exps.weight")):
            # [experts, ff, row] -> [used * ff, row]: the first `used` experts' rows stacked
            dense = data[:used].reshape(used * data.shape[1], data.shape[2])
            name = name.replace("_exps.weight", ".weight")
        elif name.endswith("ffn_down_exps.weight"):
            # [experts, dim, ff row] -> [dim, used * ff row]: each output row is the experts'
            # rows side by side (ff is a whole number of blocks, so bytes concatenate)
            dense = np.concatenate([data[e] for e in range(used)], axis=1)
            name = name.replace("_exps.weight", ".weight")
        else:
            dense = data
        dense = np.ascontiguousarray(dense)
        if qtype in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            w.add_tensor(name, dense)
        else:
            w.add_tensor(name, dense, raw_dtype=qtype)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", out)


if __name__ == "__main__":
    main()
