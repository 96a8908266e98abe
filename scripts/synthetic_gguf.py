"""Shared pieces of the synthetic GGUF generators (scripts/make-moe.py, scripts/make-family.py):
the weight types, seeded random tensors, the donor's tokenizer and the tensor writer.

Every tensor draws from its own numpy Generator seeded with (seed, crc32(name)), so a file is
a function of its generator's arguments, the donor file and the gguf-py version (0.19.0).
"""
import zlib

import numpy as np
import gguf
from gguf import quants

TYPES = {
    # name -> (tensor type, general.file_type)
    "F32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "F16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "Q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "Q4_0": (gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
    "Q4_1": (gguf.GGMLQuantizationType.Q4_1, gguf.LlamaFileType.MOSTLY_Q4_1),
    "Q5_0": (gguf.GGMLQuantizationType.Q5_0, gguf.LlamaFileType.MOSTLY_Q5_0),
    "Q5_1": (gguf.GGMLQuantizationType.Q5_1, gguf.LlamaFileType.MOSTLY_Q5_1),
}


class Weights:
    """Seeded random tensors, one Generator per tensor name."""

    def __init__(self, seed):
        self.seed = seed

    def normal(self, name, shape, scale):
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= np.float32(scale)
        return x

    def norm(self, name, n):
        return np.float32(1.0) + self.normal(name, (n,), 0.1)


def new_writer(path, arch, name, script, ftype, a):
    """A GGUFWriter for `arch` with the metadata every synthetic file starts with: name,
    description (made by `script`), file type, and the dimensions of `a` (n_ctx, n_embd, n_layer,
    n_ff, n_head, n_head_kv), in that order."""
    w = gguf.GGUFWriter(path, arch)
    w.add_name(name)
    w.add_description(f"random weights for conformance tests, made by tramontane scripts/{script}")
    w.add_file_type(int(ftype))
    w.add_context_length(a.n_ctx)
    w.add_embedding_length(a.n_embd)
    w.add_block_count(a.n_layer)
    w.add_feed_forward_length(a.n_ff)
    w.add_head_count(a.n_head)
    w.add_head_count_kv(a.n_head_kv)
    return w


def copy_tokenizer(w, donor):
    """Writes the donor's vocabulary, merges and BOS/EOS ids (no BOS added); returns n_vocab."""

    def value(key):
        return donor.fields[key].contents()

    tokens = value("tokenizer.ggml.tokens")
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model(value("tokenizer.ggml.model"))
    w.add_tokenizer_pre(value("tokenizer.ggml.pre"))
    w.add_token_list(tokens)
    w.add_token_types(value("tokenizer.ggml.token_type"))
    w.add_token_merges(value("tokenizer.ggml.merges"))
    w.add_bos_token_id(value("tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(value("tokenizer.ggml.eos_token_id"))
    w.add_add_bos_token(False)
    return len(tokens)


def tensor_writer(w, qtype):
    """add(name, x, keep_f32=False): x in numpy order (ggml's ne is the reverse of x.shape),
    stored as F32 when keep_f32 (norms, routers, biases), else as `qtype`, quantized by gguf-py
    (whose Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 bytes equal ggml's)."""

    def add(name, x, keep_f32=False):
        if keep_f32 or qtype == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, x)
        elif qtype == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            w.add_tensor(name, quants.quantize(x, qtype), raw_dtype=qtype)

    return add


def finish(w, path):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {path}")
