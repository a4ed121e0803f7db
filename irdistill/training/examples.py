"""Training examples from the score cache: per query, a positive and N negatives with the teacher's scores.

The examples hold ids and scores only; texts are joined when a batch is read (``as_hf_dataset`` sets
sentence-transformers' ``resolve_ids`` transform), so a dataset of millions of examples stays small. With a
``regularizer`` (a second teacher in the cache, e.g. the student's own starting model as a bi-encoder teacher), each
example carries that teacher's scores of the same documents too, for the ``regularizer`` loss.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..cache.scores import ScoreCache
from ..data.dataset import Dataset
from ..errors import InputError

log = logging.getLogger(__name__)
STRATEGIES = ("top", "random", "teacher")


@dataclass
class ExampleConfig:
    teacher: str                    # teacher id in the cache
    negatives: int = 7              # negatives per example (each example has 1 + negatives documents)
    strategy: str = "top"           # top: the teacher's highest-scored; random: uniform; teacher: p ~ exp(z / temperature)
    temperature: float = 1.0        # for strategy "teacher", on per-query z-scored teacher scores
    fn_margin: float | None = None  # false-negative filter: drop negatives scored above t(positive) - fn_margin
    positives: str = "labels"       # labels: judged relevant (grade > 0); teacher: the teacher's top document
    seed: int = 0
    text_view: str | None = None    # the student reads this text view of the documents (default: the corpus)
    regularizer: str | None = None  # a second teacher id in the cache: its scores of the same documents as well


def build_examples(dataset: Dataset, cache: ScoreCache, cfg: ExampleConfig) -> list[dict]:
    """``[{"query_id", "document_ids": [pos, neg_1..], "scores": [t_pos, t_neg_1..]}]``, one per (query, positive);
    with ``cfg.regularizer``, ``"scores"`` is ``[[t_pos, t_neg_1..], [r_pos, r_neg_1..]]`` (teacher, regulariser) and
    examples with a document the regulariser has not scored are skipped."""
    if cfg.strategy not in STRATEGIES:
        raise InputError(f"unknown sampling strategy {cfg.strategy!r} (choose from {', '.join(STRATEGIES)})")
    scores = cache.read(cfg.teacher, qids=list(dataset.queries))
    if scores.empty:
        raise InputError(f"the cache holds no scores of teacher {cfg.teacher!r} for the {dataset.split} queries",
                         cache.folder)
    reference = _scores_by_pair(cache, cfg.regularizer, list(dataset.queries)) if cfg.regularizer else None
    rng = np.random.default_rng(cfg.seed)
    out, skipped = [], {"no scored positive": 0, "too few negatives": 0, "no regulariser score": 0}
    for qid, group in scores.groupby("qid", sort=True):
        docs, t = group["docid"].to_numpy(), group["score"].to_numpy(np.float64)
        judged = dataset.qrels.get(qid, {})
        relevant = np.array([judged.get(d, 0) > 0 for d in docs])
        if cfg.positives == "teacher":
            pos_idx = [int(np.argmax(t))]
            relevant = np.zeros(len(docs), bool)
            relevant[pos_idx] = True
        else:
            pos_idx = list(np.flatnonzero(relevant))
        if not pos_idx:
            skipped["no scored positive"] += 1
            continue
        for p in pos_idx:
            neg = np.flatnonzero(~relevant)
            if cfg.fn_margin is not None:
                neg = neg[t[neg] < t[p] - cfg.fn_margin]
            if len(neg) < cfg.negatives:
                skipped["too few negatives"] += 1
                continue
            chosen = _sample(neg, t, cfg, rng)
            ids, targets = [docs[p], *docs[chosen]], [float(t[p]), *map(float, t[chosen])]
            if reference is not None:
                if any((qid, d) not in reference for d in ids):
                    skipped["no regulariser score"] += 1
                    continue
                targets = [targets, [reference[qid, d] for d in ids]]
            out.append({"query_id": qid, "document_ids": ids, "scores": targets})
    log.info("%d examples from %d queries; skipped: %s", len(out), scores["qid"].nunique(), skipped)
    if not out:
        raise InputError(f"no training examples (skipped: {skipped}); were the positives among the scored candidates?")
    return out


def _scores_by_pair(cache: ScoreCache, teacher: str, qids: list[str]) -> dict:
    """``{(qid, docid): score}`` of a cached teacher."""
    df = cache.read(teacher, qids=qids)
    if df.empty:
        raise InputError(f"the cache holds no scores of regulariser {teacher!r} for these queries", cache.folder)
    return dict(zip(zip(df["qid"], df["docid"]), df["score"].astype(float)))


def _sample(neg: np.ndarray, t: np.ndarray, cfg: ExampleConfig, rng) -> np.ndarray:
    if cfg.strategy == "top":
        return neg[np.argsort(-t[neg], kind="stable")[: cfg.negatives]]
    if cfg.strategy == "random":
        return rng.choice(neg, cfg.negatives, replace=False)
    z = (t[neg] - t[neg].mean()) / (t[neg].std() + 1e-9) / cfg.temperature
    p = np.exp(z - z.max())
    return rng.choice(neg, cfg.negatives, replace=False, p=p / p.sum())


def as_hf_dataset(examples: list[dict], dataset: Dataset, text_view: str | None = None):
    """A ``datasets.Dataset`` of ids and scores whose rows read as ``query, document_1 .. document_N, scores``
    (documents from ``text_view``, the corpus by default)."""
    import datasets
    from sentence_transformers.util import resolve_ids

    corpus = dataset.view(text_view)
    used = sorted({d for e in examples for d in e["document_ids"]})
    docs = datasets.Dataset.from_dict({"id": used, "text": corpus.texts(used)})
    qids = sorted({e["query_id"] for e in examples})
    queries = datasets.Dataset.from_dict({"id": qids, "text": [dataset.queries[q] for q in qids]})
    ds = datasets.Dataset.from_list(examples)
    ds.set_transform(resolve_ids({"query_id": queries, "document_ids": docs}, keep_columns=("scores",)))
    return ds
