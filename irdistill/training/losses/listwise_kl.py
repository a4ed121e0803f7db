"""Listwise KL distillation with separate temperatures:

    L = mean_b KL( softmax(t_b / T_t) || softmax(s_b / T_s) )

optionally on per-query min-max scaled teacher scores, as in "Teaching Dense Retrieval Models to Specialize with
Listwise Distillation and LLM Data Augmentation" (Tamber et al., 2025: T_t = 0.3 on min-max scaled teacher
scores, T_s = 0.05 on cosine student scores). Unlike sentence-transformers' DistillKLDivLoss there is no T_s^2
factor, so the loss keeps the scale the formula gives.

With importance weights (examples of strategy ``sample``: candidates drawn from the teacher's distribution, as in
Random-Sampling KD, Anshumann et al., 2025, "Sparse Logit Sampling"), the teacher's side is the weights, not a
softmax of its scores, and the loss is the weighted cross-entropy

    L = mean_b  - sum_j w_j (s_j / T_s - log sum_j' m_j' exp(s_j' / T_s))

(the KL up to the teacher's entropy, which has no gradient). ``E[w_j]`` is the teacher's probability, so where the
student's normaliser runs over the whole list (m = 1) the gradient equals the full-list KL's in expectation; over
the drawn candidates only, ``m`` makes the normaliser an unbiased estimate of the full one, and the gradient is a
consistent estimate (its bias falls as 1 / draws; ``tests/test_sampling_kd.py`` measures both)."""

from __future__ import annotations

import torch
from torch import Tensor

from .base import RankingLoss, minmax


class ListwiseKLLoss(RankingLoss):
    reference = ("Tamber et al., 2025: Teaching Dense Retrieval Models to Specialize with Listwise Distillation and "
                 "LLM Data Augmentation")
    reads_weights = True

    def __init__(self, student_temperature: float = 0.05, teacher_temperature: float = 0.3, normalize: str | None = "minmax"):
        super().__init__()
        if normalize not in (None, "minmax"):
            raise ValueError(f"normalize must be None or 'minmax', not {normalize!r}")
        self.student_temperature, self.teacher_temperature, self.normalize = student_temperature, teacher_temperature, normalize

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None, weights=None) -> Tensor:
        if weights is not None:
            w, m = weights
            z = scores / self.student_temperature
            log_q = z - torch.logsumexp(z + torch.log(m.to(z.dtype)), -1, keepdim=True)
            return -(w.to(z.dtype) * log_q).sum(-1).mean()
        t = minmax(targets) if self.normalize == "minmax" else targets
        log_p_t = torch.log_softmax(t.to(scores.dtype) / self.teacher_temperature, -1)
        log_p_s = torch.log_softmax(scores / self.student_temperature, -1)
        return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1).mean()

    def config(self) -> dict:
        return {"student_temperature": self.student_temperature, "teacher_temperature": self.teacher_temperature,
                "normalize": self.normalize}


ListwiseKLLoss.__doc__ = __doc__  # the formula, its inputs and its paper, on the class too (help())
