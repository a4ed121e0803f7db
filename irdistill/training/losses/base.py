"""Score-level losses. Every loss sees the same thing, whatever the student:

- ``scores``  (B, N): the student's scores of each query's N candidates; candidate 0 is the positive.
- ``targets`` (B, N): the teacher's scores of the same candidates.
- ``in_batch`` (B, M) or None: the student's scores of each query against every candidate in the batch, M >= B*N
  (row i's own candidates are columns i*N .. i*N+N-1; columns past B*N are more negatives, e.g. other processes'
  candidates under DDP); bi-encoders, ColBERT and SPLADE provide it, cross-encoders do not.
- ``reference`` (B, N), only for losses with ``reads_reference = True``: a second teacher's scores of the same
  candidates (``examples: {regularizer: <teacher id>}``), e.g. the starting model's own, for a regulariser term
  (``regularizer.py``). Every other loss is called without it.
- ``weights`` (w, m), each (B, N), only for losses with ``reads_weights = True``, from examples of strategy
  ``sample`` (``examples.py``): each candidate's importance weight in the teacher's distribution (w) and in the
  student's normaliser (m). Losses without it train on the drawn candidates' scores as they are.

The students' objectives (``irdistill.training.students``) compute these scores and plug the loss into the
sentence-transformers trainers.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn


class RankingLoss(nn.Module):
    """Base class: subclasses implement ``forward(scores, targets, in_batch=None) -> scalar``; a loss that needs the
    regulariser's scores sets ``reads_reference = True`` and takes ``forward(scores, targets, in_batch, reference)``."""

    reads_reference: ClassVar[bool] = False
    reads_weights: ClassVar[bool] = False
    reference: ClassVar[str | None] = None  # the paper it comes from, cited in model cards

    def terms(self):
        """The losses this one sums (a ``WeightedSumLoss``'s parts, each as its own terms), or itself."""
        yield self

    def references(self) -> list[str]:
        """The papers of this loss and of the losses it is made of (model cards cite them)."""
        return [self.reference] if self.reference else []

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def config(self) -> dict:
        return {}


def apply_loss(loss: RankingLoss, scores: Tensor, labels: Tensor, in_batch: Tensor | None = None):
    """Call ``loss`` with the batch's labels: (B, N) teacher scores; (B, 2, N) teacher and regulariser scores (the
    regulariser's go to losses that read them, as ``reference``); or (B, 3, N) teacher scores and the importance
    weights w and m of strategy ``sample`` (to losses that read them, as ``weights``)."""
    channels = labels.unbind(1) if labels.dim() == 3 else (labels,)
    extra = {}
    if loss.reads_reference:
        if len(channels) != 2:
            raise ValueError("this loss needs the regulariser's scores: set examples: {regularizer: <teacher id>}")
        extra["reference"] = channels[1]
    if loss.reads_weights and len(channels) == 3:
        extra["weights"] = channels[1:]
    return loss(scores, channels[0], in_batch, **extra)


def minmax(x: Tensor, dim: int = -1, eps: float = 1e-9) -> Tensor:
    """Per-row min-max scaling into [0, 1] (a constant row becomes all zeros)."""
    lo, hi = x.min(dim, keepdim=True).values, x.max(dim, keepdim=True).values
    return (x - lo) / (hi - lo).clamp_min(eps)
