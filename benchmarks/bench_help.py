"""CPU time of ``irdistill --help`` and of every verb's ``--help`` (each the median of ``--repeat`` runs, a process
each, CPU from the kernel's accounting of that process), beside two baselines measured in the same run: the bare
interpreter, and importing the stack that every ``--help`` used to import before the CLI's imports were made lazy
(torch, pandas).

    python benchmarks/bench_help.py [--repeat 5] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench_import import measure

from irdistill.experiment import publish_benchmark

VERBS = ["index", "search", "evaluate", "compare", "report", "candidates", "score", "cache", "generate-queries",
         "adapt", "train", "merge", "card"]


def median_of(argv: list[str], repeat: int) -> dict:
    runs = [measure(argv) for _ in range(repeat)]
    return {"cpu s": statistics.median(r["cpu s"] for r in runs), "wall s": statistics.median(r["wall s"] for r in runs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--write")
    args = ap.parse_args()
    py = sys.executable
    rows = [{"command": "python -c pass (baseline: the interpreter)", **median_of([py, "-c", "pass"], args.repeat)},
            {"command": "import torch, pandas (baseline: what every --help imported before)",
             **median_of([py, "-c", "import torch, pandas"], args.repeat)},
            {"command": "irdistill --help", **median_of([py, "-m", "irdistill", "--help"], args.repeat)}]
    rows += [{"command": f"irdistill {verb} --help", **median_of([py, "-m", "irdistill", verb, "--help"], args.repeat)}
             for verb in VERBS]
    publish_benchmark("CLI help", "benchmarks/bench_help.py", ["torch", "pandas"],
                      [f"median of {args.repeat} runs each"], rows, args.write)


if __name__ == "__main__":
    main()
