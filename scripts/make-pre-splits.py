#!/usr/bin/env python3
"""Word boundaries of llama.cpp's tekken and gpt-4o pre-tokenizers, from its own unicode.cpp.

usage: make-pre-splits.py --llama-src DIR [--pre tekken|gpt4o] [--out FILE] [--check]

Token ids barely show how a text was split: SmolLM2's merges often rebuild the same tokens from
differently cut words (tests/fixtures/tokenizer/smollm2-tekken.json tells the tekken splitter
from the qwen2 one on one string only). So this compares the words themselves: it compiles
scripts/pre-splits.cpp with llama.cpp's src/unicode.cpp and src/unicode-data.cpp (DIR: the
vendor/llama.cpp folder of the llama-cpp-python 0.3.36 sdist, the llama.cpp the fixtures come
from; `pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36`), with the system
g++ (the peer venv's llama.cpp was built by the same g++ 12.2, whose libstdc++ <regex> runs
this regex), and runs unicode_regex_split(text, {REGEX}) over every string of
tests/fixtures/tokenizer/corpus.json and the extra strings of smollm2-PRE.json, for PRE tekken
(the default) or gpt4o (llama.cpp's `gpt-4o`, no custom splitter either).

Writes FILE (default tests/fixtures/tokenizer/PRE-splits.json): per string its id and the
length in code points of each word. --check writes nothing and compares with FILE.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys

# llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_TEKKEN (checked against DIR below).
TEKKEN = (r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"
          r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"
          r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_GPT4O (and MINIMAX_M2): tekken's, with the contraction
# suffix after each word alternative and digits in runs of up to three.
CONTRACTION = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
GPT4O = (r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+" + CONTRACTION
         + r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*" + CONTRACTION
         + r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

REGEXES = {"tekken": TEKKEN, "gpt4o": GPT4O}


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fixtures = os.path.join(root, "tests", "fixtures", "tokenizer")
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-src", required=True)
    ap.add_argument("--pre", choices=sorted(REGEXES), default="tekken")
    ap.add_argument("--out")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    regex = REGEXES[args.pre]
    out_path = args.out or os.path.join(fixtures, args.pre + "-splits.json")

    src = os.path.join(args.llama_src, "src")
    cpp_literal = regex.replace("\\", "\\\\")
    with open(os.path.join(src, "llama-vocab.cpp"), encoding="utf-8") as f:
        if '"' + cpp_literal + '"' not in f.read():
            sys.exit(f"llama-vocab.cpp does not hold this {args.pre} regex")

    exe = os.path.join(root, "target", "pre-splits")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    subprocess.run(["g++", "-std=c++17", "-O2", "-I" + src, os.path.join(root, "scripts", "pre-splits.cpp"),
                    os.path.join(src, "unicode.cpp"), os.path.join(src, "unicode-data.cpp"), "-o", exe],
                   check=True)

    corpus_path = os.path.join(fixtures, "corpus.json")
    with open(corpus_path, encoding="utf-8") as f:
        strings = [(s["id"], s["text"]) for s in json.load(f)["strings"]]
    with open(os.path.join(fixtures, f"smollm2-{args.pre}.json"), encoding="utf-8") as f:
        strings += [(c["id"], c["text"]) for c in json.load(f)["cases"] if "text" in c]

    stdin = "".join(t.encode("utf-8").hex() + "\n" for _, t in strings)
    out = subprocess.run([exe, regex], input=stdin, capture_output=True, text=True, check=True).stdout
    lines = out.split("\n")[:len(strings)]
    cases = []
    for (i, text), line in zip(strings, lines):
        words = [int(x) for x in line.split()]
        assert sum(words) == len(text), (i, text, words)
        cases.append({"id": i, "words": words})
    head = {
        "generator": "scripts/make-pre-splits.py",
        "regex": regex,
        "unicode_cpp_sha256": sha256(os.path.join(src, "unicode.cpp")),
        "corpus_sha256": sha256(corpus_path),
        "n": len(cases),
    }
    text = (json.dumps(head, ensure_ascii=False)[:-1] + ',"cases":[\n'
            + ",\n".join(json.dumps(c, separators=(",", ":")) for c in cases) + "\n]}\n")
    if args.check:
        with open(out_path, encoding="utf-8") as f:
            same = f.read() == text
        print(f"{out_path}: " + ("reproduced" if same else "differs"))
        sys.exit(0 if same else 1)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote", out_path, file=sys.stderr)


if __name__ == "__main__":
    main()
