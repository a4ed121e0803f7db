"""Peak memory of ``irdistill evaluate --retriever bm25`` (index and search) on a collection, with the JVM's heap
sized to the work and its serial collector (``index/java.py``) beside the JVM's defaults, each in a process of its
own (peak RSS from the kernel's accounting of that process: Python, pyserini and the JVM together).

    python benchmarks/bench_bm25_memory.py [--dataset FOLDER (default: the shared SciFact)] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

from bench_import import measure

from irdistill.experiment import publish_benchmark, shared_dataset


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=shared_dataset("scifact"))
    ap.add_argument("--write")
    args = ap.parse_args()
    rows = []
    for label, defaults in (("the JVM's defaults (heap a quarter of the memory, G1; baseline)", "1"),
                            ("heap sized to the work, serial GC (irdistill's default)", "")):
        work = tempfile.mkdtemp(prefix="bench-bm25-")
        try:
            os.environ["IRDISTILL_JVM_DEFAULTS"] = defaults
            cli = [sys.executable, "-m", "irdistill", "evaluate", "-q", "--dataset", args.dataset, "--retriever", "bm25",
                   "--index", os.path.join(work, "index"), "--output", os.path.join(work, "out")]
            rows.append({"BM25 evaluate (index + search)": label, **measure(cli)})
            rows.append({"BM25 evaluate (index + search)": label + ", search only", **measure(cli)})
        finally:
            shutil.rmtree(work, ignore_errors=True)
    publish_benchmark("BM25 memory", "benchmarks/bench_bm25_memory.py", ["pyserini"],
                      [f"dataset: {os.path.basename(os.path.normpath(args.dataset))}"], rows, args.write)


if __name__ == "__main__":
    main()
