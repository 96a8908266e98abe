#!/usr/bin/env python3
"""Streaming throughput of an OpenAI-compatible chat server (tramontane-server, llama_cpp.server,
llama-server, ...), with nothing but the Python standard library (threads + http.client).

For each concurrency level C (--streams 1,2,4,8,16): C client threads start together, and each
sends --requests N streaming chat completions one after another (POST /v1/chat/completions,
temperature 0, max_tokens M, stream true, stream_options.include_usage true; each request gets
its own prompt from PROMPTS below, the same ones in the same order on every run). Each reply is
read as server-sent events up to `data: [DONE]`.
  tokens   completion tokens from the usage chunk; where a reply has none, the number of chunks
           carrying content (one token each on llama.cpp-style servers) -- `tokens_from` says
           which ("usage", "chunks" or "mixed"); the JSON has the content chunks as well
  wall     from the start of the level's first request to the end of its last
  tok/s    all completion tokens of the level / wall
  TTFT     from sending a request to its first chunk with content (median and p90)
  decode   per request, (tokens - 1) / (end - first content), median over requests: the rate one
           client sees once its reply has started
One untimed warm-up request goes first (--warmup 0 skips it).

usage: scripts/serve-bench.py --url http://127.0.0.1:8080 [--streams 1,2,4,8,16] [--requests 4]
                              [--max-tokens 64] [--model NAME] [--api-key KEY] [--json]
--json prints one JSON object (settings, and per level the totals and every request) instead of
the table.
"""
import argparse
import http.client
import json
import math
import statistics
import sys
import threading
import time
import urllib.parse

PROMPTS = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain how a refrigerator works to a ten-year-old.",
    "Describe the water cycle in detail.",
    "What are the main causes of the French Revolution?",
    "Give me a recipe for a simple vegetable soup, with steps.",
    "Explain the difference between a list and a tuple in Python.",
    "Write a poem about the sea at night.",
    "Why is the sky blue? Explain the physics.",
    "Describe a typical day in the life of a medieval farmer.",
    "What are the benefits of regular exercise?",
    "Explain what a black hole is and how it forms.",
    "Write a letter to a friend describing your last holiday.",
    "How do bees make honey?",
    "Summarize the plot of a detective story you invent.",
    "Explain how the internet sends a message from one computer to another.",
    "Describe the seasons and why they happen.",
    "What makes a good teacher? Give several reasons.",
    "Write a dialogue between a cat and a dog about breakfast.",
    "Explain photosynthesis step by step.",
    "Describe how to plant and care for a tomato plant.",
    "What is the history of the bicycle?",
    "Explain why we need sleep.",
    "Write a short fairy tale about a dragon who is afraid of the dark.",
    "How does a compass work?",
    "Describe the city of the future as you imagine it.",
    "Explain how vaccines train the immune system.",
    "Give advice to someone learning to play the guitar.",
    "What happens inside a volcano before it erupts?",
    "Write a product description for a new kind of umbrella.",
    "Explain how a bill becomes a law, in general terms.",
    "Describe the life cycle of a butterfly.",
    "Why do leaves change colour in autumn?",
]


def one_request(url, body, api_key, timeout):
    """Sends one streaming chat request; returns a dict describing how it went."""
    u = urllib.parse.urlsplit(url)
    conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(u.hostname, u.port, timeout=timeout)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key
    path = u.path.rstrip("/") + "/v1/chat/completions"
    r = {"ok": False, "ttft": None, "tokens": 0, "tokens_from": None, "finish": None,
         "error": None}
    usage_tokens = None
    content_chunks = 0
    t0 = time.perf_counter()
    t_first = None
    done = False
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            r["error"] = f"HTTP {resp.status}: {resp.read(300).decode('utf-8', 'replace')}"
            return r
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, event: lines
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                r["error"] = json.dumps(chunk["error"])[:300]
                return r
            if chunk.get("usage"):
                usage_tokens = chunk["usage"].get("completion_tokens")
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    content_chunks += 1
                    if t_first is None:
                        t_first = time.perf_counter()
                if choice.get("finish_reason"):
                    r["finish"] = choice["finish_reason"]
        t_end = time.perf_counter()
        if not done:
            r["error"] = "stream ended without [DONE]"
            return r
    except Exception as e:  # noqa: BLE001 -- any failure counts against the request
        r["error"] = f"{type(e).__name__}: {e}"
        return r
    finally:
        conn.close()
    r["ok"] = True
    if usage_tokens is not None:
        r["tokens"], r["tokens_from"] = usage_tokens, "usage"
    else:
        r["tokens"], r["tokens_from"] = content_chunks, "chunks"
    r["content_chunks"] = content_chunks
    r["start"], r["end"] = t0, t_end
    if t_first is not None:
        r["ttft"] = t_first - t0
        if r["tokens"] > 1 and t_end > t_first:
            r["decode_tps"] = (r["tokens"] - 1) / (t_end - t_first)
    return r


def make_body(args, prompt):
    return json.dumps({
        "model": args.model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": args.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }).encode()


def pct(xs, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    xs = sorted(xs)
    return xs[max(0, math.ceil(q / 100 * len(xs)) - 1)]


def run_level(args, c):
    results = [[] for _ in range(c)]
    barrier = threading.Barrier(c)

    def client(i):
        barrier.wait()
        for j in range(args.requests):
            prompt = PROMPTS[(i + j * c) % len(PROMPTS)]
            results[i].append(one_request(args.url, make_body(args, prompt), args.api_key,
                                          args.timeout))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(c)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1 = time.perf_counter()
    reqs = [r for rs in results for r in rs]
    ok = [r for r in reqs if r["ok"]]
    wall = (max(r["end"] for r in ok) - min(r["start"] for r in ok)) if ok else t1 - t0
    tokens = sum(r["tokens"] for r in ok)
    ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
    decode = [r["decode_tps"] for r in ok if "decode_tps" in r]
    sources = sorted({r["tokens_from"] for r in ok})
    finishes = {}
    for r in ok:
        finishes[r["finish"]] = finishes.get(r["finish"], 0) + 1
    for r in reqs:  # times relative to the level's start, rounded, for the JSON
        for k in ("start", "end"):
            if k in r:
                r[k] = round(r[k] - t0, 4)
        for k in ("ttft", "decode_tps"):
            if r.get(k) is not None:
                r[k] = round(r[k], 4)
    return {
        "streams": c,
        "requests_ok": len(ok),
        "requests_failed": len(reqs) - len(ok),
        "completion_tokens": tokens,
        "content_chunks": sum(r["content_chunks"] for r in ok),
        "tokens_from": sources[0] if len(sources) == 1 else ("mixed" if sources else None),
        "wall_s": round(wall, 3),
        "tok_per_s": round(tokens / wall, 2) if wall > 0 else None,
        "ttft_median_s": round(statistics.median(ttfts), 4) if ttfts else None,
        "ttft_p90_s": round(pct(ttfts, 90), 4) if ttfts else None,
        "decode_tps_median": round(statistics.median(decode), 2) if decode else None,
        "finish_reasons": finishes,
        "errors": sorted({r["error"] for r in reqs if r["error"]})[:5],
        "requests": reqs,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    ap.add_argument("--streams", default="1,2,4,8,16", help="concurrency levels, comma-separated")
    ap.add_argument("--requests", type=int, default=4, help="requests per stream (default 4)")
    ap.add_argument("--max-tokens", type=int, default=64, help="max_tokens per request")
    ap.add_argument("--model", default="default", help="the request's model field")
    ap.add_argument("--api-key", default=None, help="sent as Authorization: Bearer KEY")
    ap.add_argument("--timeout", type=float, default=900, help="socket timeout per request, s")
    ap.add_argument("--warmup", type=int, default=1, help="untimed requests first (default 1)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    levels = [int(s) for s in args.streams.split(",") if s.strip()]

    for k in range(args.warmup):
        r = one_request(args.url, make_body(args, PROMPTS[k % len(PROMPTS)]), args.api_key,
                        args.timeout)
        if not r["ok"]:
            sys.exit(f"warm-up request failed: {r['error']}")

    out = {"url": args.url, "model": args.model, "requests_per_stream": args.requests,
           "max_tokens": args.max_tokens, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "levels": []}
    if not args.json:
        print(f"{'streams':>7} {'ok':>4} {'fail':>4} {'tokens':>7} {'wall s':>8} {'tok/s':>8}"
              f" {'TTFT med':>9} {'TTFT p90':>9} {'dec tok/s':>9}  tokens from")
    for c in levels:
        lv = run_level(args, c)
        out["levels"].append(lv)
        if not args.json:
            f = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
            print(f"{c:>7} {lv['requests_ok']:>4} {lv['requests_failed']:>4}"
                  f" {lv['completion_tokens']:>7} {lv['wall_s']:>8.2f} {f(lv['tok_per_s'], '.2f'):>8}"
                  f" {f(lv['ttft_median_s'], '.3f'):>9} {f(lv['ttft_p90_s'], '.3f'):>9}"
                  f" {f(lv['decode_tps_median'], '.1f'):>9}  {lv['tokens_from']}", flush=True)
            for e in lv["errors"]:
                print(f"        error: {e}", file=sys.stderr)
    if args.json:
        json.dump(out, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
