"""Conversational query rewriting (``irdistill rewrite``): what the packaged SmolLM2-135M-Instruct costs a turn on this
machine, with irdistill's prompt (one worked example first) and, as the baseline in the same run, the same prompt
without the example; and how many turns each changes (a 135M model mostly copies the turn).

    python benchmarks/bench_rewrite.py [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from irdistill.data.conversations import Turn, query_views
from irdistill.experiment import publish_benchmark
from irdistill.models.llm import make_backend
from irdistill.queries import rewrite

HERE = os.path.dirname(os.path.abspath(__file__))
# two short conversations: each later turn needs the earlier ones to be understood
TURNS = [("1", "How do solar panels turn sunlight into electricity?"), ("1", "How efficient are they?"),
         ("1", "Do they still work when it is cloudy?"), ("2", "What causes inflation?"),
         ("2", "How do central banks fight it?"), ("2", "Why does that raise unemployment?")]


def run(backend, conversations: dict[str, str]) -> tuple[dict, float, float]:
    with tempfile.TemporaryDirectory() as tmp:  # a fresh cache: every turn asks the model
        start, cpu = time.perf_counter(), time.process_time()
        out = rewrite.rewrite_queries(conversations, backend, os.path.join(tmp, "view.jsonl"), progress=False)
        return out, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", help="write the table into this Markdown file")
    args = ap.parse_args()
    turns = [Turn(f"{topic}_{i}", topic, text) for i, (topic, text) in enumerate(TURNS)]
    views = query_views(turns)
    backend = make_backend("smollm2-135m-instruct-gguf")
    rows = []
    for label, example in (("without the worked example (baseline)", None), ("irdistill's prompt", rewrite.EXAMPLE)):
        chat = rewrite.chat
        if example is None:
            rewrite.chat = lambda conversation: [chat(conversation)[0], chat(conversation)[-1]]
        try:
            out, wall, cpu = run(backend, views["conversation"])
        finally:
            rewrite.chat = chat
        changed = sum(out[q] != views["raw"][q] for q in out)
        rows.append({"prompt": label, "turns": len(out), "wall s": round(wall, 1), "CPU s": round(cpu, 1),
                     "CPU s a turn": round(cpu / len(out), 1), "turns changed": changed})
    publish_benchmark("bench-rewrite", "benchmarks/bench_rewrite.py", ["torch", "transformers"],
                      ["Model: SmolLM2-135M-Instruct (the packaged GGUF, in-process), greedy, at most 64 tokens; "
                       f"{len(TURNS)} turns of two conversations"], rows, args.write)


if __name__ == "__main__":
    main()
