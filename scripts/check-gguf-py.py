#!/usr/bin/env python3
"""Reads a GGUF file with the PyPI `gguf` package's GGUFReader and prints, as one JSON object,
everything tramontane's reader must agree with: header, every key with its type and full value
(nested arrays rebuilt), and every tensor's name, type id, dims, offset, size and CRC-32 of its
bytes. tests/gguf_py.rs runs this and compares it with tramontane's own parse.

Canonical value encoding (the Rust test builds the same): [type, payload] where type is one of
u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool string array; floats are their IEEE bit patterns as
integers (exact, no decimal round trip); an array is ["array", element_type, [payloads...]], and
the payload of an array nested inside it is [element_type, [payloads...]].

usage: check-gguf-py.py FILE        exit 0 and JSON on stdout, or exit 1 with a message
"""
import json
import struct
import sys
import zlib

try:
    import numpy as np
    from gguf import GGUFReader, GGUFValueType
except ImportError as e:  # pragma: no cover
    print(f"check-gguf-py: {e}; run `pip install gguf numpy`", file=sys.stderr)
    sys.exit(3)

NAMES = {
    GGUFValueType.UINT8: "u8", GGUFValueType.INT8: "i8", GGUFValueType.UINT16: "u16",
    GGUFValueType.INT16: "i16", GGUFValueType.UINT32: "u32", GGUFValueType.INT32: "i32",
    GGUFValueType.UINT64: "u64", GGUFValueType.INT64: "i64", GGUFValueType.FLOAT32: "f32",
    GGUFValueType.FLOAT64: "f64", GGUFValueType.BOOL: "bool", GGUFValueType.STRING: "string",
    GGUFValueType.ARRAY: "array",
}


def scalar(name, part):
    """Payload of one scalar numpy part."""
    x = part[0]
    if name == "f32":
        return struct.unpack("<I", struct.pack("<f", float(x)))[0]
    if name == "f64":
        return struct.unpack("<Q", struct.pack("<d", float(x)))[0]
    if name == "bool":
        return bool(x)
    return int(x)


def read_value(parts, i, gtype):
    """Rebuilds the payload of a value of `gtype` starting at parts[i]; returns (payload, next i).

    GGUFReader flattens a field into a list of numpy parts in file order: a string is
    [len, bytes], a scalar [value], an array [elem type, count, elements...]."""
    name = NAMES[gtype]
    if name == "string":
        return str(bytes(parts[i + 1]), encoding="utf-8"), i + 2
    if name != "array":
        return scalar(name, parts[i]), i + 1
    etype = GGUFValueType(int(parts[i][0]))
    count = int(parts[i + 1][0])
    i += 2
    items = []
    for _ in range(count):
        payload, i = read_value(parts, i, etype)
        items.append(payload)
    return [NAMES[etype], items], i


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    r = GGUFReader(sys.argv[1])
    keys = []
    version = None
    for key, field in r.fields.items():
        if key.startswith("GGUF."):  # pseudo-fields for the header
            if key == "GGUF.version":
                version = int(field.parts[-1][0])
            continue
        gtype = field.types[0]
        # parts: [key len, key bytes, value type, value parts...]
        payload, end = read_value(field.parts, 3, gtype)
        assert end == len(field.parts), f"{key}: {end} of {len(field.parts)} parts used"
        if NAMES[gtype] == "array":
            value = ["array", payload[0], payload[1]]
        else:
            value = [NAMES[gtype], payload]
        keys.append({"key": key, "value": value})
    tensors = []
    for t in r.tensors:
        raw = np.asarray(r.data[t.data_offset:t.data_offset + t.n_bytes])
        tensors.append({
            "name": t.name,
            "type": int(t.tensor_type),
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset - r.data_offset),
            "n_bytes": int(t.n_bytes),
            "crc32": zlib.crc32(raw.tobytes()),
        })
    print(json.dumps({
        "version": version,
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "keys": keys,
        "tensors": tensors,
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a file gguf-py refuses: one line, non-zero exit
        print(f"check-gguf-py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
