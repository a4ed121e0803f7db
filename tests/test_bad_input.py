"""Bad input: one line naming the file (and line), exit code 2, no traceback, nothing half-written."""

import json
import os

import pytest

from irdistill.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def evaluate(beir_dir, out, *extra):
    return ("evaluate", "--dataset", beir_dir, "--split", "test", "--retriever", "bm25", "--output", str(out), *extra)


def assert_one_line(code, err, *needles):
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_missing_dataset_folder(capsys, tmp_path):
    code, err = run_cli(capsys, *evaluate(str(tmp_path / "nope"), tmp_path / "out"))
    assert_one_line(code, err, "nope", "no such folder")
    assert not (tmp_path / "out").exists()


def test_malformed_jsonl_line(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "corpus.jsonl")
    lines = open(path).read().splitlines()
    lines[2] = '{"_id": "d3", "title": "broken'
    open(path, "w").write("\n".join(lines) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:3:", "malformed JSON")
    assert not (tmp_path / "out").exists()


def test_missing_field(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "queries.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"_id": "q9"}) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:5:", "text")


def test_empty_query_text(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "queries.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"_id": "q9", "text": "  "}) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:5:", "no text")


def test_wrong_tsv_columns(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "qrels", "test.tsv")
    with open(path, "a") as f:
        f.write("q1\td2\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:6:", "expected 3 columns, found 2")


@pytest.mark.parametrize("row,what", [("qX\td1\t1", "unknown query id 'qX'"), ("q1\tdX\t1", "unknown document id 'dX'")])
def test_qrels_unknown_ids(capsys, beir_dir, tmp_path, row, what):
    path = os.path.join(beir_dir, "qrels", "test.tsv")
    with open(path, "a") as f:
        f.write(row + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:6:", what)


def test_empty_corpus(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "corpus.jsonl")
    open(path, "w").close()
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, path, "empty")


def test_unknown_metric(capsys, beir_dir, tmp_path):
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out", "--metrics", "ndcg@10,bleu@4"))
    assert_one_line(code, err, "unknown metric 'bleu@4'")
    assert not (tmp_path / "out").exists()


def test_malformed_run_file(capsys, beir_dir, tmp_path):
    run = tmp_path / "bad.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\nq1 Q0 d2 2 high x\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out", "--run", str(run)))
    assert_one_line(code, err, f"{run}:2:", "score 'high'")
    assert not (tmp_path / "out").exists()


def test_missing_run_file(capsys, tmp_path, beir_dir):
    code, err = run_cli(capsys, "compare", str(tmp_path / "none.trec"), "--dataset", beir_dir)
    assert_one_line(code, err, "none.trec", "no such file")


def test_wrong_parquet_schema(capsys, tmp_path, beir_dir):
    import pandas as pd

    path = tmp_path / "run.parquet"
    pd.DataFrame({"query": ["q1"], "doc": ["d1"]}).to_parquet(path)
    code, err = run_cli(capsys, "compare", str(path), "--dataset", beir_dir)
    assert_one_line(code, err, str(path), "missing column(s) qid, docid, score")


def test_duplicate_document_id(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "corpus.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"_id": "d1", "title": "", "text": "again"}) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, path, "duplicate document id 'd1'")


def test_unknown_teacher_kind(capsys, beir_dir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", "oracle:gpt", "--run", str(run), "--dataset", beir_dir,
                        "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, "unknown teacher kind 'oracle'")
    assert not (tmp_path / "cache").exists()


def test_run_naming_unknown_document(capsys, beir_dir, tmp_path, tiny_model_dir):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 nosuchdoc 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", f"bi-encoder:{tiny_model_dir}", "--run", str(run),
                        "--dataset", beir_dir, "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, "nosuchdoc")
    assert not list((tmp_path / "cache").glob("*/part-*"))


def test_malformed_teacher_yaml(capsys, beir_dir, tmp_path):
    spec = tmp_path / "teacher.yaml"
    spec.write_text("kind: ensemble\nmembers: [\n")
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", str(spec), "--run", str(run), "--dataset", beir_dir,
                        "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, str(spec), "malformed teacher file")


def test_bad_training_config(capsys, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("output: x\ndataset: y\ncache: z\nexamples: {teacher: t}\nepochz: 3\n")
    code, err = run_cli(capsys, "train", "--config", str(cfg))
    assert_one_line(code, err, str(cfg), "unknown training option(s): epochz")
