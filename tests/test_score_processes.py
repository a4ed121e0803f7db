"""``irdistill score`` run by several processes at once on one cache (two shards; two on the same shard; one killed
and rerun): the cache ends equal to one process's, with every pair once."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset, run_from_dict, write_run
from irdistill.teachers import score_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir):
    from conftest import random_collection, write_beir

    work = tmp_path_factory.mktemp("score-procs")
    docs, queries = random_collection(60, 60, doc_words=12, vocabulary=50)
    folder = write_beir(work / "data", docs, queries, {"test": [(q, "d0", 1) for q in queries]})
    ds = load_dataset(folder, "test")
    write_run(run_from_dict({q: {d: 0.0 for d in docs} for q in ds.queries}), work / "run.parquet")
    spec = {"kind": "bi-encoder", "model": tiny_model_dir, "batch_size": 8}
    expected = score_run(spec, str(work / "run.parquet"), ds, ScoreCache(work / "single"), progress=False)
    return work, folder, tiny_model_dir, ScoreCache(work / "single").read(expected.key)


def start(work, folder, model, cache, shard=None):
    cmd = [sys.executable, "-m", "irdistill", "score", "--teacher", "bi-encoder:" + model, "--option", "batch_size=8",
           "--run", str(work / "run.parquet"), "--dataset", folder, "--cache", str(cache), "--flush", "60"]
    return subprocess.Popen(cmd + (["--shard", shard] if shard else []), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})


def assert_equal(cache_dir, expected):
    cache = ScoreCache(cache_dir)
    (key,) = cache.teachers()
    got = cache.read(key).sort_values(["qid", "docid"]).reset_index(drop=True)
    want = expected.sort_values(["qid", "docid"]).reset_index(drop=True)
    raw = pd.read_parquet(cache_dir)  # every pair once for any Parquet reader, not only ScoreCache
    assert len(raw) == len(want) and not raw.duplicated(["teacher", "qid", "docid"]).any()
    pd.testing.assert_frame_equal(got[["qid", "docid"]], want[["qid", "docid"]])
    np.testing.assert_allclose(got["score"], want["score"], atol=1e-5)
    assert all(r.ok for r in cache.verify())


@pytest.mark.parametrize("shards", [("0/2", "1/2"), ("0/1", "0/1")], ids=["two-shards", "same-shard"])
def test_processes_started_together_fill_one_cache(setup, tmp_path, shards):
    work, folder, model, expected = setup
    procs = [start(work, folder, model, tmp_path / "cache", s) for s in shards]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read().decode()[-2000:]
    assert_equal(tmp_path / "cache", expected)


def test_a_killed_scorer_is_simply_rerun(setup, tmp_path):
    work, folder, model, expected = setup
    cache = tmp_path / "cache"
    victim, other = start(work, folder, model, cache), start(work, folder, model, cache)
    deadline = time.time() + 300
    while time.time() < deadline and not any(
            f.startswith("part-") for _, _, files in os.walk(cache) for f in files):
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)  # mid-run: its claimed block is neither scored nor committed
    victim.wait()
    assert other.wait(timeout=600) == 0
    rerun = start(work, folder, model, cache)
    assert rerun.wait(timeout=600) == 0
    assert_equal(cache, expected)
