"""Importing a synthetic Margin-MSE teacher TSV (``pos_score neg_score qid pos_pid neg_pid``, Hofstätter et al.'s
layout) into the score cache: rate and peak memory of ``irdistill cache import`` beside the baseline of reading the
whole file with pandas, each in a process of its own (peak RSS from the kernel's accounting of that process).

    python benchmarks/bench_import.py [--lines 40000000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from irdistill.experiment import publish_benchmark

PANDAS = "import pandas as pd, sys; df = pd.read_csv(sys.argv[1], sep='\\t', header=None); print(len(df))"


def make_tsv(path: str, lines: int, per_query: int = 100, seed: int = 0) -> None:
    """``lines`` lines: a query per ``per_query`` lines, its positive repeated on each, random negatives; a pair's
    score is a function of the pair, as a teacher's is (a pair on two lines has one score)."""
    rng = np.random.default_rng(seed)
    with open(path, "w") as f:
        for start in range(0, lines, 1_000_000):
            n = min(1_000_000, lines - start)
            q = (start + np.arange(n)) // per_query
            pos = q * 7 % 8_841_823
            neg = rng.integers(0, 8_841_823, n)
            neg[neg == pos] += 1  # a negative is never the query's positive
            ps, ns = 3 + q % 1000 / 100, (q * 1_000_003 + neg) % 10_007 / 1000 - 5
            f.write("".join(f"{a:.4f}\t{b:.4f}\t{c}\t{d}\t{e}\n" for a, b, c, d, e in zip(ps, ns, q, pos, neg)))


def measure(argv: list[str]) -> dict:
    """Wall and CPU seconds and peak RSS of one child process (``wait4``: that child's own accounting)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{argv[:4]} failed with exit code {child.returncode}")
    return {"wall s": wall, "cpu s": usage.ru_utime + usage.ru_stime, "peak RSS GiB": usage.ru_maxrss / 2**20}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=40_000_000)
    ap.add_argument("--write")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-import-")
    try:
        tsv = os.path.join(work, "teacher.tsv")
        make_tsv(tsv, args.lines)
        size = os.path.getsize(tsv) / 2**30
        cli = [sys.executable, "-m", "irdistill", "cache", "import", "-q", "--format", "margin-mse", "--input", tsv,
               "--cache", os.path.join(work, "cache")]
        ours = measure(cli)
        base = measure([sys.executable, "-c", PANDAS, tsv])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [{"reader": "pandas.read_csv of the whole file (baseline, no cache)", **base,
             "lines/s": args.lines / base["wall s"]},
            {"reader": "irdistill cache import --format margin-mse", **ours, "lines/s": args.lines / ours["wall s"]}]
    publish_benchmark("Importing a Margin-MSE teacher file", "benchmarks/bench_import.py", ["pyarrow", "pandas"],
                      [f"{args.lines:,} lines ({size:.2f} GiB), a query per 100 lines; one process each (peak "
                       "RSS: the kernel's, interpreter and imports included)"], rows, args.write)


if __name__ == "__main__":
    main()
