"""`irdistill adapt` end to end on the toy BEIR folder with a tiny model: every step runs once, a rerun generates,
scores and trains nothing, the cross-encoder student re-ranks, and bad options stop before anything is written."""

import json
import os

from test_bad_cli import assert_one_line

from irdistill.cli import main

FAST = ["--filter", "min_words=1", "--depth", "3", "--set", "examples.negatives=2", "--set", "batch_size=2",
        "--set", "precision=fp32", "-q"]


def adapt(capsys, *argv):
    code = main(["adapt", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def mtimes(folder):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns for d, _, fs in os.walk(folder) for f in fs}


def test_adapt_runs_once_and_a_rerun_redoes_nothing(capsys, beir_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "adapt"
    argv = ["--dataset", beir_dir, "--model", tiny_model_dir, "--generator", "sentence", "--output", out, *FAST]
    code, printed, err = adapt(capsys, *argv)
    assert code == 0, err
    result = json.loads((out / "adapt.json").read_text())
    assert set(result["evaluation"]) == {"bm25", "teacher (re-ranks BM25 top 100)", "zero-shot", "adapted"}
    assert result["teacher"]["weights"] == [0.3, 0.7]
    assert os.path.exists(os.path.join(result["model"], "config.json")) and "adapted" in printed
    queries = [p for p in (out / "queries").iterdir() if p.name != "raw"]
    assert len(queries) == 1 and (queries[0] / "qrels" / "train.tsv").exists()  # pseudo-qrels, not the test labels
    before = {p: t for p, t in mtimes(out).items() if not p.endswith("adapt.json")}
    code, again, err = adapt(capsys, *argv)
    assert code == 0, err
    assert {p: t for p, t in mtimes(out).items() if p in before} == before  # nothing generated, scored or trained
    assert set(mtimes(out)) - set(before) <= {str(out / "adapt.json")}
    assert json.loads((out / "adapt.json").read_text())["evaluation"] == result["evaluation"]


def test_two_generators_mix_and_a_cross_encoder_student_reranks(capsys, beir_dir, tiny_model_dir, tmp_path):
    bert = os.path.join(os.path.dirname(tiny_model_dir), "bert")
    out = tmp_path / "adapt"
    code, printed, err = adapt(capsys, "--dataset", beir_dir, "--model", bert, "--student", "cross-encoder",
                               "--generator", "title", "--generator", "span", "--output", out, *FAST)
    assert code == 0, err
    result = json.loads((out / "adapt.json").read_text())
    assert set(result["evaluation"]) == {"bm25", "teacher (re-ranks BM25 top 100)", "adapted (re-ranks BM25 top 100)"}
    (mixed,) = [p for p in (out / "queries").iterdir() if p.name.startswith("mix-")]
    ids = [json.loads(line)["_id"] for line in open(mixed / "queries.jsonl")]
    assert {i.split(":")[0].split("-")[0] for i in ids} == {"title", "span"} and len(ids) == 12


def test_two_generators_of_one_kind_keep_their_queries_apart(beir_dir, tmp_path):
    from irdistill.adapt import mix
    from irdistill.queries import generate_from_specs

    parts = [generate_from_specs(beir_dir, "span", 1, 6, [], [], str(tmp_path / "q"), seed, progress=False)
             for seed in (0, 1)]
    assert parts[0].id != parts[1].id and parts[0].id.startswith("span")
    mixed = mix(parts, str(tmp_path / "q")).load()
    assert len(mixed.queries) == sum(len(p.queries()) for p in parts) == 12
    assert {q.rsplit(":", 1)[0] for q in mixed.queries} == {p.id for p in parts}


def test_bad_options_stop_before_anything_is_written(capsys, beir_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "adapt"
    for bad, message in [(["--sample", "0"], "--sample must be at least 1"),
                         (["--set", "learning_rate=fast"], "learning_rate"),
                         (["--set", "examples.colour=red"], "examples option"),
                         (["--student", "nope"], "unknown student")]:
        code, _, err = adapt(capsys, "--dataset", beir_dir, "--model", tiny_model_dir, "--output", out, *bad, "-q")
        assert_one_line(code, err, message)
        assert not out.exists()
    code, _, err = adapt(capsys, "--dataset", tmp_path, "--output", out, "-q")
    assert_one_line(code, err, "corpus.jsonl")
    assert not out.exists()


def test_a_cross_encoder_reads_its_logits_at_temperature_one_and_is_not_merged_back_to_its_fresh_head(beir_dir):
    from irdistill.adapt import TRAINING, AdaptConfig
    from irdistill.training.students.cross_encoder import CROSS_ENCODER_LOSS

    bi = AdaptConfig(beir_dir).recipe("t")
    assert bi["loss"] == TRAINING["loss"] and bi["merge_alpha"] == 0.5  # a bi-encoder's cosine / 0.05, WiSE-FT
    ce = AdaptConfig(beir_dir, student="cross-encoder")
    assert ce.recipe("t")["loss"] == CROSS_ENCODER_LOSS and ce.recipe("t")["merge_alpha"] is None
    assert all(t == 1.0 for loss in CROSS_ENCODER_LOSS for k, t in loss.items() if k in ("temperature", "student_temperature"))
    own = [{"name": "margin-mse"}]
    assert AdaptConfig(beir_dir, student="cross-encoder", training={"loss": own}).recipe("t")["loss"] == own
