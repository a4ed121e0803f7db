"""Choosing the SciFact training recipe without looking at test: each variant trains on 85% of the SciFact train
queries and is scored on the other 15% (seeded), retrieving from the full corpus.

    python experiments/scifact/holdout.py [--variants all|name,...] [--write docs/results.md]

Finished variants are kept in experiments/scifact/selection/<name>.json (skipped next time). The corpus is encoded
under bf16 autocast here (2.6x faster on this CPU; the test-set rows of run.py encode in fp32).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import CACHE, MODEL, SCIFACT, STUDENT, teachers_on_train  # noqa: E402

from irdistill.data import load_dataset  # noqa: E402
from irdistill.evaluation import evaluate_run, format_table  # noqa: E402
from irdistill.index.encode import encode_texts  # noqa: E402
from irdistill.models import load_sentence_transformer  # noqa: E402
from irdistill.report import resumable_rows, write_section  # noqa: E402
from irdistill.training import TrainConfig, train  # noqa: E402
from irdistill.training.train import held_out_queries  # noqa: E402

DEV_FRACTION = 0.15
INFONCE = {"name": "infonce"}
KL = {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.3}
MMSE = {"name": "margin-mse", "student_temperature": 0.05}
VARIANTS = {  # name -> training spec (None: the base model as it is)
    "zero-shot": None,
    "infonce": {"loss": INFONCE, "examples": {"teacher": "bm25", "negatives": 7}},
    "kl": {"loss": KL, "examples": {"teacher": "ensemble", "negatives": 7}},
    "infonce+kl": {"loss": [INFONCE, KL], "examples": {"teacher": "ensemble", "negatives": 7}},
    "infonce+margin-mse": {"loss": [INFONCE, MMSE], "examples": {"teacher": "ensemble", "negatives": 7}},
    # only negatives the teacher scores below the labelled positive (a false-negative filter)
    "infonce+kl-fnfilter": {"loss": [INFONCE, KL], "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    "infonce+margin-mse-fnfilter": {"loss": [INFONCE, {**MMSE, "weight": 0.2}],
                                    "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    "infonce+margin-mse-fnfilter-w0.05": {"loss": [INFONCE, {**MMSE, "weight": 0.05}],
                                          "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    "cprd-fnfilter": {"loss": {"name": "cprd", "k": 4}, "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    "infonce+kl-random": {"loss": [INFONCE, KL], "examples": {"teacher": "ensemble", "negatives": 7, "strategy": "random"}},
    # a higher learning rate (1 epoch is 43 steps): does the teacher's signal help more with more movement?
    "infonce-lr5e-5": {"loss": INFONCE, "examples": {"teacher": "bm25", "negatives": 7}, "learning_rate": 5e-5},
    "infonce+kl-fnfilter-lr5e-5": {"loss": [INFONCE, KL], "learning_rate": 5e-5,
                                   "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    "infonce+margin-mse-fnfilter-w0.05-lr5e-5": {"loss": [INFONCE, {**MMSE, "weight": 0.05}], "learning_rate": 5e-5,
                                                 "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    "cprd-fnfilter-lr5e-5": {"loss": {"name": "cprd", "k": 4}, "learning_rate": 5e-5,
                             "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    "cprd-w0.1-fnfilter-lr5e-5": {"loss": {"name": "cprd", "k": 4, "weight": 0.1}, "learning_rate": 5e-5,
                                  "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
    # the stacked teacher (BM25 + MiniLM + cross-fitted InfoNCE students, none of which saw the held-out queries)
    "infonce+kl-stacked-lr5e-5": {"loss": [INFONCE, KL], "learning_rate": 5e-5,
                                  "examples": {"teacher": "stacked", "negatives": 7, "fn_margin": 0}},
    "infonce+margin-mse-w0.05-stacked-lr5e-5": {"loss": [INFONCE, {**MMSE, "weight": 0.05}], "learning_rate": 5e-5,
                                                "examples": {"teacher": "stacked", "negatives": 7, "fn_margin": 0}},
    "cprd-w0.1-stacked-lr5e-5": {"loss": {"name": "cprd", "k": 4, "weight": 0.1}, "learning_rate": 5e-5,
                                 "examples": {"teacher": "stacked", "negatives": 7, "fn_margin": 0}},
    # three epochs (129 steps): with more steps, does the teacher's signal pull ahead of the labels alone?
    "infonce-lr5e-5-3ep": {"loss": INFONCE, "examples": {"teacher": "bm25", "negatives": 7}, "learning_rate": 5e-5,
                           "epochs": 3},
    "infonce+kl-fnfilter-lr5e-5-3ep": {"loss": [INFONCE, KL], "learning_rate": 5e-5, "epochs": 3,
                                       "examples": {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}},
}


def config_hash(name: str) -> str:
    spec = {"variant": VARIANTS[name], "student": STUDENT if VARIANTS[name] else None, "dev": DEV_FRACTION}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]


def dev_metrics(model_name: str) -> dict:
    data = load_dataset(SCIFACT, "train")
    dev = sorted(held_out_queries(data, DEV_FRACTION, STUDENT["seed"]))
    model = load_sentence_transformer(model_name)
    ids = data.corpus.ids.to_pylist()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        docs = encode_texts(model, data.corpus.texts(ids), "document")
        queries = encode_texts(model, [data.queries[q] for q in dev], "query")
    top = np.argsort(-(queries @ docs.T), axis=1)[:, :100]
    run = pd.DataFrame([(q, ids[j], float(queries[i] @ docs[j])) for i, q in enumerate(dev) for j in top[i]],
                       columns=["qid", "docid", "score"])
    return evaluate_run({q: data.qrels[q] for q in dev}, run, "ndcg@10,recall@100")


def run_variant(name: str) -> dict:
    spec = VARIANTS[name]
    if spec is None:
        return {"variant": name, **dev_metrics(MODEL)}
    ids = teachers_on_train(DEV_FRACTION, stacked=spec["examples"]["teacher"] == "stacked")
    cfg = {**STUDENT, **spec, "output": f"models/select-{name}-{config_hash(name)}", "dataset": SCIFACT,
           "cache": CACHE.folder, "model": MODEL, "dev_fraction": DEV_FRACTION, "eval_steps": 10**9}
    cfg["examples"] = {**cfg["examples"], "teacher": ids[cfg["examples"]["teacher"]]}
    return {"variant": name, **dev_metrics(train(TrainConfig.from_dict(cfg)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="all")
    ap.add_argument("--write")
    args = ap.parse_args()
    wanted = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    unknown = set(wanted) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants: {', '.join(sorted(unknown))}")
    here = os.path.dirname(os.path.abspath(__file__))
    done = resumable_rows(VARIANTS, wanted, os.path.join(here, "selection"), run_variant,
                          {v: config_hash(v) for v in VARIANTS})
    rows = [{"variant": d["variant"], "dev nDCG@10": d["ndcg@10"], "dev R@100": d["recall@100"]} for d in done]
    text = (f"Command: `python experiments/scifact/holdout.py --write docs/results.md` ({int(DEV_FRACTION * 100)}% of "
            f"SciFact train held out, seed {STUDENT['seed']}; full-corpus retrieval)\n\n```\n{format_table(rows)}\n```")
    print(text)
    if args.write:
        write_section(args.write, "scifact-selection", text)


if __name__ == "__main__":
    main()
