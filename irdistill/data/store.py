"""The on-disk corpus store, and id lookups without a Python dict of every id.

A corpus whose parsed text passes ``min_bytes()`` is written as it is parsed to a store folder, and memory-mapped by
every later load while its source (size, mtime, ctime, inode) is unchanged::

    <store>/docs.arrow   docid, title, text in file order (Arrow IPC, record batches of ~100k documents)
    <store>/ids.arrow    docid (file order), sorted (the ids in byte order) and row (where each sorted id is)
    <store>/meta.json    the source's key, the content fingerprint, the number of documents

A reload maps the files and reads nothing; the OS pages in what is read (and may drop it again), so a corpus of
millions of passages costs milliseconds and almost no memory to open. The store goes beside the source file
(``.<name>.store``) when that folder is writable, else to ``$XDG_CACHE_HOME/irdistill/corpora``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .io import atomic_dir, user_cache

VERSION = 1
MIN_BYTES = 32 << 20  # parsed corpora below this stay in memory (IRDISTILL_STORE_MIN_BYTES overrides)
LOOKUP_BLOCK = 1 << 20  # ids looked up per vectorised binary search


def min_bytes() -> int:
    from ..errors import env_int

    return env_int("IRDISTILL_STORE_MIN_BYTES", MIN_BYTES)


def places(name: str, beside: str | None = None) -> list[str]:
    """Where the store of ``name`` (a file path or an ``ir_datasets:<id>`` name) may live, first choice first."""
    out = []
    if beside is not None:
        real = os.path.realpath(beside)
        out.append(os.path.join(os.path.dirname(real), f".{os.path.basename(real)}.store"))
        name = real
    return out + [user_cache("corpora", hashlib.sha1(name.encode()).hexdigest()[:20] + ".store")]


class Store:
    """An opened store: ``docs`` and ``ids`` are memory-mapped Arrow tables."""

    def __init__(self, folder: str, meta: dict, docs: pa.Table, ids: pa.Table):
        self.folder, self.meta, self.docs, self.ids = folder, meta, docs, ids


def _mapped(path: str) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(path)).read_all()


def open_store(folder: str, key: dict | None = None) -> Store | None:
    """The store in ``folder`` if it is complete and was built under ``key`` (None: any key), else None."""
    try:
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("version") != VERSION or (key is not None and meta.get("key") != json.loads(json.dumps(key))):
            return None
        docs, ids = _mapped(os.path.join(folder, "docs.arrow")), _mapped(os.path.join(folder, "ids.arrow"))
    except (OSError, ValueError, AttributeError, pa.ArrowException):
        return None
    if not len(docs) == len(ids) == meta.get("documents"):
        return None
    return Store(folder, meta, docs, ids)


def find_store(candidates: list[str], key: dict) -> Store | None:
    for folder in candidates:
        found = open_store(folder, key)
        if found is not None:
            return found
    return None


def _writable(folder: str) -> bool:
    parent = os.path.dirname(folder)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError:
        return False
    return os.access(parent, os.W_OK)


class Writer:
    """Writes a store while the corpus is parsed: record batches to ``docs.arrow``, then (``finish``) the id lookup
    and ``meta.json``. The folder appears only when the ``stack`` it was opened on closes without an error."""

    def __init__(self, folder: str, work: str, key: dict, schema: pa.Schema, hasher):
        self.folder, self.work, self.key, self.hasher, self.documents = folder, work, key, hasher, 0
        self._sink = pa.OSFile(os.path.join(work, "docs.arrow"), "wb")
        self._writer = pa.ipc.new_file(self._sink, schema)

    @classmethod
    def open(cls, stack: contextlib.ExitStack, candidates: list[str], key: dict, schema: pa.Schema, hasher):
        """A writer in the first writable place (None if there is none: the corpus then stays in memory)."""
        for folder in candidates:
            if _writable(folder):
                try:
                    work = stack.enter_context(atomic_dir(folder))
                except OSError:
                    continue
                writer = cls(folder, work, key, schema, hasher)
                stack.callback(writer.close)
                return writer
        return None

    def write(self, batch: pa.RecordBatch) -> None:
        self.hasher.update(batch)
        self._writer.write_batch(batch)
        self.documents += len(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None

    def finish(self, ids: pa.Array) -> None:
        """Write the id lookup (``ids`` in file order) and the metadata that marks the store complete."""
        self.close()
        order = pc.sort_indices(ids).cast(pa.int64())
        table = pa.table({"docid": ids, "sorted": ids.take(order), "row": order})
        with pa.OSFile(os.path.join(self.work, "ids.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        with open(os.path.join(self.work, "meta.json"), "w", encoding="utf-8") as f:
            json.dump({"version": VERSION, "key": self.key, "fingerprint": self.hasher.hexdigest(),
                       "documents": self.documents}, f, indent=1)


# lookups ------------------------------------------------------------------------------------------------------------
class IdIndex:
    """Row numbers of ids by a vectorised binary search over the ids sorted once (``sorted[i]`` sits at row
    ``rows[i]``): each lookup batch costs ~log2(n) Arrow compare kernels, memory is the two columns (mapped or not)."""

    def __init__(self, sorted_ids: pa.Array, rows: np.ndarray):
        self.sorted, self.rows = sorted_ids, rows

    @classmethod
    def build(cls, ids: pa.Array) -> "IdIndex":
        order = pc.sort_indices(ids)
        return cls(ids.take(order), order.to_numpy().astype(np.int64))

    def find(self, keys: pa.Array) -> np.ndarray:
        """The row of each key, -1 where the id is unknown."""
        if len(keys) > LOOKUP_BLOCK:
            return np.concatenate([self.find(keys.slice(i, LOOKUP_BLOCK)) for i in range(0, len(keys), LOOKUP_BLOCK)])
        n, m = len(self.sorted), len(keys)
        if n == 0 or m == 0:
            return np.full(m, -1, np.int64)
        lo, hi = np.zeros(m, np.int64), np.full(m, n, np.int64)
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            probe = self.sorted.take(pa.array(np.minimum(mid, n - 1)))
            less = pc.fill_null(pc.less(probe, keys), False).to_numpy(zero_copy_only=False)
            lo = np.where(active & less, mid + 1, lo)
            hi = np.where(active & ~less, mid, hi)
        at = np.minimum(lo, n - 1)
        same = pc.fill_null(pc.equal(self.sorted.take(pa.array(at)), keys), False).to_numpy(zero_copy_only=False)
        return np.where(same & (lo < n), self.rows[at], -1)


def take(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table.take(rows)`` that reads only the record batches holding ``rows`` (Arrow's own take on a chunked table
    first concatenates every chunk: a copy of the whole mapped corpus per call)."""
    batches = table.to_batches()
    if len(batches) <= 1:
        return table.take(pa.array(rows, pa.int64()))
    starts = np.cumsum([0] + [len(b) for b in batches])
    which = np.searchsorted(starts, rows, side="right") - 1
    order = np.argsort(which, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(which[order])) + 1)
    pieces = [batches[which[g[0]]].take(pa.array(rows[g] - starts[which[g[0]]], pa.int64())) for g in groups if len(g)]
    gathered = pa.Table.from_batches(pieces, table.schema).combine_chunks()
    inverse = np.empty(len(order), np.int64)
    inverse[order] = np.arange(len(order))
    return gathered.take(pa.array(inverse))
