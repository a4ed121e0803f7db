"""Pointwise LLM teacher: relevance is the log-odds of a "yes" over a "no" as the first answer token."""

from __future__ import annotations

import numpy as np

from ..base import Teacher, register_teacher
from .spec import LLMSpec

DEFAULT_TEMPLATE = ("Query: {query}\nPassage: {passage}\n\n"
                    "Does the passage answer the query? Answer with Yes or No.")


@register_teacher
class PointwiseLLMTeacher(LLMSpec, Teacher):
    """score = log P(first label) - log P(second label); with more labels (a graded scale such as
    ``["0", "1", "2", "3"]``), the expected grade ``sum_i i * P(label_i)`` over the label set."""

    kind = "llm-pointwise"
    scale = "logit"  # the log-odds of the first label over the second (or the expected grade over several)

    def __init__(self, backend, template: str = DEFAULT_TEMPLATE, labels=("yes", "no"), max_words: int = 200,
                 batch_size: int = 8, system: str | None = None):
        self.backend, self.template, self.labels = backend, template, list(labels)
        self.max_words, self.batch_size, self.system = max_words, batch_size, system

    def config(self) -> dict:
        return {**self.backend.describe(), "template": self.template, "labels": self.labels,
                "max_words": self.max_words, "system": self.system}

    def chat(self, query: str, passage: str) -> list[dict]:
        passage = " ".join(passage.split()[: self.max_words])
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": self.template.format(query=query, passage=passage)}]

    def score_pairs(self, queries, passages):
        lp = self.backend.label_logprobs([self.chat(q, p) for q, p in zip(queries, passages)], self.labels, self.batch_size)
        if len(self.labels) == 2:
            return (lp[:, 0] - lp[:, 1]).astype(np.float32)
        p = np.exp(lp - np.logaddexp.reduce(lp, axis=1, keepdims=True))
        return (p @ np.arange(len(self.labels))).astype(np.float32)
