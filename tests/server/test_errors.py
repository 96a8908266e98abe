"""Errors in OpenAI's shape, as the openai client's exception types: bad parameters, prompts
past the context, malformed bodies, unknown routes and models, the API key, a full queue."""

import threading
import unittest

import openai

from common import MODEL_ID, chat, client, extra_server, http


class BadRequests(unittest.TestCase):
    def test_bad_parameters_name_the_field(self):
        for kw, param in [
            (dict(top_p=2.0), "top_p"),
            (dict(temperature=-1.0), "temperature"),
            (dict(n=100), "n"),
            (dict(stop=["a", "b", "c", "d", "e"]), "stop"),
            (dict(logprobs=True, top_logprobs=21), "top_logprobs"),
            (dict(extra_body={"presence_penalty": "hot"}), "presence_penalty"),
        ]:
            with self.assertRaises(openai.BadRequestError, msg=str(kw)) as cm:
                chat("Hi", **kw)
            self.assertEqual(cm.exception.status_code, 400)
            self.assertEqual(cm.exception.body["param"], param, cm.exception.body)
            self.assertEqual(cm.exception.body["type"], "invalid_request_error")

    def test_prompt_longer_than_the_context(self):
        with self.assertRaises(openai.BadRequestError) as cm:
            chat("word " * 5000, max_tokens=4)
        self.assertEqual(cm.exception.code, "context_length_exceeded")
        with self.assertRaises(openai.BadRequestError):
            client().completions.create(model=MODEL_ID, prompt="word " * 5000, max_tokens=4)
        with self.assertRaises(openai.BadRequestError):
            client().embeddings.create(model=MODEL_ID, input="word " * 5000)

    def test_refused_features(self):
        with self.assertRaises(openai.BadRequestError):
            client().completions.create(model=MODEL_ID, prompt="x", echo=True, max_tokens=2)
        with self.assertRaises(openai.BadRequestError):
            client().embeddings.create(model=MODEL_ID, input="x", encoding_format="int8")
        with self.assertRaises(openai.BadRequestError):
            client().chat.completions.create(
                model=MODEL_ID, max_tokens=2,
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])

    def test_raw_http(self):
        hdr = {"Content-Type": "application/json"}
        for raw in (b"{not json", b"", b"[1, 2]", b'{"messages": "hi"}', b'{"messages": []}'):
            status, body = http("POST", "/v1/chat/completions", raw=raw, headers=hdr)
            self.assertEqual(status, 400, raw)
            self.assertEqual(set(body["error"]), {"message", "type", "code", "param"})
        status, body = http("GET", "/v1/nothing-here")
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"))
        status, body = http("GET", "/v1/chat/completions")
        self.assertEqual(status, 405)
        self.assertIn("error", body)
        status, body = http("POST", "/v1/completions", raw=b" " * (17 << 20), headers=hdr)
        self.assertEqual(status, 413)
        self.assertIn("error", body)
        # Unknown fields are ignored.
        status, body = http("POST", "/v1/chat/completions", {
            "model": MODEL_ID, "messages": [{"role": "user", "content": "Hi", "name": "x"}],
            "max_tokens": 2, "temperature": 0, "user": "u", "tools": [], "frobnicate": {"a": 1}})
        self.assertEqual(status, 200, body)

    def test_unknown_model(self):
        with self.assertRaises(openai.NotFoundError):
            client().models.retrieve("no-such-model")


class ApiKey(unittest.TestCase):
    def test_key_required_on_v1_only(self):
        with extra_server("--api-key", "sesame") as (url, _):
            with self.assertRaises(openai.AuthenticationError) as cm:
                client(url, api_key="wrong").models.list()
            self.assertEqual(cm.exception.code, "invalid_api_key")
            status, _ = http("POST", "/v1/chat/completions", {"messages": []}, url=url)
            self.assertEqual(status, 401)
            self.assertEqual([m.id for m in client(url, api_key="sesame").models.list()], [MODEL_ID])
            self.assertEqual(http("GET", "/health", url=url)[0], 200)
            self.assertEqual(http("GET", "/metrics", url=url)[0], 200)


class Busy(unittest.TestCase):
    def test_full_queue_is_503(self):
        with extra_server("--parallel", "1", "--queue", "1") as (url, _):
            results = []

            def one():
                try:
                    chat("Tell me a long story about a dragon.", max_tokens=16, url=url)
                    results.append("ok")
                except openai.APIStatusError as e:
                    results.append(e.status_code)
                    if e.status_code == 503:
                        assert isinstance(e, openai.InternalServerError)
                        assert e.code == "server_busy", e.body

            threads = [threading.Thread(target=one) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertIn("ok", results)
            self.assertIn(503, results)
            self.assertEqual(set(results), {"ok", 503})
            # Busy is momentary: the server serves again.
            chat("Hi", max_tokens=2, url=url)


if __name__ == "__main__":
    unittest.main()
