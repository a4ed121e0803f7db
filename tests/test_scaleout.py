"""Scaling out encoding and search: a pool of encoding workers gives the vectors one process gives, the ranks of a
torchrun job share the chunks and only rank 0 builds the index, and a FAISS index split into shards returns what one
index returns."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from irdistill.data import load_dataset
from test_colbert import tiny_colbert  # noqa: F401  (fixture)
from test_splade import tiny_mlm, tiny_splade  # noqa: F401  (fixtures)

WORDS = [f"w{i}" for i in range(80)]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """40 documents of 3 to 40 words (lengths vary, so batches pad differently), 10 queries."""
    from conftest import write_beir

    rng = np.random.default_rng(0)
    docs = {f"d{i}": ("", " ".join(rng.choice(WORDS, rng.integers(3, 40)))) for i in range(40)}
    queries = {f"q{i}": " ".join(rng.choice(WORDS, 4)) for i in range(10)}
    return write_beir(tmp_path_factory.mktemp("scaleout") / "data", docs, queries,
                      {"test": [(q, "d0", 1) for q in queries]})


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# a pool of worker processes --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_workers_encode_as_one_process(tiny_model, tiny_model_dir, corpus_dir, tmp_path):
    from irdistill.index import encode_corpus, vectors_key

    corpus = load_dataset(corpus_dir, "test").corpus
    key = vectors_key(corpus, tiny_model_dir, tiny_model)
    one = encode_corpus(tiny_model, corpus, tmp_path / "one", key, batch_size=4, chunk=16, progress=False)
    two = encode_corpus(tiny_model, corpus, tmp_path / "two", key, batch_size=4, chunk=16, progress=False, workers=2)
    a, b = np.concatenate(list(one.parts())), np.concatenate(list(two.parts()))
    assert a.shape == b.shape == (40, 32)
    assert cosines(a, b).min() >= 0.9999
    assert tiny_model.device.type == "cpu"  # the model is back where it was


@pytest.mark.slow
def test_colbert_and_splade_workers_encode_as_one_process(tiny_colbert, tiny_splade, corpus_dir,  # noqa: F811
                                                          tmp_path):
    from irdistill.index.colbert import encode_tokens
    from irdistill.index.splade import encode_vectors
    from irdistill.models import load_colbert, load_splade

    corpus = load_dataset(corpus_dir, "test").corpus
    colbert = load_colbert(tiny_colbert, device="cpu")
    (parts1, lens1), (parts2, lens2) = (encode_tokens(colbert, corpus, tmp_path / f"colbert{w}", {}, 4, 16, False,
                                                      workers=w) for w in (1, 2))
    for p1, p2, l1, l2 in zip(parts1, parts2, lens1, lens2, strict=True):
        np.testing.assert_array_equal(np.load(l1), np.load(l2))
        a, b = np.load(p1).astype(np.float32), np.load(p2).astype(np.float32)
        assert cosines(a, b).min() >= 0.999  # stored as float16
    splade = load_splade(tiny_splade, device="cpu")
    stats = [encode_vectors(splade, corpus, tmp_path / f"splade{w}", {}, 4, 16, False, workers=w) for w in (1, 2)]
    assert stats[0] == stats[1]
    for i in range(3):
        rows = [[json.loads(line) for line in open(tmp_path / f"splade{w}" / "docs" / f"part-{i:05d}.jsonl")]
                for w in (1, 2)]
        for r1, r2 in zip(*rows, strict=True):
            assert r1["id"] == r2["id"] and r1["vector"].keys() == r2["vector"].keys()
            assert max(abs(r1["vector"][t] - r2["vector"][t]) for t in r1["vector"]) <= 1  # quantised to 1/100


@pytest.mark.slow
def test_bi_encoder_teacher_scores_alike_with_workers(tiny_model_dir):
    from irdistill.teachers import build_teacher

    one = build_teacher({"kind": "bi-encoder", "model": tiny_model_dir, "batch_size": 4})
    two = build_teacher({"kind": "bi-encoder", "model": tiny_model_dir, "batch_size": 4, "workers": 2})
    assert one.id == two.id  # workers change how fast, not what
    rng = np.random.default_rng(1)
    queries = [" ".join(rng.choice(WORDS, 3)) for _ in range(30)]
    passages = [" ".join(rng.choice(WORDS, rng.integers(3, 30))) for _ in range(30)]
    np.testing.assert_allclose(two.score_pairs(queries, passages), one.score_pairs(queries, passages), atol=1e-5)


# torchrun: each rank its share of the chunks, rank 0 builds ---------------------------------------------------------
RANK_SCRIPT = """
import json, os, sys
import irdistill.index.encode as encode
from irdistill.data import load_dataset
from irdistill.index import DenseIndex, open_index

folder, model, index, out = sys.argv[1:]
encoded, built = [], []
texts = encode.encode_texts
encode.encode_texts = lambda m, t, *a, **k: encoded.append(len(t)) or texts(m, t, *a, **k)
build = DenseIndex.from_embeddings.__func__
DenseIndex.from_embeddings = classmethod(lambda cls, *a, **k: built.append(1) or build(cls, *a, **k))
DenseIndex.chunk = 8  # 5 chunks for 2 ranks
ds = load_dataset(folder, "test")
found = open_index(ds, "dense", model, "flat", index, progress=False)
run = found.retrieve(ds, k=5)
json.dump({"rank": int(os.environ["RANK"]), "encoded": encoded, "built": len(built),
           "run": run[["qid", "docid"]].values.tolist()}, open(f"{out}.{os.environ['RANK']}", "w"))
"""


@pytest.mark.slow
def test_torchrun_ranks_share_the_chunks_and_rank_zero_builds(tiny_model, tiny_model_dir, corpus_dir, tmp_path):
    from irdistill.index import encode_texts, load_index

    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    index = tmp_path / "indexes" / "flat"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script), corpus_dir,
           tiny_model_dir, str(index), str(tmp_path / "out")]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.load(open(tmp_path / f"out.{r}")) for r in (0, 1)]
    assert [r["encoded"] for r in ranks] == [[8, 8, 8], [8, 8]]  # chunks 0, 2, 4 and 1, 3
    assert [r["built"] for r in ranks] == [1, 0]
    assert ranks[0]["run"] == ranks[1]["run"]
    corpus = load_dataset(corpus_dir, "test").corpus
    (folder,) = (tmp_path / "indexes").glob("embeddings-*")
    parts = sorted(os.listdir(folder))
    assert parts == ["meta.json"] + [f"part-{i:05d}.npy" for i in range(5)]
    got = np.concatenate([np.load(folder / p) for p in parts[1:]])
    assert cosines(got, encode_texts(tiny_model, corpus.texts(), batch_size=8)).min() >= 0.9999
    assert load_index(index).index.ntotal == 40


# sharded FAISS ------------------------------------------------------------------------------------------------------
def embeddings(folder, n=3000, dim=32, chunk=700, seed=0):
    """Unit vectors in chunks of 700 (not aligned with the shards), as encode_corpus writes them."""
    from irdistill.index import Embeddings

    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    os.makedirs(folder)
    for i, start in enumerate(range(0, n, chunk)):
        np.save(os.path.join(folder, f"part-{i:05d}.npy"), x[start : start + chunk])
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump({"documents": n, "chunk": chunk, "dim": dim, "model": "random", "normalized": True}, f)
    return Embeddings(folder)


@pytest.mark.parametrize("kind,params", [("flat", {}), ("ivfpq", {"nlist": 16, "nprobe": 4, "m": 8, "nbits": 6})])
def test_sharded_index_returns_the_top_100_of_one_index(tmp_path, kind, params):
    from irdistill.index import DenseIndex

    emb = embeddings(str(tmp_path / "embeddings"))
    docids = [f"d{i}" for i in range(len(emb))]
    one = DenseIndex.from_embeddings(emb, docids, kind, tmp_path / "one", progress=False, **params)
    three = DenseIndex.from_embeddings(emb, docids, kind, tmp_path / "three", progress=False, shards=3, **params)
    assert sorted(os.listdir(three.path)) == ["docids.txt", "meta.json"] + [f"shard-0000{i}.faiss" for i in range(3)]
    assert [s.ntotal for s, _ in three.shards] == [1000, 1000, 1000]
    queries = embeddings(str(tmp_path / "queries"), n=50, seed=1).sample(50)
    s1, r1 = one.search_vectors(queries, 100)
    s3, r3 = three.search_vectors(queries, 100)
    np.testing.assert_array_equal(r3, r1)
    np.testing.assert_allclose(s3, s1, rtol=0, atol=1e-6)
    if kind == "flat":  # and the exact top 100
        want = np.argsort(-(queries @ np.concatenate(list(emb.parts())).T), axis=1, kind="stable")[:, :100]
        np.testing.assert_array_equal(r1, want)


def test_shards_are_part_of_the_key_and_checked(beir_dir, tiny_model, tiny_model_dir, tmp_path):
    from irdistill.errors import InputError
    from irdistill.index import open_index

    ds = load_dataset(beir_dir, "test")
    flat = open_index(ds, "dense", tiny_model_dir, "flat", str(tmp_path / "flat"), encoder=tiny_model, progress=False)
    two = open_index(ds, "dense", tiny_model_dir, "flat", str(tmp_path / "two"), encoder=tiny_model, progress=False,
                     shards=2)
    assert two.meta["params"]["shards"] == 2 and flat.meta["key"] != two.meta["key"]
    assert "shards" not in open_index(ds, "dense", tiny_model_dir, "flat", str(tmp_path / "flat"), encoder=tiny_model,
                                      progress=False, shards=1).meta["params"]  # one shard is the plain index
    a, b = flat.retrieve(ds, k=6), two.retrieve(ds, k=6)
    assert a[["qid", "docid", "rank"]].equals(b[["qid", "docid", "rank"]])
    with pytest.raises(InputError, match="shards"):
        open_index(ds, "dense", tiny_model_dir, "flat", str(tmp_path / "bad"), encoder=tiny_model, shards=0)
    with pytest.raises(InputError, match="takes no shards"):
        open_index(ds, "bm25", index=str(tmp_path / "bm25"), shards=2)
    with pytest.raises(InputError, match="encodes nothing"):
        open_index(ds, "bm25", index=str(tmp_path / "bm25"), workers=2)


def test_hnsw_search_for_more_than_ef_search_widens_the_beam(tmp_path):
    """efSearch below k returns k rows but misses much of the exact top k; the index searches with max(ef_search, k)."""
    from irdistill.index import DenseIndex

    emb = embeddings(str(tmp_path / "embeddings"))
    index = DenseIndex.from_embeddings(emb, [f"d{i}" for i in range(len(emb))], "hnsw", tmp_path / "hnsw",
                                       progress=False, M=8, ef_search=8)
    queries = embeddings(str(tmp_path / "queries"), n=50, seed=1).sample(50)
    exact = np.argsort(-(queries @ np.concatenate(list(emb.parts())).T), axis=1)[:, :200]
    _, rows = index.search_vectors(queries, 200)
    assert np.mean([len(set(a) & set(b)) / 200 for a, b in zip(rows, exact)]) >= 0.9
    assert index.index.hnsw.efSearch == 200


def test_candidate_shards_split_the_queries_as_score_does(tmp_path, capsys):
    """Each `candidates --shard i/n` writes its own part; together they are the whole run, split as score splits."""
    from conftest import random_collection, write_beir

    from irdistill.cli import main
    from irdistill.data import read_run
    from irdistill.data.shards import in_shard

    docs, queries = random_collection(30, 12, doc_words=8, vocabulary=30)
    beir_dir = write_beir(tmp_path / "toy", docs, queries, {"test": [(q, "d0", 1) for q in queries]})

    out = str(tmp_path / "train.parquet")
    common = ["candidates", "--dataset", beir_dir, "--split", "test", "-k", "3", "--index", str(tmp_path / "bm25")]
    assert main([*common, "--output", out]) == 0
    whole = read_run(out)
    parts = []
    for i in range(2):
        assert main([*common, "--output", out, "--shard", f"{i}/2"]) == 0
        part = read_run(tmp_path / f"train.part-{i}-of-2.parquet")
        assert all(in_shard(q, (i, 2)) for q in part["qid"])
        parts.append(part)
    assert sorted(map(tuple, pd.concat(parts)[["qid", "docid"]].values)) == \
        sorted(map(tuple, whole[["qid", "docid"]].values))
