"""The teacher score cache: a Parquet dataset, one hive partition per teacher, one part file per committed block.

Layout::

    cache/teacher=<teacher id>/_teacher.json          what the teacher is (model, weights hash, prompt, options)
    cache/teacher=<teacher id>/part-<uuid>.parquet    qid, docid, score (float32)
    cache/teacher=<teacher id>/.qids.jsonl            which queries each part holds, and a hash of each query's text
                                                      (an append-only index)
    cache/teacher=<teacher id>/.lock                  flock'ed while a block is committed
    cache/teacher=<teacher id>/.claim-<owner>-<n>     queries a live scorer is working on (flock'ed by it)

Readers (pyarrow, pandas, polars, duckdb) see ``teacher`` as a column through hive partitioning and skip the hidden
files. Every part is written to a hidden temporary file and renamed into place, so a killed writer leaves no partial
part. ``commit`` runs under the teacher's lock and writes only (qid, docid) pairs not yet present, so any number of
processes (``--shard i/n`` jobs, or several on the same shard) can write one cache: no pair is ever stored twice and a
killed writer is simply rerun. Locks are ``flock``, released by the kernel when a process dies. Across machines they
hold on NFS v3 (with lockd) and v4, where Linux maps flock to byte-range locks, and on Lustre only if mounted with
``-o flock``; check that another shared file system (GPFS, BeeGFS...) honours flock across nodes before relying on it.
Tested here with processes on one machine.

A score belongs to a query's text, not to its id: ``commit`` records a hash of each query's text in the index, and a
query id that comes back with another text (an edited queries file, or two query sets with the same ids over one corpus)
is an error, never a stale hit (``check_texts``). Parts whose index line has no hashes (written by older versions, or
found without their index line) are not checked.

A cache holds (qid, docid) pairs, not whole queries: a query scored before can come back with more candidates (a top
40 after a top 20), and only its new pairs are scored. ``missing`` finds them, reading only the parts (and row groups)
that hold the queries asked about, a block of queries at a time, anti-joined in Arrow.

How a scoring loop uses it (many processes, one cache; ``Teacher.score`` is this loop)::

    cache.register(key, description)
    todo = cache.missing(key, my_pairs)                   # (qid, docid) rows the cache lacks; cheap for new queries
    for block in blocks_of(todo):                         # whole queries, e.g. ~2,000 pairs each
        mine = cache.claim(key, block.qid.unique(), held=True)   # queries no other live process is scoring
        work = cache.missing(key, block[block.qid.isin(mine)])   # again: another process may have scored some since
        cache.commit(key, work.qid, work.docid, teacher.score(work))  # under the lock: the pairs still missing
        cache.release(key)                                # claims last one block: no one waits on finished work
    # queries that were someone else's: look them up again (``missing``) until that process has committed them

A claim lasts while its process lives (its claim file stays flock'ed) and its lease is renewed (every ``claim`` and
``commit`` renews it; ``lease`` seconds without one let others take the queries of a hung process). Claims only save
work: ``commit`` alone already keeps the cache free of duplicates. ``claim`` without ``held`` also leaves out the
queries the cache holds any pair of (for loops that score whole queries once).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import uuid
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..data.io import atomic_path, file_lock
from ..data.runs import rank_run
from ..errors import InputError, safe_name
from ..lazy import module
from .claims import Claims

pd = module("pandas")  # imported on first use (lazy.py)
pads = module("pyarrow.dataset")  # (which imports pandas)

SCHEMA = pa.schema([("qid", pa.string()), ("docid", pa.string()), ("score", pa.float32())])
# a sampled entry's parts add each row's importance weight (cache/sparse.py); other parts read it as null
WEIGHTED = SCHEMA.append(pa.field("weight", pa.float32()))
INDEX, LOCK = ".qids.jsonl", ".lock"
META = "_teacher.json"


def text_hash(text: str) -> str:
    """What the index keeps of a query's text: 16 hex digits of its SHA-1."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _is_part(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet")


@dataclass
class _Index:
    """What this process knows of one teacher's parts: part name -> its qids, and qid -> the part(s) holding it."""

    parts: dict[str, list[str]] = field(default_factory=dict)
    where: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    unchecked: set[str] = field(default_factory=set)  # parts not written by commit: may hold a pair twice
    texts: dict[str, str] = field(default_factory=dict)  # qid -> text_hash of the text it was scored with
    inode: int | None = None
    offset: int = 0

    def add(self, part: str, qids, unique: bool = True, texts=None) -> None:
        self.parts[part] = list(qids)
        if not unique:
            self.unchecked.add(part)
        for q, h in zip(self.parts[part], texts or ()):
            if h:
                self.texts.setdefault(q, h)
        for q in self.parts[part]:
            have = self.where.get(q)
            self.where[q] = part if have is None else (have if isinstance(have, tuple) else (have,)) + (part,)

    def rebuild(self) -> None:
        parts, self.parts, self.where = self.parts, {}, {}
        for part, qids in parts.items():
            self.add(part, qids)
        self.texts = {q: h for q, h in self.texts.items() if q in self.where}

    def parts_of(self, qids) -> set[str]:
        out: set[str] = set()
        for q in qids:
            have = self.where.get(q)
            if have is not None:
                out.update(have if isinstance(have, tuple) else (have,))
        return out

    def clean(self, parts=None) -> bool:
        """Whether no pair can be stored twice (in ``parts``, or anywhere): every query in one part, and every part
        written by ``commit`` (which never writes a pair twice)."""
        if parts is None:
            return not self.unchecked and not any(isinstance(v, tuple) for v in self.where.values())
        parts = set(parts)
        return not (parts & self.unchecked) and not any(
            isinstance(v, tuple) and len(parts.intersection(v)) > 1 for v in self.where.values())


@dataclass
class TeacherReport:
    """What ``ScoreCache.verify`` found in one teacher's folder."""

    teacher: str
    parts: int = 0
    rows: int = 0
    pairs: int = 0  # distinct (qid, docid)
    queries: int = 0
    nan_scores: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    stray: list[str] = field(default_factory=list)  # files that are neither parts nor the cache's own

    @property
    def duplicates(self) -> int:
        return self.rows - self.pairs

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.unreadable or self.stray or self.nan_scores)


def _unreadable(path: str, err: Exception) -> InputError:
    return InputError(f"unreadable part file ({str(err).splitlines()[0][:200] if str(err) else type(err).__name__}); "
                      "remove it and rerun the scoring: its queries are scored again", path)


class ScoreCache:
    """A folder of teacher scores. ``lease``: seconds a claim holds without being renewed (see the module doc)."""

    def __init__(self, folder, lease: float = 1800.0):
        self.folder = os.fspath(folder)
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise InputError("the cache is not a folder", self.folder)
        self.lease = lease
        host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:40]
        self.owner = f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._index: dict[str, _Index] = {}
        self._claims = Claims(self.owner, lease)

    def _dir(self, teacher: str) -> str:
        return os.path.join(self.folder, f"teacher={safe_name(teacher, 'teacher id', self.folder)}")

    def _make_dir(self, teacher: str) -> str:
        path = self._dir(teacher)
        try:
            os.makedirs(path, exist_ok=True)
        except FileExistsError:
            raise InputError("not a folder", path if os.path.exists(path) else self.folder) from None
        except PermissionError:
            raise InputError("cannot write to the cache (permission denied)", self.folder) from None
        return path

    # teachers ------------------------------------------------------------------------------------------------
    def register(self, teacher: str, description: dict) -> None:
        path = os.path.join(self._make_dir(teacher), META)
        if not os.path.exists(path):
            with atomic_path(path) as tmp, open(tmp, "w") as f:
                json.dump(description, f, indent=1, sort_keys=True)

    def _meta(self, path: str) -> dict:
        try:
            with open(path, encoding="utf-8") as f:
                desc = json.load(f)
        except (OSError, ValueError) as e:
            raise InputError(f"unreadable teacher description ({e})", path) from None
        if not isinstance(desc, dict):
            raise InputError("unreadable teacher description (not a JSON object)", path)
        return desc

    def describe(self, teacher: str) -> dict:
        path = os.path.join(self._dir(teacher), META)
        if not os.path.exists(path):
            raise InputError(f"no teacher {teacher!r} in the cache", self.folder)
        return self._meta(path)

    def described(self, teacher: str) -> dict:
        """``describe``, or {} for scores committed without a description (the query view they read: none)."""
        path = os.path.join(self._dir(teacher), META)
        return self._meta(path) if os.path.exists(path) else {}

    def _teacher_ids(self) -> list[str]:
        if not os.path.isdir(self.folder):
            return []
        out = []
        for name in sorted(os.listdir(self.folder)):
            tid = name[len("teacher="):]
            if name.startswith("teacher=") and os.path.isdir(os.path.join(self.folder, name)):
                with contextlib.suppress(InputError):
                    out.append(safe_name(tid))
        return out

    def teachers(self) -> dict[str, dict]:
        return {t: self._meta(os.path.join(self._dir(t), META)) for t in self._teacher_ids()
                if os.path.exists(os.path.join(self._dir(t), META))}

    # the index of scored queries ---------------------------------------------------------------------------------
    def _part_names(self, teacher: str) -> set[str]:
        try:
            return {n for n in os.listdir(self._dir(teacher)) if _is_part(n)}
        except FileNotFoundError:
            return set()
        except NotADirectoryError:
            raise InputError("not a folder", self._dir(teacher)) from None

    def _read_qids(self, path: str) -> list[str]:
        try:
            return pc.unique(pq.read_table(path, columns=["qid"])["qid"]).to_pylist()
        except (pa.ArrowException, OSError, KeyError) as e:
            raise _unreadable(path, e) from None

    def _refresh(self, teacher: str, write_back: bool = False) -> _Index:
        """Bring this process's view of the teacher's parts up to date: new index lines, parts no index line names
        (a writer killed between its part and its index line, or an older irdistill) and parts removed by compact."""
        folder, idx = self._dir(teacher), self._index.setdefault(teacher, _Index())
        path = os.path.join(folder, INDEX)
        try:  # the index first, then the folder: a part is renamed into place before its index line is appended
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_ino != idx.inode or st.st_size < idx.offset:  # a new index (compact): read it from the start
                    idx.parts, idx.where, idx.unchecked, idx.texts = {}, {}, set(), {}
                    idx.inode, idx.offset = st.st_ino, 0
                f.seek(idx.offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        except NotADirectoryError:
            raise InputError("not a folder", folder) from None
        except IsADirectoryError:
            raise InputError("a folder where the cache's index file belongs: remove it (the parts are indexed again)",
                             path) from None
        names = self._part_names(teacher)
        complete = data[: data.rfind(b"\n") + 1]
        idx.offset += len(complete)
        for line in complete.splitlines():
            try:
                rec = json.loads(line)
                part, qids, texts = rec["part"], rec["qids"], rec.get("texts")
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line: that part is read from its file below
            if isinstance(part, str) and isinstance(qids, list) and part in names and part not in idx.parts:
                texts = texts if isinstance(texts, list) and len(texts) == len(qids) and all(
                    h is None or isinstance(h, str) and re.fullmatch("[0-9a-f]{16}", h) for h in texts) else None
                idx.add(part, [str(q) for q in qids], unique=rec.get("unique") is True, texts=texts)
        gone = idx.parts.keys() - names
        if gone:
            for part in gone:
                del idx.parts[part]
            idx.unchecked -= gone
            idx.rebuild()
        unknown = sorted(names - idx.parts.keys())
        lines = []
        for part in unknown:
            idx.add(part, self._read_qids(os.path.join(folder, part)), unique=False)
            lines.append(json.dumps({"part": part, "qids": idx.parts[part]}) + "\n")
        if write_back and lines:
            self._append_index(folder, "".join(lines))
        return idx

    @staticmethod
    def _append_index(folder: str, text: str) -> None:
        """Append whole lines to the index (the caller holds the lock); a torn last line is closed first."""
        fd = os.open(os.path.join(folder, INDEX), os.O_CREAT | os.O_RDWR | os.O_APPEND, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                text = "\n" + text
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _locked(self, teacher: str):
        folder = self._make_dir(teacher)
        try:
            with file_lock(os.path.join(folder, LOCK)):
                yield folder
        except PermissionError:
            raise InputError("cannot write to the cache (permission denied)", folder) from None

    # writing -------------------------------------------------------------------------------------------------
    def commit(self, teacher: str, qids, docids, scores, texts: dict[str, str] | None = None, weights=None) -> int:
        """Store the block's (qid, docid, score) rows whose (qid, docid) the cache does not hold yet, as one part file,
        under the teacher's lock; returns the number of rows written. Safe to call from many processes at once.
        Also renews this process's claims on the teacher. ``texts`` (qid -> the query's text) is what the scores were
        made from: its hashes go into the index, and a query the cache holds with another text is an InputError.
        ``weights``: each row's importance weight, for a sampled entry (``cache/sparse.py``)."""
        qids, docids = [str(q) for q in qids], [str(d) for d in docids]
        values = np.asarray(scores, dtype=np.float32).reshape(-1)
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float32).reshape(-1)
        if not len(qids) == len(docids) == len(values) == (len(values) if weights is None else len(weights)):
            raise ValueError(f"commit: {len(qids)} qids, {len(docids)} docids and {len(values)} scores"
                             + (f" and {len(weights)} weights" if weights is not None else ""))
        if np.isnan(values).any():
            i = int(np.flatnonzero(np.isnan(values))[0])
            raise ValueError(f"commit: the score of ({qids[i]!r}, {docids[i]!r}) is NaN")
        first: dict[tuple[str, str], int] = {}
        for i, pair in enumerate(zip(qids, docids)):
            first.setdefault(pair, i)  # a pair repeated in the block: its first score
        rows = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        block = pa.table({"qid": pa.array([qids[i] for i in rows], pa.string()),
                          "docid": pa.array([docids[i] for i in rows], pa.string())})
        with self._locked(teacher) as folder:
            idx = self._refresh(teacher, write_back=True)
            hashes = {q: text_hash(t) for q, t in (texts or {}).items()}
            self._check(teacher, idx, hashes)
            new_rows = ~self._held(teacher, idx, block)
            rows = rows[new_rows]
            if len(rows):
                part = f"part-{uuid.uuid4().hex}.parquet"
                table = block.filter(new_rows).append_column("score", pa.array(values[rows]))
                table = table.append_column("weight", pa.array(weights[rows])).cast(WEIGHTED) \
                    if weights is not None else table.cast(SCHEMA)
                with atomic_path(os.path.join(folder, part)) as tmp:
                    pq.write_table(table, tmp, row_group_size=100_000)
                new = list(dict.fromkeys(table["qid"].to_pylist()))
                line = {"part": part, "qids": new, "unique": True}
                if hashes:
                    line["texts"] = [hashes.get(q) for q in new]
                idx.add(part, new, texts=line.get("texts"))
                self._append_index(folder, json.dumps(line) + "\n")
            self._claims.renew(folder)
        return len(rows)

    def check_texts(self, teacher: str, queries: dict[str, str]) -> None:
        """InputError if the cache holds scores of one of ``queries`` (qid -> text) made from another text under the
        same id: the scores are not this query's."""
        self.scored_qids(teacher, queries)

    def _check(self, teacher: str, idx: _Index, hashes: dict[str, str]) -> None:
        for q, h in hashes.items():
            if idx.texts.get(q, h) != h:
                raise InputError(f"query {q!r} is not the text teacher {teacher!r} scored under that id here; give "
                                 "changed or new queries ids of their own, or use another cache", self.folder)

    def write(self, teacher: str, qids, docids, scores) -> int:
        """Same as ``commit`` (kept for older callers): appends the pairs the cache lacks; returns the rows written."""
        return self.commit(teacher, qids, docids, scores)

    def _held(self, teacher: str, idx: _Index, pairs: pa.Table) -> np.ndarray:
        """Which rows of ``pairs`` (qid, docid) the cache holds: the parts holding their queries are read (queries the
        index does not name cost nothing) and semi-joined with them in Arrow."""
        held = np.zeros(len(pairs), dtype=bool)
        qids = [q for q in pc.unique(pairs["qid"]).to_pylist() if q in idx.where]
        if qids:
            have, _ = self._select(teacher, idx, qids, ("qid", "docid"), (min(qids), max(qids)))
            rows = pairs.select(["qid", "docid"]).append_column("row", pa.array(np.arange(len(pairs))))
            held[rows.join(have, ["qid", "docid"], join_type="left semi")["row"].to_numpy()] = True
        return held

    def missing(self, teacher: str, pairs: pd.DataFrame, queries: int = 10_000) -> pd.DataFrame:
        """The rows of ``pairs`` (a DataFrame with ``qid`` and ``docid``) whose pair the cache does not hold, in their
        order: the work left. Queries the index does not name are not looked up; the others are, ``queries`` of them
        at a time in query id order (only the parts and row groups that hold them are read, as ``read_blocks`` does),
        so memory holds one block of the cache, never all of it."""
        if pairs.empty or not os.path.isdir(self._dir(teacher)):
            return pairs
        idx = self._refresh(teacher)
        codes, names = pd.factorize(pairs["qid"], sort=True)  # codes in query id order
        held = np.flatnonzero(np.fromiter((q in idx.where for q in names), dtype=bool, count=len(names)))
        keep = np.ones(len(pairs), dtype=bool)
        order = np.argsort(codes, kind="stable")
        ordered, qids, docids = codes[order], pairs["qid"].to_numpy(), pairs["docid"].to_numpy()
        for i in range(0, len(held), queries):
            first, last = held[i], held[min(i + queries, len(held)) - 1]
            rows = order[np.searchsorted(ordered, first, "left"): np.searchsorted(ordered, last, "right")]
            block = pa.table({"qid": pa.array(qids[rows], pa.string()), "docid": pa.array(docids[rows], pa.string())})
            keep[rows[self._held(teacher, idx, block)]] = False
        return pairs[keep]

    # claims ----------------------------------------------------------------------------------------------------
    def claim(self, teacher: str, qids, held: bool = False) -> list[str]:
        """Lease ``qids`` to this process: returns those (in the given order) that no other live process has claimed
        and, unless ``held``, that the cache holds no pair of; the others are someone else's work. With ``held`` the
        caller looks up which pairs of its queries are missing after claiming them (``missing``). Renews this
        process's lease."""
        qids = [str(q) for q in qids]
        with self._locked(teacher) as folder:
            idx = self._refresh(teacher, write_back=True)
            taken = self._claims.taken(folder)
            out = [q for q in dict.fromkeys(qids) if (held or q not in idx.where) and q not in taken]
            self._claims.add(folder, out)
        return out

    def forget_if_empty(self, teacher: str) -> bool:
        """Remove ``teacher``'s folder if it holds no scores and no other live process is scoring it (a teacher that
        failed before its first block, e.g. an unreachable endpoint, leaves nothing behind). True if removed."""
        import shutil

        folder = self._dir(teacher)
        if not os.path.isdir(folder):
            return False
        with self._locked(teacher):
            self._claims.release(folder)
            if any(_is_part(n) for n in os.listdir(folder)) or self._claims.taken(folder):
                return False
            shutil.rmtree(folder, ignore_errors=True)
        return True

    def release(self, teacher: str | None = None) -> None:
        """Give up this process's claims (on ``teacher``, or all); a later ``claim`` starts a new claim file. Under the
        teacher's lock, as ``taken`` runs: another process never finds our file unlocked before it is gone."""
        held = self._claims.folders()
        for folder in held if teacher is None else [f for f in held if f == self._dir(teacher)]:
            if not os.path.isdir(folder):  # the folder was removed under us: nothing to hide from
                self._claims.release(folder)
                continue
            with file_lock(os.path.join(folder, LOCK)):
                self._claims.release(folder)

    # reading -------------------------------------------------------------------------------------------------
    def _table(self, teacher: str, parts, columns, expr=None) -> pa.Table:
        """Read ``columns`` of the given part files of ``teacher``; an unreadable part raises InputError naming it."""
        folder = self._dir(teacher)
        paths = [os.path.join(folder, p) for p in parts]
        if not paths:
            return WEIGHTED.empty_table().select(list(columns))
        try:
            return pads.dataset(paths, schema=WEIGHTED, format="parquet").to_table(columns=list(columns), filter=expr)
        except (pa.ArrowException, OSError) as e:
            for path in paths:  # find the damaged part (metadata first, then the data)
                try:
                    pq.ParquetFile(path).read(columns=list(columns))
                except (pa.ArrowException, OSError) as bad:
                    raise _unreadable(path, bad) from None
            raise _unreadable(folder, e) from None

    @staticmethod
    def _columns(path: str) -> list[str]:
        try:
            return pq.read_schema(path).names
        except (pa.ArrowException, OSError) as e:
            raise _unreadable(path, e) from None

    def dataset(self) -> pads.Dataset:
        if not os.path.isdir(self.folder):
            raise InputError("no such cache folder", self.folder)
        return pads.dataset(self.folder, format="parquet", partitioning="hive", schema=WEIGHTED.append(pa.field("teacher", pa.string())))

    def _select(self, teacher: str, idx: _Index, qids, columns, bounds=None) -> tuple[pa.Table, list[str]]:
        """``columns`` of the rows of ``qids`` (every row with None) and the parts read: only those holding them."""
        if qids is None:
            parts = sorted(idx.parts)
            return self._table(teacher, parts, columns), parts
        qids = [str(q) for q in qids]
        parts = sorted(idx.parts_of(qids))
        expr = pc.field("qid").isin(pa.array(qids, pa.string()))
        if bounds is not None:
            expr = (pc.field("qid") >= bounds[0]) & (pc.field("qid") <= bounds[1]) & expr
        return self._table(teacher, parts, columns, expr), parts

    def read(self, teacher: str | None = None, qids=None, columns=("qid", "docid", "score"),
             bounds: tuple[str, str] | None = None) -> pd.DataFrame:
        """Scores as a DataFrame (one row per pair; duplicates, which only older versions could write, dropped).

        With ``qids``, only the parts holding them are read (and only their row groups that may hold them: ``bounds``,
        the least and greatest of ``qids``, lets row group statistics skip the others). ``read_blocks`` reads a large
        cache a block of queries at a time."""
        columns = list(columns)
        if teacher is None:
            frames = [self.read(t, qids, columns).assign(teacher=t) for t in self._teacher_ids()]
            if not frames:
                return pd.DataFrame({c: pd.Series(dtype="float32" if c == "score" else object) for c in columns})
            df = pd.concat(frames, ignore_index=True)
            return df[columns].reset_index(drop=True) if "teacher" not in columns else df
        read = [c for c in columns if c != "teacher"]
        cols = list(dict.fromkeys(read + ["qid", "docid"]))
        idx = self._refresh(teacher)
        table, parts = self._select(teacher, idx, qids, cols, bounds)
        df = table.to_pandas()
        if not idx.clean(parts):
            df = df.drop_duplicates(["qid", "docid"], keep="first")
        if "teacher" in columns:
            df["teacher"] = teacher
        return df[columns].reset_index(drop=True)

    def read_blocks(self, teacher: str, qids=None, queries: int = 10_000, columns=("qid", "docid", "score")):
        """Yield the scores of ``qids`` (default: every scored query) as DataFrames of about ``queries`` whole queries
        each, in query id order: memory holds one block, not the whole cache (tens of millions of pairs).

        Each block reads only the parts that hold its queries (from the index), and within a part sorted by ``compact``
        only the row groups whose qid range meets the block's."""
        idx = self._refresh(teacher)
        wanted = sorted(idx.where if qids is None else {str(q) for q in qids if str(q) in idx.where})
        for i in range(0, len(wanted), queries):
            block = wanted[i : i + queries]
            yield self.read(teacher, block, columns, bounds=(block[0], block[-1]))

    def scored_qids(self, teacher: str, texts: dict[str, str] | None = None) -> set[str]:
        """The queries the cache holds scores of (from the index: no part is read unless the index lacks it). With
        ``texts`` (qid -> the query's text now), an InputError first if one of them was scored from another text."""
        if not os.path.isdir(self._dir(teacher)):
            return set()
        idx = self._refresh(teacher)
        if texts:
            self._check(teacher, idx, {q: text_hash(t) for q, t in texts.items()})
        return set(idx.where)

    def count_pairs(self, teacher: str) -> int:
        """The number of distinct (qid, docid) pairs stored for ``teacher`` (from the parts' metadata when every part was
        written by ``commit``, else by reading the qid and docid columns)."""
        idx = self._refresh(teacher)
        if not idx.clean():
            return len(self.read(teacher, columns=("qid", "docid")))
        total = 0
        for part in idx.parts:
            path = os.path.join(self._dir(teacher), part)
            try:
                total += pq.read_metadata(path).num_rows
            except (pa.ArrowException, OSError) as e:
                raise _unreadable(path, e) from None
        return total

    def read_pairs(self, teacher: str, pairs: pd.DataFrame) -> pd.DataFrame:
        """The scores of exactly the (qid, docid) ``pairs`` that the cache holds, in the order of ``pairs``: not the
        other pairs it holds of their queries (scored from another run)."""
        df = self.read(teacher, pd.unique(pairs["qid"]))
        return pairs[["qid", "docid"]].merge(df, on=["qid", "docid"], how="inner")

    def run(self, teacher: str, qids=None, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
        """The teacher's scores (of ``qids``, or of exactly the pairs of the run ``pairs``) as a ranked run."""
        return rank_run(self.read(teacher, qids) if pairs is None else self.read_pairs(teacher, pairs))

    # maintenance -----------------------------------------------------------------------------------------------
    def verify(self, teacher: str | None = None) -> list[TeacherReport]:
        """Check every part of ``teacher`` (or of all teachers): readable, no (qid, docid) stored twice, no NaN score,
        no stray files. Reads only; returns one report per teacher (``report.ok``)."""
        teachers = [teacher] if teacher is not None else self._teacher_ids()
        reports = []
        for t in teachers:
            folder, rep = self._dir(t), TeacherReport(t)
            if not os.path.isdir(folder):
                raise InputError(f"no teacher {t!r} in the cache", self.folder)
            tables = []
            meta = os.path.join(folder, META)
            if os.path.lexists(meta):
                try:
                    self._meta(meta)
                except InputError as e:
                    rep.unreadable.append((meta, e.message))
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if _is_part(name):
                    rep.parts += 1
                    try:
                        if not os.path.isfile(path):
                            raise OSError("not a file")
                        missing = [c for c in SCHEMA.names if c not in pq.read_schema(path).names]
                        if missing:
                            raise KeyError(f"no column {', '.join(missing)}")
                        tables.append(pq.read_table(path, columns=["qid", "docid", "score"], schema=SCHEMA))
                    except (pa.ArrowException, OSError, KeyError) as e:
                        e = e.args[0] if isinstance(e, KeyError) else e
                        rep.unreadable.append((path, str(e).splitlines()[0] if str(e) else type(e).__name__))
                elif not (name.startswith((".", "_")) or name == META):
                    rep.stray.append(path)
            if tables:
                table = pa.concat_tables(tables)
                rep.rows = len(table)
                rep.pairs = table.group_by(["qid", "docid"]).aggregate([]).num_rows
                rep.queries = len(pc.unique(table["qid"]))
                rep.nan_scores = int(pc.sum(pc.is_nan(table["score"])).as_py() or 0)
            reports.append(rep)
        return reports

    def compact(self, teacher: str, queries: int = 10_000) -> None:
        """Merge a teacher's parts into one file sorted by qid (row groups then prune well on qid filters), dropping
        any pair stored twice. Streams: ``queries`` whole queries at a time are read (``read_blocks``), sorted and
        written, so memory holds one block, not the teacher. Runs under the teacher's lock; readers during it may
        briefly see a pair twice."""
        if not os.path.isdir(self._dir(teacher)):
            raise InputError(f"no teacher {teacher!r} in the cache", self.folder)
        with self._locked(teacher) as folder:
            idx = self._refresh(teacher, write_back=True)
            parts = sorted(idx.parts)
            if len(parts) < 2 and idx.clean():
                return
            weighted = any("weight" in self._columns(os.path.join(folder, p)) for p in parts)
            schema = WEIGHTED if weighted else SCHEMA
            merged, qids = f"part-{uuid.uuid4().hex}.parquet", []
            with atomic_path(os.path.join(folder, merged)) as tmp:
                with pq.ParquetWriter(tmp, schema) as writer:
                    for block in self.read_blocks(teacher, queries=queries, columns=schema.names):
                        block = block.sort_values(["qid", "docid"])
                        writer.write_table(pa.Table.from_pandas(block, schema=schema, preserve_index=False),
                                           row_group_size=100_000)
                        qids += pd.unique(block["qid"]).tolist()
            line = {"part": merged, "qids": qids, "unique": True}
            if idx.texts:
                line["texts"] = [idx.texts.get(q) for q in qids]
            with atomic_path(os.path.join(folder, INDEX)) as tmp, open(tmp, "w") as f:
                f.write(json.dumps(line) + "\n")
            for p in parts:
                os.remove(os.path.join(folder, p))
            self._index.pop(teacher, None)
