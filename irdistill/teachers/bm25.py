"""BM25 as a teacher (an ensemble member): Lucene scores of any candidate, from the collection's BM25 index."""

from __future__ import annotations

import numpy as np

from ..index.bm25 import BM25Index
from .base import Teacher


class BM25Teacher(Teacher):
    """Scores come from one batched search per block (top ``depth``); candidates outside it are scored one by one."""

    kind = "bm25"

    def __init__(self, index, k1: float = 0.9, b: float = 0.4, depth: int = 1000):
        self.index = index if isinstance(index, BM25Index) else BM25Index(index, k1, b)
        self.k1, self.b, self.depth = k1, b, depth
        self._reader = None

    def config(self) -> dict:
        return {"corpus": self.index.meta["corpus"], "k1": self.k1, "b": self.b}

    def _score_one(self, docid: str, query: str) -> float:
        if self._reader is None:
            from pyserini.index.lucene import LuceneIndexReader

            self._reader = LuceneIndexReader(self.index.path)
        return float(self._reader.compute_query_document_score(docid, query))

    def score_lists(self, lists, docids=None):
        if docids is None:
            raise ValueError("the BM25 teacher needs document ids")
        queries = {str(i): q for i, (q, _) in enumerate(lists)}
        run = self.index.search(queries, self.depth)
        found = {(q, d): s for q, d, s in zip(run["qid"], run["docid"], run["score"])}
        out = []
        for i, ((query, _), ids) in enumerate(zip(lists, docids)):
            out.append(np.array([found.get((str(i), d)) if (str(i), d) in found else self._score_one(d, query)
                                 for d in ids], dtype=np.float32))
        return out
