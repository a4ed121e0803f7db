"""``adapt``: fit a retriever to a corpus that has no labels, in one call (GPL, Wang et al. 2022; "Teaching Dense
Retrieval Models to Specialize", Tamber et al. 2025): generate queries for its passages, take candidates from BM25 and
the student's own dense retrieval, let a teacher score them into the cache, train the student on those scores, then
evaluate zero-shot and adapted side by side on the collection's judged split when it has one.

Nothing here reads a relevance label of the collection adapted to: the teacher's ensemble weights are fixed
(``DEFAULT_WEIGHTS``, fit on SciFact train; pass others fit on a labelled collection of your own) and the only
positives are the generated queries' source passages. Every step is cached under ``output``: generations and
teacher scores by what produced them, candidates and the student by the hash of the settings, so a rerun generates,
scores and trains nothing, and a killed run resumes.

With ``training: {embeddings: {teacher: SPEC}}`` (``--embedding-teacher``) the student also learns that teacher's
embeddings of the collection's passages (``training/embedding_distill.py``), which needs no queries at all.

The defaults (a sentence of each passage and the packaged SmolLM2's queries, mixed; InfoNCE + listwise KL; WiSE-FT
halfway back to the starting model) are the settings that did best on the labels of SciFact train and Cranfield, each
of which may choose for the other (docs/results.md).

    irdistill adapt --dataset path/to/beir-folder --sample 5000 --output adapt/mycorpus
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import pandas as pd

from .cache.scores import ScoreCache
from .data.dataset import Dataset, load_dataset, load_qrels
from .data.io import atomic_path
from .data.runs import rank_run, read_run, write_run
from .errors import InputError, number
from .evaluation.metrics import evaluate_run
from .experiment import config_hash
from .index.base import candidates, retrieve, slug
from .queries import GeneratedQueries, generate_from_specs
from .queries.generate import write_folder
from .queries.spec import MAX_PER_PASSAGE
from .teachers import score_run
from .training import TrainConfig, train
from .training.embedding_distill import recorded
from .training.students import get_student

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# BM25 and the student's starting model, z-scored per query; weights fit on SciFact train (nDCG@10 of its BM25 top 100)
DEFAULT_WEIGHTS = (0.3, 0.7)
# A sentence of each passage and the packaged LLM's queries, mixed: with WiSE-FT, the best generators on SciFact train
# and on Cranfield, whose labels choose for other collections
GENERATORS = ("sentence", "llm:smollm2-135m-instruct-gguf")
# InfoNCE on the pseudo-qrels plus listwise KL to the teacher, over the teacher's top negatives that it scores below the
# source passage (the SciFact recipe of experiments/scifact/recipe.py, chosen there on held-out train queries); the
# model saved halfway back to the starting one (WiSE-FT), which gained on SciFact train and on Cranfield
TRAINING = {"loss": [{"name": "infonce"}, {"name": "listwise-kl", "student_temperature": 0.05, "teacher_temperature": 0.3}],
            "examples": {"negatives": 7, "fn_margin": 0}, "max_seq_length": 128, "epochs": 1, "batch_size": 16,
            "learning_rate": 5e-5, "seed": 42, "save_steps": 50, "precision": "auto", "merge_alpha": 0.5}


@dataclass
class AdaptConfig:
    dataset: str                                  # a BEIR folder (corpus.jsonl; qrels/<eval_split>.tsv to evaluate)
    output: str = "adapt"                         # every cached step goes under here
    model: str = MODEL                            # the student (bi-encoder or cross-encoder) starts from this model
    student: str = "bi-encoder"
    generators: list = field(default_factory=lambda: list(GENERATORS))  # title, sentence, span or llm:MODEL; several mix
    per_passage: int = 1
    sample: int | None = 2000                     # passages to generate for (None: all)
    filters: list = field(default_factory=list)   # key=value, as generate-queries --filter
    options: list = field(default_factory=list)   # key=value generator options, as generate-queries --option
    depth: int = 30                               # candidates per query from BM25 and from dense retrieval each
    teacher: dict | None = None                   # a teacher spec (default: BM25 + model ensemble, DEFAULT_WEIGHTS)
    training: dict = field(default_factory=dict)  # overrides of TRAINING: TrainConfig fields, examples.<field>
    eval_split: str = "test"
    seed: int = 0

    def check(self) -> None:
        """Bad settings fail here, before any model loads or anything is written."""
        if not os.path.isfile(os.path.join(self.dataset, "corpus.jsonl")):
            raise InputError("adapt needs a BEIR folder (no corpus.jsonl here)", self.dataset)
        for name, value in (("--per-passage", self.per_passage), ("--sample", self.sample), ("--depth", self.depth)):
            if value is not None:
                number(value, name, int, low=1, high=MAX_PER_PASSAGE if name == "--per-passage" else None)
        if not self.generators:
            raise InputError("--generator: give at least one (title, sentence, span or llm:MODEL)")
        TrainConfig.from_dict({**self.recipe("teacher"), "dataset": self.dataset, "output": self.output, "cache": self.output})

    def recipe(self, teacher: str) -> dict:
        """The training settings: TRAINING with ``training`` over it, the examples drawn from ``teacher``'s scores."""
        flat = {k: v for k, v in self.training.items() if not k.startswith("examples.")}
        examples = {k.removeprefix("examples."): v for k, v in self.training.items() if k.startswith("examples.")}
        base = {**TRAINING, **get_student(self.student).recipe_defaults}  # e.g. a cross-encoder's loss at temperature 1
        out = {**base, **flat, "student": self.student, "model": self.model}
        out["examples"] = {**TRAINING["examples"], **flat.get("examples", {}), **examples, "teacher": teacher}
        return out

    def teacher_spec(self) -> dict:
        return self.teacher or {"kind": "ensemble", "norm": "zscore", "weights": list(DEFAULT_WEIGHTS),
                                "members": [{"kind": "bm25"}, {"kind": "bi-encoder", "model": self.model}]}


def generate(cfg: AdaptConfig, progress: bool = True) -> GeneratedQueries:
    """The generated queries of every generator in ``cfg.generators``, mixed into one folder when there are several."""
    made = [generate_from_specs(cfg.dataset, g, cfg.per_passage, cfg.sample, cfg.filters, cfg.options,
                                os.path.join(cfg.output, "queries"), cfg.seed, progress=progress)
            for g in cfg.generators]
    return made[0] if len(made) == 1 else mix(made, os.path.join(cfg.output, "queries"))


def mix(parts: list[GeneratedQueries], root: str) -> GeneratedQueries:
    """One BEIR folder holding the queries and pseudo-qrels of ``parts`` (their ids, which name their folder, kept)."""
    mid = "mix-" + config_hash(parts=sorted(p.id for p in parts))
    folder = os.path.join(root, mid)
    out = GeneratedQueries(folder, mid, parts[0].split, {"corpus": parts[0].meta["corpus"], "parts": [p.id for p in parts]})
    if os.path.exists(os.path.join(folder, "meta.json")):
        return out
    kept = []  # (query id, its source passage, text); the qrels are read without loading the corpus
    for p in parts:
        source = load_qrels(p.qrels_path)
        kept += [(qid, next(iter(source[qid])), text) for qid, text in p.queries().items()]
    write_folder(folder, kept, out.qrels_path)
    link = os.path.join(folder, "corpus.jsonl")
    if not os.path.exists(link):
        os.symlink(os.path.abspath(parts[0].corpus_path), link)
    with atomic_path(os.path.join(folder, "meta.json")) as tmp, open(tmp, "w") as f:
        json.dump(out.meta, f, indent=1)
    return out


def candidate_run(cfg: AdaptConfig, queries: GeneratedQueries, ds: Dataset, progress: bool = True) -> str:
    """BM25's and the starting model's top ``depth`` of each generated query (``ds``: ``queries.load()``), with its
    source passage, kept once."""
    path = os.path.join(cfg.output, "runs", f"candidates-{config_hash(q=queries.id, model=cfg.model, k=cfg.depth)}.parquet")
    if not os.path.exists(path):
        bm25 = candidates(ds, "bm25", k=cfg.depth, positives=True, index=_index(cfg, "bm25"), progress=progress)
        dense = candidates(ds, "dense", cfg.model, k=cfg.depth, index=_index(cfg, cfg.model), progress=progress)
        both = pd.concat([bm25, dense]).drop_duplicates(["qid", "docid"])
        write_run(rank_run(both.assign(score=0.0)), path)  # scores are the teacher's job
    return path


def _index(cfg: AdaptConfig, name: str) -> str:
    """An index folder of its own per retriever or model (a dense index keeps its encodings beside it)."""
    return os.path.join(cfg.output, "indexes", slug(name), "index")


def student_model(cfg: AdaptConfig, progress: bool = True) -> str:
    """Generate, retrieve candidates, score them with the teacher and train: the adapted model's folder."""
    queries = generate(cfg, progress)
    ds, cache = queries.load(), ScoreCache(os.path.join(cfg.output, "cache"))
    run = candidate_run(cfg, queries, ds, progress)
    key = score_run(cfg.teacher_spec(), read_run(run), ds, cache, progress=progress).key
    recipe = cfg.recipe(key)
    hashed = recipe  # the embedding teacher by what it computes, not where it is reached (an endpoint's port)
    if recipe.get("embeddings"):
        hashed = {**recipe, "embeddings": {**recipe["embeddings"], "teacher": recorded(recipe["embeddings"]["teacher"])}}
    name = f"{cfg.student}-{config_hash(queries=queries.id, run=os.path.basename(run), training=hashed)}"
    return train(TrainConfig.from_dict({**recipe, "dataset": queries.folder, "split": queries.split, "cache": cache.folder,
                                        "output": os.path.join(cfg.output, "models", name)}))


def evaluate(cfg: AdaptConfig, model: str, metrics: str = "ndcg@10,recall@100", progress: bool = True) -> dict:
    """On the collection's judged ``eval_split``: BM25, the teacher re-ranking BM25's top 100, and the student before
    and after adapting (a retriever over the corpus; a re-ranker over BM25's top 100, which has no "before")."""
    ds, cache = load_dataset(cfg.dataset, cfg.eval_split), ScoreCache(os.path.join(cfg.output, "cache"))
    bm25 = retrieve(ds, "bm25", k=1000, index=_index(cfg, "bm25"), progress=progress)
    top = bm25[bm25["rank"] <= 100]
    rerank = lambda spec: cache.read(score_run(spec, top, ds, cache, progress=progress).key, qids=list(ds.queries))
    student = get_student(cfg.student)
    runs = {"bm25": bm25, "teacher (re-ranks BM25 top 100)": rerank(cfg.teacher_spec())}
    if student.retriever:
        runs["zero-shot"] = retrieve(ds, student.retriever, cfg.model, k=1000, index=_index(cfg, cfg.model), progress=progress)
        runs["adapted"] = retrieve(ds, student.retriever, model, k=1000, index=_index(cfg, model), progress=progress)
    else:
        runs["adapted (re-ranks BM25 top 100)"] = rerank({"kind": student.teacher, "model": model})
    return {name: evaluate_run(ds.qrels, run, metrics) for name, run in runs.items()}


def adapt(cfg: AdaptConfig, metrics: str = "ndcg@10,recall@100", progress: bool = True) -> dict:
    """``student_model``, then ``evaluate`` when the collection has qrels for ``eval_split``; writes and returns
    ``output/adapt.json``."""
    cfg.check()
    model = student_model(cfg, progress)
    result = {"settings": asdict(cfg), "teacher": cfg.teacher_spec(), "model": model}
    if os.path.exists(os.path.join(cfg.dataset, "qrels", f"{cfg.eval_split}.tsv")):
        result["evaluation"] = evaluate(cfg, model, metrics, progress)
    with atomic_path(os.path.join(cfg.output, "adapt.json")) as tmp, open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    return result
