"""BM25 as a teacher (an ensemble member): Lucene scores of any candidate, from the collection's BM25 index."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ..errors import InputError
from ..index.bm25 import BM25Index
from ..index.base import open_index
from .base import Teacher, register_teacher


@register_teacher
class BM25Teacher(Teacher):
    """Scores come from one batched search per block (top ``depth``); candidates outside it are scored one by one.
    ``k1`` and ``b`` apply to both."""

    kind = "bm25"
    scale = "bm25"

    def __init__(self, index, k1: float = 0.9, b: float = 0.4, depth: int = 1000):
        self.index = index if isinstance(index, BM25Index) else BM25Index(index, k1, b)
        self.index.searcher.set_bm25(k1, b)
        self.k1, self.b, self.depth = k1, b, depth
        self._reader = self._similarity = None

    @classmethod
    def from_spec(cls, spec, dataset=None, text_view=None):
        """Without an ``index``, the collection's own BM25 index (of ``text_view``), built when missing."""
        if "index" not in spec:
            if dataset is None:
                raise InputError("teacher bm25 needs an index or a dataset")
            view = replace(dataset, corpus=dataset.view(text_view), views={})
            path = BM25Index.folder(dataset) + (f"-{text_view}" if text_view else "")
            spec = {**spec, "index": open_index(view, "bm25", index=path)}
        return super().from_spec(spec, dataset, text_view)

    def config(self) -> dict:
        return {"corpus": self.index.meta["key"]["corpus"], "k1": self.k1, "b": self.b}

    def _score_one(self, docid: str, query: str) -> float:
        if self._reader is None:
            from jnius import autoclass
            from pyserini.index.lucene import LuceneIndexReader

            self._reader = LuceneIndexReader(os.path.abspath(self.index.path))
            self._similarity = autoclass("org.apache.lucene.search.similarities.BM25Similarity")(self.k1, self.b)
        return float(self._reader.compute_query_document_score(docid, query, self._similarity))

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
