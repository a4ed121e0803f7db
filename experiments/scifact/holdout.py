"""Choosing the SciFact training recipe without looking at test: each variant trains on 85% of the SciFact train
queries and is scored on the other 15% (seeded), retrieving from the full corpus.

    python experiments/scifact/holdout.py [--rows all|name,...] [--write docs/results.md]

Finished variants are kept in experiments/scifact/selection/<name>.json (skipped next time). The corpus is encoded
under bf16 autocast here (2.6x faster on this CPU; the test-set rows of run.py encode in fp32), into indexes of their
own (indexes/holdout-bf16/).
"""

from __future__ import annotations

import os

import torch
from recipe import INFONCE, KL, MODEL, SCIFACT, STUDENT, student_row, teachers_on_train

from irdistill.data import load_dataset
from irdistill.evaluation import evaluate_run, format_table
from irdistill.experiment import config_hash, held_out, table_main
from irdistill.index import retrieve
from irdistill.training import TrainConfig, train

HERE = os.path.dirname(os.path.abspath(__file__))
DEV_FRACTION = 0.15
MMSE = {"name": "margin-mse", "student_temperature": 0.05}
ENS = {"teacher": "ensemble", "negatives": 7}
ENS_FN = {**ENS, "fn_margin": 0}  # only negatives the teacher scores below the labelled positive (a false-negative filter)
STACKED_FN = {"teacher": "stacked", "negatives": 7, "fn_margin": 0}
BM25 = {"teacher": "bm25", "negatives": 7}
VARIANTS = {  # name -> training spec (None: the base model as it is)
    "zero-shot": None,
    "infonce": {"loss": INFONCE, "examples": BM25},
    "kl": {"loss": KL, "examples": ENS},
    "infonce+kl": {"loss": [INFONCE, KL], "examples": ENS},
    "infonce+margin-mse": {"loss": [INFONCE, MMSE], "examples": ENS},
    "infonce+kl-fnfilter": {"loss": [INFONCE, KL], "examples": ENS_FN},
    "infonce+margin-mse-fnfilter": {"loss": [INFONCE, {**MMSE, "weight": 0.2}], "examples": ENS_FN},
    "infonce+margin-mse-fnfilter-w0.05": {"loss": [INFONCE, {**MMSE, "weight": 0.05}], "examples": ENS_FN},
    "cprd-fnfilter": {"loss": {"name": "cprd", "k": 4}, "examples": ENS_FN},
    "infonce+kl-random": {"loss": [INFONCE, KL], "examples": {**ENS, "strategy": "random"}},
    # a higher learning rate (1 epoch is 43 steps): does the teacher's signal help more with more movement?
    "infonce-lr5e-5": {"loss": INFONCE, "examples": BM25, "learning_rate": 5e-5},
    "infonce+kl-fnfilter-lr5e-5": {"loss": [INFONCE, KL], "learning_rate": 5e-5, "examples": ENS_FN},
    "infonce+margin-mse-fnfilter-w0.05-lr5e-5": {"loss": [INFONCE, {**MMSE, "weight": 0.05}], "learning_rate": 5e-5,
                                                 "examples": ENS_FN},
    "cprd-fnfilter-lr5e-5": {"loss": {"name": "cprd", "k": 4}, "learning_rate": 5e-5, "examples": ENS_FN},
    "cprd-w0.1-fnfilter-lr5e-5": {"loss": {"name": "cprd", "k": 4, "weight": 0.1}, "learning_rate": 5e-5,
                                  "examples": ENS_FN},
    # the stacked teacher (BM25 + MiniLM + cross-fitted InfoNCE students, none of which saw the held-out queries)
    "infonce+kl-stacked-lr5e-5": {"loss": [INFONCE, KL], "learning_rate": 5e-5, "examples": STACKED_FN},
    "infonce+margin-mse-w0.05-stacked-lr5e-5": {"loss": [INFONCE, {**MMSE, "weight": 0.05}], "learning_rate": 5e-5,
                                                "examples": STACKED_FN},
    "cprd-w0.1-stacked-lr5e-5": {"loss": {"name": "cprd", "k": 4, "weight": 0.1}, "learning_rate": 5e-5,
                                 "examples": STACKED_FN},
    # three epochs (129 steps): with more steps, does the teacher's signal pull ahead of the labels alone?
    "infonce-lr5e-5-3ep": {"loss": INFONCE, "examples": BM25, "learning_rate": 5e-5, "epochs": 3},
    "infonce+kl-fnfilter-lr5e-5-3ep": {"loss": [INFONCE, KL], "learning_rate": 5e-5, "epochs": 3, "examples": ENS_FN},
}
CONFIGS = {v: config_hash(variant=VARIANTS[v], student=STUDENT if VARIANTS[v] else None, dev=DEV_FRACTION)
           for v in VARIANTS}


def dev_metrics(model: str) -> dict:
    """nDCG@10 and recall@100 of ``model`` on the held-out queries, over the full corpus (flat index, bf16)."""
    dev = held_out(load_dataset(SCIFACT, "train"), DEV_FRACTION, STUDENT["seed"])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        run = retrieve(dev, "dense", model, "flat", k=100, index=f"indexes/holdout-bf16/{os.path.basename(model)}")
    return evaluate_run(dev.qrels, run, "ndcg@10,recall@100")


def run_variant(name: str) -> dict:
    spec = VARIANTS[name]
    if spec is None:
        return {"variant": name, **dev_metrics(MODEL)}
    ids = teachers_on_train(DEV_FRACTION, stacked=spec["examples"]["teacher"] == "stacked")
    cfg = student_row(name, spec, ids, CONFIGS[name], prefix="select", dev_fraction=DEV_FRACTION, eval_steps=10**9)
    return {"variant": name, **dev_metrics(train(TrainConfig.from_dict(cfg)))}


def render(done: list[dict], args) -> str:
    rows = [{"variant": d["variant"], "dev nDCG@10": d["ndcg@10"], "dev R@100": d["recall@100"]} for d in done]
    return (f"Command: `python experiments/scifact/holdout.py --write docs/results.md` ({int(DEV_FRACTION * 100)}% of "
            f"SciFact train held out, seed {STUDENT['seed']}; full-corpus retrieval)\n\n```\n{format_table(rows)}\n```")


if __name__ == "__main__":
    table_main(__doc__, VARIANTS, run_variant, CONFIGS, os.path.join(HERE, "selection"), "scifact-selection", render)
