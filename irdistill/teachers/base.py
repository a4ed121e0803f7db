"""What every teacher is: a scorer of (query, passages) lists with a stable identity that keys the score cache, and
the one registry of teacher kinds."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from ..cache.scores import ScoreCache
from ..data.dataset import Dataset
from ..data.shards import shard_of
from ..progress import bar as progress_bar
from ..errors import InputError

TEACHERS: dict[str, type["Teacher"]] = {}
WAIT = 0.5  # seconds between looks at queries another process is scoring


def register_teacher(cls: type["Teacher"]) -> type["Teacher"]:
    """Add a teacher class to the registry under ``cls.kind`` (usable as a class decorator)."""
    TEACHERS[cls.kind] = cls
    return cls


@dataclass
class ScoreStats:
    key: str = ""              # where the scores live in the cache
    queries: int = 0           # queries some pairs of which this call scored
    pairs: int = 0             # (query, document) pairs scored by this call, by any teacher
    skipped_queries: int = 0   # queries whose every pair was found in the cache
    qids: list[str] = field(default_factory=list)  # the run's queries (of this shard), scored now or before


class Teacher:
    """Subclasses set ``kind``, fill ``config()`` with everything that changes their scores, and implement
    ``score_pairs`` (pointwise) or ``score_lists`` (listwise). ``from_spec`` builds one from the options of a spec."""

    kind: ClassVar[str] = "teacher"
    batch_size = 32
    text_view: str | None = None  # read another text of each document (e.g. "en", the source of a translation)
    query_view: str | None = None  # read another text of each query (e.g. "manual", a person's rewrite of a turn)
    scale: str = "unknown"  # what the scores are (logit, cosine, bm25, rank...): kept in the cache entry for the losses

    @classmethod
    def from_spec(cls, spec: dict, dataset: Dataset | None = None, text_view: str | None = None) -> "Teacher":
        """The teacher a spec's options describe (``kind`` and ``text_view`` already taken out)."""
        try:
            inspect.signature(cls).bind(**spec)
        except TypeError as e:  # an unknown or missing option
            missing = re.search(r"missing a required argument: '(\w+)'", str(e))
            raise InputError(f"teacher {cls.kind} needs a {missing.group(1)}" if missing else
                             f"teacher {cls.kind}: {e}") from None
        return cls(**spec)

    def config(self) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        view = {"text_view": self.text_view} if self.text_view else {}
        view.update({"query_view": self.query_view} if self.query_view else {})
        return {"kind": self.kind, **self.config(), **view}

    @property
    def id(self) -> str:
        """``<kind>-<12 hex>``: the hash of ``describe()``; two teachers share it only if they score alike."""
        digest = hashlib.sha1(json.dumps(self.describe(), sort_keys=True, default=str).encode()).hexdigest()[:12]
        return f"{self.kind}-{digest}"

    def cache_key(self, dataset: Dataset) -> str:
        """Where this teacher's scores of one collection live in the cache: ``<teacher id>@<corpus fingerprint>``
        (``+<view fingerprint>`` when it reads another text view). Query ids repeat across collections (SciFact's and
        Cranfield's are both small numbers), so scores are kept apart by collection; the same corpus reached another
        way (a BEIR folder or its ir_datasets id) shares them. The fingerprints cover the texts: edit a document and
        its scores are made again."""
        view = f"+{dataset.view(self.text_view).fingerprint()[:8]}" if self.text_view else ""
        return f"{self.id}@{dataset.corpus.fingerprint()[:12]}{view}"

    def score_pairs(self, queries: list[str], passages: list[str]) -> np.ndarray:
        raise NotImplementedError

    def score_lists(self, lists: list[tuple[str, list[str]]], docids: list[list[str]] | None = None) -> list[np.ndarray]:
        """Scores for each ``(query, passages)``; pointwise teachers score all pairs in one batch.

        ``docids`` (the passages' ids) is for teachers that look documents up in an index, such as BM25."""
        queries = [q for q, ps in lists for _ in ps]
        passages = [p for _, ps in lists for p in ps]
        flat = np.asarray(self.score_pairs(queries, passages), dtype=np.float32) if passages else np.zeros(0, np.float32)
        out, i = [], 0
        for _, ps in lists:
            out.append(flat[i : i + len(ps)])
            i += len(ps)
        return out

    def score(self, run: pd.DataFrame, dataset: Dataset, cache: ScoreCache, shard: tuple[int, int] = (0, 1),
              flush_pairs: int = 2048, progress: bool = True) -> ScoreStats:
        """Score every (qid, docid) of ``run`` (of this ``shard`` of its queries) into ``cache`` under
        ``cache_key(dataset)``, skipping the pairs the cache holds already: a query scored before gets only its new
        candidates (a top 40 after a top 20: ranks 21 to 40). A query id the cache holds with another text is an
        InputError. The teacher reads the documents' ``text_view`` (the corpus itself by default) and the queries'
        ``query_view`` (their texts by default; the texts it read key the scores).

        Queries are taken whole, in run order, in blocks of about ``flush_pairs`` pairs. Each block's queries are
        claimed in the cache and their missing pairs looked up again (so processes started on the same queries, or
        shards of a job, score each pair once), scored, committed as one part file (so the cache never holds a pair
        twice) and released. Queries another live process is scoring are looked up again once it has committed them,
        so the call returns with every pair of its shard in the cache. A killed job loses at most the block it was
        scoring and, run again, scores exactly the rest."""
        dataset.view(self.text_view)  # fail early on a missing view
        texts = dataset.query_texts(self.query_view)
        key = self.cache_key(dataset)
        cache.register(key, {**self.describe(), "collection": dataset.name, "documents": len(dataset.corpus),
                             "scale": self.scale})
        pairs = shard_of(run, shard)[["qid", "docid"]]
        qids = pd.unique(pairs["qid"]).tolist()
        cache.check_texts(key, {q: texts[q] for q in qids if q in texts})
        todo = cache.missing(key, pairs)
        stats = ScoreStats(key, skipped_queries=len(qids) - todo["qid"].nunique(), qids=qids)
        unknown = todo["qid"][~todo["qid"].isin(list(dataset.queries))]
        if len(unknown):
            raise InputError(f"run names query {unknown.iloc[0]!r}, which {dataset.name} does not have")
        ok = False
        try:
            with progress_bar(total=len(todo), desc=f"scoring ({self.kind})", unit="pair", show=progress) as bar:
                while len(todo):
                    waiting = []  # queries another process was scoring
                    for block in _blocks(todo, flush_pairs):
                        mine = cache.claim(key, pd.unique(block["qid"]), held=True)
                        work = cache.missing(key, block[block["qid"].isin(mine)])
                        if len(work):
                            lists = [(q, d.tolist()) for q, d in work.groupby("qid", sort=False)["docid"]]
                            self._score_block(key, lists, dataset, texts, cache)
                            stats.queries += work["qid"].nunique()
                            stats.pairs += len(work)
                        cache.release(key)
                        waiting += sorted(set(block["qid"]) - set(mine))
                        bar.update(int(block["qid"].isin(mine).sum()))
                    todo = todo[todo["qid"].isin(waiting)]
                    left = cache.missing(key, todo)
                    bar.update(len(todo) - len(left))
                    if len(left):
                        time.sleep(WAIT)  # until its owner has committed them, died or gone silent for a lease
                    todo = left
            ok = True
        finally:
            cache.release(key)
            if not ok:
                cache.forget_if_empty(key)
        return stats

    def _score_block(self, key: str, block, dataset: Dataset, queries: dict[str, str], cache: ScoreCache) -> None:
        """Score and commit ``block``: ``(qid, docids)`` of each of its queries, whose texts are ``queries``."""
        try:
            corpus = dataset.view(self.text_view)
            lists = [(queries[q], corpus.texts(docids)) for q, docids in block]
        except KeyError as e:
            raise InputError(f"run names a document that {dataset.name} does not have: {e.args[0]}") from None
        scores = self.score_lists(lists, [docids for _, docids in block])
        qids = [q for q, docids in block for _ in docids]
        docids = [d for _, ds in block for d in ds]
        cache.commit(key, qids, docids, [s for arr in scores for s in arr], {q: queries[q] for q, _ in block})


def _blocks(todo: pd.DataFrame, pairs: int):
    """Whole queries of ``todo`` (in the order they first appear) in consecutive blocks of about ``pairs`` rows."""
    codes, _ = pd.factorize(todo["qid"])
    todo = todo.iloc[np.argsort(codes, kind="stable")]
    ends = np.cumsum(np.bincount(codes))  # where each query's rows end
    start = 0
    while start < len(todo):
        stop = int(ends[min(np.searchsorted(ends, start + pairs), len(ends) - 1)])
        yield todo.iloc[start:stop]
        start = stop
