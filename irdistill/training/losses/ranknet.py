"""RankNet (Burges et al., 2005), pairwise, on the teacher's order:

    L = mean over pairs (i, j) of the same query with t_i > t_j of  log(1 + exp(-sigma (s_i - s_j)))

Ties in the teacher's scores form no pair; a list whose scores are all tied contributes nothing."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import RankingLoss


class RankNetLoss(RankingLoss):
    reference = "Burges et al., 2005: Learning to Rank using Gradient Descent (ICML)"

    def __init__(self, sigma: float = 1.0):
        super().__init__()
        self.sigma = sigma

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None) -> Tensor:
        diff = scores.unsqueeze(2) - scores.unsqueeze(1)  # s_i - s_j
        better = (targets.unsqueeze(2) > targets.unsqueeze(1)).to(scores.dtype)
        losses = F.softplus(-self.sigma * diff) * better
        return losses.sum() / better.sum().clamp_min(1.0)

    def config(self) -> dict:
        return {"sigma": self.sigma}


RankNetLoss.__doc__ = __doc__  # the formula, its inputs and its paper, on the class too (help())
