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


def random_store(seed=0, docs=120, dim=16):
    """float16 unit token vectors in topic clusters, 0-30 tokens a document (some empty), and their offsets."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((8, dim))
    lens = rng.integers(0, 31, docs)
    lens[[3, 50]] = 0
    x = topics[rng.integers(0, 8, lens.sum())] + 0.7 * rng.standard_normal((lens.sum(), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float16), np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)


def exact_maxsim(tokens, offsets, q):
    t = tokens.astype(np.float32)
    return np.array([(q @ t[a:b].T).max(1).sum() if b > a else 0.0 for a, b in zip(offsets[:-1], offsets[1:])])


@pytest.mark.parametrize("block_docs", [32, 5])
@pytest.mark.parametrize("where", ["memmap", "resident"])
def test_maxsim_is_exact_in_float32(block_docs, where, tmp_path):
    from irdistill.index.maxsim import maxsim, resident

    tokens, offsets = random_store()
    np.save(tmp_path / "tokens.npy", tokens)
    tokens = np.load(tmp_path / "tokens.npy", mmap_mode="r")
    q = np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32)
    docs = np.random.default_rng(2).permutation(len(offsets) - 1)[:70]
    docs = np.append(docs, 3)  # an empty document scores 0
    want = exact_maxsim(tokens, offsets, q)[docs]
    for precision, tolerance in [("float32", 1e-5), ("bfloat16", 0.05)]:
        store = resident(tokens, precision) if where == "resident" else tokens
        got = maxsim(store, offsets, q, docs, precision, block_docs=block_docs)
        np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)
    assert maxsim(tokens, offsets, q, np.array([], dtype=np.int64)).shape == (0,)


@pytest.fixture
def store_index(tmp_path):
    """A ColbertIndex (IVF-PQ, 8 cells) over the random store, built from its parts like an encoded corpus."""
    from irdistill.index import ColbertIndex

    tokens, offsets = random_store()
    np.save(tmp_path / "part-00000.npy", tokens)
    np.save(tmp_path / "part-00000.len.npy", np.diff(offsets))
    ids = [f"d{i}" for i in range(len(offsets) - 1)]
    index = ColbertIndex.from_parts([str(tmp_path / "part-00000.npy")], [str(tmp_path / "part-00000.len.npy")], ids,
                               tmp_path / "index", "ivfpq", progress=False, nlist=8, m=4, nbits=4, nprobe=8)
    return index, tokens, offsets


@pytest.mark.parametrize("resident_bytes", [1 << 30, 0])
def test_fast_path_returns_the_exact_top_k(store_index, monkeypatch, resident_bytes):
    """Probing every cell makes every document with tokens a candidate: the fast path is then exact MaxSim
    over the whole store, the same top k (ties by row) as brute force, on any number of threads, from the store
    copied into memory or memory-mapped."""
    from irdistill.index import colbert

    monkeypatch.setattr(colbert, "RESIDENT_BYTES", resident_bytes)
    index, tokens, offsets = store_index
    assert isinstance(index.store(), np.ndarray) == (resident_bytes == 0)
    queries = list(np.random.default_rng(3).standard_normal((5, 8, 16)).astype(np.float32))
    for threads in (1, 2):
        got = index.search_embeddings(queries, k=10, candidates="cells", ncells=8, ndocs=1000, threads=threads)
        for q, (rows, scores) in zip(queries, got):
            exact = exact_maxsim(tokens, offsets, q)
            has_tokens = np.flatnonzero(np.diff(offsets) > 0)
            want = has_tokens[np.lexsort((has_tokens, -exact[has_tokens]))][:10]
            assert list(rows) == list(want)
            np.testing.assert_allclose(scores, exact[want], rtol=1e-5, atol=1e-5)
    tokens_path = index.search_embeddings(queries, k=10, candidates="tokens", token_k=10_000)
    for (a, s), (b, t) in zip(tokens_path, got):
        assert list(a) == list(b)


def test_cell_candidates(store_index, monkeypatch):
    """The centroid-interaction candidates: all documents with tokens when every cell is probed, at most ndocs,
    and the same set whether the score table is dense or sparse."""
    from irdistill.index import maxsim

    index, tokens, offsets = store_index
    cells = index.cells()
    assert cells.ptr[-1] == len(cells.docs) and cells.centroids.shape == (8, 16)
    q = np.random.default_rng(4).standard_normal((8, 16)).astype(np.float32)
    assert set(cells.candidates(q, 8, 1000)) == set(np.flatnonzero(np.diff(offsets) > 0))
    dense = cells.candidates(q, 2, 20)
    assert len(dense) == 20
    monkeypatch.setattr(maxsim, "DENSE_LIMIT", 0)
    assert set(cells.candidates(q, 2, 20)) == set(dense)


def test_fast_path_on_a_tiny_model(tiny_colbert, toy, tmp_path):
    """The default search of an IVF-PQ index (cell candidates) finds the brute-force MaxSim top k of a model."""
    from irdistill.index import open_index
    from irdistill.models import load_colbert

    model = load_colbert(tiny_colbert, device="cpu")
    index = open_index(toy, "colbert", tiny_colbert, "ivfpq", str(tmp_path / "c"), encoder=model, progress=False,
                       nlist=2, nprobe=2, m=4, nbits=4)
    fast = index.search(toy.queries, k=3)
    exact = brute_force(model, toy)
    ids = toy.corpus.ids.to_pylist()
    for qid, group in fast.groupby("qid"):
        want = [ids[i] for i in np.argsort(-exact[qid], kind="stable")][:3]
        assert list(group.sort_values("rank")["docid"]) == want


def test_bad_search_options(store_index):
    index = store_index[0]
    with pytest.raises(InputError, match="precision"):
        index.search_embeddings([], precision="int4")
    with pytest.raises(InputError, match="candidate"):
        index.search_embeddings([], candidates="everything")
