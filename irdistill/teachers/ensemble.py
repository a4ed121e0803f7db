"""Multi-teacher ensembles: per-query normalisation and a weighted sum of cached member scores (through ranx).

Weights are given, or fit on labelled queries by ranx's grid search (``optimize_fusion``) for a metric. Fit on a
training split only, and evaluate on another: scores of the fit split itself are for training students.
"""

from __future__ import annotations

import hashlib
import json
import logging

import pandas as pd

from ..cache.scores import ScoreCache
from ..data.runs import rank_run, run_to_dict
from ..errors import InputError

log = logging.getLogger(__name__)
NORMS = {"zscore": "zmuv", "minmax": "min-max", "rank": "rank", "max": "max", "sum": "sum"}


def _ranx_norm(norm: str):
    if norm not in NORMS:
        raise InputError(f"unknown normalisation {norm!r} (choose from {', '.join(NORMS)})")
    return NORMS[norm]


def _runs(cache: ScoreCache, members: list[str], pairs: pd.DataFrame) -> list:
    """One ranx Run per member: its cached scores of the (qid, docid) ``pairs``."""
    from ranx import Run

    runs = []
    for m in members:
        df = cache.read(m, qids=pairs["qid"].unique().tolist()).merge(pairs[["qid", "docid"]], on=["qid", "docid"])
        if df.empty:
            raise InputError(f"the cache holds no scores of member {m!r} for these queries", cache.folder)
        runs.append(Run(run_to_dict(df), name=m))
    return runs


def fit_weights(cache: ScoreCache, members: list[str], pairs: pd.DataFrame, qrels: dict, norm: str = "zscore",
                metric: str = "ndcg@10", step: float = 0.05) -> list[float]:
    """Weights (summing to 1) that maximise ``metric`` of the fused members over the candidate ``pairs`` of the
    judged queries ``qrels``."""
    from ranx import Qrels, optimize_fusion

    runs = _runs(cache, members, pairs[pairs["qid"].isin(list(qrels))])
    q = Qrels({k: {d: int(g) for d, g in v.items()} for k, v in qrels.items()})
    best = optimize_fusion(q, runs, norm=_ranx_norm(norm), method="wsum", metric=metric, step=step, show_progress=False)
    return [float(w) for w in best["weights"]]


def ensemble_id(members: list[str], weights: list[float], norm: str) -> str:
    desc = json.dumps({"members": members, "weights": [round(w, 6) for w in weights], "norm": norm}, sort_keys=True)
    return "ensemble-" + hashlib.sha1(desc.encode()).hexdigest()[:12]


def fuse(cache: ScoreCache, members: list[str], weights: list[float], norm: str, pairs: pd.DataFrame) -> pd.DataFrame:
    """The weighted sum of the normalised member scores of the (qid, docid) ``pairs``, as a run DataFrame.

    A candidate that a member did not score counts as that member's lowest normalised score of the query (ranx: 0
    after min-max)."""
    from ranx import fuse as ranx_fuse

    if len(weights) != len(members):
        raise InputError(f"{len(weights)} weights for {len(members)} members")
    fused = ranx_fuse(_runs(cache, members, pairs), norm=_ranx_norm(norm), method="wsum", params={"weights": weights})
    rows = [(q, d, s) for q, docs in fused.to_dict().items() for d, s in docs.items()]
    return rank_run(pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"score": "float32"}))


def score_ensemble(spec: dict, run: pd.DataFrame, dataset, cache: ScoreCache, shard=(0, 1), load_split=None,
                   progress: bool = True):
    """Score the members into the cache, fit the weights when the spec asks (``fit: {split, run, metric}``), then
    write the fused scores under the ensemble's own id. Returns ``(ensemble id, pairs scored by any teacher)``.

    Spec: ``{kind: ensemble, members: [teacher specs], norm: zscore|minmax|rank, weights: [...] | fit: {...}}``."""
    from ..data.runs import read_run
    from . import build_teacher
    from .score import cache_key, in_shard, score_run

    specs = spec.get("members", [])
    if len(specs) < 2:
        raise InputError("an ensemble needs at least two members")
    # a member {cached: <id>} is used as it is in the cache (e.g. cross-fitted scores); the others score first
    members = [None if isinstance(m, dict) and "cached" in m else build_teacher(m, dataset) for m in specs]
    ids = [m["cached"] if t is None else cache_key(t, dataset) for m, t in zip(specs, members)]
    members = [t for t in members if t is not None]
    norm, weights, fit = spec.get("norm", "zscore"), spec.get("weights"), spec.get("fit")
    _ranx_norm(norm)
    _check_cached(cache, [m["cached"] for m in specs if isinstance(m, dict) and "cached" in m], run)
    scored = sum(score_run(t, run, dataset, cache, shard, progress=progress).pairs for t in members)
    if weights is None:
        if not fit or "split" not in fit or "run" not in fit:
            raise InputError("an ensemble needs weights, or fit: {split: <training split>, run: <its candidates>}")
        if fit["split"] == dataset.split:  # fine for training labels; never report metrics on these scores
            log.warning("scoring %r, the split the ensemble weights are fit on: use these scores to train, "
                        "not to evaluate", fit["split"])
        fit_ds, fit_run = load_split(fit["split"]), read_run(fit["run"])
        _check_cached(cache, [m["cached"] for m in specs if isinstance(m, dict) and "cached" in m], fit_run)
        if fit_ds.corpus.fingerprint() != dataset.corpus.fingerprint():
            raise InputError("the fit split must be of the same collection as the scored one")
        scored += sum(score_run(t, fit_run, fit_ds, cache, progress=progress).pairs for t in members)
        judged = {q: fit_ds.qrels[q] for q in fit_run["qid"].unique() if q in fit_ds.qrels}
        weights = fit_weights(cache, ids, fit_run, judged, norm, fit.get("metric", "ndcg@10"))
    eid = ensemble_id(ids, weights, norm) + "@" + ids[0].rsplit("@", 1)[1]  # member keys hold the collection
    cache.register(eid, {"kind": "ensemble", "members": ids, "weights": weights, "norm": norm, "fit": fit,
                         "collection": dataset.name})
    done = cache.scored_qids(eid)
    qids = [q for q in run["qid"].unique() if in_shard(q, shard) and q not in done]
    if qids:
        fused = fuse(cache, ids, weights, norm, run[run["qid"].isin(qids)])
        cache.write(eid, fused["qid"], fused["docid"], fused["score"].to_numpy())
    return eid, scored


def _check_cached(cache: ScoreCache, ids: list[str], run: pd.DataFrame) -> None:
    for tid in ids:
        missing = set(run["qid"].unique()) - cache.scored_qids(tid)
        if missing:
            raise InputError(f"cached member {tid!r} has no scores for {len(missing)} queries of the run "
                             f"(e.g. {sorted(missing)[0]!r})", cache.folder)
