"""ColBERT and SPLADE rows of the SciFact table: the packaged SPLADE-tiny zero-shot, SPLADE-tiny distilled, and a
ColBERT student distilled from MiniLM; nDCG@10 / recall@100 on SciFact test and Cranfield, each through its own
index (ColBERT: FAISS over token embeddings + exact MaxSim; SPLADE: a Lucene impact index).

    python experiments/scifact/late_sparse.py [--rows all|splade-zero-shot,...] [--holdout] [--write docs/results.md]

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

import os

from recipe import LR, METRICS, MODEL, SCIFACT, STUDENT, TEACHER_TOP, student_row, table, teachers_on_train, test_sets

from irdistill.data import load_dataset
from irdistill.evaluation import evaluate_run, format_table
from irdistill.experiment import config_hash, held_out, missing_rows, resumable_rows, table_main
from irdistill.index import open_index, retrieve
from irdistill.training import TrainConfig, train

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
CONFIGS = {r: config_hash(row=ROWS[r], student=STUDENT if ROWS[r][1] else None) for r in ROWS}
HOLDOUT_CONFIGS = {n: config_hash(variant=n, student=STUDENT, dev=DEV_FRACTION, spec=splade_spec(0.0)) for n in HOLDOUT}


def evaluate(retriever: str, model: str) -> dict:
    """Each test set's metrics, with what the index records of it (sparsity, token counts, FAISS settings)."""
    out = {}
    for name, ds in test_sets().items():
        index = open_index(ds, retriever, model)
        out[name] = evaluate_run(ds.qrels, index.retrieve(ds, 1000), METRICS)
        out[name]["index"] = {k: index.meta[k] for k in ("doc_terms", "query_terms", "tokens_per_doc", "faiss_kind",
                                                          "params") if k in index.meta}
    return out


def run_row(row: str) -> dict:
    retriever, spec = ROWS[row]
    if spec is None:
        return {"system": NAMES[row], "model": SPLADE, **evaluate(retriever, SPLADE)}
    final = train(TrainConfig.from_dict(student_row(row, spec, teachers_on_train(), CONFIGS[row])))
    return {"system": NAMES[row], "model": final, **evaluate(retriever, final)}


def holdout_variant(name: str) -> dict:
    """Train on 85% of the SciFact train queries, retrieve for the other 15% from the full corpus."""
    dev = held_out(load_dataset(SCIFACT, "train"), DEV_FRACTION, STUDENT["seed"])
    model, choice = SPLADE, HOLDOUT[name]
    if choice is not None:
        temperature, lr = choice if isinstance(choice, tuple) else (choice, None)
        extra = {"learning_rate": lr} if lr else {}
        # eval_steps: no evaluation while training
        spec = splade_spec(temperature, dev_fraction=DEV_FRACTION, eval_steps=10**9, **extra)
        cfg = student_row("splade", spec, teachers_on_train(), HOLDOUT_CONFIGS[name], prefix="scifact-holdout")
        model = train(TrainConfig.from_dict(cfg))
    return {"variant": name, "queries": len(dev.queries), "model": model,
            **evaluate_run(dev.qrels, retrieve(dev, "splade", model, k=100), "ndcg@10,recall@100")}


def holdout(run: bool = True) -> str:
    """Held-out nDCG@10 / recall@100 of each variant (stored in experiments/scifact/selection/<variant>.json; with
    ``run=False`` only those already stored)."""
    done = resumable_rows(HOLDOUT, HOLDOUT if run else [], os.path.join(HERE, "selection"), holdout_variant,
                          HOLDOUT_CONFIGS)
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


def render(done: list[dict], args) -> str:
    names = {CONFIGS[r]: NAMES[r] for r in ROWS}
    done = [{**d, "system": names[d["config"]]} for d in done]
    return (f"Command: `python experiments/scifact/late_sparse.py --write docs/results.md` (seed 42; trained on "
            f"SciFact train only; teacher: the BM25 + MiniLM ensemble; loss: InfoNCE + listwise KL; rows still "
            f"missing: {missing_rows(ROWS, CONFIGS, done)})\n\n```\n{table(done)}\n```\n\nIndexes:\n\n{sparsity(done)}"
            f"\n\nThe SPLADE student temperature, chosen on {DEV_FRACTION:.0%} of the train queries held out of training "
            f"(`--holdout`; retrieval from the full corpus):\n\n```\n{holdout(args.holdout)}\n```")


def holdout_option(ap):
    ap.add_argument("--holdout", action="store_true", help="first run the held-out choice of the SPLADE temperature")


if __name__ == "__main__":
    table_main(__doc__, ROWS, run_row, CONFIGS, os.path.join(HERE, "results"), "scifact-late-sparse", render,
               [holdout_option])
