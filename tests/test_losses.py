"""Losses against values computed by hand (plain Python math), with ties, one negative and padding-free shapes."""

import math

import pytest
import torch

from irdistill.training.losses import (CPRDLoss, InfoNCELoss, ListwiseKLLoss, MarginMSELoss, PLDLoss, RankNetLoss,
                                      make_loss)

S = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.4, 0.3]])   # student scores, column 0 = positive
T = torch.tensor([[5.0, 3.0, 1.0], [4.0, 4.0, 0.0]])   # teacher scores (row 2 has a tie)


def test_margin_mse_hand_computed():
    # row 1 margins: student (0.4, 0.8) vs teacher (2, 4); row 2: (-0.2, -0.1) vs (0, 4)
    expected = ((0.4 - 2) ** 2 + (0.8 - 4) ** 2 + (-0.2 - 0) ** 2 + (-0.1 - 4) ** 2) / 4
    assert MarginMSELoss()(S, T).item() == pytest.approx(expected, rel=1e-6)
    # temperatures divide the margins
    expected_t = ((0.4 / 0.1 - 2 / 2) ** 2 + (0.8 / 0.1 - 4 / 2) ** 2 + (-2 - 0) ** 2 + (-1 - 2) ** 2) / 4
    assert MarginMSELoss(0.1, 2.0)(S, T).item() == pytest.approx(expected_t, rel=1e-5)


def test_margin_mse_single_negative():
    assert MarginMSELoss()(torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 1.0]])).item() == pytest.approx(1.0)


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def test_listwise_kl_hand_computed():
    loss = ListwiseKLLoss(student_temperature=0.5, teacher_temperature=0.3, normalize="minmax")
    total = 0.0
    for s, t in zip(S.tolist(), T.tolist()):
        lo, hi = min(t), max(t)
        p = softmax([(x - lo) / (hi - lo) / 0.3 for x in t])
        q = softmax([x / 0.5 for x in s])
        total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    assert loss(S, T).item() == pytest.approx(total / 2, rel=1e-5)


def test_listwise_kl_is_zero_when_distributions_match_and_handles_constant_teacher():
    t = torch.tensor([[2.0, 1.0, 0.0]])
    assert ListwiseKLLoss(1.0, 1.0, normalize=None)(t.clone(), t).item() == pytest.approx(0.0, abs=1e-7)
    flat = ListwiseKLLoss()(S[:1], torch.tensor([[1.0, 1.0, 1.0]]))  # all tied: a uniform target, finite loss
    assert math.isfinite(flat.item())


def test_infonce_in_batch_and_own_list():
    # own list: -log softmax(s/tau)[0]
    own = sum(-math.log(softmax([x / 0.1 for x in row])[0]) for row in S.tolist()) / 2
    assert InfoNCELoss(0.1)(S, T).item() == pytest.approx(own, rel=1e-5)
    in_batch = torch.tensor([[0.9, 0.5, 0.1, 0.3, 0.0, 0.2], [0.1, 0.6, 0.0, 0.2, 0.4, 0.3]])
    expected = (-math.log(softmax([x / 0.1 for x in in_batch[0].tolist()])[0])
                - math.log(softmax([x / 0.1 for x in in_batch[1].tolist()])[3])) / 2
    assert InfoNCELoss(0.1)(S, T, in_batch).item() == pytest.approx(expected, rel=1e-5)


def test_ranknet_hand_computed_with_ties():
    # row 1 pairs (t_i > t_j): (0,1), (0,2), (1,2); row 2: (0,2), (1,2) -- the tie (0,1) is no pair
    sp = lambda x: math.log1p(math.exp(-x))
    pairs = [0.9 - 0.5, 0.9 - 0.1, 0.5 - 0.1, 0.2 - 0.3, 0.4 - 0.3]
    assert RankNetLoss()(S, T).item() == pytest.approx(sum(map(sp, pairs)) / 5, rel=1e-5)
    assert RankNetLoss()(S[:1], torch.ones(1, 3)).item() == 0.0  # all tied: nothing to learn


def test_cprd_partial_ranking_hand_computed():
    s = torch.tensor([[0.9, 0.2, 0.8, 0.5, 0.1]])   # negatives 1..4; the student's hardest two: idx 2 (0.8), 3 (0.5)
    t = torch.tensor([[9.0, 8.0, 1.0, 3.0, 7.0]])   # teacher: among those two, idx 3 (3.0) above idx 2 (1.0)
    tau = 0.1
    h1, h2 = 0.5 / tau, 0.8 / tau                   # teacher order: h1 = idx 3, h2 = idx 2
    expected_pr = -(h1 - math.log(math.exp(h1) + math.exp(h2)))  # the last term is log 1 = 0
    loss = CPRDLoss(k=2, temperature=tau, weight=0.5, infonce_temperature=tau)
    assert loss.partial_ranking(s, t).item() == pytest.approx(expected_pr, rel=1e-5)
    infonce = -math.log(softmax([x / tau for x in s[0].tolist()])[0])
    assert loss(s, t).item() == pytest.approx(infonce + 0.5 * expected_pr, rel=1e-5)


def test_cprd_ties_and_single_negative():
    loss = CPRDLoss(k=3, temperature=1.0)
    s = torch.tensor([[0.0, 0.3, 0.2, 0.1]])
    tied = loss.partial_ranking(s, torch.tensor([[1.0, 2.0, 2.0, 2.0]]))  # ties keep the student's own order
    expected = sum(math.log(sum(math.exp(x) for x in [0.3, 0.2, 0.1][i:])) - [0.3, 0.2, 0.1][i] for i in range(3))
    assert tied.item() == pytest.approx(expected, rel=1e-5)
    one = loss.partial_ranking(torch.tensor([[0.5, 0.1]]), torch.tensor([[1.0, 0.0]]))
    assert one.item() == 0.0  # a single negative has no order to teach


def test_pld_hand_computed():
    """Teacher-optimal order: the positive, then the rest by teacher score; each Plackett-Luce choice weighted by the
    teacher's softmax of the chosen candidate (temperatures 1, raw teacher scores)."""
    loss = PLDLoss(student_temperature=1.0, teacher_temperature=1.0, normalize=None)
    expected = 0.0
    for s, t in zip(S.tolist(), T.tolist()):
        order = [0] + sorted(range(1, len(t)), key=lambda i: -t[i])  # ties keep their order (stable)
        w = softmax(t)
        for k, i in enumerate(order):
            tail = [s[j] for j in order[k:]]
            expected += w[i] * (math.log(sum(math.exp(x) for x in tail)) - s[i])
    assert loss(S, T).item() == pytest.approx(expected / 2, rel=1e-5)


def test_pld_with_a_one_hot_teacher_is_the_cross_entropy_of_the_positive():
    loss = PLDLoss(student_temperature=1.0, teacher_temperature=1e-3, normalize=None)
    t = torch.tensor([[1.0, 0.0, 0.0]])
    ce = torch.nn.functional.cross_entropy(S[:1], torch.tensor([0]))
    assert loss(S[:1], t).item() == pytest.approx(ce.item(), rel=1e-4)
    assert make_loss({"name": "pld"}).config()["teacher_temperature"] == 0.3


def test_gradients_flow_and_weighted_sum():
    s = S.clone().requires_grad_(True)
    combined = make_loss([{"name": "margin-mse", "weight": 2.0}, {"name": "ranknet", "weight": 0.5}])
    parts = combined(s, T)
    assert set(parts) == {"margin-mse", "ranknet"}
    assert parts["margin-mse"].item() == pytest.approx(2 * MarginMSELoss()(S, T).item(), rel=1e-6)
    sum(parts.values()).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("bleu")
