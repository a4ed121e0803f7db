"""``evaluate_suite``: one retriever setting over several datasets (folders or ir_datasets ids, or the public BEIR sets),
as one table with a mean row and, where published, pyserini's BM25 figure beside ours."""

from __future__ import annotations

import json
import os

from ..data.io import atomic_path
from ..errors import InputError
from .metrics import evaluate_run, format_table, parse_metrics

# The public BEIR test sets (Thakur et al., NeurIPS 2021 Datasets and Benchmarks) as ir_datasets ids; BioASQ,
# Signal-1M, TREC-NEWS and Robust04 need licences and are left out.
BEIR = ["beir/trec-covid", "beir/nfcorpus/test", "beir/nq", "beir/hotpotqa/test", "beir/fiqa/test", "beir/arguana",
        "beir/webis-touche2020/v2", *(f"beir/cqadupstack/{f}" for f in [
            "android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats", "tex", "unix",
            "webmasters", "wordpress"]),
        "beir/quora/test", "beir/dbpedia-entity/test", "beir/scidocs", "beir/fever/test", "beir/climate-fever",
        "beir/scifact/test"]
SUITES = {"beir": BEIR}

# BM25 flat (title and text in one field; pyserini's --bm25 defaults k1=0.9, b=0.4), nDCG@10 on the BEIR test sets, from
# pyserini's two-click reproductions: pyserini/2cr/beir.yaml, condition bm25-flat (castorini/pyserini; the same file
# ships in the pyserini 1.6.0 wheel).
PUBLISHED_BM25 = {
    "trec-covid": 0.5947, "nfcorpus": 0.3218, "nq": 0.3055, "hotpotqa": 0.6330, "fiqa": 0.2361, "arguana": 0.3970,
    "webis-touche2020": 0.4422, "cqadupstack-android": 0.3801, "cqadupstack-english": 0.3453,
    "cqadupstack-gaming": 0.4822, "cqadupstack-gis": 0.2901, "cqadupstack-mathematica": 0.2015,
    "cqadupstack-physics": 0.3214, "cqadupstack-programmers": 0.2802, "cqadupstack-stats": 0.2711,
    "cqadupstack-tex": 0.2244, "cqadupstack-unix": 0.2749, "cqadupstack-webmasters": 0.3059,
    "cqadupstack-wordpress": 0.2483, "quora": 0.7886, "dbpedia-entity": 0.3180, "scidocs": 0.1490, "fever": 0.6513,
    "climate-fever": 0.1651, "scifact": 0.6789,
    "bioasq": 0.5225, "signal1m": 0.3304, "trec-news": 0.3952, "robust04": 0.4070,
}
PUBLISHED_COLUMN = "pyserini bm25 ndcg@10"


def expand(datasets, suite: str | None = None, split: str | None = None) -> list[tuple[str, str | None]]:
    """``(source, split)`` pairs from ``--dataset`` values (each may be a comma list) and a suite name. A suite's ids
    name their own split; ``split`` applies to the datasets given one by one."""
    pairs = [(d.strip(), split) for value in datasets or [] for d in value.split(",") if d.strip()]
    if suite:
        if suite not in SUITES:
            raise InputError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})")
        pairs += [(d, None) for d in SUITES[suite]]
    if not pairs:
        raise InputError("no dataset given (--dataset or --suite)")
    return pairs


def dataset_name(source: str) -> str:
    """A row name: a folder's name, or an ir_datasets id without ``beir/`` and its split
    (``beir/cqadupstack/android`` -> ``cqadupstack-android``, ``beir/scifact/test`` -> ``scifact``)."""
    if os.path.isdir(source):
        return os.path.basename(os.path.normpath(source))
    parts = source.strip("/").split("/")
    parts = parts[1:] if parts[0] == "beir" and len(parts) > 1 else parts
    if len(parts) > 1 and parts[-1] in ("test", "dev", "train", "v2"):
        parts = parts[:-1]
    return "-".join(parts)


def _published(source: str, split: str | None, name: str, retriever: str, metrics: list[str]) -> float | None:
    """pyserini's figure for this row: only for BM25, nDCG@10, a BEIR test set."""
    on_test = source in BEIR or (split or ("test" if os.path.isdir(source) else source.rsplit("/", 1)[-1])) == "test"
    return PUBLISHED_BM25.get(name) if retriever == "bm25" and "ndcg@10" in metrics and on_test else None


def _mean(rows: list[dict], column: str) -> float | None:
    """Mean over datasets, CQADupStack's forums counted as one dataset (their mean), as BEIR reports it."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r.get(column) is None:
            return None
        groups.setdefault("cqadupstack" if r["dataset"].startswith("cqadupstack-") else r["dataset"], []).append(r[column])
    return sum(sum(v) / len(v) for v in groups.values()) / len(groups)


def evaluate_suite(datasets, retriever: str = "bm25", model: str | None = None, kind: str | None = None, k: int = 1000,
                   metrics="ndcg@10,recall@100,mrr@10", output: str | None = None, batch_size: int | None = None,
                   progress: bool = True) -> list[dict]:
    """One row per ``(source, split)`` of ``datasets`` (see ``expand``) and a last ``mean`` row: each metric of the
    retriever's top-``k`` run, and pyserini's published BM25 nDCG@10 where it applies. With ``output``, each dataset's
    run and metrics go to ``output/<name>/``, and a dataset already done there with the same settings is not run again."""
    from ..data import load_dataset, write_run
    from ..index import retrieve

    metrics = parse_metrics(metrics)
    names = [dataset_name(s) for s, _ in datasets]
    if len(set(names)) < len(names):
        raise InputError(f"two datasets share a name: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    rows = []
    for (source, split), name in zip(datasets, names):
        settings = {"dataset": source, "split": split, "retriever": retriever, "model": model, "kind": kind, "k": k}
        folder = os.path.join(output, name) if output else None
        stored = os.path.join(folder, "metrics.json") if folder else None
        old = json.load(open(stored)) if stored and os.path.exists(stored) else {}
        if old.get("settings") == settings and set(metrics) <= set(old["metrics"]):
            scores, queries = old["metrics"], old["queries"]
        else:
            ds = load_dataset(source, split)
            ds.name = name  # index folder: ir_datasets ids without a split would otherwise all be named "beir"
            run = retrieve(ds, retriever, model, kind, k, batch_size=batch_size, progress=progress)
            scores, queries = evaluate_run(ds.qrels, run, metrics), len(ds.qrels)
            if folder:
                os.makedirs(folder, exist_ok=True)
                write_run(run, os.path.join(folder, "run.parquet"))
                with atomic_path(stored) as tmp, open(tmp, "w") as f:
                    json.dump({"run": name, "dataset": source, "split": ds.split, "queries": queries,
                               "metrics": scores, "settings": settings}, f, indent=1)
        row = {"dataset": name, "queries": queries, **{m: scores[m] for m in metrics}}
        published = _published(source, split, name, retriever, metrics)
        if published is not None:
            row[PUBLISHED_COLUMN] = published
        rows.append(row)
        if progress:
            print(f"{name}: " + ", ".join(f"{m} {scores[m]:.4f}" for m in metrics), flush=True)
    mean = {"dataset": "mean", "queries": sum(r["queries"] for r in rows)}
    for column in [*metrics, PUBLISHED_COLUMN]:
        value = _mean(rows, column)
        if value is not None:
            mean[column] = value
    return rows + [mean]


def format_suite(rows: list[dict]) -> str:
    """The suite's table; the published column only when some row has a figure."""
    columns = [c for c in rows[0] if c != PUBLISHED_COLUMN]
    if any(PUBLISHED_COLUMN in r for r in rows):
        columns.append(PUBLISHED_COLUMN)
    text = format_table(rows, columns)
    if any(r["dataset"].startswith("cqadupstack-") for r in rows):
        text += "\n(mean: CQADupStack's forums count as one dataset, as in BEIR)"
    return text
