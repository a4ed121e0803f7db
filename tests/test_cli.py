import json
import os
import subprocess
import sys

from irdistill.cli import main


def test_evaluate_bm25_writes_run_and_metrics(beir_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IRDISTILL_INDEXES", str(tmp_path / "indexes"))
    out = tmp_path / "out"
    code = main(["evaluate", "--dataset", beir_dir, "--retriever", "bm25", "--index", str(tmp_path / "bm25"),
                 "--metrics", "ndcg@10,mrr@10", "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "ndcg@10" in printed and "toy-test-bm25" in printed
    assert sorted(os.listdir(out)) == ["metrics.json", "run.parquet", "run.trec"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metrics"]["mrr@10"] == 1.0 and metrics["queries"] == 3

    # the written run evaluates to the same numbers, and compare reads both formats
    assert main(["evaluate", "--dataset", beir_dir, "--run", str(out / "run.parquet"), "--metrics", "ndcg@10,mrr@10",
                 "--output", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())["metrics"]
    assert again == metrics["metrics"]
    assert main(["compare", str(out / "run.trec"), str(out / "run.parquet"), "--dataset", beir_dir]) == 0
    assert "mrr@10" in capsys.readouterr().out


def test_search_one_query_and_queries_file(beir_dir, tmp_path, capsys):
    assert main(["index", "--dataset", beir_dir, "--index", str(tmp_path / "bm25")]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "bm25"), "--query", "green tea or coffee", "-k", "3"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]  # piped: TREC run lines
    assert [(q, r) for q, _, _, r, _, _ in lines] == [("query", "1"), ("query", "2")]  # only two documents match
    assert {d for _, _, d, _, _, _ in lines} == {"d5", "d6"}
    # for people: rank, score, id, and the title and text the index remembers from its corpus file
    assert main(["search", "--index", str(tmp_path / "bm25"), "--query", "green tea or coffee", "--format", "table"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["rank", "score", "id"] and len(table) == 3
    assert table[1].split()[0] == "1" and "Coffee" in table[1] + table[2]
    assert main(["search", "--index", str(tmp_path / "bm25"), "--query", "coffee", "--format", "json"]) == 0
    hit = json.loads(capsys.readouterr().out.splitlines()[0])
    assert hit["rank"] == 1 and hit["docid"] == "d6" and hit["text"]
    run = tmp_path / "run.trec"
    assert main(["search", "--index", str(tmp_path / "bm25"), "--queries", os.path.join(beir_dir, "queries.jsonl"),
                 "--output", str(run)]) == 0
    # q4 ("an unjudged query") shares no term with any document, so BM25 returns nothing for it
    assert {l.split()[0] for l in run.read_text().splitlines()} == {"q1", "q2", "q3"}


def test_dense_evaluate_with_a_local_model(beir_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["evaluate", "--dataset", beir_dir, "--retriever", "dense", "--model", tiny_model_dir, "--kind", "hnsw",
                 "--index", str(tmp_path / "idx" / "hnsw"), "--output", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["metrics"]["ndcg@10"] > 0
    assert main(["search", "--index", str(tmp_path / "idx" / "hnsw"), "--query", "coffee", "-k", "1"]) == 0


def test_console_script_help():
    for cmd in ["evaluate", "index", "search", "compare", "candidates", "score", "cache", "train"]:
        res = subprocess.run([sys.executable, "-m", "irdistill", cmd, "--help"], capture_output=True, text=True)
        assert res.returncode == 0 and "usage: irdistill " + cmd in res.stdout
