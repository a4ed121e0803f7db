"""Teacher scales against loss temperatures: near-uniform targets refused, one-hot targets and unreachable margins
noted."""

import numpy as np
import pandas as pd
import pytest

from irdistill.errors import InputError
from irdistill.training.losses import make_loss
from irdistill.training.scale import check_scale


def scores(spread: float, queries: int = 20, n: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [(f"q{q}", f"d{i}", float(s)) for q in range(queries)
            for i, s in enumerate(np.linspace(0, spread, n) + rng.normal(0, spread * 0.01, n))]
    return pd.DataFrame(rows, columns=["qid", "docid", "score"])


def test_probabilities_at_temperature_one_are_refused():
    kl = make_loss({"name": "listwise-kl", "teacher_temperature": 1.0, "normalize": None})
    with pytest.raises(InputError, match=r"scale probability.*near uniform; use teacher_temperature 0\.01"):
        check_scale(kl, scores(0.03), {"scale": "probability"})
    assert check_scale(make_loss({"name": "listwise-kl", "teacher_temperature": 0.01, "normalize": None}),
                       scores(0.03), {"scale": "probability"}) == []


def test_minmax_normalised_targets_are_fine_whatever_the_scale():
    assert check_scale(make_loss({"name": "listwise-kl"}), scores(0.03), {}) == []
    assert check_scale(make_loss({"name": "listwise-kl"}), scores(300.0), {}) == []


def test_one_hot_targets_and_unreachable_margins_are_noted():
    kl = make_loss([{"name": "infonce"}, {"name": "listwise-kl", "teacher_temperature": 0.05, "normalize": None}])
    (note,) = check_scale(kl, scores(20.0), {"scale": "logit"})
    assert "one-hot" in note and "scale logit" in note
    margin = make_loss("margin-mse")
    (note,) = check_scale(margin, scores(12.0), {"scale": "logit"}, cosine_student=True)
    assert "beyond what a cosine student reaches" in note
    assert check_scale(margin, scores(12.0), {"scale": "logit"}, cosine_student=False) == []
    assert check_scale(margin, scores(1.0), {"scale": "logit"}, cosine_student=True) == []
