"""Progress bars: on a terminal every long step shows one, with its rate and ETA; ``--quiet`` silences them all (ours,
the trainer's, transformers'). The CLI runs under a pseudo-terminal here, as in a user's shell."""

import os
import re
import subprocess
import sys

import yaml

import irdistill
from irdistill.progress import chunks
from test_training import cached  # noqa: F401  (fixture)

ROOT = os.path.dirname(os.path.dirname(irdistill.__file__))
# "desc: 100%|████| 6/6 [00:01<00:00, 4.20doc/s]": a finished tqdm bar, with its elapsed time, ETA and rate
BAR = re.compile(r"(?:([\w() ]+): +)?\d+%\|[^|\r\n]*\| *(\d+)/(\d+) \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?(?:\w+/s|s/\w+)\]")


def in_terminal(args: list[str], cwd) -> tuple[int, str]:
    """Run ``irdistill ARGS`` with a 120-column pseudo-terminal as stdin, stdout and stderr; its exit code and all it
    wrote there."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # tqdm draws nothing at 0 columns
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):  # set by in-process CLI calls of other tests
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "irdistill", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=env)
    os.close(slave)
    out = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed, the process is done
            break
        if not data:
            break
        out.append(data)
    os.close(master)
    return proc.wait(timeout=600), b"".join(out).decode("utf-8", "replace")


def finished_bars(text: str) -> dict[str, str]:
    """Each bar's description (the trainer's has none: "") -> its last state, for bars that reached their total."""
    done = {}
    for m in BAR.finditer(text):
        if m.group(2) == m.group(3):
            done[(m.group(1) or "").strip()] = m.group(0)
    return done


def test_evaluate_shows_encoding_indexing_and_search_bars_unless_quiet(beir_dir, tiny_model_dir, tmp_path):
    args = ["evaluate", "--dataset", beir_dir, "--retriever", "dense", "--model", tiny_model_dir, "--output", "runs"]
    code, text = in_terminal(args, tmp_path)
    assert code == 0, text
    bars = finished_bars(text)
    assert {"encoding", "indexing (flat)", "searching (dense)"} <= set(bars), text
    assert "6/6" in bars["encoding"] and "doc/s" in bars["encoding"] and "3/3" in bars["searching (dense)"]
    for line in ("loading ", "checking the index", "computing ndcg@10, recall@100, mrr@10 over 3 judged queries",
                 "writing runs"):  # the steps that draw no bar say what they do
        assert line in text, (line, text)
    code, text = in_terminal([*args, "--rebuild", "--quiet"], tmp_path)
    assert code == 0 and "%|" not in text and "ndcg@10" in text and "computing" not in text, text


def test_training_shows_the_trainers_bar_unless_quiet(cached, tiny_model_dir, tmp_path):  # noqa: F811
    folder, ds, cache, tid = cached
    cfg = {"output": str(tmp_path / "out"), "dataset": folder, "cache": cache, "model": tiny_model_dir,
           "examples": {"teacher": tid, "negatives": 3}, "batch_size": 4, "max_steps": 4, "save_steps": 100,
           "logging_steps": 2, "max_seq_length": 32, "loss": "infonce"}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    code, text = in_terminal(["train", "--config", "train.yaml"], tmp_path)
    assert code == 0, text
    assert re.search(r"\b4/4 \[\d\d:\d\d<00:00, +[\d.]+ ?(it/s|s/it)\]", finished_bars(text).get("", "")), text
    assert "building training examples" in text and "saving " in text, text
    cfg["output"] = str(tmp_path / "quiet")
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    code, text = in_terminal(["train", "--config", "train.yaml", "-q"], tmp_path)
    assert code == 0 and "%|" not in text and "model: " in text, text


def test_chunks_advance_the_bar_as_each_slice_is_done():
    seen = []
    for part in chunks(list(range(10)), 4, show=False):
        seen.append(part)
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
