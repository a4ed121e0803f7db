"""Listwise LLM teacher (RankGPT, Sun et al. 2023): the LLM orders numbered passages, window by window."""

from __future__ import annotations

import re

import numpy as np

from ..base import Teacher, register_teacher
from .spec import LLMSpec

SYSTEM = "You are RankGPT, an assistant that ranks passages by their relevance to a query."
INSTRUCTION = ("Search query: {query}\nRank the {n} passages above by relevance to the search query, most relevant "
               "first. Answer only with identifiers in the form [2] > [1] > [3], with no explanation.")


def parse_permutation(text: str, n: int) -> list[int]:
    """0-based order from an answer such as ``[3] > [1] > [2]``: repeats and out-of-range numbers are dropped, and the
    passages the answer misses keep their original order after those it names."""
    seen: list[int] = []
    for m in re.findall(r"\d+", text):
        i = int(m) - 1
        if 0 <= i < n and i not in seen:
            seen.append(i)
    return seen + [i for i in range(n) if i not in seen]


@register_teacher
class ListwiseLLMTeacher(LLMSpec, Teacher):
    """Sliding windows of ``window`` passages, moved ``step`` at a time from the bottom of the list to the top (so
    relevant passages bubble up). Scores: ``n - final rank`` (higher is better; the order is what is taught)."""

    kind = "llm-listwise"
    scale = "rank"

    def __init__(self, backend, window: int = 20, step: int = 10, max_words: int = 100, max_tokens: int | None = None):
        self.backend, self.window, self.step, self.max_words = backend, window, step, max_words
        self.max_tokens = max_tokens or 6 * window

    def config(self) -> dict:
        return {**self.backend.describe(), "window": self.window, "step": self.step, "max_words": self.max_words,
                "system": SYSTEM, "instruction": INSTRUCTION}

    def chat(self, query: str, passages: list[str]) -> list[dict]:
        msgs = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"I will give you {len(passages)} passages, each marked [i]. "
                                            f"Query: {query}"},
                {"role": "assistant", "content": "Okay, please give me the passages."}]
        for i, p in enumerate(passages, 1):
            msgs += [{"role": "user", "content": f"[{i}] {' '.join(p.split()[: self.max_words])}"},
                     {"role": "assistant", "content": f"Received passage [{i}]."}]
        return msgs + [{"role": "user", "content": INSTRUCTION.format(query=query, n=len(passages))}]

    def rerank(self, query: str, passages: list[str]) -> list[int]:
        """The final order (indices into ``passages``)."""
        order = list(range(len(passages)))
        end = len(order)
        while True:
            start = max(0, end - self.window)
            window = order[start:end]
            answer = self.backend.generate([self.chat(query, [passages[i] for i in window])], self.max_tokens)[0]
            order[start:end] = [window[i] for i in parse_permutation(answer, len(window))]
            if start == 0:
                return order
            end -= self.step

    def score_lists(self, lists, docids=None):
        out = []
        for query, passages in lists:
            scores = np.zeros(len(passages), dtype=np.float32)
            for rank, i in enumerate(self.rerank(query, passages) if len(passages) > 1 else range(len(passages))):
                scores[i] = len(passages) - rank
            out.append(scores)
        return out
