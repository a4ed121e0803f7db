"""Hofstätter's Margin-MSE teacher file: ``pos_score<TAB>neg_score<TAB>qid<TAB>pid_pos<TAB>pid_neg`` per line (written
here; ``teacher_files`` imports it)."""

from __future__ import annotations

import numpy as np

from ..data.io import atomic_path
from .scores import ScoreCache

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
