"""The third hostile round (issue 32): damaged cache folders, edge-case qrels and metrics, found by trying the CLI as a
hostile but fair user. Each bad input is one line naming the file or option, exit 2, no traceback."""

import json
import os

import pytest

from irdistill.cache import ScoreCache
from irdistill.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err.strip(), captured.out


def assert_one_line(code, err, *needles):
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("irdistill: error:") and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


@pytest.fixture
def cache(tmp_path):
    c = ScoreCache(tmp_path / "cache")
    c.register("t", {"kind": "test"})
    c.commit("t", ["q1", "q1", "q2"], ["d1", "d2", "d1"], [3.0, 2.0, 1.0], texts={"q1": "a", "q2": "b"})
    return tmp_path / "cache"


# qrels and metrics ------------------------------------------------------------------------------------------------
@pytest.fixture
def run_file(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\n")
    return path


def test_qrels_file_with_only_a_header(capsys, tmp_path, run_file):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n")
    code, err, _ = run_cli(capsys, "compare", run_file, "--qrels", qrels)
    assert_one_line(code, err, str(qrels), "no judgements")


def test_qrels_file_judging_a_pair_twice(capsys, tmp_path, run_file):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\td1\t1\nq1\td1\t2\n")
    code, err, _ = run_cli(capsys, "compare", run_file, "--qrels", qrels)
    assert_one_line(code, err, f"{qrels}:2:", "judged twice")


def test_metric_cutoff_beyond_int64(capsys, tmp_path, run_file):
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1\td1\t1\n")
    code, err, _ = run_cli(capsys, "compare", run_file, "--qrels", qrels, "--metrics", "ndcg@" + "9" * 20)
    assert_one_line(code, err, "ndcg@999", "cutoff must be at most")
    code, err, _ = run_cli(capsys, "compare", run_file, "--qrels", qrels, "--metrics", "ndcg@\u0661\u0660")
    assert_one_line(code, err, "unknown metric")  # Arabic-Indic digits are no cutoff
    code, err, out = run_cli(capsys, "compare", run_file, "--qrels", qrels, "--metrics", f"ndcg@{2**63 - 1}")
    assert code == 0, err
