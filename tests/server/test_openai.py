"""The endpoints through the official openai client: shapes, greedy consistency, logprobs,
stop strings and finish reasons, usage, n, embeddings."""

import math
import unittest

from common import MODEL_ID, chat, client, stream_chat

QUESTION = "What is the capital of France?"


class Models(unittest.TestCase):
    def test_list_and_retrieve(self):
        c = client()
        ids = [m.id for m in c.models.list()]
        self.assertEqual(ids, [MODEL_ID])
        self.assertEqual(c.models.retrieve(MODEL_ID).id, MODEL_ID)


class Chat(unittest.TestCase):
    def test_greedy_stream_equals_non_stream(self):
        reply = chat(QUESTION)
        self.assertEqual(reply.object, "chat.completion")
        self.assertTrue(reply.id.startswith("chatcmpl-"))
        self.assertEqual(reply.model, MODEL_ID)
        choice = reply.choices[0]
        self.assertEqual(choice.message.role, "assistant")
        self.assertTrue(choice.message.content)
        self.assertIn(choice.finish_reason, ("stop", "length"))
        text, finish, chunks = stream_chat(QUESTION)
        self.assertEqual(text, choice.message.content)
        self.assertEqual(finish, [choice.finish_reason])
        self.assertEqual(chunks[0].choices[0].delta.role, "assistant")
        self.assertTrue(all(c.object == "chat.completion.chunk" for c in chunks))
        self.assertEqual(len({c.id for c in chunks}), 1)
        # Greedy is deterministic: the same again.
        self.assertEqual(chat(QUESTION).choices[0].message.content, choice.message.content)

    def test_content_parts_equal_string_content(self):
        parts = client().chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": [{"type": "text", "text": "What is the capital "},
                                                   {"type": "text", "text": "of France?"}]}],
            temperature=0,
            max_tokens=12,
        )
        self.assertEqual(parts.choices[0].message.content, chat(QUESTION, max_tokens=12).choices[0].message.content)

    def test_usage(self):
        reply = chat(QUESTION, max_tokens=5)
        u = reply.usage
        self.assertEqual(reply.choices[0].finish_reason, "length")
        self.assertEqual(u.completion_tokens, 5)
        self.assertGreater(u.prompt_tokens, 5)
        self.assertEqual(u.total_tokens, u.prompt_tokens + u.completion_tokens)
        self.assertLessEqual(u.prompt_tokens_details.cached_tokens, u.prompt_tokens)
        _, _, chunks = stream_chat(QUESTION, max_tokens=5, stream_options={"include_usage": True})
        last = chunks[-1]
        self.assertEqual(last.choices, [])
        self.assertEqual(last.usage.prompt_tokens, u.prompt_tokens)
        self.assertEqual(last.usage.completion_tokens, 5)
        self.assertTrue(all(c.usage is None for c in chunks[:-1]))
        # Without include_usage no usage chunk.
        _, _, chunks = stream_chat(QUESTION, max_tokens=5)
        self.assertTrue(all(c.choices for c in chunks))

    def test_stop_strings_and_finish_reasons(self):
        full = chat("Count from one to twenty in words, separated by commas.", max_tokens=24)
        text = full.choices[0].message.content
        self.assertGreater(len(text), 8, text)
        # A stop string taken from the middle of the greedy reply: the reply ends right before it.
        stop = text[len(text) // 2 : len(text) // 2 + 3]
        cut = text[: text.index(stop)]
        for stops in (stop, [stop, "zzzz-never"]):
            r = chat("Count from one to twenty in words, separated by commas.", max_tokens=24, stop=stops)
            self.assertEqual(r.choices[0].message.content, cut)
            self.assertEqual(r.choices[0].finish_reason, "stop")
        streamed, finish, _ = stream_chat("Count from one to twenty in words, separated by commas.", max_tokens=24, stop=stop)
        self.assertEqual((streamed, finish), (cut, ["stop"]))
        r = chat("Count from one to twenty in words, separated by commas.", max_tokens=3)
        self.assertEqual((r.choices[0].finish_reason, r.usage.completion_tokens), ("length", 3))

    def test_logprobs(self):
        r = chat(QUESTION, max_tokens=8, logprobs=True, top_logprobs=3)
        content = r.choices[0].logprobs.content
        self.assertEqual(len(content), r.usage.completion_tokens)
        self.assertEqual("".join(e.token for e in content), r.choices[0].message.content)
        for e in content:
            self.assertLessEqual(e.logprob, 0.0)
            self.assertEqual(bytes(e.bytes).decode("utf-8", "replace"), e.token)
            self.assertEqual(len(e.top_logprobs), 3)
            lps = [t.logprob for t in e.top_logprobs]
            self.assertEqual(lps, sorted(lps, reverse=True))
            # Greedy: the chosen token is the most likely one.
            self.assertEqual((e.top_logprobs[0].token, e.top_logprobs[0].logprob), (e.token, e.logprob))
            self.assertLessEqual(sum(math.exp(x) for x in lps), 1.0 + 1e-4)
        # Streamed logprobs are the same numbers.
        _, _, chunks = stream_chat(QUESTION, max_tokens=8, logprobs=True, top_logprobs=3)
        streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
        self.assertEqual([(e.token, e.logprob) for e in streamed], [(e.token, e.logprob) for e in content])
        self.assertIsNone(chat(QUESTION, max_tokens=2).choices[0].logprobs)

    def test_n_choices(self):
        c = client()
        kw = dict(model=MODEL_ID, messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=12)
        r = c.chat.completions.create(n=2, temperature=1.0, seed=42, **kw)
        self.assertEqual([ch.index for ch in r.choices], [0, 1])
        if all(ch.finish_reason == "length" for ch in r.choices):
            self.assertEqual(r.usage.completion_tokens, 2 * 12)
        again = c.chat.completions.create(n=2, temperature=1.0, seed=42, **kw)
        self.assertEqual([ch.message.content for ch in again.choices], [ch.message.content for ch in r.choices])
        # Choice i is seeded seed + i: choice 1 of seed 42 is choice 0 of seed 43.
        alone = c.chat.completions.create(n=1, temperature=1.0, seed=43, **kw)
        self.assertEqual(alone.choices[0].message.content, r.choices[1].message.content)
        greedy = c.chat.completions.create(n=2, temperature=0, **kw)
        self.assertEqual(greedy.choices[0].message.content, greedy.choices[1].message.content)
        streamed = list(c.chat.completions.create(n=2, temperature=1.0, seed=42, stream=True, **kw))
        for i in range(2):
            text = "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices and ch.choices[0].index == i)
            self.assertEqual(text, r.choices[i].message.content)


class Completions(unittest.TestCase):
    PROMPT = "The capital of France is"

    def test_greedy_and_stream(self):
        c = client()
        r = c.completions.create(model=MODEL_ID, prompt=self.PROMPT, max_tokens=8, temperature=0)
        self.assertEqual(r.object, "text_completion")
        self.assertTrue(r.choices[0].text)
        self.assertEqual(r.usage.completion_tokens, 8)
        chunks = list(c.completions.create(model=MODEL_ID, prompt=self.PROMPT, max_tokens=8, temperature=0, stream=True))
        self.assertEqual("".join(ch.choices[0].text for ch in chunks), r.choices[0].text)
        self.assertEqual(chunks[-1].choices[0].finish_reason, "length")
        # A list of one string and the prompt's token ids give the same.
        self.assertEqual(c.completions.create(model=MODEL_ID, prompt=[self.PROMPT], max_tokens=8, temperature=0).choices[0].text, r.choices[0].text)

    def test_legacy_logprobs(self):
        r = client().completions.create(model=MODEL_ID, prompt=self.PROMPT, max_tokens=6, temperature=0, logprobs=2)
        lp = r.choices[0].logprobs
        self.assertEqual(len(lp.tokens), 6)
        self.assertEqual(len(lp.token_logprobs), 6)
        self.assertEqual(len(lp.top_logprobs), 6)
        self.assertEqual("".join(lp.tokens), r.choices[0].text)
        offsets = [0]
        for t in lp.tokens[:-1]:
            offsets.append(offsets[-1] + len(t))
        self.assertEqual(lp.text_offset, offsets)
        for tok, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
            self.assertLessEqual(len(top), 2)
            self.assertEqual(max(top.values()), l)
            self.assertEqual(top[tok], l)


class Embeddings(unittest.TestCase):
    def test_float_and_default_base64(self):
        c = client()
        texts = ["The cat sat on the mat.", "Quantum chromodynamics"]
        default = c.embeddings.create(model=MODEL_ID, input=texts)  # the client asks for base64
        floats = c.embeddings.create(model=MODEL_ID, input=texts, encoding_format="float")
        self.assertEqual([d.index for d in floats.data], [0, 1])
        self.assertEqual(floats.object, "list")
        for a, b in zip(default.data, floats.data):
            self.assertEqual(len(a.embedding), len(b.embedding))
            self.assertGreater(len(a.embedding), 100)
            # base64 carries the exact f32s; JSON floats print them exactly too.
            self.assertEqual([float(x) for x in a.embedding], [float(x) for x in b.embedding])
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in b.embedding)), 1.0, places=4)
        self.assertNotEqual(floats.data[0].embedding, floats.data[1].embedding)
        single = c.embeddings.create(model=MODEL_ID, input=texts[1], encoding_format="float")
        self.assertEqual(single.data[0].embedding, floats.data[1].embedding)
        self.assertEqual(floats.usage.prompt_tokens, floats.usage.total_tokens)
        self.assertGreater(floats.usage.prompt_tokens, 4)


if __name__ == "__main__":
    unittest.main()
