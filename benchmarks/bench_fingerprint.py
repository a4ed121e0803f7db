"""What content keys and safe concurrent commits cost.

1. Corpus fingerprint: hashing ids, titles and texts (Arrow buffers -> SHA-256) beside the old ids-only hash and the
   load itself, on SciFact and a synthetic corpus; and a reload that finds the fingerprint in its sidecar.
2. Score cache: ``commit`` (flock + index of scored queries + per-pair check) beside writing a bare part file, per block.

    python benchmarks/bench_fingerprint.py [--docs 1000000] [--scifact ../shared/datasets/scifact/corpus.jsonl]
        [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from irdistill.cache import ScoreCache
from irdistill.cache.scores import SCHEMA
from irdistill.data import Corpus
from irdistill.data import corpus as corpus_module
from irdistill.experiment import publish_benchmark, timed

HERE = os.path.dirname(os.path.abspath(__file__))


def ids_only_hash(corpus: Corpus) -> str:
    """The fingerprint before issue 14 (document ids only), the baseline."""
    h = hashlib.sha1(str(len(corpus)).encode())
    for chunk in corpus.table["docid"].chunks:
        h.update(pc.binary_join(pa.array([chunk.to_pylist()]), "\n")[0].as_py().encode())
    return h.hexdigest()[:16]


def synthetic(path: str, n: int) -> None:
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" for i in range(50_000)])
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 100_000):
            m = min(100_000, n - start)
            body = words[rng.integers(0, len(words), (m, 50))]
            for i in range(m):
                f.write(json.dumps({"_id": f"doc{start + i}", "title": " ".join(body[i, :5]),
                                    "text": " ".join(body[i])}) + "\n")


def fingerprint_rows(name: str, path: str) -> list[dict]:
    for sidecar in corpus_module._sidecars(path):
        if os.path.exists(sidecar):
            os.remove(sidecar)
    t_first, corpus = timed(lambda: Corpus.from_jsonl(path), 1)  # loads, hashes, writes the sidecar
    t_reload, again = timed(lambda: Corpus.from_jsonl(path), 1)  # finds it
    assert again.fingerprint() == corpus.fingerprint()
    t_ids, _ = timed(lambda: ids_only_hash(corpus))
    t_content, fp = timed(lambda: corpus_module.content_fingerprint(corpus.table))
    assert fp == corpus.fingerprint()
    mb = sum(corpus.table[c].nbytes for c in ("docid", "title", "text")) / 1e6
    return [
        {"corpus": name, "step": "load (from_jsonl), first time: parse + hash + sidecar", "seconds": t_first, "MB": mb},
        {"corpus": name, "step": "load again: fingerprint from the sidecar", "seconds": t_reload, "MB": mb},
        {"corpus": name, "step": "old fingerprint: ids only (baseline)", "seconds": t_ids, "MB": mb},
        {"corpus": name, "step": "new fingerprint: ids, titles, texts", "seconds": t_content, "MB": mb},
    ]


def commit_rows(blocks: int = 200, pairs: int = 2048) -> list[dict]:
    work = tempfile.mkdtemp(prefix="bench-commit-")
    rng = np.random.default_rng(0)
    per_q = 50

    def block(b):
        q = np.repeat([f"q{b}-{i}" for i in range(pairs // per_q)], per_q).tolist()
        d = [f"d{x}" for x in rng.integers(0, 10**7, len(q))]
        return q, d, rng.standard_normal(len(q)).astype(np.float32)

    data = [block(b) for b in range(blocks)]
    raw_dir = os.path.join(work, "raw")
    os.makedirs(raw_dir)

    def bare():
        for q, d, s in data:
            pq.write_table(pa.table({"qid": q, "docid": d, "score": s}, schema=SCHEMA),
                           os.path.join(raw_dir, f"part-{uuid.uuid4().hex}.parquet"))

    t_raw, _ = timed(bare, 1)
    cache = ScoreCache(os.path.join(work, "cache"))
    t_commit, _ = timed(lambda: [cache.commit("t", q, d, s) for q, d, s in data], 1)
    t_again, _ = timed(lambda: [cache.commit("t", q, d, s) for q, d, s in data], 1)  # every pair already there
    t_claim, _ = timed(lambda: [cache.claim("t", sorted(set(q))) for q, _, _ in data], 1)
    fresh = ScoreCache(cache.folder)
    t_scored, done = timed(lambda: fresh.scored_qids("t"), 1)
    assert len(done) == blocks * (pairs // per_q) and cache.count_pairs("t") == blocks * (pairs // per_q) * per_q
    shutil.rmtree(work, ignore_errors=True)
    ms = 1000 / blocks
    return [
        {"corpus": f"cache, {blocks} blocks of {pairs} pairs", "step": "bare part write per block (baseline)", "seconds": t_raw * ms / 1000, "MB": float("nan")},
        {"corpus": "", "step": "commit per block (lock, index, pair check, write)", "seconds": t_commit * ms / 1000, "MB": float("nan")},
        {"corpus": "", "step": "commit per block, all pairs already cached", "seconds": t_again * ms / 1000, "MB": float("nan")},
        {"corpus": "", "step": "claim per block (all already scored)", "seconds": t_claim * ms / 1000, "MB": float("nan")},
        {"corpus": "", "step": f"scored_qids, new process, {blocks} parts", "seconds": t_scored, "MB": float("nan")},
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--scifact", default=os.path.join(HERE, "..", "..", "shared", "datasets", "scifact", "corpus.jsonl"))
    ap.add_argument("--write")
    args = ap.parse_args()
    os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="bench-xdg-"))  # the shared folder is read-only
    rows = fingerprint_rows("SciFact (5,183 docs)", os.path.abspath(args.scifact))
    work = tempfile.mkdtemp(prefix="bench-fp-")
    try:
        path = os.path.join(work, "corpus.jsonl")
        t0 = time.perf_counter()
        synthetic(path, args.docs)
        print(f"wrote {args.docs:,} documents ({os.path.getsize(path) / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        rows += fingerprint_rows(f"synthetic ({args.docs:,} docs)", path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows += commit_rows()
    notes = ["Seconds: best of 3 for the hashes, one run for loads; commit rows are seconds per block.",
             "The new fingerprint is computed once per file and then read from its sidecar (size, mtime, ctime, inode)."]
    publish_benchmark("bench-fingerprint", "benchmarks/bench_fingerprint.py", ["pyarrow", "numpy"], notes, rows,
                      args.write)


if __name__ == "__main__":
    main()
