"""The SciFact distillation table: zero-shot, InfoNCE, Margin-MSE, listwise KL and CPRD MiniLM students, the teacher,
and a cross-encoder trained from the train labels; nDCG@10 / recall@100 on SciFact test and Cranfield.

    python experiments/scifact/run.py [--rows all|zero-shot,margin-mse,...] [--significance] [--write docs/results.md]

Every row is its own resumable step: a finished row is stored in experiments/scifact/results/<row>.json and skipped
next time; training resumes from its last checkpoint. Training uses SciFact train only (seed 42); nothing is tuned
on test. Scores, candidates, models and indexes go to cache/, runs/, models/ and indexes/ (all git-ignored).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os

import yaml

from irdistill.cache import ScoreCache
from irdistill.data.io import atomic_path
from irdistill.data import load_dataset, read_run, write_run
from irdistill.data.runs import add_positives
from irdistill.evaluation import compare_runs, evaluate_run, format_table
from irdistill.index import open_bm25, retrieve
from irdistill.report import resumable_rows, write_section
from irdistill.teachers import build_teacher, score_run
from irdistill.teachers.crossfit import crossfit
from irdistill.teachers.ensemble import score_ensemble
from irdistill.training import TrainConfig, train
from irdistill.training.train import held_out_queries

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "..", "shared", "datasets")
SCIFACT, CRANFIELD = os.path.join(SHARED, "scifact"), os.path.join(SHARED, "cranfield")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CACHE = ScoreCache("cache/scifact")
METRICS = "ndcg@10,recall@100,ndcg_burges@10"
ENSEMBLE = yaml.safe_load(open(os.path.join(HERE, "..", "teachers", "ensemble-bm25-minilm.yaml")))
STUDENT = {"max_seq_length": 128, "epochs": 1, "batch_size": 16, "learning_rate": 2e-5, "seed": 42, "save_steps": 10,
           "precision": "bf16"}  # bf16 autocast: 2x faster training on this CPU (avx512_bf16)
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
# The stacked teacher: BM25 + MiniLM + the InfoNCE student, weights fit on train. On train queries the student's
# scores are cross-fitted (each half of the queries scored by a student trained on the other half); on test the
# student trained on all of train (the infonce row) takes its place.
FOLDS = 2
STACKED_TOP = {**TEACHER_TOP, "teacher": "stacked"}
ROWS = {  # row -> (kind, training config or None)
    "zero-shot": ("dense", None),
    "infonce": ("dense", INFONCE_ROW),
    "margin-mse": ("dense", {"loss": MMSE, "examples": TEACHER_TOP, "learning_rate": LR}),
    "listwise-kl": ("dense", {"loss": [INFONCE, KL], "examples": TEACHER_TOP, "learning_rate": LR}),
    "cprd": ("dense", {"loss": CPRD, "examples": TEACHER_TOP, "learning_rate": LR}),
    "teacher": ("teacher", None),
    "margin-mse-stacked": ("dense", {"loss": MMSE, "examples": STACKED_TOP, "learning_rate": LR}),
    "listwise-kl-stacked": ("dense", {"loss": [INFONCE, KL], "examples": STACKED_TOP, "learning_rate": LR}),
    "cprd-stacked": ("dense", {"loss": CPRD, "examples": STACKED_TOP, "learning_rate": LR}),
    "stacked-teacher": ("teacher", {"folds": FOLDS, "student": INFONCE_ROW}),
    # three epochs (153 steps): on held-out train queries InfoNCE went from 0.7311 (1 epoch) to 0.7830
    "infonce-3ep": ("dense", {**INFONCE_ROW, "epochs": 3}),
    "listwise-kl-3ep": ("dense", {"loss": [INFONCE, KL], "examples": TEACHER_TOP, "learning_rate": LR, "epochs": 3}),
    "margin-mse-3ep": ("dense", {"loss": MMSE, "examples": TEACHER_TOP, "learning_rate": LR, "epochs": 3}),
    "cprd-3ep": ("dense", {"loss": CPRD, "examples": TEACHER_TOP, "learning_rate": LR, "epochs": 3}),
    # a new, random scoring head: one epoch at 2e-5 with InfoNCE's temperature 0.05 did not learn (loss stayed near
    # ln 8); the usual re-ranker recipe instead: listwise softmax at temperature 1, a higher rate, three epochs
    "cross-encoder": ("rerank", {"student": "cross-encoder", "loss": {"name": "infonce", "temperature": 1.0},
                                 "examples": {"teacher": "bm25", "negatives": 7}, "learning_rate": 7e-5,
                                 "epochs": 3}),
}
LABELS = {"infonce": "InfoNCE (BM25 negatives)", "margin-mse": "InfoNCE + 0.05 Margin-MSE", "listwise-kl":
          "InfoNCE + listwise KL", "cprd": "InfoNCE + 0.1 CPRD (k=4)"}
LABELS.update({f"{r}-stacked": f"{LABELS[r]}, stacked teacher" for r in ("margin-mse", "listwise-kl", "cprd")})
LABELS.update({f"{r}-3ep": f"{LABELS[r]}, 3 epochs" for r in ("infonce", "margin-mse", "listwise-kl", "cprd")})


def candidates(path, data, k=100, positives=False):
    """BM25 top-k (plus the judged positives, for training) as a run file, made once."""
    if not os.path.exists(path):
        run = open_bm25(data.corpus, f"indexes/{data.name}/bm25").search(data.queries, k)
        write_run(add_positives(run, data.qrels) if positives else run, path)
    return read_run(path)


@functools.lru_cache(maxsize=None)
def teachers_on_train(dev_fraction: float = 0.0, stacked: bool = True) -> dict[str, str]:
    """Score the train candidates with BM25, the ensemble and (``stacked``) the stacked teacher (both fit on train)
    into the cache; returns their ids. With ``dev_fraction`` (holdout.py), the stacked teacher never sees the
    held-out queries."""
    train_ds = load_dataset(SCIFACT, "train")
    ENSEMBLE["fit"]["run"] = "runs/scifact-train-bm25-100.parquet"
    candidates(ENSEMBLE["fit"]["run"], train_ds)
    run = candidates("runs/scifact-train-bm25-100p.parquet", train_ds, positives=True)
    bm25 = score_run(build_teacher({"kind": "bm25"}, train_ds), run, train_ds, CACHE).key
    ens, _ = score_ensemble(ENSEMBLE, run, train_ds, CACHE, load_split=lambda s: load_dataset(SCIFACT, s))
    if not stacked:  # the cross-fit trains two students: skip it when no row needs it
        return {"bm25": bm25, "ensemble": ens}
    fold_cfg = {**student_config("infonce", {"bm25": bm25}), "output": f"models/scifact-crossfit-{config_hash('infonce')}"}
    fit = dict(ENSEMBLE["fit"])
    if dev_fraction:  # the fold students and the weights leave the held-out queries out
        dev = held_out_queries(train_ds, dev_fraction, STUDENT["seed"])
        fold_cfg.update(dev_fraction=dev_fraction, output=f"{fold_cfg['output']}-dev{dev_fraction}")
        fit_run = read_run(fit["run"])
        fit["run"] = fit["run"].replace(".parquet", f"-dev{dev_fraction}.parquet")
        write_run(fit_run[~fit_run["qid"].isin(dev)], fit["run"])
    oof = crossfit(fold_cfg, run, train_ds, CACHE, FOLDS)
    stacked, _ = score_ensemble({**stacked_spec({"cached": oof}), "fit": fit}, run, train_ds, CACHE,
                                load_split=lambda s: load_dataset(SCIFACT, s))
    return {"bm25": bm25, "ensemble": ens, "stacked": stacked}


def teachers_on_train_quality(ids: dict) -> dict:
    """nDCG@10 of each cached teacher on the train queries' BM25 top 100 (the student's scores out-of-fold)."""
    train_ds, run = load_dataset(SCIFACT, "train"), read_run(ENSEMBLE["fit"]["run"])
    members = CACHE.describe(ids["stacked"])["members"]
    named = {"BM25": members[0], "MiniLM": members[1], "InfoNCE student (out-of-fold)": members[2],
             "BM25 + MiniLM": ids["ensemble"], "stacked": ids["stacked"]}
    qids = run["qid"].unique().tolist()
    return {name: evaluate_run(train_ds.qrels, CACHE.run(tid, qids).merge(run[["qid", "docid"]]), "ndcg@10")["ndcg@10"]
            for name, tid in named.items()}


def stacked_spec(student: dict, weights=None) -> dict:
    """BM25 + MiniLM + a fine-tuned student (cross-fitted scores on train, fit there; the full model on test)."""
    spec = {**ENSEMBLE, "members": [*ENSEMBLE["members"], student]}
    return {**spec, "weights": weights, "fit": None} if weights else spec


def student_config(row: str, ids: dict) -> dict:
    """The training config of a student row (its teacher id looked up in ``ids``)."""
    cfg = {**STUDENT, **ROWS[row][1], "output": f"models/scifact-{row}-{config_hash(row)}", "dataset": SCIFACT,
           "cache": CACHE.folder, "model": MODEL}
    cfg["examples"] = {**cfg["examples"], "teacher": ids[cfg["examples"]["teacher"]]}
    return cfg


def evaluate_dense(model: str) -> dict:
    out = {}
    for name, path in [("scifact", SCIFACT), ("cranfield", CRANFIELD)]:
        ds = load_dataset(path, "test")
        out[name] = evaluate_run(ds.qrels, retrieve(ds, "dense", model, "flat", k=1000), METRICS)
    return out


def evaluate_rerank(score) -> dict:
    """``score(teacher_or_spec, run, ds)`` -> run; re-ranks BM25's top 100 of each test set."""
    out = {}
    for name, path in [("scifact", SCIFACT), ("cranfield", CRANFIELD)]:
        ds = load_dataset(path, "test")
        run = candidates(f"runs/{name}-test-bm25-100.parquet", ds)
        out[name] = evaluate_run(ds.qrels, score(run, ds), METRICS)
    return out


def ensemble_row(system: str, spec: dict, **extra) -> dict:
    def score(run, ds):
        tid, _ = score_ensemble(spec, run, ds, CACHE)
        return CACHE.run(tid, run["qid"].unique().tolist())

    return {"system": system, **extra, **evaluate_rerank(score)}


def run_row(row: str) -> dict:
    kind, spec = ROWS[row]
    if spec is None and kind == "dense":
        return {"system": "all-MiniLM-L6-v2 zero-shot", **evaluate_dense(MODEL)}
    ids = teachers_on_train(stacked=kind == "teacher" or spec["examples"]["teacher"] == "stacked")
    if kind == "teacher" and spec is None:  # the ensemble with the weights fit on SciFact train, as is on test
        weights = CACHE.describe(ids["ensemble"])["weights"]
        return ensemble_row("teacher: BM25 + MiniLM ensemble (re-ranks BM25 top 100)",
                            {**ENSEMBLE, "weights": weights, "fit": None})
    if kind == "teacher":  # stacked: the InfoNCE student trained on all of train, with the weights fit on train
        weights = CACHE.describe(ids["stacked"])["weights"]
        student = train(TrainConfig.from_dict(student_config("infonce", ids)))
        return ensemble_row("teacher: BM25 + MiniLM + InfoNCE student, stacked (re-ranks BM25 top 100)",
                            stacked_spec({"kind": "bi-encoder", "model": student}, weights), weights=weights,
                            train=teachers_on_train_quality(ids))
    final = train(TrainConfig.from_dict(student_config(row, ids)))
    if kind == "dense":
        return {"system": f"MiniLM student, {LABELS[row]}", "model": final, **evaluate_dense(final)}

    def rerank(run, ds):
        # bf16 on the CPU: 2.7x faster, top-10 overlap 0.995 with fp32 (docs/benchmarks.md)
        teacher = build_teacher({"kind": "cross-encoder", "model": final, "max_length": 256, "dtype": "bfloat16"})
        return CACHE.run(score_run(teacher, run, ds, CACHE).key, run["qid"].unique().tolist())

    return {"system": "cross-encoder (MiniLM) trained on train labels, re-ranks BM25 top 100", "model": final,
            **evaluate_rerank(rerank)}


def config_hash(row: str) -> str:
    """A short hash of everything that decides a row's result (its training spec and the shared settings)."""
    spec = {"row": ROWS[row], "student": STUDENT if ROWS[row][1] else None}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]


def table(rows: list[dict]) -> str:
    lines = []
    for r in rows:
        s, c = r["scifact"], r["cranfield"]
        lines.append({"system": r["system"], "SciFact nDCG@10": s["ndcg@10"], "SciFact R@100": s["recall@100"],
                      "Cranfield nDCG@10": c["ndcg@10"], "Cranfield nDCG@10 exp": c["ndcg_burges@10"],
                      "Cranfield R@100": c["recall@100"]})
    return format_table(lines)


# Paired t-tests: each distillation row against InfoNCE (same epochs) and zero-shot. The stacked-teacher rows are not
# t-tested (docs/results.md).
PAIRS = [(f"{d}{e}", base) for e in ("", "-3ep") for d in ("margin-mse", "listwise-kl", "cprd")
         for base in (f"infonce{e}", "zero-shot")]


def significance(done: list[dict], configs: dict, path: str, run: bool) -> str:
    """Paired t-tests (ranx, per-query) of PAIRS: SciFact nDCG@10 and Cranfield nDCG@10 (exp). Runs come from the rows'
    saved indexes; each pair's result is kept in ``path`` under the two rows' configs."""
    old = json.load(open(path)) if os.path.exists(path) else {}
    models = {d["config"]: d.get("model", MODEL) for d in done}
    tests, missing, runs = {}, [], {}  # runs: (dataset, row) -> run, each retrieved once
    for a, b in PAIRS:
        key, want = f"{a} vs {b}", [configs[a], configs[b]]
        if old.get(key, {}).get("configs") == want:
            tests[key] = old[key]
        elif run and all(c in models for c in want):
            tests[key] = {"configs": want}
            for name, ds_path, metric in [("SciFact", SCIFACT, "ndcg@10"), ("Cranfield", CRANFIELD, "ndcg_burges@10")]:
                ds = load_dataset(ds_path, "test")
                for r in (a, b):
                    if (name, r) not in runs:
                        runs[name, r] = retrieve(ds, "dense", models[configs[r]], "flat", k=1000)
                report = compare_runs(ds.qrels, {r: runs[name, r] for r in (a, b)}, metric)
                tests[key][name] = {"diff": report.results[a][metric] - report.results[b][metric],
                                    "p": float(report.comparisons[a, b][metric]["p_value"])}
        else:
            missing.append(key)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump({**old, **tests}, f, indent=1)
    lines = [f"- {key}: " + "; ".join(f"{name} {t[name]['diff']:+.4f} (p {t[name]['p']:.3f})"
                                      for name in ("SciFact", "Cranfield")) for key, t in tests.items()]
    note = f"\n\nNot tested yet (`--significance`, needs the rows' models): {', '.join(missing)}" if missing else ""
    return "Paired t-tests over queries (ranx), difference in nDCG@10 (Cranfield: exp):\n\n" + "\n".join(lines) + note


def stacked_note(done: list[dict]) -> str:
    """The stacked teacher's fitted weights and its members' nDCG@10 on the train candidates."""
    row = next((d for d in done if "train" in d), None)
    if row is None:
        return ""
    weights = ", ".join(f"{w:.1f}" for w in row["weights"])
    train_q = ", ".join(f"{name} {v:.4f}" for name, v in row["train"].items())
    return (f"Stacked teacher: weights (BM25, MiniLM, InfoNCE student) = ({weights}), fit on train. nDCG@10 on the "
            f"train queries' BM25 top 100: {train_q}.\n\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="all", help=f"comma-separated rows from: {', '.join(ROWS)} (none: only write "
                                                  "the table of the finished rows)")
    ap.add_argument("--write", help="write the table of finished rows into this Markdown file")
    ap.add_argument("--significance", action="store_true",
                    help="test each distillation row against InfoNCE and zero-shot (re-reads the rows' indexes)")
    args = ap.parse_args()
    wanted = list(ROWS) if args.rows == "all" else [] if args.rows == "none" else args.rows.split(",")
    unknown = set(wanted) - set(ROWS)
    if unknown:
        ap.error(f"unknown rows: {', '.join(sorted(unknown))}")
    results_dir = os.path.join(HERE, "results")
    configs = {r: config_hash(r) for r in ROWS}
    done = resumable_rows(ROWS, wanted, results_dir, run_row, configs)
    done = [d for d in done if d.get("config") in configs.values()]  # a row stored under an older config is stale
    missing = [r for r in ROWS if configs[r] not in {d["config"] for d in done}]
    text = (f"Command: `python experiments/scifact/run.py --write docs/results.md` (seed 42; trained on SciFact train "
            f"only; 'exp' = nDCG with gains 2^g - 1; rows still missing: {', '.join(missing) or 'none'})"
            f"\n\n```\n{table(done)}\n```\n\n{stacked_note(done)}"
            f"{significance(done, configs, os.path.join(results_dir, 'significance.json'), args.significance)}")
    print(text)
    if args.write:
        write_section(args.write, "scifact-distillation", text)


if __name__ == "__main__":
    main()
