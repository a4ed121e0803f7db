"""Many processes, one score cache (issue 15 item 2): processes started at the same moment on the same queries or on
shards of them, and processes killed mid-run and rerun, leave the cache equal to one process's: no pair twice, none
missing, also as ``pandas.read_parquet`` sees it."""

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from cache_worker import candidates, fake_score
from irdistill.cache import ScoreCache

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cache_worker.py")
KEY = "fake-0123456789ab@feedfacecafe"
NQ, K = 120, 5


def start(cache, *args):
    return subprocess.Popen([sys.executable, WORKER, str(cache), KEY, "--queries", str(NQ), "--docs", str(K), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])["scored"]


def together(tmp_path, cache, *arg_lists):
    """Start one worker per argument list; they begin scoring at the same moment, once every one has imported and
    waits at the barrier (however loaded the machine)."""
    go = tmp_path / f"go-{time.monotonic_ns()}"
    procs = [start(cache, "--go", str(go), *args) for args in arg_lists]
    deadline = time.time() + 120
    while len(list(tmp_path.glob(f"{go.name}.ready-*"))) < len(procs):
        assert time.time() < deadline and all(p.poll() is None for p in procs), "a worker did not reach the barrier"
        time.sleep(0.05)
    go.touch()
    return procs


def expected() -> pd.DataFrame:
    rows = [(q, d, fake_score(q, d)) for q, ds in candidates(NQ, K).items() for d in ds]
    df = pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"score": "float32"})
    return df.sort_values(["qid", "docid"]).reset_index(drop=True)


def assert_complete(folder):
    """The cache holds every pair once, with the right score, read by irdistill and by pandas alone."""
    raw = pd.read_parquet(folder)
    assert not raw.duplicated(["teacher", "qid", "docid"]).any()
    assert len(raw) == NQ * K
    ours = ScoreCache(folder).read(KEY).sort_values(["qid", "docid"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, expected(), check_dtype=False)
    (report,) = ScoreCache(folder).verify(KEY)
    assert report.ok and report.pairs == NQ * K and report.queries == NQ, report
    assert ScoreCache(folder).count_pairs(KEY) == NQ * K


def test_one_process_is_the_reference(tmp_path):
    assert finish(start(tmp_path / "cache")) == NQ * K
    assert_complete(tmp_path / "cache")
    assert finish(start(tmp_path / "cache")) == 0  # a rerun finds everything scored


def test_two_processes_same_queries_commit_only(tmp_path):
    """Without claims both score everything, and commit still stores each pair once."""
    cache = tmp_path / "cache"
    procs = together(tmp_path, cache, ["--delay", "0.01"], ["--delay", "0.01"])
    scored = [finish(p) for p in procs]
    assert all(s > 0 for s in scored)
    assert_complete(cache)


def test_two_processes_same_queries_with_claims(tmp_path):
    """With claims the two share the work: every pair is scored by exactly one of them."""
    cache = tmp_path / "cache"
    procs = together(tmp_path, cache, ["--claim", "--delay", "0.02"], ["--claim", "--delay", "0.02"])
    scored = [finish(p) for p in procs]
    assert sum(scored) == NQ * K and min(scored) > 0, scored
    assert_complete(cache)
    assert not [n for n in os.listdir(cache / f"teacher={KEY}") if n.startswith(".claim-")]  # released


def test_two_shards(tmp_path):
    cache = tmp_path / "cache"
    procs = together(tmp_path, cache, ["--shard", "0/2", "--claim"], ["--shard", "1/2", "--claim"])
    scored = [finish(p) for p in procs]
    assert sum(scored) == NQ * K and min(scored) > 0
    assert_complete(cache)


@pytest.mark.parametrize("claim", [True, False])
def test_killed_mid_run_then_rerun(tmp_path, claim):
    """A process killed while it holds a claimed, unscored block: a rerun (started right away, no lease to wait for)
    completes the cache; so does a process that ran beside the killed one."""
    cache = tmp_path / "cache"
    flags = ["--claim"] if claim else []
    killed = start(cache, *flags, "--die-after", "6", "--delay", "0.01")
    killed.wait(timeout=120)
    assert killed.returncode == -9
    partial = ScoreCache(cache).read(KEY)
    assert 0 < len(partial) < NQ * K and not partial.duplicated(["qid", "docid"]).any()
    assert finish(start(cache, *flags)) == NQ * K - len(partial)
    assert_complete(cache)


def test_killed_beside_a_live_process(tmp_path):
    cache = tmp_path / "cache"
    procs = together(tmp_path, cache, ["--claim", "--die-after", "4", "--delay", "0.02"], ["--claim", "--delay", "0.02"])
    procs[0].wait(timeout=120)
    assert procs[0].returncode == -9
    finish(procs[1])
    finish(start(cache, "--claim"))  # the killed shard is simply rerun
    assert_complete(cache)


def test_claims_of_a_hung_process_lapse_after_the_lease(tmp_path):
    """Two caches in one process stand for two processes (flock tells their open files apart)."""
    a, b = ScoreCache(tmp_path / "cache", lease=0.5), ScoreCache(tmp_path / "cache", lease=0.5)
    qids = [f"q{i}" for i in range(6)]
    assert a.claim(KEY, qids[:4]) == qids[:4]
    assert b.claim(KEY, qids) == qids[4:]  # a's claims are live
    b.commit(KEY, ["q4"], ["d1"], [1.0])
    assert a.claim(KEY, qids) == qids[:4]  # q4 is scored, q5 is b's
    time.sleep(0.7)  # a goes silent for longer than the lease
    assert b.claim(KEY, qids) == qids[:4] + ["q5"]
    a.release(KEY)
    b.release(KEY)


def test_claims_of_a_released_owner_are_free(tmp_path):
    a, b = ScoreCache(tmp_path / "cache"), ScoreCache(tmp_path / "cache")
    assert a.claim(KEY, ["q1", "q2"]) == ["q1", "q2"]
    assert b.claim(KEY, ["q1", "q2", "q3"]) == ["q3"]
    a.release(KEY)
    assert b.claim(KEY, ["q1", "q2", "q3"]) == ["q1", "q2", "q3"]


def test_a_claim_file_released_while_another_reads_it_is_no_error(tmp_path, monkeypatch):
    """The CI failure of stop 39: b opened a's claim file, a released it (unlocked and removed), b found it unlocked
    and its unlink raised FileNotFoundError. Release now holds the teacher's lock, and a file already gone is fine."""
    from irdistill.cache import claims

    a, b = ScoreCache(tmp_path / "cache"), ScoreCache(tmp_path / "cache")
    assert a.claim(KEY, ["q1"]) == ["q1"]
    real = claims._try_lock

    def released_meanwhile(fd):
        monkeypatch.setattr(claims, "_try_lock", real)
        a._claims.release(a._dir(KEY))  # a's release, without the lock, between b's open and b's lock
        return real(fd)

    monkeypatch.setattr(claims, "_try_lock", released_meanwhile)
    assert b.claim(KEY, ["q1", "q2"]) == ["q1", "q2"]
    b.release(KEY)
