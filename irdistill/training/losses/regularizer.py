"""A regulariser toward a reference model's scores: any ranking loss, taught by the regulariser's scores (the
``reference`` column, ``examples: {regularizer: <teacher id>}``) instead of the teacher's.

With the student's own starting model as the regulariser (its zero-shot scores, cached as a bi-encoder teacher) and
listwise KL at equal temperatures, the default, it keeps the student's score distribution over each query's
candidates near where it started, a self-distillation term against forgetting (as in LwF, Li and Hoiem, 2017):

    L = mean_b KL( softmax(r_b / T) || softmax(s_b / T) ),  T = 0.05 (cosine scores, no rescaling)

Weighted in a loss list like any other: ``[{name: infonce}, {name: regularizer, weight: 1.0}]``.
"""

from __future__ import annotations

from torch import Tensor

from .base import RankingLoss

DEFAULT = {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.05, "normalize": None}


class RegularizerLoss(RankingLoss):
    reads_reference = True

    def __init__(self, loss: dict | str | None = None):
        super().__init__()
        from . import make_loss

        self.spec = loss or DEFAULT
        self.inner = make_loss(self.spec)
        if self.inner.reads_reference:
            raise ValueError("the regularizer's loss cannot itself be a regularizer")

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None,
                reference: Tensor | None = None) -> Tensor:
        return self.inner(scores, reference, in_batch)

    def references(self) -> list[str]:
        return self.inner.references()

    def config(self) -> dict:
        return {"loss": type(self.inner).__name__, **self.inner.config()}


RegularizerLoss.__doc__ = __doc__
