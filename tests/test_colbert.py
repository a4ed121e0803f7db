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


@pytest.mark.parametrize("loss", [pytest.param(l, marks=pytest.mark.slow) for l in LOSSES[:-1]] + LOSSES[-1:])
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


def test_objective_scores_are_maxsim(tiny_colbert):
    """The training scores are MaxSim over the query's tokens (divided by their count), as the model scores."""
    from sentence_transformers import MultiVectorEncoder

    from irdistill.training.losses import InfoNCELoss
    from irdistill.training.students.colbert import MultiVectorObjective

    model = MultiVectorEncoder(tiny_colbert, device="cpu")
    queries, docs = ["cats purr", "memory safe"], [["Cats purr.", "Dogs bark."], ["Rust is safe.", "Tea leaves."]]
    feats = [model.preprocess(queries, prompt=model.prompts["query"], task="query")]
    feats += [model.preprocess([d[i] for d in docs], prompt=model.prompts["document"], task="document") for i in range(2)]
    for f, task in zip(feats, ["query", "document", "document"]):
        f["task"] = task
    with torch.no_grad():
        scores, in_batch = MultiVectorObjective(model.eval(), InfoNCELoss()).scores(feats)
        q = model.encode_query(queries)
        d = model.encode_document([t for pair in docs for t in pair])
        expected = model.similarity(q, d) / 8  # (2, 4): query i's own candidates are columns 2i, 2i+1
    torch.testing.assert_close(in_batch, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(scores, torch.stack([expected[0, :2], expected[1, 2:]]), atol=1e-5, rtol=1e-4)


@pytest.fixture
def toy(beir_dir):
    from irdistill.data import load_dataset

    return load_dataset(beir_dir, "test")


def brute_force(model, ds):
    """Every document scored with the model's own MaxSim."""
    q = model.encode_query(list(ds.queries.values()))
    d = model.encode_document(ds.corpus.texts())
    return dict(zip(ds.queries, model.similarity(q, d).numpy()))


@pytest.mark.parametrize("kind", ["flat", "ivfpq"])
def test_index_rescoring_equals_brute_force_maxsim(tiny_colbert, toy, tmp_path, kind):
    from irdistill.index import ColbertIndex, open_index
    from irdistill.models import load_colbert

    model = load_colbert(tiny_colbert, device="cpu")
    params = {"nlist": 2, "nprobe": 2, "m": 4, "nbits": 4} if kind == "ivfpq" else {}
    index = open_index(toy, "colbert", tiny_colbert, kind, str(tmp_path / "colbert"), encoder=model, progress=False,
                       **params)
    assert index.meta["faiss_kind"] == kind and index.meta["documents"] == 6
    assert not os.path.exists(str(tmp_path / "colbert") + ".encoding")  # encoded parts are cleaned up
    run = index.search(toy.queries, k=6, token_k=1000)  # every document becomes a candidate
    expected = brute_force(model, toy)
    ids = toy.corpus.ids.to_pylist()
    for qid, group in run.groupby("qid"):
        want = expected[qid]
        got = dict(zip(group["docid"], group["score"]))
        assert set(got) == set(ids)
        np.testing.assert_allclose([got[d] for d in ids], want, atol=0.02)  # float16 token store
        assert [ids[i] for i in np.argsort(-want, kind="stable")][:1] == list(group.sort_values("rank")["docid"])[:1]
    # reopening reuses the index; a changed request rebuilds it; it loads by path too
    again = open_index(toy, "colbert", tiny_colbert, kind, str(tmp_path / "colbert"), encoder=model, progress=False,
                       **params)
    assert again.meta == index.meta
    assert ColbertIndex(tmp_path / "colbert").meta["tokens"] == index.meta["tokens"]


def test_few_candidates_with_a_small_token_k(tiny_colbert, toy, tmp_path):
    from irdistill.index import open_index
    from irdistill.models import load_colbert

    model = load_colbert(tiny_colbert, device="cpu")
    index = open_index(toy, "colbert", tiny_colbert, "flat", str(tmp_path / "c"), encoder=model, progress=False)
    run = index.search(toy.queries, k=10, token_k=1)
    assert run.groupby("qid").size().max() <= 6 and set(run["qid"]) == set(toy.queries)


def test_cli_colbert_evaluate_and_search(beir_dir, tiny_colbert, tmp_path, capsys):
    from irdistill.cli import main

    out, idx = tmp_path / "out", tmp_path / "idx"
    assert main(["evaluate", "--dataset", beir_dir, "--retriever", "colbert", "--model", tiny_colbert,
                 "--index", str(idx), "--output", str(out), "--batch-size", "4"]) == 0
    assert "toy-test-colbert-model" in capsys.readouterr().out
    assert os.path.exists(out / "run.trec")
    assert main(["search", "--index", str(idx), "--query", "coffee", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_bad_input(tmp_path, capsys):
    from irdistill.cli import main
    from irdistill.index import ColbertIndex, load_index
    from irdistill.index.colbert import ColbertIndex as C

    with pytest.raises(InputError, match="(?i)not a colbert index"):
        ColbertIndex(tmp_path)
    (tmp_path / "meta.json").write_text('{"kind": "splade"}')
    with pytest.raises(InputError, match="(?i)not a colbert index"):
        C(tmp_path)
    assert main(["index", "--dataset", str(tmp_path), "--retriever", "colbert"]) == 2
    with pytest.raises(InputError):
        load_index(tmp_path / "missing")


def test_conversion_is_the_same_model_in_every_process(tiny_model_dir):
    """A converted checkpoint gets the same projection on every load (from a fixed seed, not torch's global one), so
    an index built in one process is searched with the projection that encoded its documents."""
    from irdistill.models import load_colbert

    torch.manual_seed(1)
    a = load_colbert(tiny_model_dir, device="cpu", dim=16)
    torch.manual_seed(2)
    b = load_colbert(tiny_model_dir, device="cpu", dim=16)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name
