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


# damaged cache folders --------------------------------------------------------------------------------------------
def test_cache_index_file_that_is_a_folder(capsys, cache, tmp_path):
    index = cache / "teacher=t" / ".qids.jsonl"
    index.unlink()
    index.mkdir()
    for action in ("list", "compact", "export-trec"):
        code, err, _ = run_cli(capsys, "cache", action, "--cache", cache, "--teacher", "t", "--output", tmp_path / "o.trec")
        assert_one_line(code, err, str(index), "a folder where")
    assert not (tmp_path / "o.trec").exists()


def test_cache_lock_file_that_is_a_folder_or_a_link(capsys, cache):
    lock = cache / "teacher=t" / ".lock"
    lock.unlink()
    lock.mkdir()
    code, err, _ = run_cli(capsys, "cache", "compact", "--cache", cache, "--teacher", "t")
    assert_one_line(code, err, str(lock), "a folder where a lock file belongs")
    lock.rmdir()
    lock.symlink_to(cache / "elsewhere")
    code, err, _ = run_cli(capsys, "cache", "compact", "--cache", cache, "--teacher", "t")
    assert_one_line(code, err, str(lock), "cannot open this lock file")
    assert not (cache / "elsewhere").exists()


def test_damaged_text_hashes_in_the_index_are_not_a_changed_query(cache):
    folder = cache / "teacher=t"
    lines = [json.loads(x) for x in (folder / ".qids.jsonl").read_text().splitlines()]
    for rec in lines:
        rec["texts"] = [1] * len(rec["qids"])
    (folder / ".qids.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    ScoreCache(cache).check_texts("t", {"q1": "a", "q2": "b"})  # no InputError: the hashes are unreadable, not other


@pytest.mark.parametrize("damage", ["meta-binary", "meta-list", "meta-folder", "part-folder", "part-no-columns"])
def test_verify_reports_what_list_and_export_refuse(capsys, cache, damage):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = cache / "teacher=t"
    if damage == "meta-binary":
        (folder / "_teacher.json").write_bytes(b"\x9b\xff\x00")
    elif damage == "meta-list":
        (folder / "_teacher.json").write_text("[1, 2]")
    elif damage == "meta-folder":
        (folder / "_teacher.json").unlink()
        (folder / "_teacher.json").mkdir()
    elif damage == "part-folder":
        (folder / "part-x.parquet").mkdir()
    else:
        pq.write_table(pa.table({"a": [1]}), folder / "part-x.parquet")
    code, err, out = run_cli(capsys, "cache", "verify", "--cache", cache)
    assert_one_line(code, err, str(cache), "the cache has problems")
    assert "unreadable" in out and "\tok" not in out, out


# card: metrics.json and README.md ---------------------------------------------------------------------------------
@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# m\n")
    return folder


def metrics_json(tmp_path, **fields):
    """A metrics.json measured with the model in ``tmp_path/model`` (a card takes only its own model's results)."""
    from irdistill.models import fingerprint

    r = {"run": "r", "dataset": "toy", "split": "test", "metrics": {"ndcg@10": 0.5}, "retriever": "dense",
         "model": "m", "weights": fingerprint(str(tmp_path / "model")), **fields}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(r, allow_nan=True))
    return path


@pytest.mark.parametrize("fields,words", [
    ({"split": ["a"]}, "split must be one line of text"),
    ({"run": {"a": 1}}, "run must be one line of text"),
    ({"run": "r\n## injected"}, "run must be one line of text"),
    ({"dataset": ""}, "dataset must be one line of text"),
    ({"metrics": {}}, "no metrics"),
    ({"metrics": {"ndcg@10": float("nan")}}, "must be a finite number"),
    ({"metrics": {"ndcg@10": float("inf")}}, "must be a finite number"),
    ({"metrics": {"ndcg@10": True}}, "must be a finite number"),
    ({"metrics": {"ndcg@10": 10**400}}, "must be a finite number"),
])
def test_card_refuses_a_metrics_json_the_card_cannot_hold(capsys, tmp_path, model_dir, fields, words):
    before = (model_dir / "README.md").read_text()
    code, err, _ = run_cli(capsys, "card", metrics_json(tmp_path, **fields), "--model", model_dir)
    assert_one_line(code, err, str(tmp_path / "metrics.json"), words)
    assert (model_dir / "README.md").read_text() == before


@pytest.mark.parametrize("card", [b"---\nlicense: [unclosed\n---\n# m\n", b"\x85\xff\x00 not text"])
def test_card_with_a_damaged_readme(capsys, tmp_path, model_dir, card):
    (model_dir / "README.md").write_bytes(card)
    code, err, _ = run_cli(capsys, "card", metrics_json(tmp_path), "--model", model_dir)
    assert_one_line(code, err, str(model_dir / "README.md"), "model card")
    assert (model_dir / "README.md").read_bytes() == card


def test_card_table_escapes_pipes(capsys, tmp_path, model_dir):
    code, err, _ = run_cli(capsys, "card", metrics_json(tmp_path, dataset="a|b", run="r|x"), "--model", model_dir)
    assert code == 0, err
    row = next(x for x in (model_dir / "README.md").read_text().splitlines() if x.startswith("| a"))
    assert row.startswith("| a\\|b | test | `r\\|x` |"), row


# Margin-MSE teacher files and Lucene indexes ----------------------------------------------------------------------
def test_margin_mse_file_with_two_scores_for_one_pair(capsys, tmp_path):
    path = tmp_path / "teacher.tsv"
    path.write_text("1.0\t0.5\tq1\td1\td2\n1.0\t0.5\tq1\td1\td3\n2.0\t0.5\tq1\td1\td4\n")
    code, err, _ = run_cli(capsys, "cache", "import-margin-mse", "--cache", tmp_path / "cache", "--teacher", "t",
                           "--input", path)
    assert_one_line(code, err, f"{path}:3:", "has two scores")
    assert not (tmp_path / "cache").exists()


def test_damaged_lucene_index(capsys, beir_dir, tmp_path):
    index = tmp_path / "index"
    assert main(["index", "--dataset", beir_dir, "--index", str(index)]) == 0
    for name in os.listdir(index):
        if name.startswith("segments"):
            os.remove(index / name)
    for argv in (["search", "--index", index, "--query", "cats"], ["index", "--dataset", beir_dir, "--index", index]):
        code, err, _ = run_cli(capsys, *argv)
        assert_one_line(code, err, str(index), "not a readable Lucene index", "--rebuild")
    assert main(["index", "--dataset", beir_dir, "--index", str(index), "--rebuild"]) == 0
    assert main(["search", "--index", str(index), "--query", "cats"]) == 0


# model folders that hold no model, report and generate-queries leftovers ------------------------------------------
@pytest.mark.parametrize("damage", ["no-config", "bad-st-config", "st-config-list"])
def test_merge_and_score_with_a_folder_that_is_no_model(capsys, beir_dir, tmp_path, damage):
    model = tmp_path / "model"
    model.mkdir()
    (model / "README.md").write_text("# not a model\n")
    if damage == "bad-st-config":
        (model / "config_sentence_transformers.json").write_text("{bad")
    elif damage == "st-config-list":
        (model / "config_sentence_transformers.json").write_text("[1]")
    code, err, _ = run_cli(capsys, "merge", "--base", model, "--model", model, "--alpha", "0.5", "--output",
                           tmp_path / "out")
    assert_one_line(code, err, str(model), "cannot load a model" if damage == "no-config" else "sentence-transformers config")
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    code, err, _ = run_cli(capsys, "score", "--teacher", f"cross-encoder:{model}", "--run", run, "--dataset", beir_dir,
                           "--cache", tmp_path / "cache")
    assert_one_line(code, err, str(model))
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("extra,named", [(["--cache", "CACHE", "--teacher", "nope"], "teacher 'nope'"),
                                         (["--training", "NOPE"], "no loss.jsonl")])
def test_a_failed_report_leaves_no_folder(capsys, beir_dir, tmp_path, run_file, cache, extra, named):
    extra = [str(cache) if a == "CACHE" else str(tmp_path / "nope") if a == "NOPE" else a for a in extra]
    out = tmp_path / "a" / "b" / "report"
    code, err, _ = run_cli(capsys, "report", run_file, "--dataset", beir_dir, "--output", out, *extra)
    assert_one_line(code, err, named)
    assert not (tmp_path / "a").exists()
    out.mkdir(parents=True)
    (out / "mine.txt").write_text("kept")
    code, err, _ = run_cli(capsys, "report", run_file, "--dataset", beir_dir, "--output", out, *extra)
    assert_one_line(code, err, named)
    assert os.listdir(out) == ["mine.txt"]


def test_generate_queries_with_a_huge_per_passage(capsys, beir_dir, tmp_path):
    code, err, _ = run_cli(capsys, "generate-queries", "--dataset", beir_dir, "--generator", "title", "--output",
                           tmp_path / "gen", "--per-passage", "9" * 20)
    assert_one_line(code, err, "--per-passage must be at most")
    assert not (tmp_path / "gen").exists()
