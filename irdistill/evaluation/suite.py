"""``evaluate_suite``: one retriever setting over several datasets (folders or ir_datasets ids, or the public BEIR sets),
as one table with a mean row and, where published, pyserini's BM25 figure beside ours."""

from __future__ import annotations

import contextlib
import json
import os

from ..data.io import atomic_path
from ..errors import InputError
from ..progress import step
from .metrics import format_table, parse_metrics

# The public BEIR test sets (Thakur et al., NeurIPS 2021 Datasets and Benchmarks) as ir_datasets ids; BioASQ,
# Signal-1M, TREC-NEWS and Robust04 need licences and are left out.
BEIR = ["beir/trec-covid", "beir/nfcorpus/test", "beir/nq", "beir/hotpotqa/test", "beir/fiqa/test", "beir/arguana",
        "beir/webis-touche2020/v2", *(f"beir/cqadupstack/{f}" for f in [
            "android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats", "tex", "unix",
            "webmasters", "wordpress"]),
        "beir/quora/test", "beir/dbpedia-entity/test", "beir/scidocs", "beir/fever/test", "beir/climate-fever",
        "beir/scifact/test"]
SUITES = {"beir": BEIR}

PUBLISHED_COLUMN = "published"
KEY = "settings.json"  # beside each dataset's metrics.json: what they were computed from


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
    if os.path.isdir(source):  # the folder's real name: ``..`` or ``.`` must not name a row folder that climbs out
        return os.path.basename(os.path.abspath(source))
    parts = source.strip("/").split("/")
    parts = parts[1:] if parts[0] == "beir" and len(parts) > 1 else parts
    if len(parts) > 1 and parts[-1] in ("test", "dev", "train", "v2"):
        parts = parts[:-1]
    return "-".join(parts)


def _published(source: str, split: str | None, name: str, retriever: str, metrics: list[str]) -> float | None:
    """The retriever's published nDCG@10 for this row (``Index.published``, e.g. pyserini's BM25 figures), on a
    test split only."""
    from ..index import index_class

    on_test = source in BEIR or (split or ("test" if os.path.isdir(source) else source.rsplit("/", 1)[-1])) == "test"
    return index_class(retriever).published.get(name) if "ndcg@10" in metrics and on_test else None


def _mean(rows: list[dict], column: str) -> float | None:
    """Mean over datasets, CQADupStack's forums counted as one dataset (their mean), as BEIR reports it."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r.get(column) is None:
            return None
        groups.setdefault("cqadupstack" if r["dataset"].startswith("cqadupstack-") else r["dataset"], []).append(r[column])
    return sum(sum(v) / len(v) for v in groups.values()) / len(groups)


def evaluate_suite(datasets, retriever: str = "bm25", model: str | None = None, kind: str | None = None, k: int = 1000,
                   metrics="ndcg@10,recall@100,mrr@10", output: str | None = None, index: str | None = None,
                   run: str | None = None, progress: bool = True, **options) -> list[dict]:
    """One row per ``(source, split)`` of ``datasets`` (see ``expand``) and a last ``mean`` row: each metric of the
    retriever's top-``k`` run, and the retriever's published nDCG@10 where there is one. Each dataset is evaluated by
    ``evaluate_retrieval`` into ``<output>/<name>/`` (default ``runs/suite-<retriever>[-<model>]``); a dataset done
    there already is read back, not run again, when its ``settings.json`` holds the same key: the settings and the
    content of what the metrics come from (the split's fingerprints, the model's weights), as an index is keyed."""
    from ..data import load_dataset
    from ..index import slug
    from ..models import fingerprint
    from .evaluate import evaluate_retrieval

    if index or run:
        raise InputError("--run and --index take one dataset")
    metrics = parse_metrics(metrics)
    names = [dataset_name(s) for s, _ in datasets]
    if len(set(names)) < len(names):
        raise InputError(f"two datasets share a name: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    output = output or os.path.join("runs", "-".join(["suite", retriever, *([slug(model)] if model else [])]))
    rows = []
    for (source, split), name in zip(datasets, names):
        step(f"{name}: reading {source}", progress)
        ds, folder = load_dataset(source, split), os.path.join(output, name)
        key = {"dataset": source, "split": split, "retriever": retriever, "model": model, "kind": kind, "k": k,
               **ds.fingerprint(), "version": fingerprint(model) if model else None}
        result = None if options.get("rebuild") else _stored(folder, key, metrics)
        if result is None:
            with contextlib.suppress(FileNotFoundError):  # no key beside metrics of another one, if stopped midway
                os.remove(os.path.join(folder, KEY))
            evaluate_retrieval(ds, retriever, model, kind, k, metrics, output=folder, progress=progress, **options)
            with atomic_path(os.path.join(folder, KEY)) as tmp, open(tmp, "w") as f:
                json.dump({**key, "version": fingerprint(model) if model else None}, f)  # a hub model is here now
            with open(os.path.join(folder, "metrics.json")) as f:
                result = json.load(f)
        row = {"dataset": name, "queries": result["queries"], **{m: result["metrics"][m] for m in metrics}}
        published = _published(source, split, name, retriever, metrics)
        if published is not None:
            row[PUBLISHED_COLUMN] = published
        rows.append(row)
        if progress:
            print(f"{name}: " + ", ".join(f"{m} {row[m]:.4f}" for m in metrics), flush=True)
    mean = {"dataset": "mean", "queries": sum(r["queries"] for r in rows)}
    for column in [*metrics, PUBLISHED_COLUMN]:
        value = _mean(rows, column)
        if value is not None:
            mean[column] = value
    return rows + [mean]


def _stored(folder: str, key: dict, metrics: list[str]) -> dict | None:
    """``folder``'s metrics.json if it holds ``metrics`` and its ``settings.json`` holds ``key``."""
    try:
        with open(os.path.join(folder, KEY)) as f:
            held = json.load(f)
        with open(os.path.join(folder, "metrics.json")) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    unknown = key["version"] is None and key["model"]  # a hub model not downloaded: its weights are unknown here
    same = held == key or unknown and {**held, "version": None} == key
    return result if same and set(metrics) <= set(result.get("metrics", {})) else None


def format_suite(rows: list[dict]) -> str:
    """The suite's table; the published column only when some row has a figure."""
    columns = [c for c in rows[0] if c != PUBLISHED_COLUMN]
    if any(PUBLISHED_COLUMN in r for r in rows):
        columns.append(PUBLISHED_COLUMN)
    text = format_table(rows, columns)
    if any(r["dataset"].startswith("cqadupstack-") for r in rows):
        text += "\n(mean: CQADupStack's forums count as one dataset, as in BEIR)"
    return text
