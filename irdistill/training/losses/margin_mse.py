"""Margin-MSE (Hofstätter et al., 2020, "Improving Efficient Neural Ranking Models with Cross-Architecture
Knowledge Distillation"):

    L = mean_{b, i>=1} ( (s_b0 - s_bi) / tau_s  -  (t_b0 - t_bi) / tau_t )^2

over every negative i of the list. With tau_s = tau_t = 1 it is the paper's loss; tau_s < 1 stretches bounded
(cosine) student scores toward the teacher's scale."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .base import RankingLoss


class MarginMSELoss(RankingLoss):
    reference = ("Hofstätter et al., 2020: Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge "
                 "Distillation (arXiv:2010.02666)")

    def __init__(self, student_temperature: float = 1.0, teacher_temperature: float = 1.0):
        super().__init__()
        self.student_temperature, self.teacher_temperature = student_temperature, teacher_temperature

    def forward(self, scores: Tensor, targets: Tensor, in_batch: Tensor | None = None) -> Tensor:
        student = (scores[:, :1] - scores[:, 1:]) / self.student_temperature
        teacher = (targets[:, :1] - targets[:, 1:]) / self.teacher_temperature
        return F.mse_loss(student, teacher.to(student.dtype))

    def config(self) -> dict:
        return {"student_temperature": self.student_temperature, "teacher_temperature": self.teacher_temperature}


MarginMSELoss.__doc__ = __doc__  # the formula, its inputs and its paper, on the class too (help())
