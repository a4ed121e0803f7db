"""SPLADE retrieval through a Lucene impact index (Anserini through pyserini).

Every document becomes term -> integer impact (``round(weight * 100)``, terms that round to 0 dropped), written as
JsonVectorCollection files and indexed with ``IndexCollection -impact -pretokenized``, so the postings hold the
impacts. A query is encoded the same way and LuceneImpactSearcher scores ``sum_t q_t * d_t`` over the inverted
index: exactly the dot product of the quantised vectors.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from ..lazy import module
from ..progress import bar as progress_bar
from ..progress import chunks
from ..data.corpus import Corpus
from ..data.io import atomic_path
from ..data.runs import rank_run
from ..models import load_splade
from .base import Index, building, register_index
from .bm25 import allow_clauses, open_lucene, top_k
from .encode import encode_in_chunks, on_first_rank
from .java import folder_bytes, start_jvm

pd = module("pandas")  # imported on first use (lazy.py)

SCALE = 100  # impact = round(weight * SCALE)


def sparse_weights(model, texts: list[str], role: str = "document", batch_size: int = 8,
                   pool=None) -> list[dict[str, int]]:
    """term -> quantised weight of each text (``role`` query or document picks the model's prompt), through
    ``pool`` (``encode.worker_pool``) when given."""
    if not texts:
        return []
    encode = model.encode_query if role == "query" else model.encode_document
    emb = encode(texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False,
                 pool=pool).coalesce().cpu()
    rows, cols = emb.indices().numpy()
    values = np.rint(emb.values().float().numpy() * SCALE).astype(np.int64)
    vocab = _vocab(model)
    out: list[dict[str, int]] = [{} for _ in texts]
    for r, c, v in zip(rows.tolist(), cols.tolist(), values.tolist()):
        if v > 0:
            out[r][vocab[c]] = v
    return out


def _vocab(model) -> list[str]:
    if getattr(model, "_irdistill_vocab", None) is None:
        tok = model.tokenizer
        model._irdistill_vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    return model._irdistill_vocab


def encode_vectors(model, corpus: Corpus, folder, key: dict, batch_size: int = 8, chunk: int = 1024,
                   progress: bool = True, rebuild: bool = False, workers: int = 1) -> dict:
    """Write ``docs/part-NNNNN.jsonl`` JsonVectorCollection files into ``folder``, by this process, ``workers`` worker
    processes or the ranks of a torchrun job (``encode.encode_in_chunks``); finished parts are kept, so an
    interrupted run resumes (parts of another ``key`` or ``rebuild`` start over). Returns ``{"documents", "terms"}``
    (the total non-zero terms)."""
    os.makedirs(os.path.join(folder, "docs"), exist_ok=True)  # docs/ holds nothing but the collection

    def paths(i: int) -> tuple[str, str]:
        return os.path.join(folder, "docs", f"part-{i:05d}.jsonl"), os.path.join(folder, f"part-{i:05d}.terms")

    def write(i, start, stop, pool, bar):
        path, count = paths(i)
        ids = corpus.ids[start:stop].to_pylist()
        vectors = sparse_weights(model, corpus.texts(start=start, stop=stop), "document", batch_size, pool)
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for d, v in zip(ids, vectors):
                f.write(json.dumps({"id": d, "contents": "", "vector": v}) + "\n")
        with atomic_path(count) as tmp, open(tmp, "w") as f:
            f.write(str(sum(map(len, vectors))))
        bar.update(stop - start)

    encode_in_chunks(model, folder, {**key, "chunk": chunk}, len(corpus), chunk,
                     lambda i: all(map(os.path.exists, paths(i))), write, "encoding (splade)", workers, progress,
                     rebuild, stale=("part-*", os.path.join("*", "part-*")))
    terms = sum(int(open(paths(i)[1]).read()) for i in range(-(-len(corpus) // chunk)))
    return {"documents": len(corpus), "terms": terms}


class _Weights:
    """A pyserini query encoder that hands back weights computed beforehand, looked up by query text."""

    def __init__(self, weights: dict[str, dict[str, int]]):
        self.weights = weights

    def encode(self, text: str) -> dict[str, int]:
        return self.weights[text]


@register_index
class SpladeIndex(Index):
    """A Lucene impact index of SPLADE vectors; ``meta.json`` also records the sparsity (terms per document, and
    per query for each query set retrieved)."""

    name = "splade"
    loader = staticmethod(load_splade)
    batch_size = 8  # SPLADE's MLM head holds (batch, tokens, vocabulary) logits, 1 GB per 16 x 512 tokens

    def __init__(self, path):
        super().__init__(path)
        self._searcher = None

    @classmethod
    def settings(cls, corpus, model, kind, params) -> dict:
        return {"max_seq_length": model.max_seq_length, "scale": SCALE}

    @classmethod
    def build(cls, corpus, path, key, model, kind=None, batch_size=8, progress=True, rebuild=False, workers=1,
              threads: int | None = None) -> "SpladeIndex":
        """Encode ``corpus`` (``workers`` processes, or the ranks of a torchrun job) and build the impact index at
        ``path`` (in rank 0). The encoded vectors wait in ``<path>.vectors`` until the index is built, so a killed
        build resumes."""
        path = os.path.abspath(os.fspath(path))
        vectors = path + ".vectors"
        stats = encode_vectors(model, corpus, vectors, key, batch_size, progress=progress, rebuild=rebuild,
                               workers=workers)
        return on_first_rank(lambda: cls._index(path, vectors, key, stats, threads), lambda: cls(path))

    @classmethod
    def _index(cls, path: str, vectors: str, key: dict, stats: dict, threads: int | None) -> "SpladeIndex":
        """Lucene's IndexCollection over the encoded vectors; they are removed once the index is in place."""
        start_jvm(folder_bytes(vectors))
        from jnius import autoclass

        meta = {"kind": cls.name, "model": key["model"], "documents": stats["documents"], "scale": SCALE,
                "doc_terms": stats["terms"] / max(1, stats["documents"]), "query_terms": {}, "key": key}
        with building(path, meta) as work:
            args = ["-collection", "JsonVectorCollection", "-generator", "DefaultLuceneDocumentGenerator",
                    "-input", os.path.join(vectors, "docs"), "-index", work, "-impact", "-pretokenized",
                    "-threads", str(threads or os.cpu_count() or 1), "-quiet"]
            autoclass("io.anserini.index.IndexCollection").main(args)
        shutil.rmtree(vectors, ignore_errors=True)
        return cls(path)

    @property
    def searcher(self):
        if self._searcher is None:
            start_jvm(folder_bytes(self.path))
            from pyserini.search.lucene import LuceneImpactSearcher

            # min_idf=-1 keeps every query term that the index holds (pyserini drops idf <= min_idf)
            self._searcher = open_lucene(lambda path: LuceneImpactSearcher(path, query_encoder=_Weights({}), min_idf=-1),
                                         self.path)
        return self._searcher

    def search_weights(self, weights: dict[str, dict[str, int]], k: int = 1000, threads: int | None = None) -> pd.DataFrame:
        """Top ``k`` of each query given as ``{qid: {term: integer weight}}``, as a run DataFrame."""
        qids, searcher = list(weights), self.searcher
        allow_clauses(max(map(len, weights.values()), default=0))
        searcher.query_encoder = _Weights({q: weights[q] for q in qids})
        hits = searcher.batch_search(qids, qids, k=top_k(searcher, k), threads=threads or os.cpu_count() or 1)
        rows = [(q, h.docid, h.score) for q in qids for h in hits.get(q, [])]
        return rank_run(pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"score": "float32"}))

    def search(self, queries: dict[str, str], k: int = 1000, batch_size: int | None = None, progress: bool = False,
               threads: int | None = None) -> pd.DataFrame:
        """Encode ``queries`` and return the top ``k`` of each; ``last_query_terms`` holds the average number of
        non-zero query terms."""
        qids, batch_size, runs, terms = list(queries), batch_size or self.batch_size, [], []
        for block in chunks(qids, 32 * batch_size, progress, desc="searching (splade)", unit="query"):
            vectors = sparse_weights(self.query_encoder(), [queries[q] for q in block], "query", batch_size)
            terms += [len(v) for v in vectors]
            runs.append(self.search_weights(dict(zip(block, vectors)), k, threads))
        self.last_query_terms = float(np.mean(terms)) if terms else 0.0
        return rank_run(pd.concat(runs, ignore_index=True)) if runs else self.search_weights({}, k, threads)

    def retrieve(self, dataset, k=1000, batch_size=None, progress=False) -> pd.DataFrame:
        """Search the queries of ``dataset`` and record their sparsity in ``meta.json`` (e.g. ``scifact/test``)."""
        run = self.search(dataset.queries, k, batch_size, progress)
        self.meta.setdefault("query_terms", {})[f"{dataset.name}/{dataset.split}"] = self.last_query_terms
        with atomic_path(os.path.join(self.path, "meta.json")) as tmp, open(tmp, "w") as f:
            json.dump(self.meta, f, indent=1)
        return run
