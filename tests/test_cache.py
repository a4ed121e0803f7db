import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from irdistill.cache import ScoreCache, export_margin_mse, import_teacher_file
from irdistill.data import Corpus, Dataset, load_dataset, run_from_dict, write_run
from irdistill.data import in_shard
from irdistill.teachers import Teacher, score_run


class Overlap(Teacher):
    """A deterministic toy teacher: shared words between query and passage."""

    kind = "overlap"

    def __init__(self):
        self.calls = 0

    def config(self):
        return {"version": 1}

    def score_pairs(self, queries, passages):
        self.calls += len(queries)
        return np.array([len(set(q.split()) & set(p.split())) for q, p in zip(queries, passages)], dtype=np.float32)


def toy(nq=20, nd=60, k=10):
    words = [f"w{i}" for i in range(30)]
    rng = np.random.default_rng(0)
    corpus = Corpus.from_records((f"d{i}", "", " ".join(rng.choice(words, 8))) for i in range(nd))
    queries = {f"q{i}": " ".join(rng.choice(words, 3)) for i in range(nq)}
    qrels = {q: {f"d{i}": 1} for i, q in enumerate(queries)}
    run = run_from_dict({q: {f"d{(i + j) % nd}": float(-j) for j in range(k)} for i, q in enumerate(queries)})
    return Dataset("toy", corpus, queries, qrels, "train"), run


def test_scores_land_once_and_rerun_scores_nothing(tmp_path):
    ds, run = toy()
    cache, teacher = ScoreCache(tmp_path / "cache"), Overlap()
    stats = score_run(teacher, run, ds, cache, flush_pairs=30, progress=False)
    assert (stats.queries, stats.pairs, teacher.calls) == (20, 200, 200)
    again = score_run(teacher, run, ds, cache, progress=False)
    assert (again.pairs, again.skipped_queries, teacher.calls) == (0, 20, 200)
    df = cache.read(stats.key)
    assert stats.key == teacher.cache_key(ds) and stats.key.startswith(teacher.id + "@")
    assert len(df) == 200 and not df.duplicated(["qid", "docid"]).any()
    expected = [len(set(ds.queries[q].split()) & set(ds.corpus.texts([d])[0].split())) for q, d in zip(df.qid, df.docid)]
    assert df.score.tolist() == expected
    assert cache.teachers()[stats.key] == {"kind": "overlap", "version": 1, "collection": "toy", "documents": 60,
                                           "scale": "unknown"}


def test_cache_reads_as_one_table_elsewhere(tmp_path):
    ds, run = toy()
    cache = ScoreCache(tmp_path / "cache")
    score_run(Overlap(), run, ds, cache, flush_pairs=50, progress=False)
    folder = str(tmp_path / "cache")
    df = pd.read_parquet(folder)
    assert len(df) == 200 and set(df.columns) == {"qid", "docid", "score", "teacher"}
    polars = pytest.importorskip("polars")
    assert polars.read_parquet(os.path.join(folder, "*", "*.parquet"), hive_partitioning=True).height == 200
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(f"select count(*) from read_parquet('{folder}/*/*.parquet', hive_partitioning=true)").fetchall()[0][0]
    assert n == 200


def test_read_by_qid_prunes_and_compact_keeps_everything(tmp_path):
    ds, run = toy()
    cache, t = ScoreCache(tmp_path / "cache"), Overlap()
    key = score_run(t, run, ds, cache, flush_pairs=10, progress=False).key
    before = cache.read(key).sort_values(["qid", "docid"]).reset_index(drop=True)
    assert set(cache.read(key, qids=["q3", "q7"]).qid) == {"q3", "q7"}
    cache.compact(key, queries=3)  # streamed: three queries at a time, in qid order, into one file
    parts = [f for f in os.listdir(tmp_path / "cache" / f"teacher={key}") if f.startswith("part-")]
    assert len(parts) == 1
    pd.testing.assert_frame_equal(cache.read(key).sort_values(["qid", "docid"]).reset_index(drop=True), before)
    stored = pq.read_table(tmp_path / "cache" / f"teacher={key}" / parts[0]).to_pandas()
    assert stored["qid"].tolist() == sorted(stored["qid"])  # sorted: row groups prune on qid filters


def test_shards_are_disjoint_and_complete(tmp_path):
    ds, run = toy(nq=40)
    cache, t = ScoreCache(tmp_path / "cache"), Overlap()
    sizes = [score_run(t, run, ds, cache, shard=(i, 3), progress=False).queries for i in range(3)]
    assert sum(sizes) == 40 and min(sizes) > 0
    key = t.cache_key(ds)
    assert cache.read(key).qid.nunique() == 40 and len(cache.read(key)) == 400
    assert sum(in_shard("q1", (i, 3)) for i in range(3)) == 1


def test_two_writers_do_not_corrupt(tmp_path):
    ds, run = toy()
    cache = ScoreCache(tmp_path / "cache")
    t1, t2 = Overlap(), Overlap()
    key = score_run(t1, run, ds, cache, progress=False).key
    ScoreCache(tmp_path / "cache").write(t2.cache_key(ds), ["q0"], ["d0"], [9.0])  # another process, same pair
    df = cache.read(key)
    assert len(df) == 200 and not df.duplicated(["qid", "docid"]).any()


def test_margin_mse_export_import_round_trip(tmp_path):
    ds, run = toy()
    cache, t = ScoreCache(tmp_path / "cache"), Overlap()
    key = score_run(t, run, ds, cache, progress=False).key
    n = export_margin_mse(cache, key, ds.qrels, tmp_path / "teacher.tsv")
    lines = (tmp_path / "teacher.tsv").read_text().splitlines()
    assert n == len(lines) == 20 * 9  # one positive (in the candidates) and 9 negatives per query
    pos, neg, qid, p, d = lines[0].split("\t")
    assert ds.qrels[qid] == {p: 1} and d != p
    imported = import_teacher_file(cache, tmp_path / "teacher.tsv", "margin-mse", "hofstaetter", progress=False)
    assert imported.pairs == 200 and imported.key.startswith("hofstaetter-")
    a = cache.read(key).set_index(["qid", "docid"]).score
    b = cache.read(imported.key).set_index(["qid", "docid"]).score
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), check_names=False)


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, tiny_model_dir):
    """Kill ``irdistill score`` with SIGKILL part-way; the resumed cache equals an uninterrupted run's."""
    from conftest import random_collection, write_beir

    docs, queries = random_collection(400, 80, doc_words=40, vocabulary=50, query_words=4, prefix="term", seed=1)
    folder = write_beir(tmp_path / "data", docs, queries, {"test": [(q, "d0", 1) for q in queries]})
    run = run_from_dict({q: {f"d{(i * 7 + j) % 400}": float(-j) for j in range(50)} for i, q in enumerate(queries)})
    write_run(run, tmp_path / "cands.parquet")

    def cmd(cache):
        return [sys.executable, "-m", "irdistill", "score", "--teacher", f"bi-encoder:{tiny_model_dir}", "--run",
                str(tmp_path / "cands.parquet"), "--dataset", folder, "--cache", str(tmp_path / cache), "--flush", "100"]

    proc = subprocess.Popen(cmd("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "killed").glob("*/part-*.parquet"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(ScoreCache(tmp_path / "killed").read())
    assert 0 < partial < 4000, partial
    subprocess.run(cmd("killed"), check=True, capture_output=True)
    from irdistill.cli import main  # the uninterrupted reference: the same command, in this process

    assert main(cmd("clean")[3:] + ["--quiet"]) == 0
    a = ScoreCache(tmp_path / "killed").read().sort_values(["qid", "docid"]).reset_index(drop=True)
    b = ScoreCache(tmp_path / "clean").read().sort_values(["qid", "docid"]).reset_index(drop=True)
    assert len(a) == 4000 and not a.duplicated(["qid", "docid"]).any()
    pd.testing.assert_frame_equal(a[["qid", "docid"]], b[["qid", "docid"]])
    np.testing.assert_allclose(a.score, b.score, atol=1e-5)


def test_collections_with_the_same_query_ids_stay_apart(tmp_path):
    """SciFact's and Cranfield's query ids are both small numbers: their scores must not mix."""
    ds1, run = toy()
    ds2, _ = toy(nd=61)  # another corpus, the same query ids
    cache, t = ScoreCache(tmp_path / "cache"), Overlap()
    k1 = score_run(t, run, ds1, cache, progress=False).key
    s2 = score_run(t, run, ds2, cache, progress=False)
    assert s2.key != k1 and s2.queries == 20  # nothing skipped: the second collection is scored in full


def test_a_query_id_that_comes_back_with_another_text_is_refused_not_served_stale(tmp_path):
    """Two query sets over one corpus with the same ids (two generators' "1-q0"): the cached scores of the first must
    not pass as the second's, when scoring, fusing or training."""
    from dataclasses import replace

    from irdistill.training.examples import ExampleConfig, build_examples

    ds, run = toy()
    cache, t = ScoreCache(tmp_path / "cache"), Overlap()
    key = score_run(t, run, ds, cache, progress=False).key
    edited = replace(ds, queries={**ds.queries, "q3": "an edited text"})
    for call in (lambda: score_run(t, run, edited, cache, progress=False),
                 lambda: build_examples(edited, cache, ExampleConfig(teacher=key, negatives=3)),
                 lambda: cache.commit(key, ["q3"], ["d99"], [1.0], {"q3": "an edited text"})):
        with pytest.raises(InputError, match="'q3' is not the text"):
            call()
    cache.compact(key)  # the hashes survive compaction
    with pytest.raises(InputError, match="'q3' is not the text"):
        ScoreCache(tmp_path / "cache").check_texts(key, edited.queries)
    assert score_run(t, run, ds, cache, progress=False).skipped_queries == 20  # the same texts: all cached
    spec = {"kind": "ensemble", "norm": "zscore", "weights": [0.5, 0.5], "members": [{"cached": key}, {"cached": key}]}
    with pytest.raises(InputError, match="'q3' is not the text"):
        score_run(spec, run, edited, cache, progress=False)


# safety: ids, damaged parts, counts (issue 14) ---------------------------------------------------------------------
from irdistill.errors import InputError  # noqa: E402


@pytest.mark.parametrize("bad", ["x/../../../escaped", "..", "../x", "a/b", "", ".hidden", "a b", "x%2F..", "a=b",
                                 "t\n", "é"])
def test_unsafe_teacher_ids_are_refused_everywhere(tmp_path, bad):
    cache = ScoreCache(tmp_path / "cache")
    tsv = tmp_path / "t.tsv"
    tsv.write_text("1.0\t0.5\tq1\td1\td2\n")
    for call in (lambda: import_teacher_file(cache, tsv, "margin-mse", bad, progress=False), lambda: cache.compact(bad), lambda: cache.read(bad),
                 lambda: cache.commit(bad, ["q"], ["d"], [1.0]), lambda: cache.register(bad, {}),
                 lambda: cache.claim(bad, ["q"]), lambda: cache.describe(bad), lambda: cache.verify(bad)):
        with pytest.raises(InputError, match="not a safe name"):
            call()
    assert sorted(os.listdir(tmp_path)) == ["t.tsv"]  # nothing written anywhere


def test_cache_path_that_is_a_file(tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(InputError, match="cache: the cache is not a folder"):
        ScoreCache(tmp_path / "cache")


def truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def test_truncated_part_is_named(tmp_path):
    cache = ScoreCache(tmp_path / "cache")
    cache.register("t", {})
    cache.commit("t", ["q1", "q1"], ["d1", "d2"], [1.0, 2.0])
    cache.commit("t", ["q2"], ["d1"], [3.0])
    part = sorted((tmp_path / "cache" / "teacher=t").glob("part-*.parquet"))[0]
    truncate(part)
    fresh = ScoreCache(tmp_path / "cache")
    for call in (lambda: fresh.read("t"), lambda: fresh.count_pairs("t"), lambda: fresh.run("t"),
                 lambda: fresh.compact("t")):
        with pytest.raises(InputError, match="unreadable part file") as e:
            call()
        assert str(e.value).startswith(str(part))
    assert fresh.scored_qids("t") == {"q1", "q2"}  # from the index, which does not open the parts
    os.remove(tmp_path / "cache" / "teacher=t" / ".qids.jsonl")  # without the index the part must be opened
    with pytest.raises(InputError, match="unreadable part file") as e:
        ScoreCache(tmp_path / "cache").scored_qids("t")
    assert str(part) in str(e.value)
    (report,) = fresh.verify("t")
    assert not report.ok and report.unreadable[0][0] == str(part) and report.parts == 2


def test_count_pairs_verify_and_compact_of_an_old_cache_with_duplicates(tmp_path):
    """Parts written by older versions (no index, a pair stored twice) are read, counted and compacted right."""
    import pyarrow as pa

    from irdistill.cache.scores import SCHEMA

    folder = tmp_path / "cache" / "teacher=old"
    folder.mkdir(parents=True)
    (folder / "_teacher.json").write_text("{}")
    for i, rows in enumerate([[("q1", "d1", 1.0), ("q1", "d2", 2.0)], [("q1", "d1", 1.0), ("q2", "d1", 3.0)]]):
        q, d, s = zip(*rows)
        pq.write_table(pa.table({"qid": q, "docid": d, "score": pa.array(s, pa.float32())}, schema=SCHEMA),
                       folder / f"part-{i}.parquet")
    cache = ScoreCache(tmp_path / "cache")
    assert len(cache.read("old")) == 3 and cache.count_pairs("old") == 3 and cache.scored_qids("old") == {"q1", "q2"}
    (report,) = cache.verify()
    assert (report.rows, report.pairs, report.duplicates, report.ok) == (4, 3, 1, False)
    assert cache.commit("old", ["q1", "q3"], ["d2", "d9"], [5.0, 6.0]) == 1  # only (q3, d9) is new
    cache.compact("old")
    (report,) = cache.verify()
    assert report.ok and (report.parts, report.rows, report.queries) == (1, 4, 3)
    assert len(pd.read_parquet(tmp_path / "cache")) == 4 and cache.count_pairs("old") == 4
    assert cache.read("old", qids=["q1"]).set_index("docid").score.to_dict() == {"d1": 1.0, "d2": 2.0}


def test_commit_is_per_pair_and_counts_pairs(tmp_path):
    cache = ScoreCache(tmp_path / "cache")
    assert cache.commit("t", ["q1", "q1", "q1"], ["d1", "d2", "d1"], [1, 2, 3]) == 2  # the repeated pair once
    assert cache.commit("t", ["q1", "q1"], ["d2", "d3"], [9, 4]) == 1  # a deeper list of q1 adds only d3
    assert cache.count_pairs("t") == 3 and ScoreCache(tmp_path / "cache").count_pairs("t") == 3
    assert cache.read("t").set_index("docid").score.to_dict() == {"d1": 1.0, "d2": 2.0, "d3": 4.0}
    with pytest.raises(ValueError, match="NaN"):
        cache.commit("t", ["q2"], ["d1"], [float("nan")])


def test_parts_follow_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        cache = ScoreCache(tmp_path / "cache")
        cache.register("t", {})
        cache.commit("t", ["q"], ["d"], [1.0])
    finally:
        os.umask(old)
    for path in (tmp_path / "cache" / "teacher=t").iterdir():
        assert path.stat().st_mode & 0o777 in (0o664, 0o775), path


def test_editing_one_document_rescores_under_a_new_key(tmp_path, monkeypatch):
    """Issue 14: the cache key holds the corpus content, so an edited text is never served its old scores."""
    import json

    from conftest import write_beir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = write_beir(tmp_path / "data")
    ds = load_dataset(folder, "test")
    run = run_from_dict({q: {d: 0.0 for d in ["d1", "d2", "d3"]} for q in ds.queries})
    cache, t = ScoreCache(tmp_path / "cache"), Overlap()
    first = score_run(t, run, ds, cache, progress=False)
    assert score_run(t, run, load_dataset(folder, "test"), cache, progress=False).pairs == 0  # unchanged: cached
    path = os.path.join(folder, "corpus.jsonl")
    lines = open(path).read().splitlines()
    rec = json.loads(lines[1])
    rec["text"] = "memory safe programming language"  # d2 now matches q2's words
    lines[1] = json.dumps(rec)
    open(path, "w").write("\n".join(lines) + "\n")
    edited = load_dataset(folder, "test")
    second = score_run(t, run, edited, cache, progress=False)
    assert second.key != first.key and second.pairs == first.pairs
    assert cache.read(second.key, qids=["q2"]).set_index("docid").score["d2"] == 4
    assert cache.read(first.key, qids=["q2"]).set_index("docid").score["d2"] == 0


def test_bi_encoder_memo_smaller_than_the_corpus_scores_like_no_memo(tiny_model_dir):
    """Passages leave the memo least recently used first, never before the batch that needs them has its vectors
    (a passage seen before, then evicted by the same batch's new ones, raised KeyError(text) at 1M passages)."""
    from irdistill.teachers.bi_encoder import BiEncoderTeacher

    docs = [f"passage {i} about {w}" for i, w in enumerate(["cats", "dogs", "tea", "rust", "coffee", "seeds"])]
    small, big = BiEncoderTeacher(tiny_model_dir, memo=2), BiEncoderTeacher(tiny_model_dir)
    for batch in ([docs[0], docs[1]], [docs[0], docs[2], docs[3]], docs[::-1], [docs[5], docs[0]]):
        q = ["which animal purrs"] * len(batch)
        np.testing.assert_allclose(small.score_pairs(q, batch), big.score_pairs(q, batch), atol=1e-6)
        assert len(small._memo) <= 2


# resuming by pair, not by query (issue 32) --------------------------------------------------------------------------
class Seen(Overlap):
    """The overlap teacher, keeping the (query text, docid) pairs it was asked to score."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def score_lists(self, lists, docids=None):
        self.seen += [(q, d) for (q, _), ds in zip(lists, docids) for d in ds]
        return super().score_lists(lists, docids)


def pairs_of(ds, run):
    return sorted((ds.queries[q], d) for q, d in zip(run["qid"], run["docid"]))


def overlap(ds, df):
    return [len(set(ds.queries[q].split()) & set(ds.corpus.texts([d])[0].split())) for q, d in zip(df.qid, df.docid)]


def test_a_deeper_run_scores_only_the_new_pairs_of_queries_scored_before(tmp_path):
    ds, top5 = toy(k=5)
    _, top10 = toy(k=10)
    cache, t = ScoreCache(tmp_path / "cache"), Seen()
    first = score_run(t, top5, ds, cache, flush_pairs=30, progress=False)
    assert (first.queries, first.pairs, first.skipped_queries) == (20, 100, 0)
    t.seen = []
    deeper = score_run(t, top10, ds, cache, flush_pairs=30, progress=False)  # ranks 6 to 10 of every query
    assert (deeper.queries, deeper.pairs, deeper.skipped_queries) == (20, 100, 0)
    assert sorted(t.seen) == pairs_of(ds, top10[top10["rank"] > 5])
    df = cache.read(first.key)
    assert len(df) == 200 and not df.duplicated(["qid", "docid"]).any() and df.score.tolist() == overlap(ds, df)

    t.seen = []  # one more candidate of one query: that pair alone
    extra = pd.DataFrame({"qid": ["q3"], "docid": ["d59"], "score": [-99.0]})
    wider = pd.concat([top10, extra], ignore_index=True)
    again = score_run(t, wider, ds, cache, progress=False)
    assert (again.queries, again.pairs, again.skipped_queries, t.seen) == (1, 1, 19, [(ds.queries["q3"], "d59")])
    assert score_run(t, wider, ds, cache, progress=False).skipped_queries == 20 and len(t.seen) == 1
    assert score_run(t, top5, ds, cache, progress=False).pairs == 0  # a shallower run: all held


def test_missing_reads_only_the_queries_asked_about(tmp_path, monkeypatch):
    ds, top10 = toy(k=10)
    cache = ScoreCache(tmp_path / "cache")
    key = score_run(Overlap(), top10[top10["rank"] <= 5], ds, cache, flush_pairs=10, progress=False).key
    read = []
    real = ScoreCache._table
    monkeypatch.setattr(ScoreCache, "_table",
                        lambda self, t, parts, *a: read.append(len(parts)) or real(self, t, parts, *a))
    q3 = top10[top10["qid"] == "q3"]
    assert cache.missing(key, q3[["qid", "docid"]]).docid.tolist() == q3[q3["rank"] > 5].docid.tolist()
    assert read == [1]  # the one part that holds q3
    new = pd.DataFrame({"qid": ["q99", "q99"], "docid": ["d1", "d2"]})
    assert cache.missing(key, new).equals(new) and read == [1]  # a query the index does not name: nothing read
    blocks = cache.missing(key, top10[["qid", "docid"]], queries=3)
    assert blocks.equals(top10.loc[top10["rank"] > 5, ["qid", "docid"]])


def test_a_query_another_process_is_scoring_is_waited_for_not_left_out(tmp_path):
    """Two caches in one process stand for two processes: the scorer does the rest, then waits for the other's
    claimed query instead of returning without it."""
    import threading

    ds, run = toy(nq=4)
    other, t = ScoreCache(tmp_path / "cache"), Overlap()
    key = t.cache_key(ds)
    assert other.claim(key, ["q0"]) == ["q0"]
    done = {}
    scorer = threading.Thread(target=lambda: done.update(stats=score_run(t, run, ds, ScoreCache(tmp_path / "cache"),
                                                                         progress=False)))
    scorer.start()
    deadline = time.time() + 60
    while other.scored_qids(key) != {"q1", "q2", "q3"} and time.time() < deadline:
        time.sleep(0.05)
    assert other.scored_qids(key) == {"q1", "q2", "q3"} and scorer.is_alive()  # q0 is the other's: not scored here
    q0 = run[run["qid"] == "q0"]
    other.commit(key, q0["qid"], q0["docid"], overlap(ds, q0), {"q0": ds.queries["q0"]})
    other.release(key)
    scorer.join(60)
    assert not scorer.is_alive() and (done["stats"].queries, done["stats"].pairs, t.calls) == (3, 30, 30)
    assert len(other.read(key)) == 40


def test_claims_last_one_block_and_a_held_query_can_be_claimed_for_its_missing_pairs(tmp_path):
    a, b = ScoreCache(tmp_path / "cache"), ScoreCache(tmp_path / "cache")
    a.commit("t", ["q1"], ["d1"], [1.0])
    assert a.claim("t", ["q1", "q2"]) == ["q2"] and b.claim("t", ["q1", "q2"], held=True) == ["q1"]
    b.release("t")
    a.release("t")
    assert b.claim("t", ["q2"]) == ["q2"] and a.claim("t", ["q1", "q2"], held=True) == ["q1"]  # a new claim file
    b.release("t")
    assert a.claim("t", ["q2"]) == ["q2"]


def test_ensembles_fuse_a_query_once_over_its_candidates_and_need_every_pair_of_cached_members(tmp_path):
    ds, top10 = toy(k=10)
    top5 = top10[top10["rank"] <= 5]
    cache = ScoreCache(tmp_path / "cache")
    deep = score_run(Overlap(), top10, ds, cache, progress=False).key
    cache.commit("partial", top5["qid"], top5["docid"], overlap(ds, top5))  # e.g. cross-fitted scores of a top 5
    spec = lambda *keys: {"kind": "ensemble", "norm": "zscore", "weights": [0.5, 0.5],
                          "members": [{"cached": k} for k in keys]}
    with pytest.raises(InputError, match=r"has no scores for 20 queries of the run in full \(100 pairs missing"):
        score_run(spec(deep, "partial"), top10, ds, cache, progress=False)
    fused = score_run(spec(deep, deep), top5, ds, cache, progress=False)
    assert fused.queries == 20 and len(cache.read(fused.key)) == 100
    assert score_run(spec(deep, deep), top5, ds, cache, progress=False).skipped_queries == 20
    with pytest.raises(InputError, match="fused query 'q0' over 5 candidates here, not over the run's 10"):
        score_run(spec(deep, deep), top10, ds, cache, progress=False)


def test_cli_output_is_exactly_the_runs_pairs(tmp_path, tiny_model_dir, capsys):
    from conftest import write_beir

    from irdistill.cli import main
    from irdistill.data import read_run

    folder = write_beir(tmp_path / "data")
    ranked = {q: {d: -i for i, d in enumerate(["d1", "d2", "d3", "d4"])} for q in ("q1", "q2", "q3")}
    for k in (2, 3):
        write_run(run_from_dict({q: dict(list(ds.items())[:k]) for q, ds in ranked.items()}), tmp_path / f"top{k}.trec")

    def score(k):
        out = tmp_path / f"out{k}-{time.monotonic_ns()}.parquet"
        assert main(["score", "--teacher", f"bi-encoder:{tiny_model_dir}", "--run", str(tmp_path / f"top{k}.trec"),
                     "--dataset", folder, "--cache", str(tmp_path / "cache"), "--output", str(out), "-q"]) == 0
        return capsys.readouterr().out, read_run(out)

    printed, out = score(2)
    assert "scored 6 pairs" in printed and len(out) == 6
    printed, out = score(3)  # ranks 3 of each query: scored now, and written with ranks 1 and 2
    assert "scored 3 pairs" in printed and len(out) == 9 and set(out.docid) == {"d1", "d2", "d3"}
    printed, out = score(2)  # the cache holds three of each query; the run names two
    assert "scored 0 pairs" in printed and len(out) == 6 and set(out.docid) == {"d1", "d2"}
