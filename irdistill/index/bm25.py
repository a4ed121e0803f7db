"""BM25 through pyserini: a Lucene index built from any Corpus, searched in batch."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pandas as pd

from ..data.corpus import Corpus
from ..data.runs import rank_run
from ..errors import InputError
from .java import start_jvm


def build_bm25(corpus: Corpus, path, threads: int | None = None) -> "BM25Index":
    """Index ``corpus`` with Anserini's default English analyzer (Porter stemmer, stopwords) at ``path``.

    The index is built in a temporary folder and moved into place when complete, so an interrupted build leaves
    nothing behind; ``meta.json`` records the corpus fingerprint that ``open_bm25`` checks.
    """
    start_jvm()
    from jnius import autoclass

    path = os.path.abspath(os.fspath(path))
    threads = threads or os.cpu_count() or 1
    os.makedirs(os.path.dirname(path), exist_ok=True)
    work = tempfile.mkdtemp(prefix=".tmp-bm25-", dir=os.path.dirname(path))
    try:
        docs = os.path.join(work, "docs")
        os.makedirs(docs)
        with open(os.path.join(docs, "docs.jsonl"), "w", encoding="utf-8") as f:
            for _, ids, texts in corpus.batches():
                for d, t in zip(ids, texts):
                    f.write(json.dumps({"id": d, "contents": t}) + "\n")
        index = os.path.join(work, "index")
        args = ["-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
                "-input", docs, "-index", index, "-threads", str(threads), "-quiet"]
        autoclass("io.anserini.index.IndexCollection").main(args)
        with open(os.path.join(index, "meta.json"), "w") as f:
            json.dump({"kind": "bm25", "documents": len(corpus), "corpus": corpus.fingerprint()}, f)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(index, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BM25Index(path)


class BM25Index:
    """A Lucene index on disk. ``k1=0.9, b=0.4`` are Anserini's defaults (the BEIR "flat" baseline)."""

    def __init__(self, path, k1: float = 0.9, b: float = 0.4):
        self.path = os.fspath(path)
        meta = os.path.join(self.path, "meta.json")
        if not os.path.exists(meta):
            raise InputError("not a BM25 index (no meta.json)", self.path)
        with open(meta) as f:
            self.meta = json.load(f)
        start_jvm()
        from pyserini.search.lucene import LuceneSearcher

        self.searcher = LuceneSearcher(self.path)
        self.searcher.set_bm25(k1, b)

    def search(self, queries: dict[str, str], k: int = 1000, threads: int | None = None) -> pd.DataFrame:
        """Top-``k`` documents of every query, as a run DataFrame."""
        qids = list(queries)
        hits = self.searcher.batch_search([queries[q] for q in qids], qids, k=k, threads=threads or os.cpu_count() or 1)
        rows = [(q, h.docid, h.score) for q in qids for h in hits.get(q, [])]
        df = pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"score": "float32"})
        return rank_run(df)


def open_bm25(corpus: Corpus, path, rebuild: bool = False, threads: int | None = None) -> BM25Index:
    """Open the BM25 index at ``path``, building it first when missing, stale (another corpus) or ``rebuild``."""
    meta = os.path.join(os.fspath(path), "meta.json")
    if not rebuild and os.path.exists(meta):
        with open(meta) as f:
            if json.load(f).get("corpus") == corpus.fingerprint():
                return BM25Index(path)
    return build_bm25(corpus, path, threads)
