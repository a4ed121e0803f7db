"""A weighted sum of ranking losses: L = sum_i w_i L_i. Returns the weighted parts as a dict, which the
sentence-transformers trainer sums and logs part by part. It reads the regulariser's scores (and the importance
weights of sampled examples) when a part does, and hands them only to those parts."""

from __future__ import annotations

from torch import Tensor, nn

from .base import RankingLoss


class WeightedSumLoss(RankingLoss):
    def __init__(self, losses: dict[str, tuple[RankingLoss, float]]):
        super().__init__()
        self.parts = nn.ModuleDict({name: loss for name, (loss, _) in losses.items()})
        self.weights = {name: float(w) for name, (_, w) in losses.items()}
        self.reads_reference = any(loss.reads_reference for loss in self.parts.values())
        self.reads_weights = any(loss.reads_weights for loss in self.parts.values())

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None,
                reference: Tensor | None = None, weights=None) -> dict[str, Tensor]:
        def extra(loss):
            return {**({"reference": reference} if loss.reads_reference else {}),
                    **({"weights": weights} if loss.reads_weights and weights is not None else {})}

        return {name: self.weights[name] * loss(scores, targets, in_batch, **extra(loss))
                for name, loss in self.parts.items()}

    def terms(self):
        for part in self.parts.values():
            yield from part.terms()

    def references(self) -> list[str]:
        return list(dict.fromkeys(r for part in self.parts.values() for r in part.references()))

    def config(self) -> dict:
        return {name: {"weight": self.weights[name], **loss.config()} for name, loss in self.parts.items()}


WeightedSumLoss.__doc__ = __doc__
