"""LLM teachers: permutation parsing and sliding windows (fake backends), then the packaged SmolLM2-135M-Instruct
in-process and behind a real OpenAI-compatible server (llama.cpp's llama-server) on loopback."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset, write_run
from irdistill.teachers import build_teacher, score_run
from irdistill.teachers.llm import ListwiseLLMTeacher, PointwiseLLMTeacher, parse_permutation


@pytest.mark.parametrize("text,order", [
    ("[2] > [3] > [1]", [1, 2, 0]),
    ("[2] > [2] > [1]", [1, 0, 2]),          # repeat dropped, missing appended
    ("3, 9, 1", [2, 0, 1]),                  # out of range dropped
    ("I cannot rank these.", [0, 1, 2]),     # junk: original order
    ("", [0, 1, 2]),
])
def test_parse_permutation(text, order):
    assert parse_permutation(text, 3) == order


class SortingLM:
    """A fake backend that ranks the numbered passages of the last window by their length (longest first)."""

    def __init__(self):
        self.windows = []

    def describe(self):
        return {"backend": "fake"}

    def generate(self, chats, max_tokens=200):
        out = []
        for chat in chats:
            passages = [m["content"] for m in chat if m["role"] == "user" and m["content"].startswith("[")]
            self.windows.append(len(passages))
            order = sorted(range(len(passages)), key=lambda i: -len(passages[i]))
            out.append(" > ".join(f"[{i + 1}]" for i in order))
        return out

    def label_logprobs(self, chats, labels, batch_size=8):
        yes = np.array([np.log(0.9) if "cat" in c[-1]["content"].split("Passage:")[1] else np.log(0.2) for c in chats])
        return np.stack([yes, np.log1p(-np.exp(yes))], 1)


def test_listwise_sliding_windows_sort_the_whole_list():
    passages = ["x" * n for n in [3, 9, 1, 12, 5, 7, 2, 11, 4, 8]]
    lm = SortingLM()
    teacher = ListwiseLLMTeacher(lm, window=4, step=2)
    (scores,) = teacher.score_lists([("q", passages)])
    assert lm.windows == [4, 4, 4, 4]  # windows [6:10], [4:8], [2:6], [0:4]
    top = np.argsort(-scores)[:3]
    assert [len(passages[i]) for i in top] == [12, 11, 9]  # the best passages bubble up to the top
    assert sorted(scores.tolist()) == list(range(1, 11))


def test_pointwise_log_odds():
    teacher = PointwiseLLMTeacher(SortingLM())
    s = teacher.score_pairs(["q", "q"], ["a cat", "a dog"])
    np.testing.assert_allclose(s, [np.log(0.9 / 0.1), np.log(0.2 / 0.8)], rtol=1e-5)
    assert teacher.id != PointwiseLLMTeacher(SortingLM(), template="{query} {passage}?").id


# --- the real packaged model -----------------------------------------------------------------------------------

SMOLLM = "smollm2-135m-instruct-gguf"


@pytest.fixture(scope="module")
def slice_(tmp_path_factory):
    """Three SciFact test queries with their BM25 top 4, as a run file."""
    from conftest import SHARED

    from irdistill.index import open_index

    ds = load_dataset(os.path.join(SHARED, "scifact"), "test")
    ds.queries = dict(list(ds.queries.items())[:3])
    work = tmp_path_factory.mktemp("llm")
    run = open_index(ds, "bm25", index=str(work / "bm25")).search(ds.queries, 4)
    write_run(run, work / "run.parquet")
    return ds, run, work


@pytest.mark.slow
def test_in_process_pointwise_and_listwise(slice_):
    from irdistill.teachers.llm import TransformersLM

    ds, run, work = slice_
    backend = TransformersLM(SMOLLM)
    assert backend.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    cache = ScoreCache(work / "cache-inproc")
    for teacher in [PointwiseLLMTeacher(backend), ListwiseLLMTeacher(backend, window=4, step=2, max_words=40)]:
        stats = score_run(teacher, run, ds, cache, progress=False)
        assert stats.pairs == 12
        scores = cache.read(stats.key)
        assert len(scores) == 12 and np.isfinite(scores.score).all()
    listwise = cache.read(stats.key)
    assert sorted(listwise[listwise.qid == run.qid.iloc[0]].score) == [1, 2, 3, 4]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# llama.cpp's own C++ server (llama-server), from the prebuilt xllamacpp wheel: it listens once Server() returns
_SERVE = """import sys, threading, xllamacpp
p = xllamacpp.CommonParams()
p.model.path, p.hostnames, p.port, p.n_ctx = sys.argv[1], ["127.0.0.1"], int(sys.argv[2]), 4096
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = 2
server = xllamacpp.Server(p)
threading.Event().wait()
"""


@pytest.fixture(scope="module")
def llama_server():
    """llama.cpp's OpenAI-compatible server (llama-server through xllamacpp) serving SmolLM2 on a free loopback port,
    in its own process."""
    pytest.importorskip("xllamacpp")
    from irdistill.models import packaged_path

    folder = packaged_path(SMOLLM)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, os.path.join(folder, "SmolLM2-135M-Instruct.Q4_1.gguf"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(base + "/models", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError("llama.cpp server did not start")
            time.sleep(0.2)
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["llm-pointwise", "llm-listwise"])
def test_http_teachers_through_the_cli(slice_, llama_server, kind):
    from conftest import SHARED

    ds, run, work = slice_
    cache = work / "cache-http"
    cmd = [sys.executable, "-m", "irdistill", "score", "--teacher", f"{kind}:smollm2", "--option", f"endpoint={llama_server}",
           "--run", str(work / "run.parquet"), "--dataset", os.path.join(SHARED, "scifact"), "--split", "test",
           "--cache", str(cache)]
    if kind == "llm-pointwise":  # keep end-of-text out of the first token, so top log-probabilities always come back
        cmd += ["--option", 'request={"logit_bias": {"0": -100, "2": -100}}']
    else:
        cmd += ["--option", "window=4", "--option", "step=2", "--option", "max_words=40"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    assert "scored 12 pairs" in out
    teachers = {d["kind"]: t for t, d in ScoreCache(cache).teachers().items()}
    scores = ScoreCache(cache).read(teachers[kind])
    assert len(scores) == 12 and np.isfinite(scores.score).all()
    if kind == "llm-pointwise":
        assert scores.score.nunique() > 1  # real log-odds, not the all-zero fallback
    assert "scored 0 pairs" in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
