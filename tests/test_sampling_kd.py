"""Random-Sampling KD: sparse sampled cache entries, negatives drawn anew each epoch, and the importance-weighted
listwise KL (unbiased against the full list where the student's normaliser covers it; consistent where it covers
only the drawn candidates)."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from irdistill.cache import ScoreCache, sparsify
from irdistill.cache.sparse import draw
from irdistill.errors import InputError
from irdistill.training import ExampleConfig, TrainConfig, build_examples, train
from irdistill.training.examples import EPOCHS, DrawNegatives
from irdistill.training.losses import ListwiseKLLoss
from test_training import cached, config  # noqa: F401  (the fixture)

T_S, TAU = 0.5, 0.3


def test_weighted_listwise_kl_matches_a_hand_computation():
    s = torch.tensor([[0.5, 0.2, 0.1]])
    w, m = torch.tensor([[0.5, 0.25, 0.25]]), torch.tensor([[1.0, 2.0, 2.0]])
    z = [0.5 / T_S, 0.2 / T_S, 0.1 / T_S]
    log_z = math.log(math.exp(z[0]) + 2 * math.exp(z[1]) + 2 * math.exp(z[2]))
    by_hand = -(0.5 * (z[0] - log_z) + 0.25 * (z[1] - log_z) + 0.25 * (z[2] - log_z))
    got = ListwiseKLLoss(student_temperature=T_S)(s, torch.zeros(1, 3), weights=(w, m))
    assert got.item() == pytest.approx(by_hand, rel=1e-6)
    # with the exact teacher distribution as weights and m = 1 it is the listwise KL plus the teacher's entropy
    t = torch.tensor([[3.0, 1.0, 0.0]])
    full = ListwiseKLLoss(student_temperature=T_S, teacher_temperature=TAU)
    p = torch.softmax(t / 3 / TAU, -1)  # min-max scaled: t / 3
    entropy = -(p * p.log()).sum()
    assert full(s, t, weights=(p, torch.ones(1, 3))).item() == pytest.approx((full(s, t) + entropy).item(), rel=1e-5)


def problem(n=40, seed=0):
    """A query's list: the teacher's scores t (candidate 0 its positive), the student's s, and the full-list
    listwise KL's gradient with respect to s."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n) * 2
    t[0] = t.max() + 0.5
    s = torch.tensor(rng.normal(size=n) * 0.3, dtype=torch.float64, requires_grad=True)
    loss = ListwiseKLLoss(student_temperature=T_S, teacher_temperature=TAU)
    (grad,) = torch.autograd.grad(loss(s[None], torch.tensor(t)[None]), s)
    return t, s, grad.numpy()


def mean_gradient(s, rows, w, m):
    """The mean over R draws (one per row) of the weighted loss's gradient with respect to the full list's scores
    ``s``: ``rows`` (R, n) indexes s (the candidates each draw puts before the student), w and m their weights,
    and the per-draw gradients' standard error."""
    r = rows.shape[0]
    scores = s[torch.as_tensor(rows)]
    loss = ListwiseKLLoss(student_temperature=T_S)(scores, torch.zeros_like(scores),
                                                    weights=(torch.as_tensor(w), torch.as_tensor(m)))
    (g,) = torch.autograd.grad(loss * r, scores)  # row i: draw i's gradient over its candidates
    full = np.zeros((r, len(s)))
    np.add.at(full, (np.arange(r)[:, None], rows), g.numpy())
    return full.mean(0), full.std(0) / math.sqrt(r)


def test_sampled_targets_give_the_full_list_gradient_in_expectation():
    """The paper's claim: a sampled teacher (the cache's weights) with the student's normaliser over the whole list
    has the full-list KL's gradient as its mean over draws (within 4 standard errors, every candidate)."""
    t, s, full = problem()
    n, draws, rng = len(t), 20_000, np.random.default_rng(1)
    exact = np.zeros(n, bool)
    exact[0] = True
    w = np.zeros((draws, n))
    for i in range(draws):
        for j, weight in draw(t, 8, TAU, exact, rng):
            w[i, j] = weight
    rows = np.tile(np.arange(n), (draws, 1))
    mean, se = mean_gradient(s, rows, w, np.ones((draws, n)))
    assert np.all(np.abs(mean - full) < 4 * se + 1e-9)
    # whereas the top 8's target (renormalised over them) misses by far more than the noise
    top = np.argsort(-t)[:9]
    p_top = np.zeros(n)
    z = (t[top] - t[top].min()) / (t[top].max() - t[top].min()) / TAU
    p_top[top] = np.exp(z) / np.exp(z).sum()
    q = torch.softmax(s.detach() / T_S, -1).numpy()
    assert np.abs((q - p_top) / T_S - full).max() > 20 * se.max()


def drawn_gradient(t, s, k, draws=4000):
    """The mean gradient when the student scores only the positive and k negatives drawn by DrawNegatives."""
    z = (t - t.min()) / (t.max() - t.min()) / TAU
    a = np.exp(z) / np.exp(z).sum()
    pool = {"query_id": ["q"] * draws, "document_ids": [list(range(len(t)))] * draws,
            "scores": [t.tolist()] * draws, "masses": [[a.tolist(), [1.0] * len(t)]] * draws}
    rows, w, m = [], [], []
    for e in range(draws):  # one draw per epoch: the same query drawn anew
        EPOCHS["sim"] = e
        out = DrawNegatives(k, 0, "sim")({key: v[:1] for key, v in pool.items()})
        rows.append(out["document_ids"][0])
        w.append(out["scores"][0][1])
        m.append(out["scores"][0][2])
    return mean_gradient(s, np.array(rows), np.array(w), np.array(m))


def test_drawn_negatives_approach_the_full_list_gradient_as_draws_grow():
    """When the student scores only the drawn candidates, the normaliser is estimated too: the gradient is
    consistent, not unbiased. Its error falls as the draws grow, and at every K it is below the top K's."""
    t, s, full = problem()
    q = torch.softmax(s.detach() / T_S, -1).numpy()
    errors = {}
    for k in (4, 16, 64):
        mean, _ = drawn_gradient(t, s, k)
        top = np.argsort(-t[1:])[:k] + 1
        rows = np.array([0, *top])
        zt = (t[rows] - t[rows].min()) / (t[rows].max() - t[rows].min()) / TAU
        p = np.exp(zt) / np.exp(zt).sum()
        qs = np.exp(s.detach().numpy()[rows] / T_S)
        g_top = np.zeros(len(t))
        g_top[rows] = (qs / qs.sum() - p) / T_S
        errors[k] = (np.abs(mean - full).sum(), np.abs(g_top - full).sum())
        if k < len(t) - 1:  # (the top 64 of 39 negatives is the full list)
            assert errors[k][0] < errors[k][1] / 4, errors
    assert errors[64][0] < errors[16][0] < errors[4][0], errors
    assert q.sum() == pytest.approx(1.0)


def test_negatives_are_drawn_anew_each_epoch():
    batch = {"query_id": ["q"], "document_ids": [[f"d{i}" for i in range(30)]], "scores": [[0.0] * 30],
             "masses": [[[1 / 30] * 30, [1.0] * 30]]}
    sampler = DrawNegatives(4, 0, "epochs-test")
    EPOCHS["epochs-test"] = 0
    first, again = sampler(batch), sampler(batch)
    EPOCHS["epochs-test"] = 1
    second = sampler(batch)
    assert first == again and first["document_ids"] != second["document_ids"]
    assert first["document_ids"][0][0] == "d0"  # the positive stays first


def test_sparse_entries_keep_k_per_query_with_unbiased_weights(cached):
    folder, ds, cache_dir, tid = cached
    cache = ScoreCache(cache_dir)
    key = sparsify(cache, tid, ds, k=6, temperature=TAU, progress=False)
    assert key.startswith("sample6-") and key.endswith(tid.rpartition("@")[2])
    df = cache.read(key, columns=("qid", "docid", "score", "weight"))
    full = cache.read(tid)
    assert df.groupby("qid").size().max() <= 7 < full.groupby("qid").size().min()  # 6 draws and the positive
    for qid, group in df.groupby("qid"):
        pos = next(iter(ds.qrels[qid]))
        assert pos in set(group["docid"])  # the labelled positive is kept, exactly
        assert group["weight"].sum() == pytest.approx(1.0, abs=1e-5)  # here: the other candidates' mass, all drawn
        assert np.exp(group["score"]).max() <= 1.0  # scores are log-probabilities of the full list
    assert sparsify(cache, tid, ds, k=6, temperature=TAU, progress=False) == key  # a rerun adds nothing
    assert cache.count_pairs(key) == len(df)
    cache.compact(key, queries=5)  # the weights survive compaction, and the entry verifies
    kept = cache.read(key, columns=("qid", "docid", "score", "weight"))
    pd.testing.assert_frame_equal(kept.sort_values(["qid", "docid"]).reset_index(drop=True),
                                  df.sort_values(["qid", "docid"]).reset_index(drop=True))
    assert cache.verify(key)[0].ok
    # another input makes another entry: other labels, more scores of the source
    relabelled = dataclasses.replace(ds, qrels={**ds.qrels, "q0": {"d1": 1}})
    assert sparsify(cache, tid, relabelled, k=6, temperature=TAU, progress=False) != key
    cache.commit(tid, ["q0"], ["extra-doc"], [0.5], {"q0": ds.queries["q0"]})
    assert sparsify(cache, tid, ds, k=6, temperature=TAU, progress=False) != key
    top = sparsify(cache, tid, ds, k=6, keep="top", progress=False)
    kept = cache.read(top)
    assert kept.groupby("qid").size().max() <= 7 and kept["score"].isin(full["score"]).all()
    # the weights are unbiased: their mean over seeds is the teacher's probability
    q0 = full[full["qid"] == "q0"]
    t = q0["score"].to_numpy(np.float64)
    z = (t - t.min()) / (t.max() - t.min()) / TAU
    p = dict(zip(q0["docid"], np.exp(z) / np.exp(z).sum()))
    total = dict.fromkeys(p, 0.0)
    seeds = 300
    for seed in range(seeds):
        rows = draw(t, 6, TAU, (q0["docid"] == "d0").to_numpy(), np.random.default_rng(seed))
        for i, w in rows:
            total[q0["docid"].iloc[i]] += w / seeds
    assert max(abs(total[d] - p[d]) for d in p) < 0.03


def test_a_student_trains_on_a_sampled_entry_drawing_each_epoch(cached, tiny_model_dir, tmp_path):
    folder, ds, cache_dir, tid = cached
    key = sparsify(ScoreCache(cache_dir), tid, ds, k=8, temperature=TAU, progress=False)
    before = set(EPOCHS)
    examples = {"teacher": key, "negatives": 3, "strategy": "sample", "temperature": TAU}
    loss = [{"name": "infonce"}, {"name": "listwise-kl", "teacher_temperature": TAU}]
    cfg = config(folder, cache_dir, key, tmp_path / "out", "bi-encoder", tiny_model_dir, loss=loss,
                 examples=examples, max_steps=-1, epochs=2)
    train(cfg, progress=False)
    assert [EPOCHS[k] for k in set(EPOCHS) - before] == [1]  # the second epoch drew anew
    built = build_examples(ds, ScoreCache(cache_dir), ExampleConfig(**examples))
    assert len(built) == 24 and all(len(e["masses"][0]) == len(e["document_ids"]) for e in built)


def test_sampling_settings_that_disagree_are_refused(cached, tiny_model_dir, tmp_path):
    folder, ds, cache_dir, tid = cached
    key = sparsify(ScoreCache(cache_dir), tid, ds, k=4, temperature=TAU, progress=False)
    with pytest.raises(InputError, match="teacher_temperature to 0.3"):
        TrainConfig.from_dict(config(folder, cache_dir, key, tmp_path / "o", "bi-encoder", tiny_model_dir,
                                     loss={"name": "listwise-kl", "teacher_temperature": 1.0},
                                     examples={"teacher": key, "strategy": "sample", "temperature": TAU}))
    with pytest.raises(InputError, match="sampled at temperature 0.3, not 1"):
        build_examples(ds, ScoreCache(cache_dir), ExampleConfig(teacher=key, strategy="sample", temperature=1.0))
    with pytest.raises(InputError, match="k >= 1"):
        sparsify(ScoreCache(cache_dir), tid, ds, k=0)


def test_cli_sparsifies_a_teacher_and_names_bad_options(cached, capsys):
    from irdistill.cli import main

    folder, ds, cache_dir, tid = cached
    base = ["cache", "sparsify", "--cache", cache_dir, "--teacher", tid, "--dataset", folder, "--split", "train"]
    assert main([*base, "--k", "5", "--temperature", "0.3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("teacher sample5-") and "of 24 queries (from 960 pairs" in out
    assert main([*base, "--k", "5", "--keep", "top"]) == 0 and "teacher top5-" in capsys.readouterr().out
    assert main(base) == 2 and "cache sparsify needs --k" in capsys.readouterr().err
    assert main([*base, "--k", "5", "--temperature", "0"]) == 2
    assert "--temperature must be above 0" in capsys.readouterr().err
