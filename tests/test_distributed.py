"""Training under torchrun (2 CPU processes, gloo): in-batch negatives are gathered across processes, so 2 processes
with batch B train exactly as 1 process with batch 2B on the same examples."""

import os
import subprocess
import sys

import pytest
import torch
import yaml

from test_training import cached  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
LOSS = [{"name": "infonce"}, {"name": "listwise-kl"}]  # in-batch InfoNCE and a listwise loss on the own candidates


@pytest.fixture(scope="module")
def dropout_free_model(tmp_path_factory):
    """The tiny 32-dim BERT encoder without dropout, so runs differ only in how the batch is split."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from irdistill.models import packaged_path

    folder = tmp_path_factory.mktemp("nodrop")
    tok = AutoTokenizer.from_pretrained(packaged_path("all-MiniLM-L6-v2"))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder / "bert")
    tok.save_pretrained(folder / "bert")
    word = models.Transformer(str(folder / "bert"), max_seq_length=32)
    SentenceTransformer(modules=[word, models.Pooling(32, "mean"), models.Normalize()], device="cpu").save(str(folder / "st"))
    return str(folder / "st")


def run(tmp_path, name, processes, batch, cached, model, **extra):  # noqa: F811
    folder, _, cache, tid = cached
    cfg = {"output": str(tmp_path / name), "dataset": folder, "cache": cache, "model": model,
           "examples": {"teacher": tid, "negatives": 3}, "batch_size": batch, "max_steps": 2, "save_steps": 100,
           "logging_steps": 1, "learning_rate": 1e-3, "warmup_ratio": 0.0, "max_seq_length": 32, "precision": "fp32",
           "loss": LOSS, **extra}
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)] if processes > 1 \
        else [sys.executable]
    subprocess.run([*launcher, "-m", "irdistill", "train", "--config", str(tmp_path / f"{name}.yaml")], check=True,
                   capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    import json

    losses = [json.loads(line)["loss"] for line in open(tmp_path / name / "loss.jsonl") if '"loss"' in line]
    from sentence_transformers import SentenceTransformer

    params = dict(SentenceTransformer(str(tmp_path / name / "final"), device="cpu").named_parameters())
    return losses, params


def test_two_processes_train_as_one_with_the_whole_batch(cached, dropout_free_model, tmp_path):  # noqa: F811
    one_loss, one = run(tmp_path, "one", 1, 8, cached, dropout_free_model)
    two_loss, two = run(tmp_path, "two", 2, 4, cached, dropout_free_model)
    assert abs(one_loss[0] - two_loss[0]) <= 1e-5
    for name, p in one.items():
        torch.testing.assert_close(two[name], p, atol=1e-4, rtol=0, msg=name)
    assert os.listdir(tmp_path / "two" / "final").count("irdistill.json") == 1  # written once, by rank 0

    # without the gather, each process sees only its half of the batch's documents: another loss, another model
    apart_loss, _ = run(tmp_path, "apart", 2, 4, cached, dropout_free_model, gather_across_devices=False)
    assert abs(apart_loss[0] - one_loss[0]) > 1e-3
