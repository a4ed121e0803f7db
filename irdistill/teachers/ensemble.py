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
from ..data.runs import rank_run, read_run, run_to_dict
from ..data.shards import shard_of
from ..errors import InputError, brief, choice, number
from .base import ScoreStats, Teacher, register_teacher

log = logging.getLogger(__name__)
NORMS = {"zscore": "zmuv", "minmax": "min-max", "rank": "rank", "max": "max", "sum": "sum"}


def _ranx_norm(norm: str):
    return NORMS[choice(norm, "the ensemble's norm", NORMS)]


def _runs(cache: ScoreCache, members: list[str], pairs: pd.DataFrame) -> list:
    """One ranx Run per member: its cached scores of the (qid, docid) ``pairs``."""
    from ranx import Run

    runs = []
    for m in members:
        df = cache.read_pairs(m, pairs)
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


@register_teacher
class EnsembleTeacher(Teacher):
    """Several teachers as one: their cached scores, normalised per query (``norm``), summed with ``weights``.

    Spec: ``{kind: ensemble, members: [teacher specs], norm: zscore|minmax|rank, weights: [...] | fit: {split, run,
    metric}}``. A member ``{cached: <cache key>}`` is used as it is in the cache (e.g. cross-fitted scores); the
    others score first. ``fit`` fits the weights on the judged queries of another split of the same collection
    (``split``) over its candidates (``run``), by ranx's grid search for ``metric``."""

    kind = "ensemble"

    def __init__(self, members: list, norm: str = "zscore", weights: list[float] | None = None, fit: dict | None = None,
                 dataset=None):
        self.check_spec({"members": members, "norm": norm, "weights": weights, "fit": fit})
        from .spec import build_teacher

        self.specs, self.norm, self.weights, self.fit, self.dataset = members, norm, weights, fit, dataset
        self.cached = [m["cached"] if isinstance(m, dict) and "cached" in m else None for m in members]
        self.members = [build_teacher(m, dataset) if c is None else None for m, c in zip(members, self.cached)]

    @classmethod
    def from_spec(cls, spec, dataset=None, text_view=None):
        return super().from_spec({**spec, "dataset": dataset}, dataset, text_view)

    @staticmethod
    def check_spec(spec: dict) -> None:
        """Members (specs, each checked, or ``{cached: id}``), weights (numbers, one a member) or ``fit``, and
        ``norm``, before any member loads."""
        from .spec import parse_spec

        members, weights, fit = spec.get("members"), spec.get("weights"), spec.get("fit")
        if not isinstance(members, list) or len(members) < 2:
            raise InputError(f"an ensemble needs a list of at least two members, not {brief(members)}")
        for m in members:
            if isinstance(m, dict) and "cached" in m:
                if set(m) != {"cached"} or not isinstance(m["cached"], str):
                    raise InputError(f"a cached member is {{cached: <cache key>}}, not {brief(m)}")
            elif isinstance(m, (dict, str)):
                parse_spec(m)
            else:
                raise InputError(f"an ensemble member is a teacher spec (a mapping or kind:model), not {brief(m)}")
        if weights is not None:
            if not isinstance(weights, list) or len(weights) != len(members):
                raise InputError(f"an ensemble's weights are a list of one number a member, not {brief(weights)}")
            for w in weights:
                number(w, "an ensemble weight", float)
        elif not isinstance(fit, dict) or not all(isinstance(fit.get(k), str) for k in ("split", "run")):
            raise InputError("an ensemble needs weights, or fit: {split: <training split>, run: <its candidates>}")
        if fit is not None and (not isinstance(fit, dict) or not all(isinstance(v, str) for v in fit.values())
                                or not set(fit) <= {"split", "run", "metric"}):
            raise InputError(f"an ensemble's fit is {{split: <training split>, run: <candidates>, metric: <metric>}}, "
                             f"not {brief(fit)}")
        _ranx_norm(spec.get("norm", "zscore"))

    def member_keys(self, dataset) -> list[str]:
        return [c if t is None else t.cache_key(dataset) for c, t in zip(self.cached, self.members)]

    def _score_members(self, run, dataset, cache, shard=(0, 1), progress=True) -> int:
        _check_cached(cache, [c for c in self.cached if c], shard_of(run, shard), dataset)
        return sum(t.score(run, dataset, cache, shard, progress=progress).pairs for t in self.members if t is not None)

    def score(self, run, dataset, cache, shard=(0, 1), flush_pairs=2048, progress=True) -> ScoreStats:
        """Score the members into the cache (only the pairs they lack), fit the weights when the spec asks, then
        write the fused scores of the queries not fused yet under the ensemble's own key. ``pairs`` counts the pairs
        scored by any member.

        A fused score is normalised over its query's candidates, so a query is fused once, over all its candidates
        in the run: one that the cache holds fused over other candidates (a top 20, now a top 40) is an InputError,
        not a mix of two normalisations."""
        ids = self.member_keys(dataset)
        scored, weights = self._score_members(run, dataset, cache, shard, progress), self.weights
        if weights is None:
            fit = self.fit
            if fit["split"] == dataset.split:  # fine for training labels; never report metrics on these scores
                log.warning("scoring %r, the split the ensemble weights are fit on: use these scores to train, "
                            "not to evaluate", fit["split"])
            fit_ds, fit_run = dataset.other_split(fit["split"]), read_run(fit["run"])
            if fit_ds.corpus.fingerprint() != dataset.corpus.fingerprint():
                raise InputError("the fit split must be of the same collection as the scored one")
            scored += self._score_members(fit_run, fit_ds, cache, progress=progress)
            judged = {q: fit_ds.qrels[q] for q in fit_run["qid"].unique() if q in fit_ds.qrels}
            weights = fit_weights(cache, ids, fit_run, judged, self.norm, fit.get("metric", "ndcg@10"))
        eid = ensemble_id(ids, weights, self.norm) + "@" + dataset.corpus.fingerprint()[:12]
        cache.register(eid, {"kind": "ensemble", "members": ids, "weights": weights, "norm": self.norm,
                             "fit": self.fit, "collection": dataset.name, "scale": self.norm})
        pairs = shard_of(run, shard)[["qid", "docid"]]
        mine = pd.unique(pairs["qid"]).tolist()
        texts = {q: dataset.queries[q] for q in mine if q in dataset.queries}
        held = cache.scored_qids(eid, texts)
        todo = cache.missing(eid, pairs)
        _check_fused_over(cache, eid, pairs[pairs["qid"].isin(held)], todo)
        qids = pd.unique(todo["qid"]).tolist()
        if qids:
            fused = fuse(cache, ids, weights, self.norm, run[run["qid"].isin(qids)])
            cache.commit(eid, fused["qid"], fused["docid"], fused["score"].to_numpy(), texts)
        return ScoreStats(eid, len(qids), scored, len(mine) - len(qids), mine)


def _check_fused_over(cache: ScoreCache, eid: str, pairs: pd.DataFrame, todo: pd.DataFrame) -> None:
    """InputError if a query of ``pairs`` (the run's pairs of the queries ``eid`` holds) was fused over other
    candidates than the run's: some of its pairs are missing (``todo``), or the cache holds others."""
    if pairs.empty:
        return
    held = cache.read(eid, pd.unique(pairs["qid"]), columns=("qid",))["qid"].value_counts()
    wanted = pairs["qid"].value_counts()
    odd = wanted.index[wanted.index.isin(todo["qid"]) | (held.reindex(wanted.index, fill_value=0) != wanted)]
    if len(odd):
        q = odd[0]
        raise InputError(f"ensemble {eid!r} fused query {q!r} over {held.get(q, 0)} candidates here, not over the "
                         f"run's {wanted[q]} (its scores are normalised per query); fuse this run into another "
                         "cache", cache.folder)


def _check_cached(cache: ScoreCache, ids: list[str], run: pd.DataFrame, dataset) -> None:
    """InputError unless every (qid, docid) of ``run`` is in the cache under each of ``ids``, from the same texts."""
    for tid in ids:  # each by the texts it read (a query view, or the queries)
        queries = dataset.query_texts(cache.described(tid).get("query_view"))
        cache.check_texts(tid, {q: queries[q] for q in pd.unique(run["qid"]) if q in queries})
        missing = cache.missing(tid, run[["qid", "docid"]])
        if len(missing):
            q, d = missing.iloc[0][["qid", "docid"]]
            raise InputError(f"cached member {tid!r} has no scores for {missing['qid'].nunique()} queries of the run "
                             f"in full ({len(missing)} pairs missing, e.g. ({q!r}, {d!r}))", cache.folder)
