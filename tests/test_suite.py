"""One retriever over several datasets: one table with a mean row and pyserini's published BM25 figures beside ours."""

import json
import os

import pytest

from conftest import SHARED, write_beir
from irdistill.cli import main
from irdistill.errors import InputError
from irdistill.evaluation.suite import BEIR, PUBLISHED_COLUMN, dataset_name, evaluate_suite, expand, format_suite


def test_expand_and_names():
    assert expand(["a,b", "c"], split="dev") == [("a", "dev"), ("b", "dev"), ("c", "dev")]
    pairs = expand(None, "beir")
    assert len(pairs) == len(BEIR) == 25 and all(split is None for _, split in pairs)
    assert [dataset_name(s) for s in ["beir/cqadupstack/android", "beir/scifact/test", "beir/webis-touche2020/v2",
                                      "beir/arguana", "msmarco-passage/dev/small"]] == [
        "cqadupstack-android", "scifact", "webis-touche2020", "arguana", "msmarco-passage-dev-small"]
    with pytest.raises(InputError, match="no dataset"):
        expand([])
    with pytest.raises(InputError, match="unknown suite"):
        expand(None, "mteb")


def test_toy_suite_with_a_mean_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # indexes/ goes here
    a = write_beir(tmp_path / "scifact")  # a folder named scifact gets the published SciFact figure beside it
    b = write_beir(tmp_path / "toy")
    rows = evaluate_suite(expand([f"{a},{b}"]), "bm25", metrics="ndcg@10,mrr@10", output=str(tmp_path / "runs"),
                          progress=False)
    assert [r["dataset"] for r in rows] == ["scifact", "toy", "mean"]
    assert rows[0]["mrr@10"] == rows[1]["mrr@10"] == 1.0 and rows[2]["queries"] == 6
    assert rows[2]["ndcg@10"] == pytest.approx((rows[0]["ndcg@10"] + rows[1]["ndcg@10"]) / 2)
    assert rows[0][PUBLISHED_COLUMN] == 0.6789 and PUBLISHED_COLUMN not in rows[1] and PUBLISHED_COLUMN not in rows[2]
    assert sorted(os.listdir(tmp_path / "indexes")) == ["scifact", "toy"]
    table = format_suite(rows)
    assert table.splitlines()[0].split() == ["dataset", "queries", "ndcg@10", "mrr@10", *PUBLISHED_COLUMN.split()]
    assert table.splitlines()[-1].split()[0] == "mean"

    # done datasets are read back, not run again
    monkeypatch.setattr("irdistill.evaluation.evaluate.retrieve", lambda *a, **k: pytest.fail("retrieved again"))
    assert evaluate_suite(expand([a, b]), "bm25", metrics="ndcg@10", output=str(tmp_path / "runs"), progress=False)[:2] == [
        {k: v for k, v in r.items() if k != "mrr@10"} for r in rows[:2]]
    stored = json.loads((tmp_path / "runs" / "toy" / "settings.json").read_text())
    assert stored["retriever"] == "bm25" and os.path.exists(tmp_path / "runs" / "toy" / "run.parquet")


def test_mean_counts_cqadupstack_once():
    from irdistill.evaluation.suite import _mean

    rows = [{"dataset": "cqadupstack-android", "m": 0.2}, {"dataset": "cqadupstack-gis", "m": 0.4},
            {"dataset": "scifact", "m": 0.7}]
    assert _mean(rows, "m") == pytest.approx((0.3 + 0.7) / 2)
    assert _mean(rows + [{"dataset": "x"}], "m") is None


def test_cli_several_datasets(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    a, b = write_beir(tmp_path / "one"), write_beir(tmp_path / "two")
    assert main(["evaluate", "--dataset", a, "--dataset", b, "--retriever", "bm25", "--metrics", "ndcg@10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[-3:]] == ["one", "two", "mean"]
    assert os.path.exists(tmp_path / "runs" / "suite-bm25" / "two" / "metrics.json")
    assert main(["evaluate", "--dataset", f"{a},{b}", "--run", "x.trec"]) == 2
    assert main(["evaluate", "--retriever", "bm25"]) == 2  # no dataset


@pytest.mark.slow
def test_scifact_and_cranfield_in_one_command(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "irdistill", "evaluate", "--dataset", os.path.join(SHARED, "scifact"), "--dataset",
           os.path.join(SHARED, "cranfield"), "--retriever", "bm25", "--output", str(tmp_path / "runs")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    table = out[out.index("dataset "):].splitlines()
    assert [line.split()[0] for line in table[2:]] == ["scifact", "cranfield", "mean"]
    scifact, cranfield, mean = (line.split() for line in table[2:])
    assert abs(float(scifact[2]) - 0.6789) < 0.02 and scifact[-1] == "0.6789"  # ours beside pyserini's
    assert float(mean[2]) == pytest.approx((float(scifact[2]) + float(cranfield[2])) / 2, abs=1e-4)


def test_stored_rows_are_keyed_by_content_not_paths(tmp_path, monkeypatch):
    """Issue 32: one input changed at a time; exactly the dataset it belongs to is evaluated again."""
    import irdistill.evaluation.evaluate as evaluate

    monkeypatch.chdir(tmp_path)
    one, two = write_beir(tmp_path / "one"), write_beir(tmp_path / "two")
    suite = lambda: evaluate_suite(expand([one, two]), "bm25", metrics="ndcg@10", output="runs", progress=False)
    first = suite()
    ran = []
    real = evaluate.evaluate_retrieval
    monkeypatch.setattr(evaluate, "evaluate_retrieval", lambda ds, *a, **kw: ran.append(ds.name) or real(ds, *a, **kw))
    assert suite() == first and ran == []  # unchanged: read back

    path = os.path.join(two, "corpus.jsonl")  # d1, the only document q1 matches, loses its words
    lines = open(path).read().splitlines()
    doc = json.loads(lines[0])
    doc["text"] = "nothing in common"
    lines[0] = json.dumps(doc)
    open(path, "w").write("\n".join(lines) + "\n")
    edited = suite()
    assert ran == ["two"] and edited[0] == first[0] and edited[1]["ndcg@10"] < first[1]["ndcg@10"]

    qrels = os.path.join(one, "qrels", "test.tsv")  # replaced: q1's relevant document is now d2
    open(qrels, "w").write("query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td4\t2\nq2\td3\t1\nq3\td6\t1\n")
    ran.clear()
    judged = suite()
    assert ran == ["one"] and judged[0]["ndcg@10"] < first[0]["ndcg@10"] and judged[1] == edited[1]
    ran.clear()
    assert suite() == judged and ran == []
