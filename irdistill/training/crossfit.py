"""Cross-fitted (out-of-fold) teacher scores: a model trained on the labels scores its own training queries without
having seen them.

The queries are split into k folds (the crc32 split of ``--shard``). For each fold, a model is trained on the other
folds (``fold: i/k`` in its training config) and scores this fold's candidates. The union is cached under one id. As
an ensemble member (``{cached: <id>}``), its weight can then be fit honestly on those same training queries, and the
model trained on all of them takes its place on new queries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pandas as pd

from ..cache.scores import ScoreCache
from ..data.dataset import load_dataset
from ..data.runs import check_run_ids, read_run
from ..data.shards import shard_of
from ..errors import InputError
from ..teachers import ScoreStats, score_run
from .config import TrainConfig
from .students import STUDENTS, get_student
from .train import train


def crossfit(train_config, run: pd.DataFrame | str, dataset=None, cache: ScoreCache | None = None, folds: int = 2,
             progress: bool = True) -> ScoreStats:
    """Train ``folds`` models from ``train_config`` (a TrainConfig or its dict; each under
    ``<output>/fold-<i>-of-<k>``), each scoring the candidates in ``run`` (a run or run file) of the fold it left
    out. ``dataset`` and ``cache`` default to the config's. Returns the cache key of the out-of-fold scores and the
    queries they cover."""
    cfg = asdict(train_config) if isinstance(train_config, TrainConfig) else dict(train_config)
    student = get_student(cfg.get("student", "bi-encoder"))
    if student.teacher is None:
        can = [s.name for s in STUDENTS.values() if s.teacher]
        raise InputError(f"cross-fitting trains {' or '.join(can)} teachers, not {student.name!r}")
    if folds < 2:
        raise InputError(f"cross-fitting needs at least 2 folds, not {folds}")
    dataset = dataset or load_dataset(cfg["dataset"], cfg.get("split", "train"))
    cache = cache or ScoreCache(cfg["cache"])
    if not isinstance(run, pd.DataFrame):
        path, run = run, read_run(run)
        check_run_ids(run, dataset, path)
    keys = []
    for i in range(folds):
        fold_cfg = {**cfg, "fold": f"{i}/{folds}", "output": f"{cfg['output']}/fold-{i}-of-{folds}"}
        model = train(TrainConfig.from_dict(fold_cfg), progress=progress)
        teacher = {"kind": student.teacher, "model": model}
        keys.append(score_run(teacher, run, dataset, cache, shard=(i, folds), progress=progress).key)
    cid = "crossfit-" + hashlib.sha1(json.dumps(keys).encode()).hexdigest()[:12] + "@" + dataset.corpus.fingerprint()[:12]
    cache.register(cid, {"kind": "crossfit", "folds": keys, "collection": dataset.name})
    for i, key in enumerate(keys):  # the pairs of this fold that the out-of-fold scores lack
        todo = cache.missing(cid, shard_of(run, (i, folds))[["qid", "docid"]])
        if len(todo):
            df = cache.read_pairs(key, todo)
            cache.commit(cid, df["qid"], df["docid"], df["score"].to_numpy(),
                         {q: dataset.queries[q] for q in pd.unique(df["qid"])})
    return ScoreStats(cid, qids=run["qid"].unique().tolist())
