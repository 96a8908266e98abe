"""A bounded load test on loopback: 16 concurrent streaming clients x 4 requests each. No
request is lost, and every reply equals the reply to the same prompt asked alone (greedy; the
engine's results do not depend on what else is in the batch)."""

import threading
import unittest

from common import MODEL_ID, client, metrics

CLIENTS = 16
ROUNDS = 4
MAX_TOKENS = 16
SUBJECTS = ["the sea", "a cat", "winter", "bread", "a robot", "the moon", "trains", "music",
            "a garden", "rain", "mountains", "coffee", "a library", "bees", "fire", "a bridge"]


def prompt(i):
    return f"Write one sentence about {SUBJECTS[i]}."


def ask(c, text):
    pieces, finish = [], []
    for ch in c.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": text}],
                                        temperature=0, max_tokens=MAX_TOKENS, stream=True):
        if ch.choices:
            pieces.append(ch.choices[0].delta.content or "")
            if ch.choices[0].finish_reason:
                finish.append(ch.choices[0].finish_reason)
    return "".join(pieces), finish


class Load(unittest.TestCase):
    def test_concurrent_streams_equal_replies_alone(self):
        c = client()
        # One request at a time: the reference replies.
        alone = [ask(c, prompt(i)) for i in range(len(SUBJECTS))]
        before = metrics()["tramontane_completion_tokens_total"]
        results, errors = {}, []

        def worker(k):
            try:
                own = client()
                for r in range(ROUNDS):
                    i = (k + r * 5) % len(SUBJECTS)  # distinct prompts within each round
                    results[(k, r)] = (i, ask(own, prompt(i)))
            except Exception as e:  # noqa: BLE001 - any failure is a lost request
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), CLIENTS * ROUNDS)
        for (k, r), (i, reply) in sorted(results.items()):
            self.assertEqual(reply, alone[i], f"client {k} round {r} prompt {i}")
        generated = metrics()["tramontane_completion_tokens_total"] - before
        self.assertGreaterEqual(generated, CLIENTS * ROUNDS)
        self.assertEqual(metrics()["tramontane_slots_busy"], 0)


if __name__ == "__main__":
    unittest.main()
