#!/usr/bin/env python3
"""Reference renderings of chat templates, made with Python's jinja2 configured the way Hugging
Face transformers' `apply_chat_template` configures it, for tests/chat_templates.rs.

    scripts/make-chat-refs.py                      render: writes tests/fixtures/chat/refs.json
    scripts/make-chat-refs.py --import LLAMA_CPP   (re)copy the public templates from a llama.cpp
                                                   source tree into tests/fixtures/chat/templates/

Needs jinja2 (e.g. /work/main/target/peer-venv-avx2/bin/python, or `pip install jinja2` in a venv).

The environment mirrors transformers' `_compile_jinja_template`: an ImmutableSandboxedEnvironment
with trim_blocks, lstrip_blocks, the loopcontrols extension and the `{% generation %}` block; a `tojson` filter that is
`json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)`; the globals
`raise_exception(msg)` and `strftime_now(fmt)`. The template receives `messages`, `tools=None`,
`documents=None`, `add_generation_prompt` and the special-token texts `bos_token` and
`eos_token`, as `render_jinja_template` passes them. Two deliberate differences keep the
references reproducible: `strftime_now` formats a fixed instant (NOW, in UTC) instead of the
local clock, and `enable_thinking` is passed only in the cases that set it.
"""

import datetime
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "chat"
TEMPLATES = FIXTURES / "templates"

# 2024-07-26 12:34:56 UTC, a Friday: the instant strftime_now reports in every reference.
NOW = 1721997296
assert datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).strftime("%F %T") == "2024-07-26 12:34:56"

# ---------------------------------------------------------------------------------------------
# The templates: file name -> (bos text, eos text). The token texts are those of the models the
# templates come from (what llama.cpp passes: the BOS/EOS token pieces).
TEMPLATE_TOKENS = {
    # llama.cpp's own ChatML (common/chat.cpp CHATML_TEMPLATE_SRC): what our ChatML family mirrors.
    "chatml.jinja": ("", "<|im_end|>"),
    # SmolLM2-135M-Instruct's tokenizer.chat_template, as stored in its GGUF.
    "smollm2-135m-instruct.jinja": ("<|im_start|>", "<|im_end|>"),
    "llama-3-8b-instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "mistral-v1.jinja": ("<s>", "</s>"),
    "mistral-v3.jinja": ("<s>", "</s>"),
    "mistralai-Mistral-Nemo-Instruct-2407.jinja": ("<s>", "</s>"),
    "mistral-v7.jinja": ("<s>", "</s>"),
    "Mistral-Small-3.2-24B-Instruct-2506.jinja": ("<s>", "</s>"),
    "gemma-3-it.jinja": ("<bos>", "<eos>"),
    "google-gemma-2-2b-it.jinja": ("<bos>", "<eos>"),
    "microsoft-Phi-3.5-mini-instruct.jinja": ("<s>", "<|endoftext|>"),
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("", "<|im_end|>"),
    "Qwen-Qwen3-0.6B.jinja": ("", "<|im_end|>"),
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja": ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    "HuggingFaceTB-SmolLM3-3B.jinja": ("", "<|im_end|>"),
    "ibm-granite-granite-3.3-2B-Instruct.jinja": ("<|end_of_text|>", "<|end_of_text|>"),
    # `{% generation %}` blocks, `tools is iterable` with tools None, Python's str.format.
    "LFM2.5-8B-A1B.jinja": ("<|startoftext|>", "<|im_end|>"),
    "Qwen3-Coder.jinja": ("", "<|im_end|>"),
    "tencent-Hy3.jinja": ("", ""),
    # Our own templates: the Python-compatibility layer (string and dict methods, tojson,
    # strftime_now, printing of None/booleans/containers, whitespace control).
    "pycompat.jinja": ("<s>", "</s>"),
    "tojson.jinja": ("<s>", "</s>"),
    "strftime.jinja": ("<s>", "</s>"),
    "syntax.jinja": ("<s>", "</s>"),
}

# Templates copied verbatim from llama.cpp's models/templates/.
FROM_MODELS_DIR = [
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
    "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "mistralai-Mistral-Nemo-Instruct-2407.jinja",
    "Mistral-Small-3.2-24B-Instruct-2506.jinja",
    "google-gemma-2-2b-it.jinja",
    "microsoft-Phi-3.5-mini-instruct.jinja",
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "Qwen-Qwen3-0.6B.jinja",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    "HuggingFaceTB-SmolLM3-3B.jinja",
    "ibm-granite-granite-3.3-2B-Instruct.jinja",
    "LFM2.5-8B-A1B.jinja",
    "Qwen3-Coder.jinja",
    "tencent-Hy3.jinja",
]

# Templates inlined in llama.cpp's tests/test-chat-template.cpp, by test-case name.
FROM_TEST_CPP = {
    "mistral-v1.jinja": "mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)",
    "mistral-v3.jinja": "Mistral-Large-Instruct-2407 (mistralai 'v3' template; modified to have system prompt at start)",
    "mistral-v7.jinja": "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)",
}

# ---------------------------------------------------------------------------------------------
# The conversations. "ordinary" ones are what a chat front end sends (a built-in family must
# render them exactly like the real template); the others probe errors and edges.
CONVERSATIONS = {
    "user": (True, [("user", "Hello")]),
    "system_user": (True, [("system", "You are a helpful assistant."), ("user", "Hello")]),
    "multi_turn": (True, [
        ("system", "You are a helpful assistant."),
        ("user", "Hello"),
        ("assistant", "Hi there"),
        ("user", "Who are you?"),
    ]),
    "multi_turn_no_system": (True, [
        ("user", "Hello"),
        ("assistant", "Hi there"),
        ("user", "Who are you?"),
        ("assistant", "I am an assistant."),
        ("user", "Another question"),
    ]),
    "assistant_last": (True, [
        ("system", "You are a helpful assistant."),
        ("user", "Hello"),
        ("assistant", "Hi there"),
    ]),
    "whitespace": (True, [
        ("system", "  Be brief.\n"),
        ("user", "\n  Hello \t\n"),
        ("assistant", "   I am an assistant   "),
        ("user", "Line one\n\nLine two  "),
    ]),
    # Python's str.strip() also strips U+001C..U+001F (Rust's trim() does not) and U+2028,
    # U+3000, U+00A0 (both do).
    "unicode": (True, [
        ("system", "Réponds en français 🌬️"),
        ("user", "\u00a0Ça va ? 日本語 — «mistral»\u3000"),
        ("assistant", "Très bien ! 👍\u001f"),
        ("user", "Zeichen: ß ẞ ǅ ﬁ\u2028"),
    ]),
    "empty_contents": (False, [("system", ""), ("user", "")]),
    "not_alternating": (False, [("user", "Hello"), ("user", "Are you there?")]),
    "tool_result": (False, [
        ("user", "What is the weather in Paris?"),
        ("assistant", "Let me check."),
        ("tool", '{"temperature": 21}'),
        ("assistant", "It is 21 °C."),
        ("user", "Thanks"),
    ]),
    "system_only": (False, [("system", "You are a helpful assistant.")]),
    "no_messages": (False, []),
}


def hf_environment():
    """jinja2 configured like transformers.utils.chat_template_utils._compile_jinja_template."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class RaisedException(jinja2.exceptions.TemplateError):
        pass

    class AssistantTracker(jinja2.ext.Extension):
        """transformers' `{% generation %}` block, which renders its body (the tracking of
        assistant indices that transformers adds is irrelevant to the text)."""
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [],
                                          body).set_lineno(lineno)

        def _generation_support(self, caller):
            return caller()

    def raise_exception(message):
        raise RaisedException(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(NOW, datetime.timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env, RaisedException


def render_all():
    import jinja2

    env, raised = hf_environment()
    out = {
        "generator": f"scripts/make-chat-refs.py, jinja2 {jinja2.__version__}, Python {sys.version.split()[0]}",
        "now": NOW,
        "conversations": {
            name: {"ordinary": ordinary,
                   "messages": [{"role": r, "content": c} for r, c in msgs]}
            for name, (ordinary, msgs) in CONVERSATIONS.items()
        },
        "templates": [],
    }
    for file, (bos, eos) in TEMPLATE_TOKENS.items():
        source = (TEMPLATES / file).read_text(encoding="utf-8")
        template = env.from_string(source)
        cases = []
        thinking = [None, False] if "enable_thinking" in source else [None]
        for name, (_, msgs) in CONVERSATIONS.items():
            for add_generation_prompt in (False, True):
                for enable_thinking in thinking:
                    ctx = {
                        "messages": [{"role": r, "content": c} for r, c in msgs],
                        "tools": None,
                        "documents": None,
                        "add_generation_prompt": add_generation_prompt,
                        "bos_token": bos,
                        "eos_token": eos,
                    }
                    if enable_thinking is not None:
                        ctx["enable_thinking"] = enable_thinking
                    case = {"conversation": name, "add_generation_prompt": add_generation_prompt,
                            "enable_thinking": enable_thinking}
                    try:
                        case["output"] = template.render(**ctx)
                    except raised as e:
                        case["raised"] = str(e)
                    except (jinja2.exceptions.TemplateError, TypeError, ValueError) as e:
                        # An error of the template itself (e.g. messages[0] of an empty list).
                        case["failed"] = f"{type(e).__name__}: {e}"
                    cases.append(case)
        out["templates"].append({"file": file, "bos_token": bos, "eos_token": eos, "cases": cases})
        n_err = sum("output" not in c for c in cases)
        print(f"{file}: {len(cases)} cases, {n_err} errors", file=sys.stderr)
    path = FIXTURES / "refs.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)


def c_string_literals(text):
    """The concatenated value of the C/C++ string literals at the start of `text` (optionally
    wrapped in U8C(...)), with escapes decoded."""
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "0": "\0"}
    out = []
    i = 0
    text = text.lstrip()
    if text.startswith("U8C("):
        i = 4
    while True:
        while i < len(text) and text[i] in " \t\n":
            i += 1
        if i >= len(text) or text[i] != '"':
            break
        i += 1
        while text[i] != '"':
            if text[i] == "\\":
                out.append(escapes[text[i + 1]])
                i += 2
            else:
                out.append(text[i])
                i += 1
        i += 1
    return "".join(out)


def import_templates(llama_cpp):
    llama_cpp = pathlib.Path(llama_cpp)
    TEMPLATES.mkdir(parents=True, exist_ok=True)
    for file in FROM_MODELS_DIR:
        data = (llama_cpp / "models" / "templates" / file).read_bytes()
        (TEMPLATES / file).write_bytes(data)
    cpp = (llama_cpp / "tests" / "test-chat-template.cpp").read_text(encoding="utf-8")
    for file, name in FROM_TEST_CPP.items():
        marker = f'/* .name= */ "{name}",'
        at = cpp.index(marker) + len(marker)
        rest = cpp[at:]
        tag = "/* .template_str= */"
        source = c_string_literals(rest[rest.index(tag) + len(tag):])
        (TEMPLATES / file).write_text(source, encoding="utf-8")
    chat_cpp = (llama_cpp / "common" / "chat.cpp").read_text(encoding="utf-8")
    m = re.search(r"#define CHATML_TEMPLATE_SRC\s*\\\n((?:.*\\\n)*.*\n)", chat_cpp)
    body = m.group(1).replace("\\\n", "\n")
    (TEMPLATES / "chatml.jinja").write_text(c_string_literals(body), encoding="utf-8")
    print(f"imported templates into {TEMPLATES}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--import":
        import_templates(sys.argv[2])
    elif len(sys.argv) == 1:
        render_all()
    else:
        sys.exit(__doc__)
