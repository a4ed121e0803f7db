"""Evaluate one retrieval on a dataset and keep what it produced: the run (TREC and Parquet) and the metrics (JSON)."""

from __future__ import annotations

import json
import os

import pandas as pd

from ..data.dataset import Dataset
from ..data.io import atomic_path, check_output
from ..data.runs import read_run, write_run
from ..index.base import index_class, retrieve
from ..progress import step
from .metrics import evaluate_run, parse_metrics


def evaluate_retrieval(dataset: Dataset, retriever: str = "bm25", model: str | None = None, kind: str | None = None,
                       k: int = 1000, metrics="ndcg@10,recall@100,mrr@10", run: str | None = None,
                       output: str | None = None, index: str | None = None, rebuild: bool = False,
                       batch_size: int | None = None, progress: bool = True) -> dict:
    """Retrieve with ``retriever`` (or read the run file ``run``), score the run, and write ``run.trec``,
    ``run.parquet`` (retrieved runs only) and ``metrics.json`` to ``output`` (default ``runs/<name>``).
    Returns ``{"run": name, "metrics": {...}, "output": folder}``."""
    metrics = parse_metrics(metrics)  # fail on a bad metric before any work
    name = os.path.splitext(os.path.basename(run))[0] if run else index_class(retriever).run_name(dataset, model, kind)
    out = check_output(output or os.path.join("runs", name), "folder")  # and a wrong output folder
    found = read_run(run) if run else retrieve(dataset, retriever, model, kind, k, index, rebuild, batch_size, progress)
    step(f"computing {', '.join(metrics)} over {len(dataset.qrels)} judged queries", progress)
    scores = evaluate_run(dataset.qrels, found, metrics)
    step(f"writing {out}", progress)
    save_evaluation(out, name, dataset, scores, None if run else found, None if run else evaluated(retriever, model))
    return {"run": name, "metrics": scores, "output": out}


def evaluated(retriever: str, model: str | None) -> dict:
    """What a retrieved run was made with: the retriever, and the model by name and weights (for ``irdistill card``
    to check that results go into the card of the model that produced them)."""
    from ..models import fingerprint

    from ..precision import encoding_precision

    return {"retriever": retriever, **({"model": model, "weights": fingerprint(model), "precision": encoding_precision()}
                                       if model else {})}


def save_evaluation(folder: str, name: str, dataset: Dataset, scores: dict, run: pd.DataFrame | None = None,
                    made_by: dict | None = None) -> None:
    """``metrics.json`` (and the run, when given) into ``folder``, each file written atomically; ``made_by``
    (``evaluated``) says what retrieved the run."""
    os.makedirs(folder, exist_ok=True)
    if run is not None:
        write_run(run, os.path.join(folder, "run.trec"), tag=name)
        write_run(run, os.path.join(folder, "run.parquet"))
    with atomic_path(os.path.join(folder, "metrics.json")) as tmp, open(tmp, "w") as f:
        json.dump({"run": name, "dataset": dataset.source or dataset.name, "split": dataset.split,
                   "queries": len(dataset.qrels), "metrics": scores, **(made_by or {})}, f, indent=1)
