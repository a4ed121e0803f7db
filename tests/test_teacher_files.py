"""Published teacher files into the cache: each format from a fixture in its exact public layout."""

import gzip
import json
import os
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from irdistill.cache import ScoreCache
from irdistill.cache import teacher_files as tf
from irdistill.errors import InputError
from test_training import cached, config  # noqa: F401 (a fixture)

# the pairs every fixture below holds: query -> {passage: score}
SCORES = {"1": {"10": 2.5, "11": -1.0, "12": 0.25}, "2": {"20": 1.5, "10": -3.0}, "3": {"30": 0.5}}


def stored(cache, key):
    df = cache.read(key)
    return {q: dict(zip(g["docid"], g["score"].astype(float))) for q, g in df.groupby("qid")}


def margin_mse(path):
    # pos_score neg_score qid pos_pid neg_pid; a positive repeats on each of its lines
    lines = ["2.5\t-1.0\t1\t10\t11", "2.5\t0.25\t1\t10\t12", "1.5\t-3.0\t2\t20\t10", "0.5\t0.5\t3\t30\t30"]
    path.write_text("\n".join(lines) + "\n")
    return path


def st_scores(path):
    with gzip.open(path, "wb") as f:  # scores[qid][pid] with int ids, as sentence-transformers published it
        pickle.dump({int(q): {int(d): s for d, s in docs.items()} for q, docs in SCORES.items()}, f, protocol=4)
    return path


def hard_negatives(path):
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"qid": 1, "pos": [{"pid": 10, "ce-score": 2.5}],
                            "neg": {"bm25": [{"pid": 11, "ce-score": -1.0}], "msmarco-MiniLM-L-6-v3":
                                    [{"pid": 12, "ce-score": 0.25}, {"pid": 11, "ce-score": -1.0}]}}) + "\n")
        f.write(json.dumps({"qid": 2, "pos": [{"pid": 20, "ce-score": 1.5}], "neg": {"bm25": [{"pid": 10, "ce-score": -3.0}]}}) + "\n")
        f.write(json.dumps({"qid": 3, "pos": [{"pid": 30, "ce-score": 0.5}], "neg": {}}) + "\n")
    return path


def trec(path):
    path.write_text("".join(f"{q} Q0 {d} {r + 1} {s} llm\n" for q, docs in SCORES.items()
                            for r, (d, s) in enumerate(sorted(docs.items(), key=lambda x: -x[1]))))
    return path


def docno_parquet(path):  # Rank-DistiLLM's runs: qid, docno, score
    rows = [(q, d, s) for q, docs in SCORES.items() for d, s in docs.items()]
    pq.write_table(pa.table({"qid": [r[0] for r in rows], "docno": [r[1] for r in rows],
                             "score": [r[2] for r in rows], "rank": list(range(len(rows)))}), path)
    return path


def colbert(path):
    path.write_text("".join(json.dumps([int(q), *[[int(d), s] for d, s in docs.items()]]) + "\n"
                            for q, docs in SCORES.items()))
    return path


def pylate(path):
    pq.write_table(pa.table({"query_id": list(SCORES), "document_ids": [list(d) for d in SCORES.values()],
                             "scores": [list(d.values()) for d in SCORES.values()]}), path)
    return path


FIXTURES = [("margin-mse", margin_mse, "t.tsv"), ("st-scores", st_scores, "s.pkl.gz"),
            ("st-hard-negatives", hard_negatives, "h.jsonl.gz"), ("run", trec, "r.trec"),
            ("run", docno_parquet, "r.parquet"), ("colbert", colbert, "c.jsonl"), ("pylate", pylate, "p.parquet")]


@pytest.mark.parametrize("fmt, make, name", FIXTURES, ids=[f[2] for f in FIXTURES])
def test_each_format_lands_in_the_cache(tmp_path, fmt, make, name):
    cache = ScoreCache(tmp_path / "cache")
    done = tf.import_teacher_file(cache, make(tmp_path / name), fmt, scale="logit", progress=False)
    assert stored(cache, done.key) == SCORES and (done.pairs, done.queries) == (6, 3)
    desc = cache.describe(done.key)
    assert desc["format"] == fmt and desc["scale"] == "logit" and desc["kind"] == "imported"
    again = tf.import_teacher_file(cache, tmp_path / name, fmt, scale="logit", progress=False)
    assert again.key == done.key and cache.count_pairs(done.key) == 6  # the same file: nothing written twice


def test_key_follows_the_content(tmp_path):
    cache = ScoreCache(tmp_path / "cache")
    path = margin_mse(tmp_path / "t.tsv")
    a = tf.import_teacher_file(cache, path, "margin-mse", progress=False).key
    assert tf.import_teacher_file(cache, path, "margin-mse", scale="margin", progress=False).key != a
    with open(path, "a") as f:
        f.write("9.0\t1.0\t4\t40\t41\n")
    b = tf.import_teacher_file(cache, path, "margin-mse", progress=False)
    assert b.key != a and b.queries == 4


def test_a_killed_import_resumes(tmp_path, monkeypatch):
    cache = ScoreCache(tmp_path / "cache")
    rng = np.random.default_rng(0)
    scores = {str(q): {str(d): float(rng.normal()) for d in rng.choice(1000, 20, replace=False)} for q in range(300)}
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps([q, *[[d, s] for d, s in docs.items()]]) + "\n" for q, docs in scores.items()))
    monkeypatch.setattr(tf, "_buckets", lambda p: 5)
    commit, calls = ScoreCache.commit, []

    def dies_after_two(self, *a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return commit(self, *a, **k)

    monkeypatch.setattr(ScoreCache, "commit", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        tf.import_teacher_file(cache, path, "colbert", progress=False)
    monkeypatch.setattr(ScoreCache, "commit", commit)
    written = []
    monkeypatch.setattr(ScoreCache, "commit", lambda self, *a, **k: written.append(len(a[1])) or commit(self, *a, **k))
    done = tf.import_teacher_file(cache, path, "colbert", progress=False)
    assert len(written) == 3  # only the buckets the killed run had not committed
    assert stored(cache, done.key) == {q: {d: pytest.approx(s) for d, s in docs.items()} for q, docs in scores.items()}
    assert not [n for n in os.listdir(os.path.join(cache.folder, f"teacher={done.key}")) if n.startswith(".spill")]


def test_big_pickle_batches(tmp_path):
    # more than 1,000 queries and a query of 2,500 passages: pickle writes dicts in batches of 1,000 items
    scores = {q: {d: float(q + d) for d in range(2500 if q == 7 else 2)} for q in range(1200)}
    path = tmp_path / "s.pkl"
    path.write_bytes(pickle.dumps(scores, protocol=5))
    cache = ScoreCache(tmp_path / "cache")
    done = tf.import_teacher_file(cache, path, "st-scores", progress=False)
    assert done.queries == 1200 and done.pairs == 1199 * 2 + 2500
    df = cache.read(done.key, qids=["7"])
    assert len(df) == 2500 and float(df.set_index("docid").loc["2499", "score"]) == 2506.0


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_malicious_pickle_is_refused_unrun(tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump({1: {10: _Evil(marker)}}, f)
    cache = ScoreCache(tmp_path / "cache")
    with pytest.raises(InputError, match="refused.*could run code") as e:
        tf.import_teacher_file(cache, path, "st-scores", progress=False)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(marker)
    assert cache.teachers() == {}  # nothing left in the cache


@pytest.mark.parametrize("fmt, content, line", [
    ("margin-mse", "1.0\t0.5\t1\t10\t11\nnan\t0.5\t1\t10\t12\n", 2),
    ("margin-mse", "1.0\t0.5\t1\t10\t11\n1.0\tx\t1\t10\t12\n", 2),
    ("margin-mse", "1.0\t0.5\t1\t10\n", 1),
    ("colbert", '[1, [10, 0.5]]\n[2, [10 0.5]]\n', 2),
    ("colbert", '[1, [10, 0.5]]\n[2, ["a b", 0.5]]\n', 2),
    ("st-hard-negatives", '{"qid": 1, "pos": [3], "neg": {"bm25": [4]}}\n', 1),
])
def test_bad_lines_name_the_file_and_line(tmp_path, fmt, content, line):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(InputError) as e:
        tf.import_teacher_file(ScoreCache(tmp_path / "cache"), path, fmt, progress=False)
    assert str(e.value).startswith(f"{path}:{line}: ")


def test_unknown_format_and_scale(tmp_path):
    path = margin_mse(tmp_path / "t.tsv")
    with pytest.raises(InputError, match="choose from"):
        tf.import_teacher_file(ScoreCache(tmp_path / "c"), path, "tevatron", progress=False)
    with pytest.raises(InputError, match="choose from"):
        tf.import_teacher_file(ScoreCache(tmp_path / "c"), path, "run", scale="odds", progress=False)


def test_an_imported_teacher_trains_a_student(cached, tiny_model_dir, tmp_path):
    from irdistill.training import train

    folder, ds, cache_dir, scored = cached  # the toy collection, scored by a word-overlap teacher
    cache = ScoreCache(cache_dir)
    path = tmp_path / "teacher.jsonl"
    rows = cache.read(scored)
    path.write_text("".join(json.dumps([q, *[[d, float(s)] for d, s in zip(g["docid"], g["score"])]]) + "\n"
                            for q, g in rows.groupby("qid")))
    key = tf.import_teacher_file(cache, path, "colbert", "overlap", progress=False).key
    final = train(config(folder, cache_dir, key, tmp_path / "out", "bi-encoder", tiny_model_dir, max_steps=2),
                  progress=False)
    assert os.path.exists(os.path.join(final, "config.json"))


@pytest.mark.parametrize("style", ["flagembedding", "tevatron"])
def test_jsonl_export_for_other_trainers(cached, tmp_path, style):
    from irdistill.cache import export_jsonl

    folder, ds, cache_dir, key = cached
    cache = ScoreCache(cache_dir)
    n = export_jsonl(cache, key, ds, tmp_path / "train.jsonl", style, max_negatives=3)
    lines = [json.loads(line) for line in open(tmp_path / "train.jsonl")]
    assert n == len(lines) == len(ds.qrels)
    first, qid = lines[0], sorted(ds.qrels)[0]
    scores = cache.read(key, qids=[qid]).set_index("docid")["score"]
    pos = next(iter(ds.qrels[qid]))
    rest = scores.drop(pos).reset_index().sort_values(["score", "docid"], ascending=[False, True])[:3]
    negatives = rest.set_index("docid")["score"]  # highest first, ties by id
    if style == "flagembedding":
        assert first["query"] == ds.queries[qid] and first["pos"] == ds.corpus.texts([pos])
        assert first["pos_scores"] == [pytest.approx(float(scores[pos]))]
        assert first["neg_scores"] == pytest.approx(negatives.tolist()) and len(first["neg"]) == 3
    else:
        assert first["query_id"] == qid and first["positive_passages"][0]["docid"] == pos
        assert [p["docid"] for p in first["negative_passages"]] == negatives.index.tolist()
        assert first["negative_passages"][0]["score"] == pytest.approx(float(negatives.iloc[0]))
