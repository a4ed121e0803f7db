"""SPLADE retrieval through a Lucene impact index (Anserini through pyserini).

Every document becomes term -> integer impact (``round(weight * 100)``, terms that round to 0 dropped), written as
JsonVectorCollection files and indexed with ``IndexCollection -impact -pretokenized``, so the postings hold the
impacts. A query is encoded the same way and LuceneImpactSearcher scores ``sum_t q_t * d_t`` over the inverted
index: exactly the dot product of the quantised vectors.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.corpus import Corpus
from ..data.io import atomic_path
from ..data.runs import rank_run
from ..errors import InputError
from .java import start_jvm

SCALE = 100  # impact = round(weight * SCALE)


def sparse_weights(model, texts: list[str], role: str = "document", batch_size: int = 8) -> list[dict[str, int]]:
    """term -> quantised weight of each text (``role`` query or document picks the model's prompt)."""
    if not texts:
        return []
    encode = model.encode_query if role == "query" else model.encode_document
    emb = encode(texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False).coalesce().cpu()
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


def encode_vectors(model, corpus: Corpus, folder, model_name: str, batch_size: int = 8, chunk: int = 1024,
                   progress: bool = True) -> dict:
    """Write ``docs/part-NNNNN.jsonl`` JsonVectorCollection files into ``folder``; finished parts are kept, so an
    interrupted run resumes. Returns ``{"documents", "terms"}`` (the total non-zero terms)."""
    os.makedirs(os.path.join(folder, "docs"), exist_ok=True)  # docs/ holds nothing but the collection
    meta = {"model": model_name, "corpus": corpus.fingerprint(), "chunk": chunk, "scale": SCALE,
            "max_seq_length": model.max_seq_length}
    meta_path = os.path.join(folder, "meta.json")
    if os.path.exists(meta_path) and json.load(open(meta_path)) != meta:
        for p in glob.glob(os.path.join(folder, "*", "part-*")) + glob.glob(os.path.join(folder, "part-*")):
            os.remove(p)
    with atomic_path(meta_path) as tmp, open(tmp, "w") as f:
        json.dump(meta, f)
    terms = 0
    with tqdm(total=len(corpus), desc="encoding (splade)", unit="doc", disable=not progress) as bar:
        for i, start in enumerate(range(0, len(corpus), chunk)):
            stop = min(start + chunk, len(corpus))
            path, count = os.path.join(folder, "docs", f"part-{i:05d}.jsonl"), os.path.join(folder, f"part-{i:05d}.terms")
            if not (os.path.exists(path) and os.path.exists(count)):
                ids = corpus.ids[start:stop].to_pylist()
                vectors = sparse_weights(model, corpus.texts(start=start, stop=stop), "document", batch_size)
                with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
                    for d, v in zip(ids, vectors):
                        f.write(json.dumps({"id": d, "contents": "", "vector": v}) + "\n")
                with atomic_path(count) as tmp, open(tmp, "w") as f:
                    f.write(str(sum(map(len, vectors))))
            terms += int(open(count).read())
            bar.update(stop - start)
    return {"documents": len(corpus), "terms": terms}


def build_splade(corpus: Corpus, model, model_name: str, path, batch_size: int = 8, threads: int | None = None,
                 progress: bool = True) -> "SpladeIndex":
    """Encode ``corpus`` and build the impact index at ``path`` (in a temporary folder, moved into place when
    complete). The encoded vectors wait in ``<path>.vectors`` until the index is built, so a killed build resumes."""
    start_jvm()
    from jnius import autoclass

    path = os.path.abspath(os.fspath(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    vectors = path + ".vectors"
    stats = encode_vectors(model, corpus, vectors, model_name, batch_size, progress=progress)
    work = tempfile.mkdtemp(prefix=".tmp-splade-", dir=os.path.dirname(path))
    try:
        index = os.path.join(work, "index")
        args = ["-collection", "JsonVectorCollection", "-generator", "DefaultLuceneDocumentGenerator",
                "-input", os.path.join(vectors, "docs"), "-index", index, "-impact", "-pretokenized",
                "-threads", str(threads or os.cpu_count() or 1), "-quiet"]
        autoclass("io.anserini.index.IndexCollection").main(args)
        meta = {"kind": "splade", "model": model_name, "corpus": corpus.fingerprint(), "documents": len(corpus),
                "scale": SCALE, "max_seq_length": model.max_seq_length,
                "doc_terms": stats["terms"] / max(1, stats["documents"]), "query_terms": {}}
        with open(os.path.join(index, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(index, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(vectors, ignore_errors=True)
    return SpladeIndex(path)


class _Weights:
    """A pyserini query encoder that hands back weights computed beforehand, looked up by query text."""

    def __init__(self, weights: dict[str, dict[str, int]]):
        self.weights = weights

    def encode(self, text: str) -> dict[str, int]:
        return self.weights[text]


class SpladeIndex:
    """A Lucene impact index of SPLADE vectors plus ``meta.json`` (model, corpus, sparsity)."""

    def __init__(self, path):
        self.path = os.fspath(path)
        meta = os.path.join(self.path, "meta.json")
        if not os.path.exists(meta):
            raise InputError("not a SPLADE index (no meta.json)", self.path)
        with open(meta) as f:
            self.meta = json.load(f)
        if self.meta.get("kind") != "splade":
            raise InputError(f"not a SPLADE index (kind {self.meta.get('kind')!r})", self.path)
        self._searcher = None

    @property
    def searcher(self):
        if self._searcher is None:
            start_jvm()
            from pyserini.search.lucene import LuceneImpactSearcher

            # min_idf=-1 keeps every query term that the index holds (pyserini drops idf <= min_idf)
            self._searcher = LuceneImpactSearcher(self.path, query_encoder=_Weights({}), min_idf=-1)
        return self._searcher

    def search_weights(self, weights: dict[str, dict[str, int]], k: int = 1000, threads: int | None = None) -> pd.DataFrame:
        """Top ``k`` of each query given as ``{qid: {term: integer weight}}``, as a run DataFrame."""
        qids = list(weights)
        searcher = self.searcher
        from jnius import autoclass

        lucene = autoclass("org.apache.lucene.search.IndexSearcher")  # one clause per query term (default 1024)
        lucene.setMaxClauseCount(max(lucene.getMaxClauseCount(), *(len(w) for w in weights.values()), 1))
        searcher.query_encoder = _Weights({q: weights[q] for q in qids})
        hits = searcher.batch_search(qids, qids, k=k, threads=threads or os.cpu_count() or 1)
        rows = [(q, h.docid, h.score) for q in qids for h in hits.get(q, [])]
        return rank_run(pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"score": "float32"}))

    def search(self, model, queries: dict[str, str], k: int = 1000, batch_size: int = 8,
               threads: int | None = None) -> pd.DataFrame:
        """Encode ``queries`` with ``model`` and return the top ``k`` of each; ``last_query_terms`` holds the
        average number of non-zero query terms."""
        qids = list(queries)
        vectors = sparse_weights(model, [queries[q] for q in qids], "query", batch_size)
        self.last_query_terms = float(np.mean([len(v) for v in vectors])) if vectors else 0.0
        return self.search_weights(dict(zip(qids, vectors)), k, threads)

    def record_query_terms(self, name: str, value: float) -> None:
        """Store the average query sparsity of a query set (e.g. ``scifact/test``) in ``meta.json``."""
        self.meta.setdefault("query_terms", {})[name] = value
        with atomic_path(os.path.join(self.path, "meta.json")) as tmp, open(tmp, "w") as f:
            json.dump(self.meta, f, indent=1)
