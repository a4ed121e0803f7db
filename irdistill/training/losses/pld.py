"""Plackett-Luce Distillation (PLD; Bassam, Zhu and Bian, 2025, "PLD: A Choice-Theoretic List-Wise Knowledge
Distillation"), for ranking.

The "teacher-optimal" ranking pi puts the labelled positive first (candidate 0), then the other candidates in
descending teacher score. Its Plackett-Luce negative log-likelihood under the student's scores is a sum of choices,
each weighted by the teacher's softmax confidence in the candidate chosen:

    L = mean_b sum_k  w_b,pi_k * ( logsumexp_{j >= k} s_b,pi_j / T_s  -  s_b,pi_k / T_s )
    w_b = softmax(t_b / T_t)

on per-query min-max scaled teacher scores by default (as listwise KL here). With all the weight on the positive it
is the cross-entropy of the positive over the list; the teacher's confidence spreads it over its whole order.

>>> import torch
>>> loss = PLDLoss(student_temperature=1.0, teacher_temperature=1.0, normalize=None)
>>> good = loss(torch.tensor([[3.0, 2.0, 1.0]]), torch.tensor([[0.0, 2.0, 1.0]]))
>>> bad = loss(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.0, 2.0, 1.0]]))
>>> bool(good < bad)
True
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import RankingLoss, minmax


class PLDLoss(RankingLoss):
    reference = "Bassam, Zhu and Bian, 2025: PLD: A Choice-Theoretic List-Wise Knowledge Distillation"

    def __init__(self, student_temperature: float = 0.05, teacher_temperature: float = 0.3,
                 normalize: str | None = "minmax"):
        super().__init__()
        if normalize not in (None, "minmax"):
            raise ValueError(f"normalize must be None or 'minmax', not {normalize!r}")
        self.student_temperature, self.teacher_temperature, self.normalize = student_temperature, teacher_temperature, normalize

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None) -> Tensor:
        t = (minmax(targets) if self.normalize == "minmax" else targets).to(scores.dtype)
        rest = t[:, 1:].argsort(dim=1, descending=True, stable=True) + 1  # the others, by descending teacher score
        order = torch.cat([torch.zeros_like(rest[:, :1]), rest], 1)     # the positive first
        s = scores.gather(1, order) / self.student_temperature
        w = torch.softmax(t / self.teacher_temperature, -1).gather(1, order)
        tail_lse = torch.logcumsumexp(s.flip(1), 1).flip(1)  # log sum_{j >= k} exp(s_j)
        return (w * (tail_lse - s)).sum(1).mean()

    def config(self) -> dict:
        return {"student_temperature": self.student_temperature, "teacher_temperature": self.teacher_temperature,
                "normalize": self.normalize}


PLDLoss.__doc__ = __doc__  # the formula, its inputs and its paper, on the class too (help())
