"""The one entry point that scores a run's candidates into the cache, for a teacher spec of any kind."""

from __future__ import annotations

import os

import pandas as pd

from ..cache.scores import ScoreCache
from ..data.dataset import Dataset
from ..data.runs import check_run_ids, read_run
from ..index.encode import use_local_gpu
from .base import ScoreStats, Teacher
from .spec import build_teacher


def score_run(teacher, run: pd.DataFrame | str, dataset: Dataset, cache: ScoreCache, shard: tuple[int, int] = (0, 1),
              flush_pairs: int = 2048, progress: bool = True, options=()) -> ScoreStats:
    """Score every (qid, docid) of ``run`` into ``cache``: each query once, resumable, shardable.

    ``teacher``: a Teacher, or a spec of any kind ``build_teacher`` takes (ensembles included), with ``options``
    (``key=value`` strings) applied. ``run``: a run DataFrame, or a run file whose ids are checked against
    ``dataset`` before any model loads. Returns the cache key and counts (``ScoreStats``)."""
    if isinstance(run, (str, os.PathLike)):
        path, run = os.fspath(run), read_run(run)
        check_run_ids(run, dataset, path)
    if not isinstance(teacher, Teacher):
        use_local_gpu()  # under torchrun, "cuda" is this rank's GPU for every teacher
        teacher = build_teacher(teacher, dataset, options)
    return teacher.score(run, dataset, cache, shard, flush_pairs, progress)
