"""SPLADE students (sentence-transformers SparseEncoder) and their Lucene impact index, with a tiny masked LM."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from irdistill.errors import InputError
from irdistill.training import train
from test_training import cached, config  # noqa: F401  (fixture)

LOSSES = ["margin-mse", {"name": "listwise-kl", "student_temperature": 1.0}, "cprd", "infonce",
          [{"name": "infonce", "temperature": 1.0}, {"name": "listwise-kl", "student_temperature": 1.0}]]


@pytest.fixture(scope="module")
def tiny_mlm(tmp_path_factory):
    """A 2-layer, 32-dim BertForMaskedLM with random weights (and ~200 live terms), built from a config."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from irdistill.models import packaged_path

    folder = tmp_path_factory.mktemp("tiny-mlm") / "mlm"
    tok = AutoTokenizer.from_pretrained(packaged_path("all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    mlm = BertForMaskedLM(cfg)
    with torch.no_grad():  # random weights activate half the vocabulary; a bias keeps about 200 terms in play
        bias = torch.full((tok.vocab_size,), -5.0)
        bias[torch.randperm(tok.vocab_size)[:200]] = 0.5
        mlm.cls.predictions.bias.copy_(bias)
    mlm.save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("loss", [pytest.param(l, marks=pytest.mark.slow) for l in LOSSES[:-1]] + LOSSES[-1:])
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


@pytest.fixture(scope="module")
def tiny_splade(tiny_mlm, tmp_path_factory):
    """The tiny MLM as a saved SparseEncoder."""
    from irdistill.models import load_splade

    path = str(tmp_path_factory.mktemp("splade") / "model")
    load_splade(tiny_mlm, device="cpu").save(path)
    return path


def test_objective_scores_are_dot_products(tiny_splade):
    from irdistill.training.losses import InfoNCELoss
    from irdistill.training.students.splade import SparseObjective

    q, d1, d2 = torch.rand(2, 50), torch.rand(2, 50), torch.rand(2, 50)
    scores, in_batch = SparseObjective(None, InfoNCELoss()).scores([q, d1, d2])
    docs = torch.stack([d1[0], d2[0], d1[1], d2[1]])
    torch.testing.assert_close(in_batch, q @ docs.T)
    torch.testing.assert_close(scores, torch.stack([q[0] @ torch.stack([d1[0], d2[0]]).T, q[1] @ torch.stack([d1[1], d2[1]]).T]))


def test_lucene_impact_search_equals_quantised_dot_products(tiny_splade, beir_dir, tmp_path):
    from irdistill.data import load_dataset
    from irdistill.index import SpladeIndex, load_index, open_index
    from irdistill.index.splade import sparse_weights
    from irdistill.models import load_splade

    ds = load_dataset(beir_dir, "test")
    model = load_splade(tiny_splade, device="cpu")
    index = open_index(ds, "splade", tiny_splade, index=str(tmp_path / "splade"), encoder=model, progress=False)
    assert isinstance(load_index(tmp_path / "splade"), SpladeIndex)
    assert not os.path.exists(str(tmp_path / "splade") + ".vectors")
    docs = sparse_weights(model, ds.corpus.texts(), "document")
    queries = sparse_weights(model, list(ds.queries.values()), "query")
    assert index.meta["doc_terms"] == pytest.approx(np.mean([len(d) for d in docs]))
    assert all(isinstance(w, int) and w > 0 for d in docs for w in d.values())
    run = index.search(ds.queries, k=6)
    pd.testing.assert_frame_equal(index.search(ds.queries, k=10**12), run)  # k beyond a Java int: all there are
    assert index.last_query_terms == pytest.approx(np.mean([len(q) for q in queries]))
    ids = ds.corpus.ids.to_pylist()
    for qid, qv in zip(ds.queries, queries):
        want = {d: sum(w * dv.get(t, 0) for t, w in qv.items()) for d, dv in zip(ids, docs)}
        got = run[run["qid"] == qid]
        assert set(got["docid"]) == {d for d, s in want.items() if s > 0}  # documents sharing a term
        for d, s in zip(got["docid"], got["score"]):
            assert s == pytest.approx(want[d], rel=1e-6)
        assert list(got["score"]) == sorted(got["score"], reverse=True)
    again = open_index(ds, "splade", tiny_splade, index=str(tmp_path / "splade"), encoder=model, progress=False)
    assert again.meta == index.meta  # reused


def test_cli_splade_evaluate_records_query_sparsity(beir_dir, tiny_splade, tmp_path, capsys):
    from irdistill.cli import main

    idx = tmp_path / "idx"
    assert main(["evaluate", "--dataset", beir_dir, "--retriever", "splade", "--model", tiny_splade,
                 "--index", str(idx), "--output", str(tmp_path / "out")]) == 0
    assert "toy-test-splade-model" in capsys.readouterr().out
    meta = json.loads((idx / "meta.json").read_text())
    assert meta["query_terms"]["toy/test"] > 0 and meta["doc_terms"] > 0
    assert main(["search", "--index", str(idx), "--query", "coffee", "-k", "2"]) == 0


def test_bad_input(tmp_path):
    from irdistill.index import SpladeIndex
    from irdistill.training import TrainConfig

    with pytest.raises(InputError, match="(?i)not a splade index"):
        SpladeIndex(tmp_path)
    (tmp_path / "meta.json").write_text('{"kind": "bm25"}')
    with pytest.raises(InputError, match="(?i)not a splade index"):
        SpladeIndex(tmp_path)
    with pytest.raises(InputError, match="unknown student 'splat'"):
        TrainConfig.from_dict({"output": "o", "dataset": "d", "cache": "c", "examples": {"teacher": "t"},
                               "student": "splat"})
