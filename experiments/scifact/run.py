"""The SciFact distillation table: zero-shot, InfoNCE, Margin-MSE, listwise KL, CPRD and PLD MiniLM students, the
teacher, and a cross-encoder trained from the train labels; nDCG@10 / recall@100 on SciFact test and Cranfield.

    python experiments/scifact/run.py [--rows all|none|zero-shot,margin-mse,...] [--significance] [--write docs/results.md]

Every row is its own resumable step: a finished row is stored in experiments/scifact/results/<row>.json and skipped
next time; training resumes from its last checkpoint. Training uses SciFact train only (seed 42); nothing is tuned
on test. Scores, candidates, models and indexes go to cache/, runs/, models/ and indexes/ (all git-ignored).
"""

from __future__ import annotations

import json
import os

from recipe import (CACHE, CPRD, CRANFIELD, ENSEMBLE, INFONCE, INFONCE_ROW, KL, LR, METRICS, MMSE, MODEL, SCIFACT,
                    STUDENT, TEACHER_TOP, rerank_test_sets, stacked_spec, student_row, table, teachers_on_train,
                    test_sets)

from irdistill.data import load_dataset, read_run
from irdistill.data.io import atomic_path
from irdistill.evaluation import compare_runs, evaluate_run
from irdistill.experiment import config_hash, evaluate_model, missing_rows, table_main
from irdistill.index import retrieve
from irdistill.training import TrainConfig, train

HERE = os.path.dirname(os.path.abspath(__file__))
PLD = {"name": "pld", "student_temperature": 0.05, "teacher_temperature": 0.3}  # the listwise KL row's temperatures
# The stacked teacher: BM25 + MiniLM + the InfoNCE student, weights fit on train. On train queries the student's
# scores are cross-fitted (each half of the queries scored by a student trained on the other half); on test the
# student trained on all of train (the infonce row) takes its place.
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
    "stacked-teacher": ("teacher", {"folds": 2, "student": INFONCE_ROW}),
    # three epochs (153 steps): on held-out train queries InfoNCE went from 0.7311 (1 epoch) to 0.7830
    "infonce-3ep": ("dense", {**INFONCE_ROW, "epochs": 3}),
    "listwise-kl-3ep": ("dense", {"loss": [INFONCE, KL], "examples": TEACHER_TOP, "learning_rate": LR, "epochs": 3}),
    "margin-mse-3ep": ("dense", {"loss": MMSE, "examples": TEACHER_TOP, "learning_rate": LR, "epochs": 3}),
    "cprd-3ep": ("dense", {"loss": CPRD, "examples": TEACHER_TOP, "learning_rate": LR, "epochs": 3}),
    "pld-3ep": ("dense", {"loss": [INFONCE, PLD], "examples": TEACHER_TOP, "learning_rate": LR, "epochs": 3}),
    # a new, random scoring head: one epoch at 2e-5 with InfoNCE's temperature 0.05 did not learn (loss stayed near
    # ln 8); the usual re-ranker recipe instead: listwise softmax at temperature 1, a higher rate, three epochs
    "cross-encoder": ("rerank", {"student": "cross-encoder", "loss": {"name": "infonce", "temperature": 1.0},
                                 "examples": {"teacher": "bm25", "negatives": 7}, "learning_rate": 7e-5,
                                 "epochs": 3}),
}
LABELS = {"infonce": "InfoNCE (BM25 negatives)", "margin-mse": "InfoNCE + 0.05 Margin-MSE", "listwise-kl":
          "InfoNCE + listwise KL", "cprd": "InfoNCE + 0.1 CPRD (k=4)", "pld": "InfoNCE + PLD"}
LABELS.update({f"{r}-stacked": f"{LABELS[r]}, stacked teacher" for r in ("margin-mse", "listwise-kl", "cprd")})
LABELS.update({f"{r}-3ep": f"{LABELS[r]}, 3 epochs" for r in ("infonce", "margin-mse", "listwise-kl", "cprd", "pld")})
# bf16 on the CPU: 2.7x faster, top-10 overlap 0.995 with fp32 (docs/benchmarks.md); no max_length: the model's own,
# the one it trained at (docs/results.md)
RERANKER = {"kind": "cross-encoder", "dtype": "bfloat16"}
TRAINED = {r: config_hash(row=ROWS[r], student=STUDENT if ROWS[r][1] else None) for r in ROWS}  # names the model folder
# a re-ranking row also hashes how it re-ranks: a change there evaluates the row again, with the model it has
CONFIGS = {r: config_hash(trained=TRAINED[r], reranker=RERANKER) if ROWS[r][0] == "rerank" else TRAINED[r] for r in ROWS}


def student(row: str, ids: dict) -> str:
    """The trained model of a student row (trained once; resumed if interrupted)."""
    return train(TrainConfig.from_dict(student_row(row, ROWS[row][1], ids, TRAINED[row])))


def teachers_on_train_quality(ids: dict) -> dict:
    """nDCG@10 of each cached teacher on the train queries' BM25 top 100 (the student's scores out-of-fold)."""
    train_ds, run = load_dataset(SCIFACT, "train"), read_run(ENSEMBLE["fit"]["run"])
    members = CACHE.describe(ids["stacked"])["members"]
    named = {"BM25": members[0], "MiniLM": members[1], "InfoNCE student (out-of-fold)": members[2],
             "BM25 + MiniLM": ids["ensemble"], "stacked": ids["stacked"]}
    qids = run["qid"].unique().tolist()
    return {name: evaluate_run(train_ds.qrels, CACHE.run(tid, qids).merge(run[["qid", "docid"]]), "ndcg@10")["ndcg@10"]
            for name, tid in named.items()}


def run_row(row: str) -> dict:
    kind, spec = ROWS[row]
    if spec is None and kind == "dense":
        return {"system": "all-MiniLM-L6-v2 zero-shot", **evaluate_model(test_sets(), "dense", MODEL, METRICS)}
    # only the stacked rows need the stacked teacher (its cross-fit trains two students)
    ids = teachers_on_train(stacked=spec is not None and (kind == "teacher" or spec["examples"]["teacher"] == "stacked"))
    if kind == "teacher" and spec is None:  # the ensemble with the weights fit on SciFact train, as is on test
        weights = CACHE.describe(ids["ensemble"])["weights"]
        return {"system": "teacher: BM25 + MiniLM ensemble (re-ranks BM25 top 100)",
                **rerank_test_sets({**ENSEMBLE, "weights": weights, "fit": None})}
    if kind == "teacher":  # stacked: the InfoNCE student trained on all of train, with the weights fit on train
        weights = CACHE.describe(ids["stacked"])["weights"]
        spec = stacked_spec({"kind": "bi-encoder", "model": student("infonce", ids)}, weights)
        return {"system": "teacher: BM25 + MiniLM + InfoNCE student, stacked (re-ranks BM25 top 100)",
                "weights": weights, "train": teachers_on_train_quality(ids), **rerank_test_sets(spec)}
    final = student(row, ids)
    if kind == "dense":
        return {"system": f"MiniLM student, {LABELS[row]}", "model": final,
                **evaluate_model(test_sets(), "dense", final, METRICS)}
    return {"system": "cross-encoder (MiniLM) trained on train labels, re-ranks BM25 top 100", "model": final,
            **rerank_test_sets({**RERANKER, "model": final})}


# Paired t-tests: each distillation row against InfoNCE (same epochs) and zero-shot. The stacked-teacher rows are not
# t-tested (docs/results.md).
PAIRS = [(f"{d}{e}", base) for e in ("", "-3ep") for d in ("margin-mse", "listwise-kl", "cprd")
         for base in (f"infonce{e}", "zero-shot")] + [("pld-3ep", "infonce-3ep"), ("pld-3ep", "zero-shot")]


def row_model(row: str) -> str:
    """The model of a dense row: MiniLM for zero-shot, else the row's student (trained again from its config, with
    its seed, if this checkout does not hold it)."""
    if ROWS[row][1] is None:
        return MODEL
    return student(row, teachers_on_train(stacked=ROWS[row][1]["examples"]["teacher"] == "stacked"))


def significance(done: list[dict], path: str, run: bool) -> str:
    """Paired t-tests (ranx, per-query) of PAIRS: SciFact nDCG@10 and Cranfield nDCG@10 (exp). Runs come from the rows'
    saved indexes; each pair's result is kept in ``path`` under the two rows' configs."""
    old = json.load(open(path)) if os.path.exists(path) else {}
    models = {d["config"]: r for r in ROWS for d in done if d["config"] == CONFIGS[r]}
    tests, missing, runs = {}, [], {}  # runs: (dataset, row) -> run, each retrieved once
    for a, b in PAIRS:
        key, want = f"{a} vs {b}", [CONFIGS[a], CONFIGS[b]]
        if old.get(key, {}).get("configs") == want:
            tests[key] = old[key]
        elif run and all(c in models for c in want):
            tests[key] = {"configs": want}
            for name, ds_path, metric in [("SciFact", SCIFACT, "ndcg@10"), ("Cranfield", CRANFIELD, "ndcg_burges@10")]:
                ds = load_dataset(ds_path, "test")
                for r in (a, b):
                    if (name, r) not in runs:
                        runs[name, r] = retrieve(ds, "dense", row_model(r), "flat", k=1000)
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


def render(done: list[dict], args) -> str:
    return (f"Command: `python experiments/scifact/run.py --write docs/results.md` (seed 42; trained on SciFact train "
            f"only; 'exp' = nDCG with gains 2^g - 1; rows still missing: {missing_rows(ROWS, CONFIGS, done)})"
            f"\n\n```\n{table(done)}\n```\n\n{stacked_note(done)}"
            f"{significance(done, os.path.join(HERE, 'results', 'significance.json'), args.significance)}")


def significance_option(ap):
    ap.add_argument("--significance", action="store_true",
                    help="test each distillation row against InfoNCE and zero-shot (re-reads the rows' indexes)")


if __name__ == "__main__":
    table_main(__doc__, ROWS, run_row, CONFIGS, os.path.join(HERE, "results"), "scifact-distillation", render,
               [significance_option])
