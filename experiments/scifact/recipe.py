"""What the SciFact experiments share: the collections, the student settings and loss recipes, and the teachers
scored on the train candidates (BM25, the BM25 + MiniLM ensemble, and the stacked teacher)."""

from __future__ import annotations

import functools
import os

import yaml

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset, read_run, write_run
from irdistill.evaluation import evaluate_run, format_table
from irdistill.experiment import candidate_file, config_hash, shared_dataset, student_config
from irdistill.teachers import score_run
from irdistill.training import crossfit
from irdistill.training.train import held_out_queries

HERE = os.path.dirname(os.path.abspath(__file__))
SCIFACT, CRANFIELD = shared_dataset("scifact"), shared_dataset("cranfield")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CACHE = ScoreCache("cache/scifact")
METRICS = "ndcg@10,recall@100,ndcg_burges@10"
ENSEMBLE = yaml.safe_load(open(os.path.join(HERE, "..", "teachers", "ensemble-bm25-minilm.yaml")))
STUDENT = {"max_seq_length": 128, "epochs": 1, "batch_size": 16, "learning_rate": 2e-5, "seed": 42, "save_steps": 10,
           "precision": "bf16"}  # bf16 where native (2x faster here), else fp32
INFONCE = {"name": "infonce"}
KL = {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.3}
# Distillation rows: the teacher's top 7 candidates that it scores below the labelled positive (fn_margin 0: a
# false-negative filter), in-batch InfoNCE on the labels plus the distillation loss (chosen on held-out train queries
# by holdout.py: KL alone and unfiltered negatives lost to InfoNCE there; Margin-MSE weight 0.05 beat 0.2)
TEACHER_TOP = {"teacher": "ensemble", "negatives": 7, "fn_margin": 0}
MMSE = [INFONCE, {"name": "margin-mse", "student_temperature": 0.05, "weight": 0.05}]
CPRD = {"name": "cprd", "k": 4, "weight": 0.1}
LR = 5e-5  # for the MiniLM students (51 steps): beat 2e-5 on held-out queries, for InfoNCE and InfoNCE + KL alike
INFONCE_ROW = {"loss": "infonce", "examples": {"teacher": "bm25", "negatives": 7}, "learning_rate": LR}
FOLDS = 2
TEST_SETS = {"scifact": (SCIFACT, "test"), "cranfield": (CRANFIELD, "test")}


def test_sets() -> dict:
    return {name: load_dataset(path, split) for name, (path, split) in TEST_SETS.items()}


def student_row(name: str, spec: dict, teachers: dict, config: str, prefix: str = "scifact", **settings) -> dict:
    """The training config of row ``name`` (its config hash ``config``): the shared STUDENT settings, its ``spec``,
    SciFact train, MiniLM (unless the spec names another model), its teacher's cache key; trained into
    ``models/<prefix>-<name>-<config>``."""
    recipe = {**STUDENT, "dataset": SCIFACT, "cache": CACHE.folder, "model": MODEL, **spec}
    return student_config(recipe, f"models/{prefix}-{name}-{config}", teachers, **settings)


@functools.lru_cache(maxsize=None)
def teachers_on_train(dev_fraction: float = 0.0, stacked: bool = True) -> dict[str, str]:
    """Score the train candidates with BM25, the ensemble and (``stacked``) the stacked teacher (both fit on train)
    into the cache; returns their cache keys. With ``dev_fraction`` (holdout.py), the stacked teacher never sees the
    held-out queries."""
    train_ds = load_dataset(SCIFACT, "train")
    ENSEMBLE["fit"]["run"] = "runs/scifact-train-bm25-100.parquet"
    candidate_file(train_ds, ENSEMBLE["fit"]["run"])
    run = candidate_file(train_ds, "runs/scifact-train-bm25-100p.parquet", positives=True)
    bm25 = score_run({"kind": "bm25"}, run, train_ds, CACHE).key
    ens = score_run(ENSEMBLE, run, train_ds, CACHE).key
    if not stacked:  # the cross-fit trains two students: skip it when no row needs it
        return {"bm25": bm25, "ensemble": ens}
    infonce = config_hash(row=("dense", INFONCE_ROW), student=STUDENT)  # run.py's infonce row names the folder
    fold_cfg = student_row("crossfit", INFONCE_ROW, {"bm25": bm25}, infonce)
    fit = dict(ENSEMBLE["fit"])
    if dev_fraction:  # the fold students and the weights leave the held-out queries out
        dev = held_out_queries(train_ds, dev_fraction, STUDENT["seed"])
        fold_cfg.update(dev_fraction=dev_fraction, output=f"{fold_cfg['output']}-dev{dev_fraction}")
        fit_run = read_run(fit["run"])
        fit["run"] = fit["run"].replace(".parquet", f"-dev{dev_fraction}.parquet")
        write_run(fit_run[~fit_run["qid"].isin(dev)], fit["run"])
    oof = crossfit(fold_cfg, run, train_ds, CACHE, FOLDS).key
    stacked_key = score_run({**stacked_spec({"cached": oof}), "fit": fit}, run, train_ds, CACHE).key
    return {"bm25": bm25, "ensemble": ens, "stacked": stacked_key}


def stacked_spec(student: dict, weights=None) -> dict:
    """BM25 + MiniLM + a fine-tuned student (cross-fitted scores on train, fit there; the full model on test)."""
    spec = {**ENSEMBLE, "members": [*ENSEMBLE["members"], student]}
    return {**spec, "weights": weights, "fit": None} if weights else spec


def rerank_test_sets(teacher, metrics: str = METRICS) -> dict:
    """``teacher`` (a spec or Teacher) re-ranking BM25's top 100 of each test set, scored into the cache."""
    out = {}
    for name, ds in test_sets().items():
        run = candidate_file(ds, f"runs/{name}-test-bm25-100.parquet")
        stats = score_run(teacher, run, ds, CACHE)
        out[name] = evaluate_run(ds.qrels, CACHE.run(stats.key, stats.qids), metrics)
    return out


def table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        s, c = r["scifact"], r["cranfield"]
        lines.append({"system": r["system"], "SciFact nDCG@10": s["ndcg@10"], "SciFact R@100": s["recall@100"],
                      "Cranfield nDCG@10": c["ndcg@10"], "Cranfield nDCG@10 exp": c["ndcg_burges@10"],
                      "Cranfield R@100": c["recall@100"]})
    return format_table(lines)
