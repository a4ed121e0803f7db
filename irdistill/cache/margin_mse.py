"""Hofstätter's Margin-MSE teacher file: ``pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg`` per line."""

from __future__ import annotations

import numpy as np

from ..data.io import atomic_path, check_id, read_tsv
from ..errors import InputError, require_file, safe_name
from .scores import ScoreCache

FLOAT32_MAX = float(np.finfo(np.float32).max)


def export_margin_mse(cache: ScoreCache, teacher: str, qrels: dict, path, max_negatives: int | None = None,
                      seed: int = 0) -> int:
    """Write every (positive, negative) pair of each judged query that the teacher scored; returns the line count.

    Positives are judged documents with grade > 0; negatives are the other scored candidates (``max_negatives`` of
    them per query, drawn with ``seed``, when given)."""
    df = cache.read(teacher, qids=list(qrels))
    rng = np.random.default_rng(seed)
    lines = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for qid, group in df.groupby("qid", sort=True):
            rel = {d for d, g in qrels.get(qid, {}).items() if g > 0}
            scores = dict(zip(group["docid"], group["score"]))
            pos = sorted(d for d in scores if d in rel)
            neg = sorted(d for d in scores if d not in rel)
            if max_negatives is not None and len(neg) > max_negatives:
                neg = sorted(rng.choice(neg, max_negatives, replace=False).tolist())
            for p in pos:
                for n in neg:
                    f.write(f"{scores[p]:.6f}\t{scores[n]:.6f}\t{qid}\t{p}\t{n}\n")
                    lines += 1
    return lines


def import_margin_mse(cache: ScoreCache, teacher: str, path, description: dict | None = None) -> int:
    """Load a Margin-MSE teacher file into the cache as ``teacher`` (a safe name, see ``errors.safe_name``); returns
    the number of pairs the file holds (pairs the cache already held are kept, not written twice)."""
    safe_name(teacher, "teacher id")
    path = require_file(path)
    scores: dict[tuple[str, str], float] = {}
    for n, (pos, neg, qid, p, d) in read_tsv(path, 5):
        try:
            ps, ns = float(pos), float(neg)
        except ValueError:
            raise InputError("scores must be numbers", path, n) from None
        if not (abs(ps) <= FLOAT32_MAX and abs(ns) <= FLOAT32_MAX):  # also false for NaN
            raise InputError("scores must be finite numbers (within float32)", path, n)
        qid, p, d = check_id(qid, "query id", path, n), check_id(p, "document id", path, n), check_id(d, "document id", path, n)
        for pair, score in (((qid, p), ps), ((qid, d), ns)):
            if np.float32(scores.setdefault(pair, score)) != np.float32(score):
                raise InputError(f"document {pair[1]!r} of query {qid!r} has two scores, {scores[pair]} and {score}",
                                 path, n)
    if not scores:
        raise InputError("no lines", path)
    cache.register(teacher, description or {"kind": "imported", "file": str(path)})
    (qids, docids), values = zip(*scores.keys()), list(scores.values())
    cache.commit(teacher, qids, docids, values)
    return len(scores)
