"""The on-disk corpus store (issue 16): a large corpus is parsed once, then memory-mapped; ids are looked up without a
dict of every id; the score cache and example building read a block of queries at a time."""

import json
import os
import pickle

import numpy as np
import pyarrow as pa
import pytest

from irdistill.data import Corpus, store
from irdistill.data import corpus as corpus_module
from irdistill.errors import InputError

DOCS = {f"d{i}": (f"title {i}" if i % 3 else "", f"text of document {i} " + "x" * (i % 7)) for i in range(50)}


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """Every corpus is large enough to be stored; the user cache is a temporary folder."""
    monkeypatch.setenv("IRDISTILL_STORE_MIN_BYTES", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return tmp_path


def write_corpus(path, docs=DOCS):
    path.write_text("".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in docs.items()))
    return path


def no_parsing(monkeypatch):
    monkeypatch.setattr(corpus_module, "read_jsonl", lambda *a, **k: pytest.fail("parsed again"))


def test_a_stored_corpus_reads_like_the_one_in_memory(stored, monkeypatch):
    path = write_corpus(stored / "corpus.jsonl")
    memory = Corpus.from_records([(d, t, x) for d, (t, x) in DOCS.items()])
    first = Corpus.from_jsonl(path)
    assert first._store == str(stored / ".corpus.jsonl.store") and os.path.isdir(first._store)
    no_parsing(monkeypatch)
    again = Corpus.from_jsonl(path)  # mapped: no parsing
    for corpus in (first, again):
        assert len(corpus) == len(memory) and corpus.fingerprint() == memory.fingerprint()
        assert corpus.ids.to_pylist() == memory.ids.to_pylist()
        ids = ["d7", "d0", "d49", "d7", "d13"]
        assert corpus.texts(ids) == memory.texts(ids) and corpus.rows(ids) == [7, 0, 49, 7, 13]
        assert corpus.texts(start=3, stop=9) == memory.texts(start=3, stop=9)
        assert corpus.contains(["d3", "nope", ""]) == [True, False, False]
        assert [b[1] for b in corpus.batches(20)] == [b[1] for b in memory.batches(20)]
        with pytest.raises(KeyError, match="'nope'"):
            corpus.rows(["d1", "nope"])


def test_lookups_across_many_record_batches(stored):
    places = store.places("test:many", None)
    records = [(f"id{i:03d}", "", f"text {i}") for i in np.random.default_rng(0).permutation(300)]
    corpus = Corpus.from_records(records, "<many>", batch=7, keep=(places, {"k": 1}))
    assert corpus._store is not None and corpus.table["text"].num_chunks > 10
    want = [r[0] for r in records]
    ask = list(np.random.default_rng(1).choice(want, 500))  # repeats, every batch, random order
    assert corpus.texts(ask) == [f"text {int(d[2:])}" for d in ask]
    assert corpus.rows(want) == list(range(300))
    assert (corpus.lookup(pa.array([], pa.string())) == []).all()


def test_a_changed_file_is_parsed_again(stored):
    path = write_corpus(stored / "corpus.jsonl")
    before = Corpus.from_jsonl(path)
    write_corpus(path, {**DOCS, "d3": ("", "changed")})
    after = Corpus.from_jsonl(path)
    assert after.fingerprint() != before.fingerprint() and after.texts(["d3"]) == ["changed"]
    assert before.texts(["d3"]) != ["changed"]  # the old mapping still reads the old store


def test_a_read_only_folder_keeps_its_store_in_the_user_cache(stored, monkeypatch):
    data = stored / "shared"
    data.mkdir()
    path = write_corpus(data / "corpus.jsonl")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(data) else real_access(p, mode))
    corpus = Corpus.from_jsonl(path)
    assert os.listdir(data) == ["corpus.jsonl"]
    assert corpus._store.startswith(str(stored / "user-cache" / "irdistill" / "corpora"))
    no_parsing(monkeypatch)
    assert Corpus.from_jsonl(path)._store == corpus._store


@pytest.mark.parametrize("bad, message", [
    ('{"_id": "d1", "text": "again"}', "corpus.jsonl:51: duplicate document id 'd1' (first on line 2)"),
    ('{"_id": "a b", "text": "x"}', "corpus.jsonl:51: document id 'a b' contains whitespace"),
    ('{"_id": "d99", "text": 5}', "corpus.jsonl:51: title and text must be strings"),
])
def test_bad_input_names_the_line_and_leaves_no_store(stored, bad, message):
    path = stored / "corpus.jsonl"
    path.write_text(write_corpus(path).read_text() + bad + "\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Corpus.from_jsonl(path)
    assert sorted(os.listdir(stored)) == ["corpus.jsonl"]


def test_a_stored_corpus_pickles_as_its_folder(stored):
    corpus = Corpus.from_jsonl(write_corpus(stored / "corpus.jsonl"))
    data = pickle.dumps(corpus)
    assert len(data) < 1000
    back = pickle.loads(data)
    assert back.texts(["d5", "d2"]) == corpus.texts(["d5", "d2"]) and back.fingerprint() == corpus.fingerprint()
    memory = Corpus.from_records([("a", "", "x")])
    assert pickle.loads(pickle.dumps(memory)).texts(["a"]) == ["x"]


def test_small_corpora_stay_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    corpus = Corpus.from_jsonl(write_corpus(tmp_path / "corpus.jsonl"))
    assert corpus._store is None and not (tmp_path / "user-cache" / "irdistill" / "corpora").exists()
    assert sorted(os.listdir(tmp_path)) == [".corpus.jsonl.fingerprint.json", "corpus.jsonl"]


def test_examples_are_built_a_block_of_queries_at_a_time(tmp_path):
    """build_examples reads the cache in blocks and draws the same examples as in one block."""
    from irdistill.cache import ScoreCache
    from irdistill.data.dataset import Dataset
    from irdistill.training import ExampleConfig, as_hf_dataset, build_examples

    rng = np.random.default_rng(0)
    docs = [f"d{i}" for i in range(40)]
    corpus = Corpus.from_records([(d, "", f"text {d}") for d in docs])
    queries = {f"q{i:02d}": f"query {i}" for i in range(30)}
    qrels = {q: {docs[i]: 1} for i, q in enumerate(queries)}
    cache = ScoreCache(tmp_path / "cache")
    for q in queries:  # one part per query
        cache.commit("t", [q] * 12, docs[:12] if int(q[1:]) < 12 else docs[12:24], rng.standard_normal(12))
    data = Dataset("toy", corpus, queries, qrels, "train")
    cfg = ExampleConfig(teacher="t", negatives=3, strategy="random", seed=3)
    blocks = list(cache.read_blocks("t", queries=7))
    assert [len(b.qid.unique()) for b in blocks] == [7, 7, 7, 7, 2]
    assert [q for b in blocks for q in sorted(b.qid.unique())] == sorted(queries)  # whole queries, in id order
    one = build_examples(data, cache, cfg, block=1000)
    assert build_examples(data, cache, cfg, block=4) == one and len(one) == 24
    for q in list(queries)[5:]:  # a regulariser that scored all but 5 queries: read beside each block
        cache.commit("r", [q] * 24, docs[:24], rng.standard_normal(24))
    reg = ExampleConfig(teacher="t", negatives=3, strategy="random", seed=3, regularizer="r")
    with_reg = build_examples(data, cache, reg, block=1000)
    assert build_examples(data, cache, reg, block=4) == with_reg and len(with_reg) == 19
    assert all(len(e["scores"]) == 2 and len(e["scores"][1]) == 4 for e in with_reg)
    ds = as_hf_dataset(one, data)
    row = ds[0]
    assert list(row) == ["query", "document_1", "document_2", "document_3", "document_4", "scores"]
    assert row["query"] == queries[one[0]["query_id"]] and row["document_1"] == f"text {one[0]['document_ids'][0]}"
    bad = [{**one[0], "document_ids": ["d1", "d2", "d3", "missing"]}]
    with pytest.raises(KeyError, match="'missing'"):
        as_hf_dataset(bad, data)


def test_ir_datasets_documents_are_stored_once(tmp_path):
    """beir/scifact through ir_datasets: the first load writes the store, the second maps it (same fingerprint)."""
    import subprocess
    import sys

    from test_data import fill_ir_datasets_cache

    fill_ir_datasets_cache(tmp_path)
    code = ("from irdistill.data import load_dataset; ds = load_dataset('beir/scifact/test'); "
            "print(len(ds.corpus), ds.corpus.fingerprint(), ds.corpus._store is not None)")
    env = {**os.environ, "IR_DATASETS_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg"),
           "IRDISTILL_STORE_MIN_BYTES": "1"}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    (folder,) = os.listdir(tmp_path / "xdg" / "irdistill" / "corpora")
    stamp = os.stat(tmp_path / "xdg" / "irdistill" / "corpora" / folder / "meta.json").st_mtime_ns
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert first == second and first.split()[0] == "5183" and first.split()[2] == "True"
    assert os.stat(tmp_path / "xdg" / "irdistill" / "corpora" / folder / "meta.json").st_mtime_ns == stamp
