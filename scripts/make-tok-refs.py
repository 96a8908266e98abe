#!/usr/bin/env python3
"""Make tramontane's own tokenizer fixtures with llama.cpp (through llama-cpp-python).

usage: make-tok-refs.py [--models DIR] [--out DIR] [--work DIR]
       make-tok-refs.py --reference [--check]
  (run with a python that has llama_cpp 0.3.36 and gguf, e.g. target/peer-venv-avx2/bin/python)

Writes OUT/corpus.json (the strings, built deterministically below) and, per configuration,
OUT/<name>.json with llama.cpp's results for every string s:
  ids        = llama_tokenize(vocab, s, add_special=True,  parse_special=True)
  ids_nps    = llama_tokenize(vocab, s, add_special=True,  parse_special=False)
  ids_raw    = llama_tokenize(vocab, s, add_special=False, parse_special=False)
  detok      = llama_detokenize(vocab, ids,     remove_special=False, unparse_special=True)
  detok_nps  = llama_detokenize(vocab, ids_nps, remove_special=False, unparse_special=True)
  detok_rs   = llama_detokenize(vocab, ids,     remove_special=True,  unparse_special=False)
Detokenized bytes are stored as UTF-8 text when valid, else as base64 in the *_b64 field.

Configurations: the two models as they are, and vocab-only copies of them with one metadata
value changed, to reach code paths the two files do not use (other pre-tokenizers of the same
byte-level vocabulary; a SentencePiece vocabulary with a space prefix, as Llama 2 / Mistral).
The copies are written under WORK (default target/tok-refs) and are not committed; the JSON
header records the override so the tests apply the same one. A configuration may add strings of
its own after the corpus (EXTRA; smollm2-tekken, smollm2-gpt4o): their cases carry their "text",
their ids continue after the corpus, and the header counts them in "n_extra" (and in "n").

--reference: the reference corpus instead, tests/fixtures/tokenizer/reference/corpus.json (432
strings, copied in as data; this script does not write it). For SmolLM2 and Gemma 3 as they are,
writes reference/<name>.json with, per string, its text and
  ids, ids_nps                as above
  detok, detok_nps            as above, decoded as UTF-8 with errors=replace (the exact bytes in
                              detok_b64 / detok_nps_b64 when they are not valid UTF-8)
--check (with --reference) writes nothing and compares each case and the header's vocabulary
values with the committed files.
"""
import argparse
import base64
import ctypes
import hashlib
import json
import os
import random
import sys

import gguf
import llama_cpp

CONFIGS = [
    # name, model file, metadata overrides
    ("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", {}),
    ("gemma3", "gemma-3-270m-q4_k_m.gguf", {}),
    ("smollm2-llama3", "SmolLM2-135M-Instruct.Q4_1.gguf", {"tokenizer.ggml.pre": "llama-bpe"}),
    ("smollm2-qwen2", "SmolLM2-135M-Instruct.Q4_1.gguf", {"tokenizer.ggml.pre": "qwen2"}),
    ("smollm2-gpt2", "SmolLM2-135M-Instruct.Q4_1.gguf", {"tokenizer.ggml.pre": "gpt-2"}),
    ("smollm2-default", "SmolLM2-135M-Instruct.Q4_1.gguf", {"tokenizer.ggml.pre": "default"}),
    ("gemma3-spaceprefix", "gemma-3-270m-q4_k_m.gguf", {"tokenizer.ggml.add_space_prefix": True}),
    ("smollm2-tekken", "SmolLM2-135M-Instruct.Q4_1.gguf", {"tokenizer.ggml.pre": "tekken"}),
    ("smollm2-gpt4o", "SmolLM2-135M-Instruct.Q4_1.gguf", {"tokenizer.ggml.pre": "gpt-4o"}),
]


def tekken_extra():
    """Strings only the tekken configuration adds after the corpus (corpus.json stays as it is,
    so the other files are unchanged): what its regex does differently (cuts at lower-to-upper
    case changes, single digits, punctuation runs taking newlines and '/', no contractions,
    marks outside words, and llama.cpp's collapsed form, where every non-ASCII letter counts as
    upper and lower case at once)."""
    s = [
        "Hello World HELLO WORLD hello world",
        "HTTPServer XMLHttpRequest iPhone eBay McDonald MacBookPro getHTTPResponseCode",
        "ABCdef abcDEF aBcDeF AbC ABC A a Ab aB",
        "CamelCaseWord lowerCamelCase UPPER_SNAKE_CASE Title Case",
        "ÉCOLE École école ÉCOLEs Élan ÀBC AÀB aÀb ÀbC",
        "ÄÖÜ äöü ÄÖÜäöü aÄb AÄB Straße STRASSE ẞ",
        "ΑΒΓ αβγ ΑΒΓαβγ Αθήνα ΑΘΗΝΑ",
        "Привет ПРИВЕТ ПриветМир приветМИР",
        "ǅungla ǅ ǈ ǋ ᾈ ᾼ",
        "ʰʲ ʰello Helloʰ ʼapostrophe ˈstress",
        "カタカナー ー々 日本語ABC ABC日本語 abc日本",
        "e\u0301 E\u0301COLE Cafe\u0301s \u0301x x\u0301 a\u0300\u0301b",
        "हिन्दी नमस्ते ภาษาไทย שָׁלוֹם مَرْحَبًا",
        "x\u0301Y X\u0301y \u0301\u0301 !\u0301A",
        "2024 1234567890 x1y22z333 A1B2c3 ١٢٣ ½² Ⅻ",
        "end.\n/next", "!!!\n\n", "a/b//c", "http://x.y/z/", "... /\n/", " ?/\r\nx",
        "-->//\r\n\r\nx", "»\n«", "(a)/(b)\r/", "// comment\n/* c */\n", "C:\\Dir\\File/",
        "don't DON'T It'S l'été o'Neil O'NEIL rock'n'roll", "' s 'S 'll 'LL",
        "a\r\nb", "\r\n\r\n", "  \r\n  x", "x  \t y", "a\u3000B", "\u00a0Word",
        "line\r\n/path", " \n\tA", "\tTab\tTAB\ttab",
    ]
    # Seeded mixes of letters of every case, marks, digits, slashes and line breaks.
    pool = (list("aAzZ09 /.!'\r\n\t")
            + ["é", "É", "ǅ", "ʰ", "日", "ー", "\u0301", "\u0903", "\u3000", "١", "Ab", "aB",
               "ABc", "  ", "\r\n", "/\n", "'s"])
    rng = random.Random(20250301)
    for _ in range(40):
        s.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 30))))
    return s


def gpt4o_extra():
    """Strings only the gpt-4o configuration adds after the corpus: all of tekken's (its regex is
    tekken's plus two things), then what it adds: English contractions in any case kept on the
    word before them (and where they do not follow letters, or follow a digit, a mark or
    punctuation), and digits in runs of up to three, for runs of 1 to 7 digits and in between
    other characters."""
    s = tekken_extra()
    s += [
        "don't won't I'm you're we've they'll she'd it's",
        "DON'T WON'T I'M YOU'RE WE'VE THEY'LL SHE'D IT'S",
        "Don'T doN't I'm i'M You'Re you'rE WE'Ve We'vE they'Ll THEY'lL she'D",
        "it's's it'sS it'ss it'S's 'tis 're 've 'm 'll 'd 'x",
        "x'y x'sy x're' x'llama x'dog rock'n'roll o'clock y'all",
        "l'été l'Été É's É'S ÉCOLE's ÀB'LL aÀ'd ΑΒΓ's Привет'Re",
        "1's 2'T a1's 'S1 e\u0301's x\u0301's !'s .'S ''s '''ll",
        "ab 's a 's a''s a's' a`s a’s a‘s 'ʼs",
        "McDonald's HTTPServer's iPhone'S XMLHttp're getHTTP'm",
        "can't\nwon't\r\nshan't\t'll",
        "1 12 123 1234 12345 123456 1234567",
        "0 00 000 0000 00000 000000 0000000",
        "x1 x12 x123 x1234 x12345 x123456 x1234567",
        "1x 12x 123x 1234x 12345x 123456x 1234567x",
        "1,234,567.89 3.14159 1e10 0x1F2E3D 2024-12-06 12:34:56",
        "v1.2.3 $1234567 +12345 -123456 #1234 50% 1/2 12/34/5678",
        "١٢٣٤٥ ½²³⁴ ⅫⅪ 12½34 1٢3٤5 ①②③④",
        "12'34 1234's 123'S abc123def 1a2b3c 12ab34CD56",
        "  123  4567\n89\r\n\t1234567 ",
    ]
    # Seeded mixes weighted towards what gpt-4o adds: apostrophes before letters of either
    # case, digit runs of every length, next to letters of every case and marks.
    pool = (list("aAzZ0123456789 /.!'\r\n")
            + ["'s", "'S", "'t", "'re", "'RE", "'Ve", "'m", "'ll", "'LL", "'d", "'D", "é", "É",
               "ʰ", "日", "\u0301", "١", "Ab", "aB", "ABc", "12", "345", "6789", "\r\n"])
    rng = random.Random(20261206)
    for _ in range(40):
        s.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 30))))
    return s


# Strings added after the corpus for one configuration only (ids continue after the corpus).
EXTRA = {"smollm2-tekken": tekken_extra, "smollm2-gpt4o": gpt4o_extra}


def corpus():
    """The strings: hand-picked cases per category, then seeded random mixes."""
    s = []

    def add(cat, *texts):
        for t in texts:
            s.append((cat, t))

    add("prose",
        "The quick brown fox jumps over the lazy dog.",
        "Once upon a time, in a land far, far away, there lived a curious little robot.",
        "Hello, world! How are you doing today?",
        "It was the best of times, it was the worst of times.",
        "The wind, which had been blowing all night, finally died down at dawn.",
        "She said: \"I'll be there at 5 p.m.\" -- and she was.",
        "Dr. Smith (the new one) arrived on Mon., Jan. 3rd; nobody expected him.",
        "e.g. i.e. etc. vs. a.m. p.m. U.S.A.",
        "ALL CAPS SENTENCE WITH SHOUTING!!!",
        "mixedCase camelCase PascalCase snake_case kebab-case SCREAMING_CASE",
        "A sentence that ends with several spaces.     ",
        "   A sentence that starts with spaces.",
        "Why? Because! Really... Yes; no: maybe.",
        "Ellipsis… em—dash – en-dash “curly quotes” ‘single’ «guillemets»",
        "Tramontane is a cold north wind that blows over the Mediterranean.")
    add("contractions",
        "I'm you're it's they've we'll he'd don't can't won't",
        "I'M YOU'RE IT'S THEY'VE WE'LL HE'D DON'T",
        "It'S mIxEd'Ll cAsE'Ve 'D 'M 'T 'Re",
        "'s 't 're 've 'm 'll 'd",
        "rock 'n' roll, 'tis the season, ma'am, o'clock",
        "don’t it’s (typographic apostrophe)",
        "' ''' '' x' 'x",
        "it ' s  we 're  I 'm  they 've  don 't  he 'll  she 'd",
        "Hello , world ! What ? Yes . No ,",
        "a ' ' b ' c",
        "l'été d'un homme qu'il aujourd'hui",
        "'ll'll'll 's's")
    add("code",
        "def add(a, b):\n    return a + b\n",
        "fn main() {\n    let x: Vec<u32> = (0..10).collect();\n    println!(\"{x:?}\");\n}\n",
        "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
        "const f = async (x) => { await fetch(`/api/${x}`); };",
        "{\"key\": [1, 2.5, true, null], \"nested\": {\"a\": \"b\"}}",
        "name: test\nsteps:\n  - run: cargo test\n    env:\n      RUST_LOG: debug\n",
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
        "for i in $(seq 1 10); do echo \"$i\" | grep -E '^[0-9]+$'; done",
        "<div class=\"x\"><span>hi</span></div>",
        "<table><tr><td>1</td><td>2</td></tr></table>",
        "if (a != b && c <= d || e >= f) { x += 1; y -= 2; z *= 3; w /= 4; }",
        "x = [i**2 for i in range(100) if i % 3 == 0]  # comment",
        "\tindented with tab\n\t\tdouble tab\n",
        "    four spaces\n        eight spaces\n",
        "/* block */ // line\n#pragma once\n",
        "a+=b; c-=d; e^=f; g|=h; i&=j; k<<=1; l>>=2; m~n",
        "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@example\\.com$",
        "\\frac{a}{b} + \\sqrt{x^2 + y^2} = \\sum_{i=1}^{n} i",
        "```python\nprint('hi')\n```",
        "$ cargo build --release && ./target/release/app --help")
    add("digits",
        "1", "12", "123", "1234", "12345", "123456", "1234567",
        "12345678901234567890",
        "3.14159 2.71828 1.41421",
        "1,000,000 and 1.000.000 and 1 000 000",
        "-42 +17 1e-10 6.02e23 0x1F 0b1010 0o17",
        "2024-05-19T12:34:56Z",
        "+1 (555) 123-4567",
        "abc123def456 1st 2nd 3rd 4th",
        "٠١٢٣٤٥٦٧٨٩ ۱۲۳ १२३ ১২৩",
        "１２３ fullwidth and ²³ superscript and ½ ¼ ¾ fractions",
        "Ⅻ roman ⅷ and ① circled",
        "v1.2.3-beta.4+build.5",
        "0.1 + 0.2 = 0.30000000000000004",
        "99 bottles, 100 bottles, 1000 bottles, 10000 bottles")
    add("whitespace",
        " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r\n\r\n", "\r", " \n ",
        "a \n b", "a\t\tb", "a  \t  b", "x   ", "   x", "\n\nx\n\n", " \r\n x",
        "a\u00a0b", "a\u3000b", "a\u2003b", "a\u0085b", "a\u2028b\u2029c",
        "\u000b\u000c", "a\u001cb\u001dc\u001ed\u001ff",
        "a \u00a0 b", " \u3000 ", "\u00a0", "\u2009x\u2009",
        " " * 40, "\n" * 30, "\t" * 35, "x" + " " * 17 + "y",
        " \t \n \t \n", "line1\nline2\r\nline3\rline4",
        "trailing newline\n", "\ntrailing and leading\n",
        "word  \n  word", "tabs\tbetween\twords")
    add("accents",
        "café naïve résumé", "Ægir Øresund Ångström",
        "ß ẞ Straße STRASSE", "İstanbul ıi Iİ", "e\u0301 vs é, A\u030a vs Å",
        "Tiếng Việt có dấu", "zażółć gęślą jaźń", "Ça va? Où êtes-vous?",
        "ñandú pingüino", "Ελληνικά: αβγδε ΑΒΓΔΕ ς", "Русский текст: Привет, мир!",
        "Українська: ґїєі", "a\u0300\u0301\u0302\u0303 stacked marks")
    add("scripts",
        "العربية: مرحبا بالعالم", "עברית: שלום עולם", "हिन्दी: नमस्ते दुनिया",
        "বাংলা ভাষা", "தமிழ் மொழி", "ภาษาไทยไม่มีช่องว่าง", "ქართული ენა", "Հայերեն",
        "አማርኛ", "한국어 텍스트입니다", "각 jamo", "日本語のテキストです。カタカナ、ひらがな。",
        "ﾊﾝｶｸｶﾀｶﾅ", "中文文本，简体字。", "繁體中文，正體字。", "𠀀𠀁𠀂 plane 2", "ᠮᠣᠩᠭᠣᠯ",
        "混合text和English", "日本語123と456", "ㄅㄆㄇ bopomofo")
    add("emoji",
        "😀", "😀😃😄", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "1️⃣ #️⃣", "❤️ ♥",
        "I love 🍕 and 🍣!", "🤖 robots 🤖", "🏳️‍🌈", "✈️→🗽", "🫠🫡🥹",
        "emoji at end 🎉", "🎉 emoji at start", "a😀b😀c")
    add("special",
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
        "<|endoftext|>", "<|im_start|><|im_start|>", " <|im_end|> ", "<|im_end",
        "|im_end|>", "<<|im_end|>>", "<reponame>foo<file_sep>bar.py", "<jupyter_code>x=1",
        "<bos>", "<eos>", "<pad>", "<unk>", "</s>", "<mask>", "<unused0>",
        "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
        "text<start_of_turn>text", "[multimodal]", "<start_of_image>", "<end_of_image>",
        "<br><hr><table></table>", "</div></div>", "text <bos> text", "<bos><bos>",
        "<start_of_turn>", " <start_of_turn> ", "<end_of_turn>\n\n", "\n<|im_end|>\n",
        "<|im_start|>system\nYou are helpful.<|im_end|>")
    add("misc",
        "https://example.com/path?q=1&r=2#frag", "user@example.com",
        "/usr/local/bin/python3 C:\\Windows\\System32", "**bold** _italic_ `code` [link](url)",
        "# Heading\n\n- item 1\n- item 2\n", "∑∫√∞≈≠≤≥ ∀x∃y", "€100 $5 £3 ¥1000 ₹50 ₿",
        "→ ← ↑ ↓ ⇒ ⇔", "┌─┐│└┘", "a\u200bb\u200cc\u200dd", "\u202eabc\u202c",
        "\ufeffBOM", "nul\u0000char", "del\u007fchar", "ctrl\u0001\u0002\u0003",
        "\ue000 private use", "\uffff noncharacter", "\U0010ffff last", "\u0378 unassigned",
        "©®™ ℃ ℉ №", "¿¡ ¡Hola! ¿Qué?", "…‥", "――――", "·•◦")
    add("long",
        "-" * 100, "=" * 64, "." * 50, "a" * 300, "ab" * 200, "😀" * 20, "漢" * 50,
        " ".join(["word"] * 120),
        ("The tramontane blows from the north across the plains, cold and dry, "
         "clearing the sky of every cloud. Farmers plant cypress hedges against it; "
         "sailors watch for it. It can last for days, and when it stops the silence "
         "feels strange. ") * 6,
        "\n".join("line %d: value=%d" % (i, i * i) for i in range(40)))

    # Seeded random mixes over a pool that crosses every splitter boundary.
    pool = (list("abcXYZ019 '\t\n\r.,!?-_$+<=>^~|\"()[]{}#@")
            + ["é", "ß", "İ", "ı", "Ω", "ж", "ع", "ש", "क", "ก", "한", "日", "本", "ｶ", "𠀀",
               "٣", "²", "½", "Ⅻ", "\u00a0", "\u3000", "\u0085", "\u2028", "\u001c", "\u000b",
               "\u200d", "\u0301", "😀", "👍🏽", "🇫🇷", "’", "“", "…", "€", "∑", "\u0000",
               "<|im_end|>", "<|im_start|>", "<bos>", "<end_of_turn>", "<table>", "</s>",
               "  ", "\n\n", "\t\t", "123", "'s", "'LL", "'re", " 's", " ,", " ."])
    rng = random.Random(20240519)
    for _ in range(70):
        n = rng.randint(1, 40)
        add("random", "".join(rng.choice(pool) for _ in range(n)))

    return [{"id": i, "category": c, "text": t} for i, (c, t) in enumerate(s)]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def vocab_only_copy(src, dst, overrides):
    """A GGUF with src's metadata (overrides applied) and no tensors."""
    r = gguf.GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(dst, arch)
    for key, field in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY and len(field.types) > 1 else None
        value = overrides.get(key, field.contents())
        w.add_key_value(key, value, vtype, sub_type=sub)
    for key, value in overrides.items():
        if key not in r.fields:
            vt = gguf.GGUFValueType.BOOL if isinstance(value, bool) else gguf.GGUFValueType.STRING
            w.add_key_value(key, value, vt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tokenize(vocab, b, add_special, parse_special):
    n_max = len(b) + 16
    buf = (llama_cpp.llama_token * n_max)()
    n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, n_max, add_special, parse_special)
    if n < 0:
        n_max = -n
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, n_max, add_special, parse_special)
        assert n >= 0
    return [int(t) for t in buf[:n]]


def detokenize(vocab, ids, remove_special, unparse_special):
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    cap = 64 + 64 * len(ids)
    out = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, cap, remove_special, unparse_special)
    if n < 0:
        cap = -n
        out = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), out, cap, remove_special, unparse_special)
        assert n >= 0
    return out.raw[:n]


def put_text(rec, key, raw):
    try:
        rec[key] = raw.decode("utf-8")
    except UnicodeDecodeError:
        rec[key + "_b64"] = base64.b64encode(raw).decode()


def load_vocab(path):
    mp = llama_cpp.llama_model_default_params()
    mp.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(path.encode(), mp)
    assert model, path
    return model, llama_cpp.llama_model_get_vocab(model)


def vocab_header(vocab):
    return {
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
        "bos_id": int(llama_cpp.llama_vocab_bos(vocab)),
        "eos_id": int(llama_cpp.llama_vocab_eos(vocab)),
        "n_vocab": int(llama_cpp.llama_vocab_n_tokens(vocab)),
    }


def put_lossy(rec, key, raw):
    """The text with errors=replace; the exact bytes too when they are not UTF-8."""
    rec[key] = raw.decode("utf-8", errors="replace")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        rec[key + "_b64"] = base64.b64encode(raw).decode()


def reference(args):
    """Refs for the reference corpus (tests/fixtures/tokenizer/reference/)."""
    ref_dir = os.path.join(args.out, "reference")
    corpus_path = os.path.join(ref_dir, "corpus.json")
    with open(corpus_path, encoding="utf-8") as f:
        strings = json.load(f)["strings"]
    llama_cpp.llama_backend_init()
    failed = []
    for name, model_file, _ in CONFIGS[:2]:
        path = os.path.join(args.models, model_file)
        model, vocab = load_vocab(path)
        cases = []
        for s in strings:
            b = s["text"].encode("utf-8")
            rec = {"id": s["id"], "text": s["text"]}
            rec["ids"] = tokenize(vocab, b, True, True)
            put_lossy(rec, "detok", detokenize(vocab, rec["ids"], False, True))
            rec["ids_nps"] = tokenize(vocab, b, True, False)
            put_lossy(rec, "detok_nps", detokenize(vocab, rec["ids_nps"], False, True))
            cases.append(rec)
        head = {
            "generator": "scripts/make-tok-refs.py --reference",
            "llama_cpp_python_version": llama_cpp.__version__,
            "model_file": model_file,
            "model_sha256": sha256(path),
            "corpus_sha256": sha256(corpus_path),
            **vocab_header(vocab),
            "n": len(cases),
        }
        llama_cpp.llama_model_free(model)
        out_path = os.path.join(ref_dir, name + ".json")
        if args.check:
            with open(out_path, encoding="utf-8") as f:
                old = json.load(f)
            bad = [k for k in ("add_bos", "add_eos", "bos_id", "eos_id", "n_vocab", "corpus_sha256")
                   if old.get(k) != head[k]]
            bad += [c["id"] for c, o in zip(cases, old["cases"]) if c != o]
            if len(cases) != len(old["cases"]):
                bad.append("number of cases")
            print(f"{out_path}: " + (f"differs: {bad[:20]}" if bad else "reproduced (every case identical)"))
            if bad:
                failed.append(name)
            continue
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(json.dumps(head, ensure_ascii=False)[:-1] + ',"cases":[\n')
            f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
            f.write("\n]}\n")
        print("wrote", out_path, file=sys.stderr)
    if failed:
        sys.exit(f"not reproduced: {failed}")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=os.path.join(root, "models"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "fixtures", "tokenizer"))
    ap.add_argument("--work", default=os.path.join(root, "target", "tok-refs"))
    ap.add_argument("--reference", action="store_true", help="the reference corpus (see above)")
    ap.add_argument("--check", action="store_true", help="with --reference: compare, write nothing")
    args = ap.parse_args()
    if args.reference:
        return reference(args)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)

    strings = corpus()
    corpus_path = os.path.join(args.out, "corpus.json")
    with open(corpus_path, "w", encoding="utf-8") as f:
        f.write('{"generator":"scripts/make-tok-refs.py","strings":[\n')
        f.write(",\n".join(json.dumps(x, ensure_ascii=False) for x in strings))
        f.write("\n]}\n")

    llama_cpp.llama_backend_init()
    for name, model_file, overrides in CONFIGS:
        path = os.path.join(args.models, model_file)
        if overrides:
            copy = os.path.join(args.work, name + ".gguf")
            vocab_only_copy(path, copy, overrides)
            path = copy
        mp = llama_cpp.llama_model_default_params()
        mp.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(path.encode(), mp)
        assert model, path
        vocab = llama_cpp.llama_model_get_vocab(model)
        cases = []
        extra = EXTRA.get(name, list)()
        own = strings + [{"id": len(strings) + i, "text": t, "extra": True} for i, t in enumerate(extra)]
        for s in own:
            b = s["text"].encode("utf-8")
            rec = {"id": s["id"]}
            if s.get("extra"):
                rec["text"] = s["text"]
            rec["ids"] = tokenize(vocab, b, True, True)
            rec["ids_nps"] = tokenize(vocab, b, True, False)
            rec["ids_raw"] = tokenize(vocab, b, False, False)
            put_text(rec, "detok", detokenize(vocab, rec["ids"], False, True))
            put_text(rec, "detok_nps", detokenize(vocab, rec["ids_nps"], False, True))
            put_text(rec, "detok_rs", detokenize(vocab, rec["ids"], True, False))
            cases.append(rec)
        head = {
            "generator": "scripts/make-tok-refs.py",
            "llama_cpp_python_version": llama_cpp.__version__,
            "model_file": model_file,
            "model_sha256": sha256(os.path.join(args.models, model_file)),
            "overrides": overrides,
            "corpus_sha256": sha256(corpus_path),
            "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
            "add_eos": bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
            "bos_id": int(llama_cpp.llama_vocab_bos(vocab)),
            "eos_id": int(llama_cpp.llama_vocab_eos(vocab)),
            "n_vocab": int(llama_cpp.llama_vocab_n_tokens(vocab)),
            "n": len(cases),
        }
        if extra:
            head["n_extra"] = len(extra)
        out_path = os.path.join(args.out, name + ".json")
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(json.dumps(head, ensure_ascii=False)[:-1] + ',"cases":[\n')
            f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
            f.write("\n]}\n")
        print("wrote", out_path, file=sys.stderr)
        llama_cpp.llama_model_free(model)


if __name__ == "__main__":
    main()
