"""Runs (ranked lists) as DataFrames with columns qid, docid, score, rank; stored as TREC text or Parquet."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError, require_file
from ..lazy import module
from .io import RE2_BAD_ID, atomic_path, id_problem, read_tsv

pd = module("pandas")  # imported on first use (lazy.py)

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


def _where(row: int, lines) -> tuple[str, int | None]:
    """How to name a run's row in an error: its line in a TREC file, or ``row N: `` of a Parquet file."""
    return ("", int(lines[row])) if lines is not None else (f"row {row + 1}: ", None)


def _check_run(df: pd.DataFrame, path: str, lines=None) -> pd.DataFrame:
    """InputError naming the row (or line) of a missing or whitespace-holding id, a NaN or infinite score, or a
    (qid, docid) pair listed twice; returns the run ranked."""
    if df.empty:
        raise InputError("the run is empty", path)
    table = pa.table({"qid": df["qid"], "docid": df["docid"]})
    for col, what in (("qid", "query id"), ("docid", "document id")):
        ids = table[col].combine_chunks()
        bad = pc.or_kleene(pc.equal(pc.binary_length(ids), 0), pc.match_substring_regex(ids, RE2_BAD_ID))
        bad = pc.fill_null(bad, True)
        if pc.any(bad).as_py():
            row = pc.index(bad, True).as_py()
            at, line = _where(row, lines)
            value = ids[row].as_py()
            problem = "is missing" if value is None else "is empty" if not value else f"{value!r} {id_problem(value)}"
            raise InputError(f"{at}{what} {problem}", path, line)
    with np.errstate(over="ignore"):
        scores = df["score"].to_numpy(dtype=np.float32)
    finite = np.isfinite(scores)
    if not finite.all():
        row = int(np.argmin(finite))
        at, line = _where(row, lines)
        raise InputError(f"{at}score {float(df['score'].iloc[row])} is not a finite float32 number", path, line)
    counts = table.group_by(["qid", "docid"]).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts["count_all"], 1))
    if len(dup):
        q, d = dup["qid"][0].as_py(), dup["docid"][0].as_py()
        rows = np.flatnonzero((df["qid"].to_numpy() == q) & (df["docid"].to_numpy() == d))
        at, line = _where(int(rows[1]), lines)
        first = f"line {int(lines[rows[0]])}" if lines is not None else f"row {rows[0] + 1}"
        raise InputError(f"{at}document {d!r} is listed twice for query {q!r} (first on {first})", path, line)
    return rank_run(df.assign(score=scores))


def _read_parquet_run(path: str) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"not a readable Parquet file ({e})", path) from None
    missing = [c for c in ("qid", "docid", "score") if c not in table.column_names]
    if missing:
        raise InputError(f"run is missing column(s) {', '.join(missing)}", path)
    cols = {}
    for col in ("qid", "docid", "score"):
        kind = table.schema.field(col).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        is_str = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        ok = pa.types.is_integer(kind) or (pa.types.is_floating(kind) if col == "score" else is_str)
        if not ok:
            raise InputError(f"column {col} holds {kind}, not {'numbers' if col == 'score' else 'ids (strings)'}", path)
        try:
            cols[col] = table[col].cast(pa.float64() if col == "score" else pa.string())
        except pa.ArrowException as e:
            raise InputError(f"column {col} cannot be read as {'numbers' if col == 'score' else 'strings'} ({e})", path) from None
    if any(cols[c].null_count for c in cols):
        bad = next(c for c in cols if cols[c].null_count)
        row = pc.index(pc.is_null(cols[bad]), True).as_py()
        raise InputError(f"row {row + 1}: {bad} is missing", path)
    return _check_run(pa.table(cols).to_pandas(), path)


def read_run(path) -> pd.DataFrame:
    """Read a Parquet run (``.parquet``) or a TREC run (``qid Q0 docid rank score tag``).

    Every id must be non-empty without whitespace, every score a finite number, and each (qid, docid) listed once;
    anything else raises InputError naming the file and line (or row)."""
    path = require_file(path)
    if path.endswith(".parquet"):
        return _read_parquet_run(path)
    qids, docids, scores, lines = [], [], [], []
    for n, (q, _, d, _, s, _) in read_tsv(path, 6, sep=None):
        try:
            scores.append(float(s))
        except ValueError:
            raise InputError(f"score {s[:40]!r} is not a number", path, n) from None
        qids.append(q)
        docids.append(d)
        lines.append(n)
    df = pd.DataFrame({"qid": pd.Series(qids, dtype=object), "docid": pd.Series(docids, dtype=object),
                       "score": pd.Series(scores, dtype="float64")})
    return _check_run(df, path, lines)


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
