"""Does a loss's temperature suit its teacher's scores? The question most asked about distillation: a teacher's
scores come on their own scale (logits, probabilities, cosines, BM25 sums, margins), and a softmax over
``score / temperature`` is near uniform when the scores barely spread within a list, one-hot when they spread far.

``check_scale`` reads the spread of the teacher's scores within each query's list (the median over queries of
``max - min``, after the loss's own normalisation), divided by each loss's teacher temperature:

- below ``UNIFORM`` the target is near uniform: nothing is learned from the teacher's order, so it is an error;
- above ``ONE_HOT`` only the top candidate counts: a note, since some recipes want that;
- Margin-MSE regresses margins: a note when the teacher's median margin is beyond what a cosine student can reach
  (``2 / student_temperature``).

Every message names the teacher's declared scale (``scale`` in its cache entry, where one was given) and a
temperature that would put the spread at about 3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .losses import ListwiseKLLoss, MarginMSELoss, PLDLoss, RankingLoss

UNIFORM, ONE_HOT, AIM = 0.1, 100.0, 3.0


def spread(scores: pd.DataFrame, normalize: str | None = None) -> float:
    """The median over queries of the range of the teacher's scores in a query's list."""
    grouped = scores.groupby("qid")["score"]
    ranges = (grouped.max() - grouped.min()).to_numpy()
    if normalize == "minmax":
        ranges = np.where(ranges > 0, 1.0, 0.0)
    return float(np.median(ranges)) if len(ranges) else 0.0


def margins(scores: pd.DataFrame) -> float:
    """The median over queries of the teacher's top score minus its median score (a typical Margin-MSE target)."""
    grouped = scores.groupby("qid")["score"]
    values = (grouped.max() - grouped.median()).to_numpy()
    return float(np.median(values)) if len(values) else 0.0


def check_scale(loss: RankingLoss, scores: pd.DataFrame, teacher: dict, cosine_student: bool = False,
                where=None) -> list[str]:
    """InputError if a listwise loss would learn from a near-uniform target; returns notes for the other cases
    (see the module doc). ``scores``: a sample of the teacher's cached scores (qid, docid, score)."""
    scale = teacher.get("scale") or "not declared"
    notes = []
    for part in loss.terms():
        if isinstance(part, (ListwiseKLLoss, PLDLoss)):
            norm = getattr(part, "normalize", None)
            ratio = spread(scores, norm) / part.teacher_temperature
            name = type(part).__name__
            if ratio < UNIFORM:
                raise InputError(f"{name}: the teacher's scores (scale {scale}) spread {spread(scores, norm):.3g} within "
                                 f"a list, so at teacher_temperature {part.teacher_temperature:g} the target is near "
                                 f"uniform; use teacher_temperature {max(spread(scores, norm) / AIM, 1e-6):.2g} or "
                                 "normalize: minmax", where)
            if ratio > ONE_HOT:
                notes.append(f"{name}: at teacher_temperature {part.teacher_temperature:g} the teacher's scores (scale "
                             f"{scale}, spread {spread(scores, norm):.3g}) make a one-hot target; "
                             f"{spread(scores, norm) / AIM:.2g} keeps their order")
        elif isinstance(part, MarginMSELoss) and cosine_student:
            reach = 2.0 / part.student_temperature
            typical = margins(scores) / part.teacher_temperature
            if typical > reach:
                notes.append(f"MarginMSELoss: the teacher's margins (scale {scale}, median {typical:.3g}) are beyond "
                             f"what a cosine student reaches at student_temperature {part.student_temperature:g} "
                             f"(at most {reach:g}); student_temperature {2.0 / typical:.2g} or teacher_temperature "
                             f"{margins(scores) / 2.0:.2g} would let it")
    return notes
