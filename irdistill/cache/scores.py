"""The teacher score cache: a Parquet dataset, one hive partition per teacher, one part file per flush.

Layout::

    cache/teacher=<teacher id>/_teacher.json      what the teacher is (model, weights hash, prompt, options)
    cache/teacher=<teacher id>/part-<uuid>.parquet  qid, docid, score (float32)

Every part is written to a hidden temporary file and renamed into place, so a killed writer leaves no partial part,
and concurrent writers never touch each other's files. A query's candidates are written together, so resuming skips
whole queries. Readers (pyarrow, pandas, polars, duckdb) see ``teacher`` as a column through hive partitioning and
skip the hidden files.
"""

from __future__ import annotations

import glob
import json
import os
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from ..data.io import atomic_path
from ..data.runs import rank_run
from ..errors import InputError

SCHEMA = pa.schema([("qid", pa.string()), ("docid", pa.string()), ("score", pa.float32())])


class ScoreCache:
    def __init__(self, folder):
        self.folder = os.fspath(folder)

    def _dir(self, teacher: str) -> str:
        return os.path.join(self.folder, f"teacher={teacher}")

    # teachers ------------------------------------------------------------------------------------------------
    def register(self, teacher: str, description: dict) -> None:
        os.makedirs(self._dir(teacher), exist_ok=True)
        path = os.path.join(self._dir(teacher), "_teacher.json")
        if not os.path.exists(path):
            with atomic_path(path) as tmp, open(tmp, "w") as f:
                json.dump(description, f, indent=1, sort_keys=True)

    def describe(self, teacher: str) -> dict:
        path = os.path.join(self._dir(teacher), "_teacher.json")
        if not os.path.exists(path):
            raise InputError(f"no teacher {teacher!r} in the cache", self.folder)
        with open(path) as f:
            return json.load(f)

    def teachers(self) -> dict[str, dict]:
        out = {}
        for path in sorted(glob.glob(os.path.join(self.folder, "teacher=*", "_teacher.json"))):
            out[os.path.basename(os.path.dirname(path))[len("teacher="):]] = json.load(open(path))
        return out

    # writing -------------------------------------------------------------------------------------------------
    def write(self, teacher: str, qids, docids, scores) -> str:
        """Append one part file atomically; returns its path."""
        table = pa.table({"qid": pa.array(list(qids), pa.string()), "docid": pa.array(list(docids), pa.string()),
                          "score": pa.array(np.asarray(scores, dtype=np.float32))}, schema=SCHEMA)
        os.makedirs(self._dir(teacher), exist_ok=True)
        path = os.path.join(self._dir(teacher), f"part-{uuid.uuid4().hex}.parquet")
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, row_group_size=100_000)
        return path

    # reading -------------------------------------------------------------------------------------------------
    def dataset(self) -> pads.Dataset:
        if not os.path.isdir(self.folder):
            raise InputError("no such cache folder", self.folder)
        return pads.dataset(self.folder, format="parquet", partitioning="hive", schema=SCHEMA.append(pa.field("teacher", pa.string())))

    def read(self, teacher: str | None = None, qids=None, columns=("qid", "docid", "score")) -> pd.DataFrame:
        """Scores as a DataFrame (one row per pair, duplicates from concurrent writers dropped).

        Filters on ``teacher`` and ``qids`` are pushed down: other teachers' folders and row groups are skipped."""
        if not os.path.isdir(self.folder):
            return pd.DataFrame({c: pd.Series(dtype="float32" if c == "score" else object) for c in columns})
        expr = None
        if teacher is not None:
            expr = pc.field("teacher") == teacher
        if qids is not None:
            cond = pc.field("qid").isin(pa.array(list(qids), pa.string()))
            expr = cond if expr is None else expr & cond
        df = self.dataset().to_table(columns=list(columns), filter=expr).to_pandas()
        keys = [c for c in ("teacher", "qid", "docid") if c in df.columns]
        return df.drop_duplicates(keys, keep="first").reset_index(drop=True)

    def scored_qids(self, teacher: str) -> set[str]:
        if not os.path.isdir(self._dir(teacher)):
            return set()
        return set(self.read(teacher, columns=("qid",))["qid"].unique().tolist())

    def run(self, teacher: str, qids=None) -> pd.DataFrame:
        """The teacher's scores as a ranked run DataFrame."""
        return rank_run(self.read(teacher, qids))

    def compact(self, teacher: str) -> None:
        """Merge a teacher's parts into one file sorted by qid (row groups then prune well on qid filters)."""
        parts = glob.glob(os.path.join(self._dir(teacher), "part-*.parquet"))
        if len(parts) < 2:
            return
        df = self.read(teacher).sort_values(["qid", "docid"])
        self.write(teacher, df["qid"], df["docid"], df["score"].to_numpy())
        for p in parts:
            os.remove(p)
