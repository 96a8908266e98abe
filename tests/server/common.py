"""Shared helpers of the server tests: the server under test, clients, extra servers.

scripts/test-server starts the main server and passes its URL in TRAMONTANE_URL, the binary in
TRAMONTANE_SERVER and the model in TRAMONTANE_MODEL; tests that need a server started another
way (API key, a tiny queue, a signal) start their own with `extra_server`.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import openai

URL = os.environ["TRAMONTANE_URL"]  # e.g. http://127.0.0.1:PORT
BIN = os.environ["TRAMONTANE_SERVER"]
MODEL = os.environ["TRAMONTANE_MODEL"]
MODEL_ID = os.path.splitext(os.path.basename(MODEL))[0]
# Generous: a 2-core machine shared with a compile can be slow.
TIMEOUT = 120


def client(url=URL, api_key="none", **kw):
    # max_retries=0: a 503 must surface as an error, not be retried away.
    return openai.OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=TIMEOUT, **kw)


def http(method, path, body=None, url=URL, headers=None, raw=None):
    """(status, parsed JSON or text) of a plain HTTP request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def metrics(url=URL):
    """The /metrics samples without labels, as floats."""
    _, text = http("GET", "/metrics", url=url)
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, proc, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not healthy in time")


@contextlib.contextmanager
def extra_server(*args):
    """A second server on a free port with extra arguments; always stopped afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [BIN, "--model", MODEL, "--port", str(port), "--ctx", "1024", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_healthy(url, proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()


def chat(text, max_tokens=24, url=URL, **kw):
    """A chat completion, greedy unless `temperature` is given."""
    kw.setdefault("temperature", 0)
    return client(url).chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": text}],
        max_tokens=max_tokens,
        **kw,
    )


def stream_chat(text, max_tokens=24, url=URL, **kw):
    """A greedy streamed chat completion: (text, finish_reason, chunks)."""
    chunks = list(
        client(url).chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": text}],
            temperature=0,
            max_tokens=max_tokens,
            stream=True,
            **kw,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return text, finish, chunks
