"""Score-cache reads on a large synthetic cache: the scores of a few queries through predicate pushdown (before and
after ``compact``) beside the baseline of reading the whole table with pandas and filtering.

    python benchmarks/bench_cache.py [--queries 200000 --per-query 50] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import pandas as pd

from irdistill.cache import ScoreCache
from irdistill.experiment import publish_benchmark, timed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=200_000)
    ap.add_argument("--per-query", type=int, default=50)
    ap.add_argument("--parts", type=int, default=100, help="part files written (as a scoring job would flush them)")
    ap.add_argument("--write")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-cache-")
    cache, teacher = ScoreCache(os.path.join(work, "cache")), "synthetic-teacher"
    rng = np.random.default_rng(0)
    qids = np.array([f"q{i}" for i in range(args.queries)], dtype=object)
    per_part = args.queries // args.parts
    t_write = time.perf_counter()
    for p in range(args.parts):
        q = np.repeat(qids[p * per_part:(p + 1) * per_part], args.per_query)
        d = np.array([f"d{x}" for x in rng.integers(0, 10_000_000, len(q))], dtype=object)
        cache.write(teacher, q, d, rng.standard_normal(len(q)).astype(np.float32))
    t_write = time.perf_counter() - t_write
    rows_total = args.parts * per_part * args.per_query
    wanted = rng.choice(qids[: args.parts * per_part], 16, replace=False).tolist()  # one training batch of queries

    def pandas_full():
        df = pd.read_parquet(cache.folder)
        return df[df.qid.isin(wanted)]

    t_full, full = timed(pandas_full, 1)
    t_push, pushed = timed(lambda: cache.read(teacher, qids=wanted))
    t_compact, _ = timed(lambda: cache.compact(teacher), 1)
    t_sorted, sorted_read = timed(lambda: cache.read(teacher, qids=wanted))
    assert len(full) == len(pushed) == len(sorted_read) == 16 * args.per_query
    t_resume, done = timed(lambda: cache.scored_qids(teacher), 1)
    rows = [
        {"read": "pandas.read_parquet(cache) + filter (baseline)", "seconds": t_full, "speed-up": 1.0},
        {"read": f"ScoreCache.read(qids), {args.parts} part files", "seconds": t_push, "speed-up": t_full / t_push},
        {"read": "ScoreCache.read(qids), after compact (sorted by qid)", "seconds": t_sorted, "speed-up": t_full / t_sorted},
        {"read": "scored_qids (what a resumed job skips)", "seconds": t_resume, "speed-up": float("nan")},
    ]
    size = os.popen(f"du -sh {cache.folder}").read().split()[0]
    shutil.rmtree(work, ignore_errors=True)
    publish_benchmark("bench-cache", "benchmarks/bench_cache.py", ("irdistill", "pyarrow", "pandas"),
                      [f"Cache: {rows_total:,} scores ({args.queries:,} queries x {args.per_query}); written in "
                       f"{t_write:.1f} s as {args.parts} parts; compact took {t_compact:.1f} s; {size} on disk. "
                       "Read: the scores of 16 random queries (best of 3)."], rows, args.write)


if __name__ == "__main__":
    main()
