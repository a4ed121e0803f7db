"""Score-level losses. Every loss sees the same thing, whatever the student:

- ``scores``  (B, N): the student's scores of each query's N candidates; candidate 0 is the positive.
- ``targets`` (B, N): the teacher's scores of the same candidates.
- ``in_batch`` (B, M) or None: the student's scores of each query against every candidate in the batch, M >= B*N
  (row i's own candidates are columns i*N .. i*N+N-1; columns past B*N are more negatives, e.g. other processes'
  candidates under DDP); bi-encoders, ColBERT and SPLADE provide it, cross-encoders do not.
- ``reference`` (B, N), only for losses with ``reads_reference = True``: a second teacher's scores of the same
  candidates (``examples: {regularizer: <teacher id>}``), e.g. the starting model's own, for a regulariser term
  (``regularizer.py``). Every other loss is called without it.

The students' objectives (``irdistill.training.students``) compute these scores and plug the loss into the
sentence-transformers trainers.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn


class RankingLoss(nn.Module):
    """Base class: subclasses implement ``forward(scores, targets, in_batch=None) -> scalar``; a loss that needs the
    regulariser's scores sets ``reads_reference = True`` and takes ``forward(scores, targets, in_batch, reference)``."""

    reads_reference: ClassVar[bool] = False

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def config(self) -> dict:
        return {}


def apply_loss(loss: RankingLoss, scores: Tensor, labels: Tensor, in_batch: Tensor | None = None):
    """Call ``loss`` with the batch's labels: (B, N) teacher scores, or (B, 2, N) teacher and regulariser scores (the
    regulariser's go to losses that read them, as ``reference``)."""
    targets, reference = (labels[:, 0], labels[:, 1]) if labels.dim() == 3 else (labels, None)
    if not loss.reads_reference:
        return loss(scores, targets, in_batch)
    if reference is None:
        raise ValueError("this loss needs the regulariser's scores: set examples: {regularizer: <teacher id>}")
    return loss(scores, targets, in_batch, reference)


def minmax(x: Tensor, dim: int = -1, eps: float = 1e-9) -> Tensor:
    """Per-row min-max scaling into [0, 1] (a constant row becomes all zeros)."""
    lo, hi = x.min(dim, keepdim=True).values, x.max(dim, keepdim=True).values
    return (x - lo) / (hi - lo).clamp_min(eps)


def own_candidates_mask(batch: int, n: int, device=None) -> Tensor:
    """(B, B*N) boolean: True where column j is one of row i's own candidates."""
    rows = torch.arange(batch, device=device).unsqueeze(1)
    return torch.arange(batch * n, device=device).unsqueeze(0) // n == rows
