"""Queries from an LLM through irdistill's backends (transformers in-process, GGUF included; OpenAI-compatible servers
such as vLLM or llama.cpp): one prompt per passage, ``n`` sampled completions, each parsed to one line."""

from __future__ import annotations

from .base import Doc, QueryGenerator, digest
from .templates import GENERIC_EXAMPLES, PARSER_VERSION, PromptTemplate, get_template, parse_query


class LLMQueries(QueryGenerator):
    """``backend``: a ``TransformersLM`` or ``OpenAIEndpoint`` (``irdistill.teachers.llm.make_backend``).
    ``examples``: ``(query, passage)`` pairs shown before the passage (``draw_examples`` takes them from a labelled
    collection); None shows ``GENERIC_EXAMPLES`` with the few-shot template and none with the others. ``temperature``
    0 is greedy, which gives one query per passage however large ``n`` is (the copies are duplicates); sample for
    ``n`` > 1. ``stop``: strings that end a completion (a newline: the parser keeps the first line anyway).
    ``batch_size`` (prompts per forward pass, or requests in flight) changes speed, not the queries' settings."""

    kind = "llm"
    chunk_size = 64

    def __init__(self, backend, template: str | PromptTemplate = "few-shot", examples: list[tuple[str, str]] | None = None,
                 temperature: float = 0.7, top_p: float = 0.95, max_tokens: int = 48, stop: tuple[str, ...] = ("\n",),
                 batch_size: int = 16):
        self.backend, self.template = backend, get_template(template)
        if examples is None:
            examples = GENERIC_EXAMPLES if self.template.name == "few-shot" else []
        self.examples = [(str(q), str(p)) for q, p in examples]
        self.temperature, self.top_p, self.max_tokens, self.batch_size = temperature, top_p, max_tokens, batch_size
        self.stop = list(stop or [])

    def config(self) -> dict:
        return {**self.backend.describe(), "template": self.template.describe(), "examples": self.examples,
                "temperature": self.temperature, "top_p": self.top_p if self.temperature > 0 else None,
                "max_tokens": self.max_tokens, "stop": self.stop, "parser": PARSER_VERSION}

    def chats(self, docs: list[Doc]) -> list[list[dict]]:
        return [self.template.chat(d.passage, self.examples) for d in docs]

    def generate(self, docs: list[Doc], n: int, seed: int) -> list[list[str]]:
        if not docs:
            return []
        chunk_seed = int(digest([seed, docs[0].docid, len(docs)]), 16) % (2**31)  # the same chunk draws the same
        texts = self.backend.generate(self.chats(docs), self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                                      n=n, seed=chunk_seed, stop=self.stop or None,
                                      batch_size=self.batch_size)
        return [[parse_query(t) for t in texts[i * n : (i + 1) * n]] for i in range(len(docs))]
