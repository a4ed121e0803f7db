import pytest

from irdistill.data import load_dataset, run_from_dict
from irdistill.evaluation import compare_runs, evaluate_run, parse_metrics
from irdistill.index import open_index


def test_bm25_finds_the_obvious_documents(beir_dir, tmp_path):
    ds = load_dataset(beir_dir)
    index = open_index(ds, "bm25", index=str(tmp_path / "bm25"))
    run = index.search(ds.queries, k=3)
    top = run[run["rank"] == 1].set_index("qid")["docid"].to_dict()
    assert top == {"q1": "d1", "q2": "d4", "q3": "d6"}
    assert index.meta["key"]["corpus"] == ds.corpus.fingerprint()
    # stemming and stopwords of Anserini's English analyzer: "purrs" matches "purr", "which" is ignored
    assert evaluate_run(ds.qrels, run, "mrr@10")["mrr@10"] == 1.0


def test_metrics_against_hand_computed_values():
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}}
    run = run_from_dict({"q1": {"b": 3.0, "x": 2.0, "a": 1.0}, "q2": {"x": 1.0}})
    m = evaluate_run(qrels, run, "ndcg@3,recall@2,mrr@10,precision@1")
    import math

    dcg = 1 / math.log2(2) + 2 / math.log2(4)  # b (gain 1) at rank 1, a (gain 2) at rank 3
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@3"] == pytest.approx((dcg / idcg + 0) / 2)
    assert m["recall@2"] == pytest.approx((0.5 + 0) / 2)
    assert m["mrr@10"] == pytest.approx(0.5) and m["precision@1"] == pytest.approx(0.5)


def test_judged_query_missing_from_run_scores_zero():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    assert evaluate_run(qrels, run_from_dict({"q1": {"a": 1.0}}), "ndcg@10")["ndcg@10"] == pytest.approx(0.5)


def test_parse_metrics():
    assert parse_metrics("nDCG@10, recall@100") == ["ndcg@10", "recall@100"]
    for bad in ["ndcg@0", "foo", "recall@x", ""]:
        with pytest.raises(ValueError):
            parse_metrics(bad)


def test_compare_runs_marks_significance():
    qrels = {f"q{i}": {"a": 1} for i in range(30)}
    good = run_from_dict({f"q{i}": {"a": 2.0, "b": 1.0} for i in range(30)})
    bad = run_from_dict({f"q{i}": {"a": 1.0, "b": 2.0} for i in range(30)})
    report = compare_runs(qrels, {"good": good, "bad": bad}, "mrr@10")
    assert report.results["good"]["mrr@10"] == 1.0 and report.results["bad"]["mrr@10"] == 0.5
    assert "good" in str(report) and "ᵇ" in str(report)  # "good" is marked as significantly better than run b


def test_numpy_linear_algebra_works_after_the_jvm_starts():
    """The JVM starts on the main thread and put its stack guard pages 1 MB down it: any np.linalg.solve after BM25
    then crashed the process (adapt with aligned embeddings segfaulted). A fresh process, as the JVM starts once."""
    import subprocess
    import sys

    code = ("from irdistill.index.java import start_jvm; start_jvm(10**7); import numpy as np; "
            "x = np.random.default_rng(0).normal(size=(400, 385)); "
            "print(np.linalg.solve(x.T @ x, x.T @ np.ones((400, 384))).shape)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "(385, 384)" in out.stdout, (out.returncode, out.stderr[-1000:])
