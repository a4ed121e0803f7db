"""ColBERT and SPLADE rows of the SciFact table: the packaged SPLADE-tiny zero-shot, SPLADE-tiny distilled, and a
ColBERT student distilled from MiniLM; nDCG@10 / recall@100 on SciFact test and Cranfield, each through its own
index (ColBERT: FAISS over token embeddings + exact MaxSim; SPLADE: a Lucene impact index).

    python experiments/scifact/late_sparse.py [--rows all|splade-zero-shot,...] [--write docs/results.md]

Rows are resumable like experiments/scifact/run.py (results in experiments/scifact/results/<row>.json, keyed by a
hash of the row's config). Teacher: the BM25 + MiniLM ensemble fit on SciFact train; 7 negatives per example; seed
42; nothing is chosen on test.

The loss is the weighted sum InfoNCE + listwise KL (teacher temperature 0.3 on min-max scaled teacher scores). The
ColBERT row takes exactly the recipe of the bi-encoder's InfoNCE + KL row in run.py (learning rate, negatives below
the positive), so the two compare architectures, not recipes. The student temperature 0.05 of the bi-encoder rows is
for cosine scores; the ColBERT objective divides MaxSim by the query's 32 tokens, which puts it on that scale, so
ColBERT keeps 0.05. SPLADE scores are unbounded dot products
(about 10-50 on SciFact): the first try took temperature 1, as SPLADE's own training and sentence-transformers'
sparse losses do (row splade-distilled-t1: it shrank the vectors and lost to zero-shot); the distilled row uses the
temperature and learning rate that won on held-out train queries (``--holdout``: T 1, 3 or 10 at lr 2e-5, then
lr 1e-4 at T 3; the 4.4M-parameter model barely moves at 2e-5). FLOPS weights: sentence-transformers' SPLADE
defaults (query 5e-5, document 3e-5).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import (CACHE, CRANFIELD, LR, METRICS, MODEL, SCIFACT, STUDENT, TEACHER_TOP, table,  # noqa: E402
                 teachers_on_train)

from irdistill.data import load_dataset  # noqa: E402
from irdistill.evaluation import evaluate_run, format_table  # noqa: E402
from irdistill.index import retrieve  # noqa: E402
from irdistill.index.retrieve import index_path  # noqa: E402
from irdistill.report import resumable_rows, write_section  # noqa: E402
from irdistill.training import TrainConfig, train  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SPLADE = "splade-tiny"
EXAMPLES = {"teacher": "ensemble", "negatives": 7}


def splade_spec(temperature: float, **extra) -> dict:
    """SPLADE-tiny distilled with InfoNCE + listwise KL, student temperature ``temperature`` on dot products."""
    return {"student": "splade", "model": SPLADE, "examples": EXAMPLES, "flops": {"query": 5e-5, "document": 3e-5},
            "loss": [{"name": "infonce", "temperature": temperature},
                     {"name": "listwise-kl", "student_temperature": temperature, "teacher_temperature": 0.3}],
            **extra}


# The SPLADE student temperature, chosen on held-out SciFact train queries (``--holdout``; never on test)
DEV_FRACTION = 0.15
HOLDOUT = {"splade-zero-shot": None, "splade-t3": 3.0, "splade-t10": 10.0, "splade-t1": 1.0,  # variant -> T
           "splade-t3-lr1e-4": (3.0, 1e-4)}  # or (T, learning rate): a 4.4M-parameter model barely moves at 2e-5
SPLADE_TEMPERATURE, SPLADE_LR = 3.0, 1e-4  # the row names below say so
ROWS = {  # row -> (retriever, training config or None)
    "splade-zero-shot": ("splade", None),
    "splade-distilled-t1": ("splade", splade_spec(1.0)),
    "splade-distilled-lr2e-5": ("splade", splade_spec(SPLADE_TEMPERATURE)),
    "splade-distilled": ("splade", splade_spec(SPLADE_TEMPERATURE, learning_rate=SPLADE_LR)),
    "colbert-distilled": ("colbert", {
        "student": "colbert", "model": MODEL, "examples": TEACHER_TOP, "learning_rate": LR,  # as the bi-encoder KL row
        "loss": [{"name": "infonce"}, {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.3}]}),
}
NAMES = {"splade-zero-shot": "SPLADE-tiny zero-shot (Lucene impact index)",
         "splade-distilled-t1": "SPLADE-tiny student, InfoNCE + listwise KL, T=1",
         "splade-distilled-lr2e-5": f"SPLADE-tiny student, InfoNCE + listwise KL, T={SPLADE_TEMPERATURE:g}, lr 2e-5",
         "splade-distilled": f"SPLADE-tiny student, InfoNCE + listwise KL, T={SPLADE_TEMPERATURE:g}, lr 1e-4 "
                             "(held-out choice)",
         "colbert-distilled": "ColBERT student (MiniLM), InfoNCE + listwise KL"}


def config_hash(row: str) -> str:
    spec = {"row": ROWS[row], "student": STUDENT if ROWS[row][1] else None}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]


def evaluate(retriever: str, model: str) -> dict:
    out = {}
    for name, path in [("scifact", SCIFACT), ("cranfield", CRANFIELD)]:
        ds = load_dataset(path, "test")
        out[name] = evaluate_run(ds.qrels, retrieve(ds, retriever, model, k=1000), METRICS)
        with open(os.path.join(index_path(ds, retriever, model), "meta.json")) as f:
            meta = json.load(f)
        out[name]["index"] = {k: meta[k] for k in ("doc_terms", "query_terms", "tokens_per_doc", "faiss_kind",
                                                    "params") if k in meta}
    return out


def run_row(row: str) -> dict:
    retriever, spec = ROWS[row]
    if spec is None:
        return {"system": NAMES[row], "model": SPLADE, **evaluate(retriever, SPLADE)}
    cfg = {**STUDENT, **spec, "output": f"models/scifact-{row}-{config_hash(row)}", "dataset": SCIFACT,
           "cache": CACHE.folder}
    cfg["examples"] = {**cfg["examples"], "teacher": teachers_on_train()[cfg["examples"]["teacher"]]}
    final = train(TrainConfig.from_dict(cfg))
    return {"system": NAMES[row], "model": final, **evaluate(retriever, final)}


def holdout_variant(name: str) -> dict:
    """Train on 85% of the SciFact train queries, retrieve for the other 15% from the full corpus."""
    from dataclasses import replace

    from irdistill.training.train import held_out_queries

    data = load_dataset(SCIFACT, "train")
    dev = held_out_queries(data, DEV_FRACTION, STUDENT["seed"])
    data = replace(data, queries={q: data.queries[q] for q in sorted(dev)}, qrels={q: data.qrels[q] for q in dev})
    model, choice = SPLADE, HOLDOUT[name]
    if choice is not None:
        temperature, lr = choice if isinstance(choice, tuple) else (choice, None)
        extra = {"learning_rate": lr} if lr else {}
        # eval_steps: no evaluation while training
        spec = splade_spec(temperature, dev_fraction=DEV_FRACTION, eval_steps=10**9, **extra)
        cfg = {**STUDENT, **spec, "output": f"models/scifact-holdout-splade-{holdout_hash(name)}", "dataset": SCIFACT,
               "cache": CACHE.folder}
        cfg["examples"] = {**cfg["examples"], "teacher": teachers_on_train()[cfg["examples"]["teacher"]]}
        model = train(TrainConfig.from_dict(cfg))
    return {"variant": name, "queries": len(dev), "model": model,
            **evaluate_run(data.qrels, retrieve(data, "splade", model, k=100), "ndcg@10,recall@100")}


def holdout_hash(name: str) -> str:
    spec = {"variant": name, "student": STUDENT, "dev": DEV_FRACTION, "spec": splade_spec(0.0)}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]


def holdout(run: bool = True) -> str:
    """Held-out nDCG@10 / recall@100 of each variant (stored in experiments/scifact/selection/<variant>.json; with
    ``run=False`` only those already stored)."""
    done = resumable_rows(HOLDOUT, HOLDOUT if run else [], os.path.join(HERE, "selection"), holdout_variant,
                          {n: holdout_hash(n) for n in HOLDOUT})
    return format_table([{"variant (SPLADE-tiny)": r["variant"], "held-out nDCG@10": r["ndcg@10"],
                          "held-out R@100": r["recall@100"]} for r in done])


def sparsity(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        parts = []
        for name in ("scifact", "cranfield"):
            ix = r[name].get("index", {})
            if "doc_terms" in ix:
                q = next(iter(ix["query_terms"].values()), float("nan"))
                parts.append(f"{name}: {ix['doc_terms']:.1f} terms/doc, {q:.1f} terms/query")
            elif "tokens_per_doc" in ix:
                parts.append(f"{name}: {ix['tokens_per_doc']:.1f} tokens/doc, FAISS {ix['faiss_kind']} {ix['params']}")
        lines.append(f"- {r['system']}: " + "; ".join(parts))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="all", help=f"comma-separated rows from: {', '.join(ROWS)} (none: only write "
                                                  "the table of the finished rows)")
    ap.add_argument("--write", help="write the table of finished rows into this Markdown file")
    ap.add_argument("--holdout", action="store_true", help="first run the held-out choice of the SPLADE temperature")
    args = ap.parse_args()
    selection = holdout(args.holdout)
    wanted = list(ROWS) if args.rows == "all" else [] if args.rows == "none" else args.rows.split(",")
    unknown = set(wanted) - set(ROWS)
    if unknown:
        ap.error(f"unknown rows: {', '.join(sorted(unknown))}")
    results_dir = os.path.join(HERE, "results")
    configs = {r: config_hash(r) for r in ROWS}
    done = resumable_rows(ROWS, wanted, results_dir, run_row, configs)
    names = {configs[r]: NAMES[r] for r in ROWS}
    done = [{**d, "system": names[d["config"]]} for d in done if d.get("config") in names]  # stale rows left out
    missing = [r for r in ROWS if configs[r] not in {d["config"] for d in done}]
    text = (f"Command: `python experiments/scifact/late_sparse.py --write docs/results.md` (seed 42; trained on "
            f"SciFact train only; teacher: the BM25 + MiniLM ensemble; loss: InfoNCE + listwise KL; rows still "
            f"missing: {', '.join(missing) or 'none'})\n\n```\n{table(done)}\n```\n\nIndexes:\n\n{sparsity(done)}"
            f"\n\nThe SPLADE student temperature, chosen on {DEV_FRACTION:.0%} of the train queries held out of training "
            f"(`--holdout`; retrieval from the full corpus):\n\n```\n{selection}\n```")
    print(text)
    if args.write:
        write_section(args.write, "scifact-late-sparse", text)


if __name__ == "__main__":
    main()
