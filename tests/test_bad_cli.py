"""Bad command lines, configs, models and endpoints (issue 14): one line naming the file and line (or the option),
exit 2, no traceback, nothing written. The bad files themselves are in test_bad_input.py."""

import os
import subprocess
import sys

import pytest

from irdistill.cli import main
from irdistill.errors import InputError


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def assert_one_line(code, err, *needles):
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


@pytest.mark.parametrize("k", ["0", "-5"])
def test_k_below_one(capsys, beir_dir, tmp_path, k):
    code, err = run_cli(capsys, "evaluate", "--dataset", beir_dir, "-k", k, "--output", tmp_path / "out")
    assert_one_line(code, err, "-k must be at least 1")
    assert not (tmp_path / "out").exists()


def test_model_folder_that_does_not_exist(capsys, beir_dir, tmp_path):
    code, err = run_cli(capsys, "evaluate", "--dataset", beir_dir, "--retriever", "dense", "--model",
                        tmp_path / "nope", "--output", tmp_path / "out")
    assert_one_line(code, err, str(tmp_path / "nope"), "no such model folder")
    assert not (tmp_path / "out").exists()


def test_unknown_hub_model_offline(capsys, beir_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = run_cli(capsys, "evaluate", "--dataset", beir_dir, "--retriever", "dense", "--model",
                        "nobody/no-such-model", "--output", tmp_path / "out")
    assert_one_line(code, err, "nobody/no-such-model", "HF_HUB_OFFLINE")


def training_config(tmp_path, beir_dir, text):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"output: {tmp_path / 'model'}\ndataset: {beir_dir}\ncache: {tmp_path / 'cache'}\n"
                   f"examples: {{teacher: t, negatives: 3}}\n{text}")
    return cfg


@pytest.mark.parametrize("text,line,words", [
    ("batch_size: sixteen\n", 5, "option batch_size must be int"),
    ("batch_size: -4\n", 5, "option batch_size must be at least 1"),
    ("learning_rate: fast\n", 5, "option learning_rate must be float or int"),
    ("epochs: 0\n", 5, "option epochs must be above 0"),
    ("loss: bleu\n", None, "unknown loss 'bleu'"),
    ("loss: [{name: infonce}, {name: nope}]\n", None, "unknown loss 'nope'"),
    ("student: splat\n", None, "unknown student 'splat'"),
    ("precision: fp8\n", None, "precision must be one of"),
    ("dev_fraction: 1.5\n", 5, "dev_fraction must be below 1"),
], ids=lambda v: v if isinstance(v, str) and ":" in v else None)
def test_bad_training_options(capsys, beir_dir, tmp_path, text, line, words):
    cfg = training_config(tmp_path, beir_dir, text)
    code, err = run_cli(capsys, "train", "--config", cfg)
    assert_one_line(code, err, f"{cfg}:{line}:" if line else str(cfg), words)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("text,words", [("negatives: -2", "examples.negatives must be at least 1"),
                                        ("remove_query: 1.5", "examples.remove_query must be at most 1"),
                                        ("remove_query: -0.1", "examples.remove_query must be at least 0")])
def test_bad_examples_option_names_its_line(capsys, beir_dir, tmp_path, text, words):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"output: {tmp_path / 'model'}\ndataset: {beir_dir}\ncache: c\nexamples:\n  teacher: t\n"
                   f"  {text}\n")
    code, err = run_cli(capsys, "train", "--config", cfg)
    assert_one_line(code, err, f"{cfg}:6:", words)


@pytest.mark.parametrize("text,words", [("- a\n- b\n", "not a list"), ("", "needs examples"),
                                        ("output: [x\n", "malformed YAML")])
def test_training_yaml_that_is_not_a_config(capsys, tmp_path, text, words):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(text)
    code, err = run_cli(capsys, "train", "--config", cfg)
    assert_one_line(code, err, str(cfg), words)


def test_search_into_a_closed_pipe_is_quiet(beir_dir, tmp_path):
    assert main(["index", "--dataset", beir_dir, "--index", str(tmp_path / "bm25")]) == 0
    queries = tmp_path / "q.tsv"
    queries.write_text("".join(f"q{i}\tcoffee tea cats dogs language\n" for i in range(3000)))
    cmd = f"{sys.executable} -m irdistill search --index {tmp_path / 'bm25'} --queries {queries} -k 5 | head -n 2"
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert len(res.stdout.splitlines()) == 2 and "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr


# LLM endpoints: credentials only where they belong ------------------------------------------------------------------
def test_endpoint_credentials_stay_with_their_endpoint(monkeypatch):
    from irdistill.models.llm import OpenAIEndpoint

    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    local = OpenAIEndpoint("http://127.0.0.1:8000/v1", "m")
    assert "Authorization" not in local.headers  # the environment's OpenAI key is for OpenAI only
    assert OpenAIEndpoint("https://api.openai.com/v1", "m").headers["Authorization"] == "Bearer sk-secret"
    with pytest.raises(InputError, match="plain http"):
        OpenAIEndpoint("http://llm.example.org/v1", "m", api_key="k")
    assert OpenAIEndpoint("http://llm.example.org/v1", "m", api_key="k", allow_insecure=True).headers["Authorization"]
    hidden = OpenAIEndpoint("https://bob:hunter2@llm.example.org/v1", "m")
    assert hidden.base_url == "https://llm.example.org/v1" and "hunter2" not in str(hidden.describe())
    assert hidden.headers["Authorization"].startswith("Basic ")


def test_a_failed_endpoint_leaves_no_teacher_behind(capsys, beir_dir, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", "llm-pointwise:m", "--option",
                        f"endpoint=http://user:secret@127.0.0.1:{port}/v1", "--run", run, "--dataset", beir_dir,
                        "--cache", tmp_path / "cache")
    assert_one_line(code, err, "LLM endpoint", "failed")
    assert "secret" not in err
    assert not [f for f in os.listdir(tmp_path / "cache") if f.startswith("teacher=")]


# numbers, enums, YAML values and environment variables (issue 32) ---------------------------------------------------
@pytest.mark.parametrize("argv,words", [
    (["index", "--dataset", "{beir}", "--workers", "0"], "--workers must be at least 1, not 0"),
    (["index", "--dataset", "{beir}", "--shards", "-2"], "--shards must be at least 1, not -2"),
    (["evaluate", "--dataset", "{beir}", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["evaluate", "--dataset", "{beir}", "-k", "ten"], "-k/--k must be a whole number, not 'ten'"),
    (["evaluate", "--dataset", "{beir}", "--retriever", "grep"], "--retriever: invalid choice: 'grep'"),
    (["candidates", "--dataset", "{beir}", "--output", "{tmp}/c.trec", "--sample-queries", "0"], "--sample-queries"),
    (["score", "--teacher", "bm25", "--run", "{tmp}/r.trec", "--dataset", "{beir}", "--cache", "{tmp}/c",
      "--flush", "0"], "--flush must be at least 1"),
    (["cache", "export-margin-mse", "--cache", "{tmp}", "--teacher", "t", "--max-negatives=-1"], "--max-negatives"),
    (["generate-queries", "--dataset", "{beir}", "--generator", "title", "--output", "{tmp}/g", "--per-passage",
      "0"], "--per-passage must be at least 1"),
    (["generate-queries", "--dataset", "{beir}", "--generator", "title", "--output", "{tmp}/g", "--seed=-1"],
     "--seed must be at least 0"),
    (["adapt", "--dataset", "{beir}", "--output", "{tmp}/a", "--depth", "0"], "--depth must be at least 1"),
    (["train", "--config", "{tmp}/t.yaml", "--crossfit", "0"], "--crossfit must be at least 2, not 0"),
    (["merge", "--base", "a", "--model", "b", "--output", "{tmp}/m", "--alpha", "nan"], "--alpha must be a finite"),
    (["compare", "{tmp}/r.trec", "--dataset", "{beir}", "--max-p", "nan"], "--max-p must be a finite number"),
    (["compare", "{tmp}/r.trec", "--dataset", "{beir}", "--max-p=-1"], "--max-p must be above 0"),
    (["compare", "{tmp}/r.trec", "--dataset", "{beir}", "--max-p", "1"], "--max-p must be below 1"),
    (["compare", "{tmp}/r.trec", "--dataset", "{beir}", "--metrics", "ndcg@ten"], "unknown metric 'ndcg@ten'"),
    (["evaluate", "--dataset", "{beir}", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["cache", "import-margin-mse", "--cache", "{tmp}/c", "--teacher", "t"], "cache import-margin-mse needs --input"),
    (["cache", "verify", "--cache", "{tmp}/c"], "no such cache folder"),
], ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else None)
def test_bad_number_or_choice_is_one_line(capsys, beir_dir, tmp_path, argv, words):
    (tmp_path / "r.trec").write_text("q1 Q0 d1 1 0.5 x\n")
    before = sorted(os.listdir(tmp_path))
    code, err = run_cli(capsys, *[a.format(beir=beir_dir, tmp=tmp_path) for a in argv])
    assert_one_line(code, err, words)
    assert sorted(os.listdir(tmp_path)) == before


def test_bm25_takes_a_huge_k_and_a_long_query(capsys, beir_dir, tmp_path):
    """k beyond a Java int is clamped to the index's documents; a 3000-word query gets past Lucene's 1024 clauses."""
    assert main(["index", "--dataset", beir_dir, "--index", str(tmp_path / "bm25")]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "bm25"), "--query", "roasted coffee", "-k", "100000000000"]) == 0
    hits = [line.split() for line in capsys.readouterr().out.splitlines()]  # piped: TREC run lines
    assert hits[0][2] == "d6" and len(hits) <= 6
    words = " ".join(f"word{i}" for i in range(3000))
    assert main(["search", "--index", str(tmp_path / "bm25"), "--query", f"{words} roasted coffee seeds", "-k", "3"]) == 0
    hits = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [h[2] for h in hits] == ["d6"]  # the only document with any of the words


@pytest.mark.parametrize("content,words", [(b"{kind: bm25", "not JSON"), (b"[1, 2]", "a JSON object with a 'kind'"),
                                           (b'{"kind": ["bm25"]}', "a JSON object with a 'kind'"),
                                           (b'{"kind": "grep"}', "unknown index kind 'grep'"),
                                           (b'{"kind": "dense"}', "names its model"), (b"\xff\xfe", "UnicodeDecodeError")])
def test_index_meta_json_that_is_not_an_object(capsys, tmp_path, content, words):
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "meta.json").write_bytes(content)
    code, err = run_cli(capsys, "search", "--index", tmp_path / "index", "--query", "x")
    assert_one_line(code, err, str(tmp_path / "index" / "meta.json"), words)


def test_ir_datasets_id_not_cached_and_no_network(tmp_path):
    """An empty $IR_DATASETS_HOME and no network (requests fails at once): one line saying what to do instead."""
    code = ("import requests, sys\n"
            "def offline(*a, **k): raise requests.exceptions.ConnectionError('no network')\n"
            "requests.get = offline\n"
            "from irdistill.cli import main\n"
            f"sys.exit(main(['evaluate', '--dataset', 'beir/scifact/test', '--output', {str(tmp_path / 'out')!r}]))")
    env = {**os.environ, "IR_DATASETS_HOME": str(tmp_path / "irds")}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert_one_line(res.returncode, res.stderr.strip(), "'beir/scifact/test' is not in the local ir_datasets cache",
                    str(tmp_path / "irds"), "give a BEIR folder")
    assert not (tmp_path / "out").exists()


TEACHERS = [("kind: [bm25]\n", "unknown teacher kind ['bm25']"), ("kind: {x: 1}\n", "unknown teacher kind {'x': 1}"),
            ("kind: ensemble\nmembers: 5\nweights: [1]\n", "option members must be list, not 5"),
            ("kind: ensemble\nmembers: [bm25, bm25]\nweights: [a, 1]\n", "an ensemble weight must be a number"),
            ("kind: ensemble\nmembers: [bm25, bm25]\nweights: [1]\n", "one number a member"),
            ("kind: bm25\nk1: .nan\n", "option k1 must be a finite number"),
            ("kind: bm25\n1: 2\n", "teacher option names are text, not 1")]


@pytest.mark.parametrize("text,words", TEACHERS, ids=[t for t, _ in TEACHERS])
def test_bad_teacher_file_names_the_file(capsys, beir_dir, tmp_path, text, words):
    spec = tmp_path / "teacher.yaml"
    spec.write_text(text)
    score_with(capsys, beir_dir, tmp_path, spec, [str(spec), words])


def test_teacher_file_that_is_binary_or_a_folder(capsys, beir_dir, tmp_path):
    spec = tmp_path / "teacher.yaml"
    spec.write_bytes(b"kind: bm25\nk1: \xff\n")
    score_with(capsys, beir_dir, tmp_path, spec, [str(spec), "not UTF-8"])
    spec.unlink()
    spec.mkdir()
    score_with(capsys, beir_dir, tmp_path, spec, [str(spec), "not a file"])


@pytest.mark.parametrize("option,words", [("k1=abc", "--option k1 must be float or int, not 'abc'"),
                                          ("b=2", "--option b must be at most 1"), ("depth=[", "not YAML"),
                                          ("k2=1", "--option k2: teacher bm25 has no such option")])
def test_bad_teacher_option_names_it(capsys, beir_dir, tmp_path, option, words):
    score_with(capsys, beir_dir, tmp_path, "bm25", [words], ["--option", option])


def score_with(capsys, beir_dir, tmp_path, teacher, words, options=()):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", teacher, "--run", run, "--dataset", beir_dir,
                        "--cache", tmp_path / "cache", *options)
    assert_one_line(code, err, *words)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("text,line,words", [
    ("1: 2\n", None, "option names are text, not 1"), ("null: 1\n", None, "option names are text, not None"),
    ("learning_rate: .nan\n", 5, "option learning_rate must be a finite number, not nan"),
    ("epochs: -1\n", 5, "option epochs must be above 0"), ("loss: [5]\n", 5, "a loss is a name"),
    ("lora: {1: 2}\n", None, "(in lora)"), ("seed: 99999999999\n", 5, "option seed must be at most 4294967295"),
    ("extra: {nope: 1}\n", 5, "'nope' is not one of the trainer's TrainingArguments"),
    ("fold: 3/2\n", 5, "option fold must look like 0/4"),
], ids=lambda v: v if isinstance(v, str) and ":" in v else None)
def test_any_yaml_value_in_a_training_config(capsys, beir_dir, tmp_path, text, line, words):
    cfg = training_config(tmp_path, beir_dir, text)
    code, err = run_cli(capsys, "train", "--config", cfg)
    assert_one_line(code, err, f"{cfg}:{line}:" if line else str(cfg), words)
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("env,words", [({"WORLD_SIZE": "0"}, "environment variable WORLD_SIZE must be at least 1"),
                                       ({"RANK": "abc"}, "environment variable RANK must be a whole number"),
                                       ({"RANK": "3", "WORLD_SIZE": "2"}, "RANK=3 must be below WORLD_SIZE=2"),
                                       ({"LOCAL_RANK": "-1"}, "environment variable LOCAL_RANK must be at least 0")])
def test_bad_torchrun_variables_name_the_variable(capsys, beir_dir, tmp_path, monkeypatch, env, words):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    score_with(capsys, beir_dir, tmp_path, "bm25", [words])
