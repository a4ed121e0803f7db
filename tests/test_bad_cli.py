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
