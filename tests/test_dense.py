import os

import numpy as np
import pytest

from irdistill.data import Corpus, load_dataset
from irdistill.index import DenseIndex, encode_corpus, encode_texts, open_index, vectors_key


def toy_corpus(n=300):
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    rng = np.random.default_rng(0)
    return Corpus.from_records((str(i), "", " ".join(rng.choice(words, 3 + i % 7))) for i in range(n))


def test_encode_keeps_input_order(tiny_model):
    texts = ["short", "a much longer text than the others here", "mid length text"]
    batched = encode_texts(tiny_model, texts, batch_size=2)
    one_by_one = np.stack([tiny_model.encode(t, normalize_embeddings=True) for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


def test_encoding_resumes_from_finished_chunks(tiny_model, tmp_path):
    corpus = toy_corpus(50)
    emb = encode_corpus(tiny_model, corpus, tmp_path, vectors_key(corpus, "tiny", tiny_model), chunk=16, progress=False)
    parts = sorted(os.listdir(tmp_path))
    assert parts == ["meta.json"] + [f"part-{i:05d}.npy" for i in range(4)]
    full = np.concatenate(list(emb.parts()))
    os.remove(tmp_path / "part-00002.npy")  # as if killed while writing chunk 2
    mtime = os.path.getmtime(tmp_path / "part-00001.npy")
    key = vectors_key(corpus, "tiny", tiny_model)
    again = np.concatenate(list(encode_corpus(tiny_model, corpus, tmp_path, key, chunk=16, progress=False).parts()))
    assert os.path.getmtime(tmp_path / "part-00001.npy") == mtime  # kept, not re-encoded
    np.testing.assert_allclose(again, full, atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_index_kinds_match_exact_search(tiny_model, tmp_path, kind):
    corpus = toy_corpus(400)
    emb = encode_corpus(tiny_model, corpus, tmp_path / "emb", vectors_key(corpus, "tiny", tiny_model), chunk=128,
                        progress=False)
    vectors = np.concatenate(list(emb.parts()))
    ids = corpus.ids.to_pylist()
    DenseIndex.from_embeddings(emb, ids, kind, tmp_path / kind, progress=False,
                               **({"nlist": 4, "nprobe": 4} if kind == "ivfpq" else {}))
    loaded = DenseIndex(tmp_path / kind)
    assert loaded.meta["faiss_kind"] == kind and loaded.docids == ids and loaded.meta["model"] == "tiny"
    queries = vectors[:20]
    exact = np.argsort(-queries @ vectors.T, axis=1)[:, :10]
    scores, rows = loaded.search_vectors(queries, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(rows, exact)])
    assert overlap >= {"flat": 1.0, "hnsw": 0.95, "ivfpq": 0.5}[kind]
    if kind == "flat":
        np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, exact, 1), atol=1e-5)


def test_open_dense_reuses_and_rebuilds(beir_dir, tiny_model, tiny_model_dir, tmp_path):
    ds = load_dataset(beir_dir)
    path = tmp_path / "idx" / "flat"
    index = open_index(ds, "dense", tiny_model_dir, "flat", str(path), encoder=tiny_model, progress=False)
    run = index.search(ds.queries, k=3)
    assert run.groupby("qid").size().tolist() == [3, 3, 3]
    stamp = os.path.getmtime(path / "index.faiss")
    open_index(ds, "dense", tiny_model_dir, "flat", str(path), encoder=tiny_model, progress=False)
    assert os.path.getmtime(path / "index.faiss") == stamp  # same corpus and model: reused
    assert (tmp_path / "idx" / index.meta["embeddings"] / "meta.json").exists()


def test_two_models_indexed_side_by_side_keep_their_own_encodings(beir_dir, tiny_model, tiny_model_dir, tmp_path):
    """Index folders of two models under one parent (a user's --index choice) must not share an encoding folder:
    processes encoding both at once would mix their chunks."""
    import torch
    from sentence_transformers import SentenceTransformer

    other = SentenceTransformer(tiny_model_dir, device="cpu")
    with torch.no_grad():
        next(other.parameters()).add_(0.5)
    other.save(str(tmp_path / "other"))
    ds = load_dataset(beir_dir)
    a = open_index(ds, "dense", tiny_model_dir, "flat", str(tmp_path / "idx" / "a"), encoder=tiny_model, progress=False)
    b = open_index(ds, "dense", str(tmp_path / "other"), "flat", str(tmp_path / "idx" / "b"), progress=False)
    assert a.meta["embeddings"] != b.meta["embeddings"]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == sorted(["a", "b", a.meta["embeddings"], b.meta["embeddings"]])
