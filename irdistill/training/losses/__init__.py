"""Ranking losses on student and teacher scores (see ``base`` for the shapes), and ``make_loss`` from a spec."""

from __future__ import annotations

from .base import RankingLoss
from .combined import WeightedSumLoss
from .cprd import CPRDLoss
from .infonce import InfoNCELoss
from .listwise_kl import ListwiseKLLoss
from .margin_mse import MarginMSELoss
from .pld import PLDLoss
from .ranknet import RankNetLoss
from .regularizer import RegularizerLoss

LOSSES = {"margin-mse": MarginMSELoss, "listwise-kl": ListwiseKLLoss, "cprd": CPRDLoss, "infonce": InfoNCELoss,
          "ranknet": RankNetLoss, "pld": PLDLoss, "regularizer": RegularizerLoss}


def make_loss(spec) -> RankingLoss:
    """``"margin-mse"``; ``{"name": "listwise-kl", "teacher_temperature": 0.3}``; or a weighted sum
    ``[{"name": "margin-mse", "weight": 1.0}, {"name": "infonce", "weight": 0.1}]``."""
    if isinstance(spec, list):
        parts = {}
        for item in spec:
            item = dict(item)
            weight = item.pop("weight", 1.0)
            name = item["name"] if item["name"] not in parts else f"{item['name']}_{len(parts)}"
            parts[name] = (make_loss(item), weight)
        return WeightedSumLoss(parts)
    if isinstance(spec, str):
        spec = {"name": spec}
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r} (choose from {', '.join(LOSSES)})")
    return LOSSES[name](**spec)


__all__ = ["RankingLoss", "MarginMSELoss", "ListwiseKLLoss", "CPRDLoss", "InfoNCELoss", "RankNetLoss", "PLDLoss",
           "RegularizerLoss", "WeightedSumLoss", "LOSSES", "make_loss"]
