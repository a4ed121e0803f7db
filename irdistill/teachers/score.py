"""Score a run's candidates with a teacher into the cache: each query once, resumable, shardable."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import pandas as pd
from tqdm.auto import tqdm

from ..cache.scores import ScoreCache
from ..data.dataset import Dataset
from ..errors import InputError
from .base import Teacher


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``; without a spec, torchrun's RANK/WORLD_SIZE, else ``(0, 1)``."""
    if spec:
        try:
            i, n = (int(x) for x in spec.split("/"))
        except ValueError:
            raise InputError(f"--shard must look like 0/4, not {spec!r}") from None
        if not 0 <= i < n:
            raise InputError(f"--shard {spec}: need 0 <= i < n")
        return i, n
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def in_shard(qid: str, shard: tuple[int, int]) -> bool:
    """A stable split of query ids (crc32, the same on every machine and Python process)."""
    return shard[1] == 1 or zlib.crc32(qid.encode()) % shard[1] == shard[0]


def cache_key(teacher: Teacher, dataset: Dataset) -> str:
    """Where a teacher's scores of one collection live in the cache: ``<teacher id>@<corpus fingerprint>``.
    Query ids repeat across collections (SciFact's and Cranfield's are both small numbers), so scores are kept apart
    by collection; the same corpus reached another way (a BEIR folder or its ir_datasets id) shares its scores."""
    return f"{teacher.id}@{dataset.corpus.fingerprint()[:12]}"


@dataclass
class ScoreStats:
    key: str = ""
    queries: int = 0
    pairs: int = 0
    skipped_queries: int = 0


def score_run(teacher: Teacher, run: pd.DataFrame, dataset: Dataset, cache: ScoreCache, shard: tuple[int, int] = (0, 1),
              flush_pairs: int = 2048, progress: bool = True) -> ScoreStats:
    """Score every (qid, docid) of ``run`` with ``teacher`` into ``cache`` under ``cache_key(teacher, dataset)``
    (returned as ``stats.key``), skipping queries already scored.
    The teacher reads the documents' ``teacher.text_view`` (the corpus itself by default).

    Queries are taken whole, in run order, and written to a new part file every ``flush_pairs`` pairs; a killed job
    loses at most the unwritten block and, run again, scores exactly the rest."""
    dataset.view(teacher.text_view)  # fail early on a missing view
    key = cache_key(teacher, dataset)
    cache.register(key, {**teacher.describe(), "collection": dataset.name, "documents": len(dataset.corpus)})
    done = cache.scored_qids(key)
    stats = ScoreStats(key)
    todo = []
    for qid, group in run.groupby("qid", sort=False):
        if not in_shard(qid, shard):
            continue
        if qid in done:
            stats.skipped_queries += 1
            continue
        if qid not in dataset.queries:
            raise InputError(f"run names query {qid!r}, which {dataset.name} does not have")
        todo.append((qid, group["docid"].tolist()))
    total = sum(len(d) for _, d in todo)
    with tqdm(total=total, desc=f"scoring ({teacher.kind})", unit="pair", disable=not progress) as bar:
        block: list[tuple[str, list[str]]] = []
        size = 0
        for i, (qid, docids) in enumerate(todo):
            block.append((qid, docids))
            size += len(docids)
            if size >= flush_pairs or i == len(todo) - 1:
                _score_block(teacher, key, block, dataset, cache)
                stats.queries += len(block)
                stats.pairs += size
                bar.update(size)
                block, size = [], 0
    return stats


def _score_block(teacher: Teacher, key: str, block, dataset: Dataset, cache: ScoreCache) -> None:
    try:
        corpus = dataset.view(teacher.text_view)
        lists = [(dataset.queries[q], corpus.texts(docids)) for q, docids in block]
    except KeyError as e:
        raise InputError(f"run names a document that {dataset.name} does not have: {e.args[0]}") from None
    scores = teacher.score_lists(lists, [docids for _, docids in block])
    qids = [q for q, docids in block for _ in docids]
    docids = [d for _, ds in block for d in ds]
    cache.write(key, qids, docids, [s for arr in scores for s in arr])
