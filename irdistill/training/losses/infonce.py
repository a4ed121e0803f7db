"""InfoNCE with in-batch and hard negatives (the non-distillation baseline; teacher scores are not used):

    L = - mean_b log( exp(s_b,pos / tau) / sum_{d in batch} exp(s_b,d / tau) )

Every candidate of every query in the batch is a negative for the others (the hard negatives included); the
query's own candidates 1..N-1 are its hard negatives. Without in-batch scores (cross-encoders) the softmax runs over
the query's own list (localized contrastive estimation, Gao et al. 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import RankingLoss


class InfoNCELoss(RankingLoss):
    reference = ("van den Oord et al., 2018: Representation Learning with Contrastive Predictive Coding "
                 "(arXiv:1807.03748); in-batch negatives as in Karpukhin et al., 2020: Dense Passage Retrieval for "
                 "Open-Domain Question Answering (EMNLP)")

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        self.temperature = temperature

    def forward(self, scores: Tensor, targets: Tensor | None = None, in_batch: Tensor | None = None) -> Tensor:
        b, n = scores.shape
        if in_batch is None:
            return F.cross_entropy(scores / self.temperature, torch.zeros(b, dtype=torch.long, device=scores.device))
        positives = torch.arange(b, device=scores.device) * n
        return F.cross_entropy(in_batch / self.temperature, positives)

    def config(self) -> dict:
        return {"temperature": self.temperature}


InfoNCELoss.__doc__ = __doc__  # the formula, its inputs and its paper, on the class too (help())
