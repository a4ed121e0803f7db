"""SPLADE students (sentence-transformers SparseEncoder) and their Lucene impact index, with a tiny masked LM."""

import json
import os

import numpy as np
import pytest
import torch

from irdistill.errors import InputError
from irdistill.training import train
from test_training import cached, config  # noqa: F401  (fixture)

LOSSES = ["margin-mse", {"name": "listwise-kl", "student_temperature": 1.0}, "cprd", "infonce",
          [{"name": "infonce", "temperature": 1.0}, {"name": "listwise-kl", "student_temperature": 1.0}]]


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory):
    """A 2-layer, 32-dim BertForMaskedLM with random weights, built from a config (no download)."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from irdistill.models import packaged_path

    folder = tmp_path_factory.mktemp("tiny-mlm") / "mlm"
    tok = AutoTokenizer.from_pretrained(packaged_path("all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("loss", LOSSES)
def test_splade_trains_with_every_loss(cached, tiny_mlm, tmp_path, loss):  # noqa: F811
    from sentence_transformers import SparseEncoder

    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "splade", tiny_mlm, loss=loss, max_steps=3,
                         flops={"query": 1e-3, "document": 1e-3}), progress=False)
    model = SparseEncoder(final, device="cpu")  # loads unchanged in sentence-transformers
    before = SparseEncoder(tiny_mlm, device="cpu")
    assert model.max_seq_length == before.max_seq_length  # trained on 32 tokens, saved with the base length
    q = model.encode_query(["w1 w2"]).to_dense()
    assert q.shape == (1, len(before.tokenizer))
    assert not torch.allclose(q, before.encode_query(["w1 w2"]).to_dense())
    logged = [json.loads(l) for l in open(tmp_path / "out" / "loss.jsonl")]
    assert any("document_regularizer_loss" in h or "loss" in h for h in logged)
