"""Collect the metrics.json files of scifact_ensemble.sh into a table (and docs/results.md with --write)."""

import argparse
import glob
import json

from irdistill.cache import ScoreCache
from irdistill.evaluation import format_table
from irdistill.experiment import write_section

ap = argparse.ArgumentParser()
ap.add_argument("--write")
args = ap.parse_args()
rows = []
for path in sorted(glob.glob("runs/scifact-test-rerank-*/metrics.json")):
    m = json.load(open(path))
    rows.append({"teacher (re-ranking BM25 top 100)": m["run"].replace("scifact-test-rerank-", ""),
                 **m["metrics"]})
weights = [f"{d['members']} -> {[round(w, 3) for w in d['weights']]} ({d['norm']})"
           for d in ScoreCache("cache/scifact").teachers().values() if d["kind"] == "ensemble"]
text = (f"Command: `bash experiments/teachers/scifact_ensemble.sh` (SciFact test; ensemble weights fit on train)\n\n"
        f"```\n{format_table(rows)}\n```\n\nFitted weights: {'; '.join(weights)}")
print(text)
if args.write:
    write_section(args.write, "teachers-scifact", text)
