"""Contrastive partial-ranking distillation (CPRD; Chen et al., 2024, "How to Make Cross Encoder a Good Teacher for
Efficient Image-Text Retrieval?"). No public code exists; this is what irdistill implements:

1. The student mines its own hard negatives: for each query, the ``k`` candidates (positive excluded) that the
   student itself scores highest.
2. Only the teacher's order among those ``k`` is taught, with a contrastive Plackett-Luce objective: with the hard
   negatives sorted by teacher score h_1..h_k (ties broken by the student's own score, so a tie teaches nothing new),

       L_pr = - mean_b sum_{i=1..k} log( exp(s(q, h_i) / tau) / sum_{j >= i} exp(s(q, h_j) / tau) )

3. It is added with ``weight`` to the in-batch InfoNCE loss (temperature ``infonce_temperature``):
   L = L_InfoNCE + weight * L_pr.

The teacher's scores of the other candidates, and its scale, are never used: only its partial order.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import RankingLoss
from .infonce import InfoNCELoss


class CPRDLoss(RankingLoss):
    reference = ("Chen et al., 2024: How to Make Cross Encoder a Good Teacher for Efficient Image-Text Retrieval? "
                 "(CVPR)")

    def __init__(self, k: int = 4, temperature: float = 0.05, weight: float = 1.0, infonce_temperature: float = 0.05):
        super().__init__()
        self.k, self.temperature, self.weight = k, temperature, weight
        self.infonce = InfoNCELoss(infonce_temperature)

    def partial_ranking(self, scores: Tensor, targets: Tensor) -> Tensor:
        negs, t = scores[:, 1:], targets[:, 1:].to(scores.dtype)
        k = min(self.k, negs.shape[1])
        if k < 2:
            return scores.sum() * 0.0
        hard = negs.detach().topk(k, dim=1).indices  # the student's hardest negatives, in the student's order
        s, th = negs.gather(1, hard), t.gather(1, hard)
        order = th.argsort(dim=1, descending=True, stable=True)  # teacher's order; ties keep the student's
        s = s.gather(1, order) / self.temperature
        tail_lse = torch.logcumsumexp(s.flip(1), 1).flip(1)          # log sum_{j >= i} exp(s_j)
        return (tail_lse - s).sum(1).mean()

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None) -> Tensor:
        return self.infonce(scores, targets, in_batch) + self.weight * self.partial_ranking(scores, targets)

    def config(self) -> dict:
        return {"k": self.k, "temperature": self.temperature, "weight": self.weight,
                "infonce_temperature": self.infonce.temperature}


CPRDLoss.__doc__ = __doc__  # the formula, its inputs and its paper, on the class too (help())
