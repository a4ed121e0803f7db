"""experiments/msmarco/estimate.py: the per-stage cost table is made from bench_scale's results and labelled as an
extrapolation; without results it says which file is missing."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "experiments", "msmarco", "estimate.py")
STAGES = ("load-store", "bm25-index", "encode", "faiss-flat", "search-flat", "candidates", "score", "cache-read",
          "examples")


def test_estimate_writes_a_labelled_table(tmp_path):
    results = {f"{n}/{s}": {"seconds": n / 1e4, "peak_mb": 500 + n / 1e4} for n in (100_000, 1_000_000) for s in STAGES}
    results["1000000/search-flat"]["seconds"] = 0.001  # per query
    (tmp_path / "results.json").write_text(json.dumps(results))
    (tmp_path / "out.md").write_text("# x\n\n<!-- msmarco-estimate -->\n<!-- /msmarco-estimate -->\n")
    done = subprocess.run([sys.executable, SCRIPT, "--scale", str(tmp_path / "results.json"), "--write",
                           str(tmp_path / "out.md")], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out.md").read_text()
    assert "EXTRAPOLATED, not measured" in text and "8,841,823 passages" in text
    # BM25 indexing grows linearly from 1M (100 s) to 8.8M passages; a CPU stage takes as long on 8 GPUs
    row = next(line for line in text.splitlines() if line.startswith("BM25 index"))
    assert row.count("15 min") == 2


def test_estimate_without_results_names_the_file(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, "--scale", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert done.returncode == 2 and "none.json" in done.stderr and "Traceback" not in done.stderr
