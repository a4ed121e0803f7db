"""Which teacher scores to keep per query (Random-Sampling KD on SciFact): MiniLM students distilled with listwise KL
from the full list of the teacher's 100 candidates (the reference), from its top K, and from K draws of its
distribution with importance weights (drawn anew each epoch), K in 4, 8, 16, at two teacher temperatures; nDCG@10
on SciFact test, how close each student ranks to the full-list one, training time, and the cache each keeps.

    python experiments/scifact/sampling.py [--rows all|none|full,top-4,...] [--write docs/results.md]

The teacher is the BM25 + MiniLM ensemble of run.py (scored on SciFact train's BM25 top 100, positives added). To
fit a 2-core machine every row trains on the same seeded 150 train queries, 3 epochs, passages cut to 64 tokens
(bf16 where the CPU has it natively, else fp32); their scores are copied into a cache of their own
(cache/scifact-sampling-150), where the sparse entries are made. Each row is stored in results/sampling/<row>.json
and resumes.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time

import numpy as np
from recipe import CACHE, MODEL, SCIFACT, teachers_on_train

from irdistill.cache import ScoreCache, sparsify
from irdistill.data import load_dataset, read_run, write_run
from irdistill.evaluation import evaluate_run, format_table
from irdistill.experiment import config_hash, missing_rows, table_main
from irdistill.index import retrieve
from irdistill.training import TrainConfig, train

HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES, SEED = 150, 0
KL = {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.3}
STUDENT = {"max_seq_length": 64, "epochs": 3, "batch_size": 8, "learning_rate": 5e-5, "seed": 42, "save_steps": 20,
           "precision": "auto", "loss": KL}
KS = (4, 8, 16)
# Two teacher temperatures: 0.3, the listwise recipe's (on 100 candidates its target is near uniform: a median
# perplexity of 79 candidates on these training queries), and 0.12, where the target's median perplexity over the
# training queries' lists is about 10, between the K compared (0.2: 50, 0.15: 24, 0.1: 5)
TAUS = (0.3, 0.12)
SUFFIX = {0.3: "", 0.12: "-t0.12"}  # the first set's rows keep their names (and their stored results)
ROWS = {f"{name}{SUFFIX[tau]}": (*spec, tau) for tau in TAUS
        for name, spec in {"full": ("top", 1000), **{f"{keep}-{k}": (keep, k) for k in KS
                                                   for keep in ("top", "sample")}}.items()}
LABELS = {r: ("full list (top 100)" if r.startswith("full") else f"top {k}" if keep == "top" else
              f"{k} draws, weighted") for r, (keep, k, tau) in ROWS.items()}


def student_settings(tau: float) -> dict:
    return {**STUDENT, "loss": {**KL, "teacher_temperature": tau}}


CONFIGS = {r: config_hash(row=[keep, k], student=student_settings(tau), queries=QUERIES, seed=SEED, tau=tau, v=1)
           for r, (keep, k, tau) in ROWS.items()}
METRICS = "ndcg@10,recall@100"


def train_queries():
    """The seeded sample of judged SciFact train queries every row trains on."""
    ds = load_dataset(SCIFACT, "train")
    qids = sorted(np.random.default_rng(SEED).choice(sorted(ds.qrels), QUERIES, replace=False).tolist())
    return dataclasses.replace(ds, queries={q: ds.queries[q] for q in qids}, qrels={q: ds.qrels[q] for q in qids})


def sample_cache(ds) -> tuple[ScoreCache, str]:
    """A cache of the ensemble's scores of the sampled queries only (so training reads no other query)."""
    teacher = teachers_on_train(stacked=False)["ensemble"]
    cache = ScoreCache(f"cache/scifact-sampling-{QUERIES}")
    cache.register(teacher, CACHE.describe(teacher))
    if not cache.scored_qids(teacher) >= set(ds.queries):
        df = CACHE.read(teacher, qids=sorted(ds.queries))
        cache.commit(teacher, df["qid"], df["docid"], df["score"].to_numpy(), ds.queries)
    return cache, teacher


def entry(row: str, ds) -> tuple[ScoreCache, str]:
    """The row's cache entry: the full list (the top 1000 of 100), the top K, or K weighted draws."""
    keep, k, tau = ROWS[row]
    cache, teacher = sample_cache(ds)
    return cache, sparsify(cache, teacher, ds, k, keep=keep, temperature=tau, seed=SEED)


def examples(row: str, cache: ScoreCache, key: str, ds) -> dict:
    keep, k, tau = ROWS[row]
    if keep == "sample":
        return {"teacher": key, "strategy": "sample", "negatives": k, "temperature": tau}
    if row.startswith("full"):  # every query's whole list: as many negatives as the shortest list has
        df = cache.read(key)
        negatives = min(len(g) - sum(ds.qrels[q].get(d, 0) > 0 for d in g["docid"]) for q, g in df.groupby("qid"))
        return {"teacher": key, "strategy": "top", "negatives": negatives}
    return {"teacher": key, "strategy": "top", "negatives": k}


def cache_size(cache: ScoreCache, key: str) -> dict:
    cache.compact(key)  # one part file: its size is the entry's
    folder = cache._dir(key)
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".parquet"))
    return {"pairs_per_query": cache.count_pairs(key) / len(cache.scored_qids(key)), "bytes": size}


def run_row(row: str) -> dict:
    ds = train_queries()
    cache, key = entry(row, ds)
    ex = examples(row, cache, key, ds)
    cfg = TrainConfig.from_dict({**student_settings(ROWS[row][2]), "dataset": SCIFACT, "cache": cache.folder, "model": MODEL,
                                 "examples": ex, "output": f"models/scifact-sampling-{row}-{CONFIGS[row]}"})
    wall, cpu = time.time(), resource.getrusage(resource.RUSAGE_SELF)
    model = train(cfg)
    after = resource.getrusage(resource.RUSAGE_SELF)
    timing = {"train_wall_s": time.time() - wall,
              "train_cpu_s": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime}
    test = load_dataset(SCIFACT, "test")
    run = retrieve(test, "dense", model, k=100)
    write_run(run, f"runs/scifact-sampling-{row}-{CONFIGS[row]}.parquet")
    return {"system": LABELS[row], "model": model, "negatives": ex["negatives"],
            "scifact": evaluate_run(test.qrels, run, METRICS), **timing, **cache_size(cache, key)}


def reference(row: str) -> str:
    """The full-list row of ``row``'s temperature."""
    return next(r for r in ROWS if r.startswith("full") and ROWS[r][2] == ROWS[row][2])


def overlap(row: str) -> float | None:
    """Mean share of the reference student's top 10 that this row's student also ranks in its top 10."""
    paths = [f"runs/scifact-sampling-{r}-{CONFIGS[r]}.parquet" for r in (row, reference(row))]
    if not all(map(os.path.exists, paths)):
        return None
    tops = [read_run(p).sort_values(["qid", "score"], ascending=[True, False]).groupby("qid").head(10)
            .groupby("qid")["docid"].apply(set) for p in paths]
    return float(np.mean([len(tops[0][q] & tops[1].get(q, set())) / 10 for q in tops[0].index]))


def render(done: list[dict], args) -> str:
    by_config = {d["config"]: d for d in done}
    lines = []
    for row in ROWS:
        d = by_config.get(CONFIGS[row])
        if d is None:
            continue
        ref = by_config.get(CONFIGS[reference(row)])
        ndcg = d["scifact"]["ndcg@10"]
        lines.append({"T": ROWS[row][2], "kept per query": d["system"], "SciFact nDCG@10": ndcg,
                      "vs full": None if ref is None else ndcg - ref["scifact"]["ndcg@10"],
                      "top-10 overlap with full": overlap(row), "R@100": d["scifact"]["recall@100"],
                      "train min (CPU min)": f"{d['train_wall_s'] / 60:.1f} ({d['train_cpu_s'] / 60:.1f})",
                      "cache pairs/query": round(d["pairs_per_query"], 1), "cache KB": round(d["bytes"] / 1024)})
    return (f"Command: `python experiments/scifact/sampling.py --write docs/results.md` ({QUERIES} seeded SciFact "
            f"train queries, 3 epochs, listwise KL at teacher temperature T on min-max scaled scores, T_s 0.05, passages cut to "
            f"64 tokens; rows still missing: {missing_rows(ROWS, CONFIGS, done)})"
            + (f"\n\n```\n{format_table(lines)}\n```" if lines else ""))


if __name__ == "__main__":
    table_main(__doc__, ROWS, run_row, CONFIGS, os.path.join(HERE, "results", "sampling"), "scifact-sampling", render)
