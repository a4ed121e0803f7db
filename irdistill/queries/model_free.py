"""Queries without a model: the title (a common weak-supervision baseline), a sentence of the passage (the inverse
cloze task, Lee et al. 2019) and a random span of words (cropping, as Contriever, Izacard et al. 2022, makes its
positive pairs). The passage itself is left as it is. Each document draws from its own RNG, seeded by ``seed`` and
its id, so a document's queries do not depend on the sample, the chunking or the other documents."""

from __future__ import annotations

import random
import re

from .base import Doc, QueryGenerator

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def doc_rng(seed: int, docid: str) -> random.Random:
    return random.Random(f"{seed}\0{docid}")


def sentences(text: str) -> list[str]:
    """Split on ``.``, ``!`` or ``?`` followed by space and a capital or a digit (good enough for abstracts)."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


class TitleQueries(QueryGenerator):
    """The title as the query (one per document; further ones are empty). Untitled documents get none."""

    kind = "title"
    chunk_size = 10_000

    def config(self) -> dict:
        return {}

    def generate(self, docs: list[Doc], n: int, seed: int) -> list[list[str]]:
        return [[" ".join(d.title.split())] + [""] * (n - 1) for d in docs]


class _WordRange(QueryGenerator):
    """A generator whose settings are a range of words, ``min_words..max_words``."""

    chunk_size = 10_000

    def __init__(self, min_words: int, max_words: int):
        if not 1 <= min_words <= max_words:
            raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
        self.min_words, self.max_words = min_words, max_words

    def config(self) -> dict:
        return {"min_words": self.min_words, "max_words": self.max_words}

    def generate(self, docs: list[Doc], n: int, seed: int) -> list[list[str]]:
        return [self.of_doc(d, n, doc_rng(seed, d.docid)) for d in docs]

    def of_doc(self, doc: Doc, n: int, rng: random.Random) -> list[str]:
        raise NotImplementedError


class SentenceQueries(_WordRange):
    """Inverse cloze task: ``n`` distinct sentences of the text (not the title) drawn at random, each cut to its first
    ``max_words`` words; sentences shorter than ``min_words`` are not drawn while longer ones remain."""

    kind = "sentence"

    def __init__(self, min_words: int = 4, max_words: int = 32):
        super().__init__(min_words, max_words)

    def of_doc(self, doc: Doc, n: int, rng: random.Random) -> list[str]:
        sents = sentences(doc.text) or sentences(doc.title)
        pool = [s for s in sents if len(s.split()) >= self.min_words] or sents
        picked = rng.sample(pool, min(n, len(pool)))
        return [" ".join(s.split()[: self.max_words]) for s in picked] + [""] * (n - len(picked))


class SpanQueries(_WordRange):
    """Cropping: ``n`` random spans of the passage (title and text), each of a length drawn uniformly from
    ``min_words..max_words`` (the whole passage when it is shorter)."""

    kind = "span"

    def __init__(self, min_words: int = 4, max_words: int = 12):
        super().__init__(min_words, max_words)

    def of_doc(self, doc: Doc, n: int, rng: random.Random) -> list[str]:
        words, queries = doc.passage.split(), []
        for _ in range(n):
            length = min(len(words), rng.randint(self.min_words, self.max_words))
            start = rng.randint(0, len(words) - length) if words else 0
            queries.append(" ".join(words[start : start + length]))
        return queries
