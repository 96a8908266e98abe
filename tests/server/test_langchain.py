"""LangChain's ChatOpenAI against the server: invoke and stream give the greedy reply the
openai client gets."""

import unittest

from langchain_openai import ChatOpenAI

from common import MODEL_ID, URL, chat

QUESTION = "Name three colours."


class LangChain(unittest.TestCase):
    def test_invoke_and_stream(self):
        llm = ChatOpenAI(base_url=URL + "/v1", api_key="none", model=MODEL_ID, temperature=0,
                         max_tokens=16, max_retries=0, timeout=120)
        expected = chat(QUESTION, max_tokens=16).choices[0].message.content
        self.assertEqual(llm.invoke(QUESTION).content, expected)
        self.assertEqual("".join(chunk.content for chunk in llm.stream(QUESTION)), expected)


if __name__ == "__main__":
    unittest.main()
