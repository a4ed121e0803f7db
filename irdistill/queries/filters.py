"""Filters for generated queries: length, verbatim copies of the passage, duplicates, and consistency (Promptagator's
round-trip filter, Dai et al. 2022: keep a query only if a retriever finds its source passage in the top ``k``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    """Lower-case words joined by single spaces (punctuation dropped): duplicates are equal after this."""
    return " ".join(_WORD.findall(text.lower()))


def copy_ratio(query: str, passage: str) -> float:
    """The share of the query's words in its longest run that occurs verbatim (normalised) in the passage: 1.0 for a
    query cut out of the passage, near 0 for one in other words."""
    q, hay = normalise(query).split(), f" {normalise(passage)} "
    if not q:
        return 0.0
    lo, hi = 0, len(q)  # the longest run length L: a run of L words exists => one of L - 1 does too
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if any(f" {' '.join(q[i : i + mid])} " in hay for i in range(len(q) - mid + 1)):
            lo = mid
        else:
            hi = mid - 1
    return lo / len(q)


@dataclass
class ConsistencyFilter:
    """Keep a query only if ``rank`` puts its source passage in the top ``k``. ``rank(queries: dict[qid, text])``
    returns a run DataFrame (``qid``, ``docid``, ``score``), e.g. ``lambda qs: bm25.search(qs, k=10)`` with a
    ``BM25Index``, or a teacher's re-ranking of such candidates. ``name`` says which ranker it is: it goes into the
    queries' id, so two filters with different rankers must have different names. Queries go ``batch`` at a time."""

    rank: Callable[[dict[str, str]], pd.DataFrame]
    k: int = 1
    name: str = ""
    batch: int = 10_000

    def describe(self) -> dict:
        return {"k": self.k, "ranker": self.name or getattr(self.rank, "__qualname__", repr(self.rank))}

    def keep(self, queries: dict[str, str], sources: dict[str, str]) -> set[str]:
        """The qids whose source passage (``sources[qid]``) ranks in the top ``k``."""
        kept: set[str] = set()
        qids = list(queries)
        for i in range(0, len(qids), self.batch):
            run = self.rank({q: queries[q] for q in qids[i : i + self.batch]})
            if len(run):
                run = run.sort_values(["qid", "score", "docid"], ascending=[True, False, True], kind="stable")
                top = run.groupby("qid", sort=False).head(self.k)
                kept.update(q for q, d in zip(top["qid"], top["docid"]) if sources.get(q) == d)
        return kept


@dataclass
class Filters:
    """Which generated queries to keep. ``min_words``/``max_words``: length bounds (words); ``max_copy``: drop a query
    whose ``copy_ratio`` with its passage exceeds this (None: keep copies, as span and sentence queries are);
    ``dedup``: ``"doc"`` drops a query equal (normalised) to an earlier one of the same document, ``"set"`` also one
    equal to an earlier query of any document (the first is kept, in corpus order), None keeps all; ``consistency``: a ConsistencyFilter, run last on what is left."""

    min_words: int = 2
    max_words: int = 32
    max_copy: float | None = None
    dedup: str | None = "set"
    consistency: ConsistencyFilter | None = field(default=None)

    def __post_init__(self):
        if self.dedup not in ("doc", "set", None):
            raise ValueError(f"dedup must be 'doc', 'set' or None, not {self.dedup!r}")
        if not (isinstance(self.min_words, int) and isinstance(self.max_words, int)
                and 0 <= self.min_words <= self.max_words):
            raise ValueError(f"need whole numbers 0 <= min_words <= max_words, not {self.min_words!r}, {self.max_words!r}")
        if self.max_copy is not None and not (isinstance(self.max_copy, (int, float)) and 0 <= self.max_copy <= 1):
            raise ValueError(f"max_copy must be a number from 0 to 1, not {self.max_copy!r}")

    def describe(self) -> dict:
        return {"min_words": self.min_words, "max_words": self.max_words, "max_copy": self.max_copy,
                "dedup": self.dedup, "consistency": self.consistency.describe() if self.consistency else None}

    def apply(self, candidates: list[tuple[str, str, str]], passages: dict[str, str]) -> tuple[list[tuple[str, str, str]], dict]:
        """``candidates``: ``(qid, docid, text)`` in corpus order; ``passages``: docid -> passage text. Returns the kept
        candidates and how many each filter dropped, in the order they run (``duplicate_doc``: a repeat within its
        document; ``duplicate_set``: of another document's query)."""
        dropped = {"empty": 0, "length": 0, "copy": 0, "duplicate_doc": 0, "duplicate_set": 0, "consistency": 0}
        in_doc: set[tuple[str, str]] = set()  # (docid, normalised query)
        in_set: set[str] = set()
        kept = []
        for qid, docid, text in candidates:
            norm = normalise(text) if self.dedup else ""
            words = len(text.split())
            if not words:
                dropped["empty"] += 1
            elif not self.min_words <= words <= self.max_words:
                dropped["length"] += 1
            elif self.max_copy is not None and copy_ratio(text, passages[docid]) > self.max_copy:
                dropped["copy"] += 1
            elif self.dedup and (docid, norm) in in_doc:
                dropped["duplicate_doc"] += 1
            elif self.dedup == "set" and norm in in_set:
                dropped["duplicate_set"] += 1
            else:
                in_doc.add((docid, norm))
                in_set.add(norm)
                kept.append((qid, docid, text))
        if self.consistency is not None and kept:
            ok = self.consistency.keep({q: t for q, _, t in kept}, {q: d for q, d, _ in kept})
            dropped["consistency"] = len(kept) - sum(q in ok for q, _, _ in kept)
            kept = [c for c in kept if c[0] in ok]
        return kept, dropped
