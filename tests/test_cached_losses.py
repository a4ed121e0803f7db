"""Cached (GradCache) losses for bi-encoder students: the gradients of the plain objective, a mini-batch at a time."""

import pytest
import torch

from irdistill.errors import InputError
from irdistill.training import TrainConfig, train
from irdistill.training.losses import make_loss
from irdistill.training.students.bi_encoder import BiEncoderObjective, cached_objective
from test_training import cached, config  # noqa: F401  (the fixture)

LOSSES = ["infonce", "margin-mse", {"name": "listwise-kl"}, "cprd", "pld",
          [{"name": "infonce", "weight": 1.0}, {"name": "listwise-kl", "weight": 0.5}]]


def batch(model, n_docs=3, size=5):
    """A tokenised batch (query, document_1 .. document_N) and teacher scores."""
    torch.manual_seed(0)
    words = ["cats purr", "dogs bark loudly", "tea leaves", "coffee beans roasted", "rust memory safety", "python"]
    columns = [[f"{words[(i + j) % len(words)]} {i} {j}" for i in range(size)] for j in range(n_docs + 1)]
    features = [model.preprocess(c) for c in columns]
    return features, torch.randn(size, n_docs)


@pytest.mark.parametrize("loss", LOSSES)
def test_cached_losses_give_the_plain_objectives_gradients(tiny_model, loss):
    model = tiny_model
    model.eval()  # no dropout: the two passes see the same network
    features, labels = batch(model)
    grads = []
    for objective in (BiEncoderObjective(model, make_loss(loss)), cached_objective(model, make_loss(loss), True, 2)):
        model.zero_grad()
        out = objective([{k: v.clone() if torch.is_tensor(v) else v for k, v in f.items()} for f in features], labels)
        total = sum(out.values()) if isinstance(out, dict) else out
        total.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
        grads[-1]["loss"] = total.detach()
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_bi_encoder_trains_with_a_cached_loss(cached, tiny_model_dir, tmp_path):  # noqa: F811
    folder, ds, cache, tid = cached
    loss = [{"name": "infonce"}, {"name": "listwise-kl"}]
    final = train(config(folder, cache, tid, tmp_path / "out", "bi-encoder", tiny_model_dir, loss=loss,
                         mini_batch_size=3), progress=False)
    assert (tmp_path / "out" / "loss.jsonl").exists() and final.endswith("final")
    with pytest.raises(InputError, match="mini_batch_size: cached losses .* train bi-encoder students, not splade"):
        config(folder, cache, tid, tmp_path / "o", "splade", tiny_model_dir, mini_batch_size=3)
