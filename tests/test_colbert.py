"""ColBERT students (sentence-transformers MultiVectorEncoder) and their FAISS token index, with a tiny BERT."""

import os

import numpy as np
import pytest
import torch

from irdistill.errors import InputError
from irdistill.training import train
from test_training import cached, config  # noqa: F401  (fixture)

LOSSES = ["margin-mse", {"name": "listwise-kl"}, "cprd", "infonce",
          [{"name": "infonce"}, {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.3}]]


@pytest.fixture(scope="module")
def tiny_colbert(tiny_model_dir, tmp_path_factory):
    """A ColBERT model converted from the tiny 32-dim BERT sentence encoder, saved once."""
    from irdistill.models import load_colbert

    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("colbert") / "model")
    load_colbert(tiny_model_dir, device="cpu", dim=16, query_length=8, document_length=48).save(path)
    return path


def test_colbert_model_has_markers_expansion_and_projection(tiny_colbert):
    from sentence_transformers import MultiVectorEncoder

    model = MultiVectorEncoder(tiny_colbert, device="cpu")  # a saved ColBERT loads unchanged
    assert model.prompts == {"query": "[unused0] ", "document": "[unused1] "}
    features = model.preprocess(["memory safe language"], prompt=model.prompts["query"], task="query")
    tokens = model.tokenizer.convert_ids_to_tokens(features["input_ids"][0])
    assert tokens[:2] == ["[CLS]", "[unused0]"] and tokens[-1] == "[MASK]" and len(tokens) == 8  # augmented
    q = model.encode_query(["memory safe language"])[0]
    d = model.encode_document(["Rust is a language, focused on memory safety."])[0]
    assert q.shape == (8, 16) and d.shape[1] == 16  # masks are scored, punctuation is not
    assert torch.allclose(q.norm(dim=-1), torch.ones(8))


@pytest.mark.parametrize("loss", LOSSES)
def test_colbert_trains_with_every_loss(cached, tiny_colbert, tmp_path, loss):  # noqa: F811
    from sentence_transformers import MultiVectorEncoder

    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "colbert", tiny_colbert, loss=loss, max_steps=3),
                  progress=False)
    model = MultiVectorEncoder(final, device="cpu")
    before = MultiVectorEncoder(tiny_colbert, device="cpu")
    assert model.prompts == before.prompts and model[0].document_length == 48
    q = model.encode_query(["w1 w2"])[0]
    assert q.shape == (8, 16)
    assert not torch.allclose(q, before.encode_query(["w1 w2"])[0])  # it trained
