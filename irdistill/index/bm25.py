"""BM25 through pyserini: a Lucene index built from any Corpus, searched in batch."""

from __future__ import annotations

import json
import os

from ..data.runs import rank_run
from ..errors import InputError
from ..lazy import module
from ..progress import bar as progress_bar
from ..progress import chunks, step
from .base import Index, building, register_index
from .java import folder_bytes, start_jvm

pd = module("pandas")  # imported on first use (lazy.py)

# BM25 flat (title and text in one field; pyserini's --bm25 defaults k1=0.9, b=0.4), nDCG@10 on the BEIR test sets, from
# pyserini's two-click reproductions: pyserini/2cr/beir.yaml, condition bm25-flat (castorini/pyserini; the same file
# ships in the pyserini 1.6.0 wheel).
PUBLISHED = {
    "trec-covid": 0.5947, "nfcorpus": 0.3218, "nq": 0.3055, "hotpotqa": 0.6330, "fiqa": 0.2361, "arguana": 0.3970,
    "webis-touche2020": 0.4422, "cqadupstack-android": 0.3801, "cqadupstack-english": 0.3453,
    "cqadupstack-gaming": 0.4822, "cqadupstack-gis": 0.2901, "cqadupstack-mathematica": 0.2015,
    "cqadupstack-physics": 0.3214, "cqadupstack-programmers": 0.2802, "cqadupstack-stats": 0.2711,
    "cqadupstack-tex": 0.2244, "cqadupstack-unix": 0.2749, "cqadupstack-webmasters": 0.3059,
    "cqadupstack-wordpress": 0.2483, "quora": 0.7886, "dbpedia-entity": 0.3180, "scidocs": 0.1490, "fever": 0.6513,
    "climate-fever": 0.1651, "scifact": 0.6789,
    "bioasq": 0.5225, "signal1m": 0.3304, "trec-news": 0.3952, "robust04": 0.4070,
}
PUBLISHED_COLUMN = "pyserini bm25 ndcg@10"


@register_index
class BM25Index(Index):
    """A Lucene index with Anserini's default English analyzer (Porter stemmer, stopwords). ``k1=0.9, b=0.4`` are
    Anserini's defaults (the BEIR "flat" baseline)."""

    name = "bm25"
    published = PUBLISHED

    def __init__(self, path, k1: float = 0.9, b: float = 0.4):
        super().__init__(path)
        self.k1, self.b = k1, b
        start_jvm(folder_bytes(self.path))
        from pyserini.search.lucene import LuceneSearcher

        self.searcher = open_lucene(LuceneSearcher, self.path)
        self.searcher.set_bm25(k1, b)

    @classmethod
    def build(cls, corpus, path, key=None, model=None, kind=None, batch_size=0, progress=True, rebuild=False,
              threads: int | None = None) -> "BM25Index":
        """Index ``corpus`` at ``path``, a batch of documents at a time under a progress bar, through Anserini's
        SimpleIndexer (the analyzer and fields of its IndexCollection: the same index, the same scores)."""
        start_jvm(corpus.table.nbytes)
        from jnius import autoclass
        from pyserini.index.lucene import LuceneIndexer

        level = autoclass("org.apache.logging.log4j.Level").WARN  # SimpleIndexer logs its settings at INFO
        autoclass("org.apache.logging.log4j.core.config.Configurator").setLevel("io.anserini.index", level)
        meta = {"kind": cls.name, "documents": len(corpus), "key": key}
        with building(path, meta) as work:
            indexer = LuceneIndexer(args=["-index", os.path.abspath(work), "-generator", "DefaultLuceneDocumentGenerator"],
                                    threads=threads or os.cpu_count() or 1)
            try:
                with progress_bar(total=len(corpus), desc="indexing (bm25)", unit="doc", show=progress) as bar:
                    for _, ids, texts in corpus.batches(2048):
                        indexer.add_batch_raw([json.dumps({"id": d, "contents": t}) for d, t in zip(ids, texts)])
                        bar.update(len(ids))
            finally:
                indexer.close()
        step("opening the Lucene searcher (pyserini imports its neural encoders' modules first: seconds)", progress)
        return cls(path)

    def search(self, queries: dict[str, str], k: int = 1000, batch_size=None, progress=False,
               threads: int | None = None) -> pd.DataFrame:
        k = top_k(self.searcher, k)
        allow_clauses(max(map(len, queries.values()), default=0))
        hits = {}
        for qids in chunks(list(queries), 1024, progress, desc="searching (bm25)", unit="query"):
            hits.update(self.searcher.batch_search([queries[q] for q in qids], qids, k=k,
                                                   threads=threads or os.cpu_count() or 1))
        qids = list(queries)
        rows = [(q, h.docid, h.score) for q in qids for h in hits.get(q, [])]
        df = pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"score": "float32"})
        return rank_run(df)


def open_lucene(searcher_class, path):
    """``searcher_class(path)`` (pyserini's Lucene searchers); a damaged index (a part truncated, removed or overwritten)
    is an InputError naming it, not a Java stack trace."""
    from jnius import JavaException

    try:
        return searcher_class(os.path.abspath(path))  # the JVM keeps the cwd it started in
    except JavaException as e:
        problem = " ".join(str(getattr(e, "innermessage", None) or e).split())[:200]
        raise InputError(f"not a readable Lucene index ({problem}): rebuild it (--rebuild)", path) from None


def top_k(searcher, k: int) -> int:
    """``k`` hits at most the index's documents: Lucene takes a Java int, and never returns more anyway."""
    return max(1, min(k, searcher.num_docs))


def allow_clauses(terms: int) -> None:
    """Let Lucene queries have ``terms`` clauses (one a query term; 1024 by default): a long query is valid input."""
    from jnius import autoclass

    lucene = autoclass("org.apache.lucene.search.IndexSearcher")
    if terms > lucene.getMaxClauseCount():
        lucene.setMaxClauseCount(terms)
