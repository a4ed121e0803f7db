"""Atomic writes: outputs follow the umask, and what killed writers leave (``.tmp-*``) is removed by the next run,
never what a live writer is still using."""

import os
import signal
import subprocess
import sys
import time

import pytest

from irdistill.data import io

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@pytest.mark.parametrize("umask,file_mode,dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)])
def test_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        with io.atomic_path(tmp_path / "out" / "a.json") as tmp, open(tmp, "w") as f:
            f.write("{}")
        with io.atomic_dir(tmp_path / "index") as work:
            open(os.path.join(work, "x"), "w").close()
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "a.json").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "index").stat().st_mode & 0o777 == dir_mode
    assert os.listdir(tmp_path / "index") == ["x"]  # the lock file does not travel with the output


def test_atomic_dir_replaces_and_failure_keeps_the_old(tmp_path):
    with io.atomic_dir(tmp_path / "index") as work:
        open(os.path.join(work, "v1"), "w").close()
    with pytest.raises(RuntimeError):
        with io.atomic_dir(tmp_path / "index") as work:
            open(os.path.join(work, "v2"), "w").close()
            raise RuntimeError("killed")
    assert os.listdir(tmp_path / "index") == ["v1"]
    with io.atomic_dir(tmp_path / "index") as work:
        open(os.path.join(work, "v3"), "w").close()
    assert os.listdir(tmp_path / "index") == ["v3"]
    assert sorted(os.listdir(tmp_path)) == ["index"]


HOLD = """
import sys, time
sys.path.insert(0, {root!r})
from irdistill.data import io
with io.{kind}({target!r}) as tmp:
    print(tmp, flush=True)
    time.sleep(600)
"""


def hold(kind, target):
    """A process inside atomic_path/atomic_dir, stopped in the middle of its write; returns it and its temp path."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD.format(root=ROOT, kind=kind, target=str(target))],
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize("kind", ["atomic_path", "atomic_dir"])
def test_leftovers_of_killed_writers_are_removed_live_ones_kept(tmp_path, kind):
    live, live_tmp = hold(kind, tmp_path / "live")
    dead, dead_tmp = hold(kind, tmp_path / "dead")
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        old = time.time() - 10
        for p in (live_tmp, dead_tmp):
            os.utime(p, (old, old))
        assert os.path.exists(dead_tmp) and os.path.exists(live_tmp)
        removed = io.clean_stale(tmp_path)
        assert removed == [dead_tmp] and os.path.exists(live_tmp)
    finally:
        live.kill()
        live.wait()


def test_leftovers_are_cleaned_by_the_next_write_in_the_folder(tmp_path):
    dead, dead_tmp = hold("atomic_path", tmp_path / "out.json")
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    os.utime(dead_tmp, (time.time() - 10,) * 2)
    io._cleaned.discard(str(tmp_path))  # a new run (the memo is per process)
    with io.atomic_path(tmp_path / "out.json") as tmp, open(tmp, "w") as f:
        f.write("done")
    assert os.listdir(tmp_path) == ["out.json"]


def test_unlocked_leftovers_of_other_tools_wait_for_the_stale_age(tmp_path):
    """A ``.tmp-*`` folder without a lock (e.g. tempfile.mkdtemp): removed only when nothing in it changed lately."""
    other = tmp_path / ".tmp-bm25-abc"
    (other / "docs").mkdir(parents=True)
    (other / "docs" / "docs.jsonl").write_text("x")
    assert io.clean_stale(tmp_path) == []
    for p in (other, other / "docs", other / "docs" / "docs.jsonl"):
        os.utime(p, (time.time() - 2 * io.STALE_AFTER,) * 2)
    (other / "docs" / "fresh").write_text("still being written")  # one recent file keeps it
    os.utime(other / "docs", (time.time() - 2 * io.STALE_AFTER,) * 2)
    assert io.clean_stale(tmp_path) == []
    os.utime(other / "docs" / "fresh", (time.time() - 2 * io.STALE_AFTER,) * 2)
    mine = tmp_path / ".tmp-notes"  # not irdistill's: never touched, however old
    mine.write_text("x")
    os.utime(mine, (time.time() - 10 * io.STALE_AFTER,) * 2)
    assert io.clean_stale(tmp_path) == [str(other)] and os.listdir(tmp_path) == [".tmp-notes"]
