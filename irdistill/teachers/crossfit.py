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

import pandas as pd

from ..cache.scores import ScoreCache
from ..errors import InputError
from .score import in_shard

KINDS = ("bi-encoder", "cross-encoder")


def crossfit(train_config: dict, run: pd.DataFrame, dataset, cache: ScoreCache, folds: int = 2,
             progress: bool = True) -> str:
    """Train ``folds`` models from ``train_config`` (under ``<output>/fold-<i>-of-<k>``), each scoring the
    candidates in ``run`` of the fold it left out; returns the cache id of the out-of-fold scores."""
    from ..training import TrainConfig, train
    from . import build_teacher
    from .score import score_run

    student = train_config.get("student", "bi-encoder")
    if student not in KINDS:
        raise InputError(f"cross-fitting trains {' or '.join(KINDS)} teachers, not {student!r}")
    if folds < 2:
        raise InputError(f"cross-fitting needs at least 2 folds, not {folds}")
    keys = []
    for i in range(folds):
        cfg = {**train_config, "fold": f"{i}/{folds}", "output": f"{train_config['output']}/fold-{i}-of-{folds}"}
        model = train(TrainConfig.from_dict(cfg), progress=progress)
        teacher = build_teacher({"kind": student, "model": model}, dataset)
        keys.append(score_run(teacher, run, dataset, cache, shard=(i, folds), progress=progress).key)
    cid = "crossfit-" + hashlib.sha1(json.dumps(keys).encode()).hexdigest()[:12] + "@" + keys[0].rsplit("@", 1)[1]
    cache.register(cid, {"kind": "crossfit", "folds": keys, "collection": dataset.name})
    done = cache.scored_qids(cid)
    for i, key in enumerate(keys):
        qids = [q for q in run["qid"].unique() if in_shard(q, (i, folds)) and q not in done]
        if qids:
            df = cache.read(key, qids=qids)
            cache.write(cid, df["qid"], df["docid"], df["score"].to_numpy())
    return cid
