"""Runs (ranked lists) as DataFrames with columns qid, docid, score, rank; stored as TREC text or Parquet."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError, require_file
from .io import atomic_path, read_tsv

COLUMNS = ["qid", "docid", "score", "rank"]
PARQUET_SCHEMA = pa.schema([("qid", pa.string()), ("docid", pa.string()), ("score", pa.float32()), ("rank", pa.int32())])


def rank_run(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by qid then score (descending; ties by docid) and number the ranks from 1."""
    df = df.sort_values(["qid", "score", "docid"], ascending=[True, False, True], kind="stable").reset_index(drop=True)
    df["rank"] = df.groupby("qid", sort=False).cumcount().astype("int32") + 1
    return df[COLUMNS]


def run_from_dict(run: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [(q, d, s) for q, docs in run.items() for d, s in docs.items()]
    df = pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"qid": str, "docid": str, "score": "float32"})
    return rank_run(df)


def add_positives(df: pd.DataFrame, qrels: dict) -> pd.DataFrame:
    """Append each query's judged-relevant documents that the run missed, ranked last (training candidates must hold
    their positives so a teacher scores them)."""
    have = set(zip(df["qid"], df["docid"]))
    floor = df.groupby("qid")["score"].min().to_dict()
    extra = [(q, d, floor.get(q, 0.0) - 1.0) for q in df["qid"].unique() for d, g in qrels.get(q, {}).items()
             if g > 0 and (q, d) not in have]
    if not extra:
        return df
    return rank_run(pd.concat([df[["qid", "docid", "score"]], pd.DataFrame(extra, columns=["qid", "docid", "score"])],
                              ignore_index=True).astype({"score": "float32"}))


def check_run_ids(df: pd.DataFrame, dataset, source) -> None:
    """Raise InputError naming ``source`` if the run holds a query or document that ``dataset`` lacks."""
    unknown_q = sorted(set(df["qid"].unique()) - set(dataset.queries))
    if unknown_q:
        raise InputError(f"unknown query id {unknown_q[0]!r} ({len(unknown_q)} unknown in {dataset.name} {dataset.split or ''})".rstrip(), source)
    docids = df["docid"].unique().tolist()
    missing = [d for d, ok in zip(docids, dataset.corpus.contains(docids)) if not ok]
    if missing:
        raise InputError(f"unknown document id {missing[0]!r} ({len(missing)} unknown in {dataset.name})", source)


def run_to_dict(df: pd.DataFrame) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for q, d, s in zip(df["qid"].tolist(), df["docid"].tolist(), df["score"].tolist()):
        out.setdefault(q, {})[d] = float(s)
    return out


def read_run(path) -> pd.DataFrame:
    """Read a Parquet run (``.parquet``) or a TREC run (``qid Q0 docid rank score tag``)."""
    path = require_file(path)
    if path.endswith(".parquet"):
        try:
            df = pq.read_table(path).to_pandas()
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"not a readable Parquet file ({e})", path) from None
        missing = [c for c in ("qid", "docid", "score") if c not in df.columns]
        if missing:
            raise InputError(f"run is missing column(s) {', '.join(missing)}", path)
        return rank_run(df.astype({"qid": str, "docid": str, "score": "float32"}))
    qids, docids, scores = [], [], []
    for n, (q, _, d, _, s, _) in read_tsv(path, 6, sep=None):
        try:
            scores.append(float(s))
        except ValueError:
            raise InputError(f"score {s!r} is not a number", path, n) from None
        qids.append(q)
        docids.append(d)
    if not qids:
        raise InputError("the run is empty", path)
    return rank_run(pd.DataFrame({"qid": qids, "docid": docids, "score": pd.Series(scores, dtype="float32")}))


def write_run(df: pd.DataFrame, path, tag: str = "irdistill") -> str:
    """Write atomically: Parquet for ``.parquet``, else TREC text. Returns the path."""
    path = os.fspath(path)
    df = rank_run(df) if "rank" not in df.columns else df
    with atomic_path(path) as tmp:
        if path.endswith(".parquet"):
            pq.write_table(pa.Table.from_pandas(df[COLUMNS], schema=PARQUET_SCHEMA, preserve_index=False), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for q, d, r, s in zip(df["qid"], df["docid"], df["rank"], df["score"]):
                    f.write(f"{q} Q0 {d} {r} {s:.6f} {tag}\n")
    return path
