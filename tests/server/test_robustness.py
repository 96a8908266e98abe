"""A client that hangs up frees its slot at once; SIGTERM lets the request in flight finish
and exits 0."""

import signal
import threading
import time
import unittest

from common import MODEL_ID, client, extra_server, metrics


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Disconnect(unittest.TestCase):
    def test_disconnect_mid_stream_frees_the_slot(self):
        with extra_server("--parallel", "2") as (url, _):
            stream = client(url).completions.create(
                model=MODEL_ID, prompt="Once upon a time", max_tokens=900, temperature=0.8,
                seed=1, stream=True)
            it = iter(stream)
            for _ in range(3):
                next(it)
            self.assertEqual(metrics(url)["tramontane_slots_busy"], 1)
            started = time.time()
            stream.close()
            # 900 tokens would take far longer than this: the slot was freed by the hang-up.
            self.assertTrue(wait_for(lambda: metrics(url)["tramontane_slots_busy"] == 0, 5),
                            "the slot stayed busy after the client hung up")
            self.assertLess(time.time() - started, 5)
            self.assertLess(metrics(url)["tramontane_completion_tokens_total"], 900)


class Shutdown(unittest.TestCase):
    def test_sigterm_finishes_in_flight_then_exits_0(self):
        with extra_server("--shutdown-grace", "20") as (url, proc):
            got = {}
            first = threading.Event()

            def run():
                chunks = []
                for ch in client(url).chat.completions.create(
                        model=MODEL_ID, messages=[{"role": "user", "content": "Tell me a story."}],
                        temperature=0, max_tokens=24, stream=True):
                    chunks.append(ch)
                    first.set()
                got["finish"] = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]

            t = threading.Thread(target=run)
            t.start()
            self.assertTrue(first.wait(60))
            proc.send_signal(signal.SIGTERM)
            t.join(60)
            self.assertIn(got.get("finish"), (["length"], ["stop"]))
            self.assertEqual(proc.wait(timeout=30), 0)
            err = proc.stderr.read()
            self.assertIn("shutting down", err)
            self.assertIn("stopped", err)


if __name__ == "__main__":
    unittest.main()
