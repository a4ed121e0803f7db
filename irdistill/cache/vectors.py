"""Text embeddings kept by content: ``key(role, text)`` -> vector, in Parquet parts under one folder per model.

A teacher that embeds through an API (or a slow local model) asks the store first and embeds only what it lacks, so a
rerun, or a killed run started again, pays for no text twice. Parts are written atomically; a key written twice (two
processes at once) holds the same vector, and the first one read wins. The store is read into memory on first use:
fine for collections of up to a few million texts (a 384-dimensional float32 vector is 1.5 kB).

>>> import tempfile
>>> store = VectorStore(tempfile.mkdtemp())
>>> store.put([key("query", "hi")], [[0.6, 0.8]])
>>> store.get([key("query", "hi"), key("passage", "hi")])
[array([0.6, 0.8], dtype=float32), None]
"""

from __future__ import annotations

import hashlib
import os
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.io import atomic_path


def key(role: str, text: str) -> str:
    """20 hex digits of the SHA-1 of the role (query, passage...) and the text."""
    return hashlib.sha1(f"{role}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


class VectorStore:
    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self._vectors: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            names = sorted(n for n in os.listdir(self.folder) if n.endswith(".parquet")) if os.path.isdir(self.folder) else []
            for name in names:
                table = pq.read_table(os.path.join(self.folder, name))
                flat = table["vector"].combine_chunks()
                vectors = flat.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(table), -1)
                for k, v in zip(table["key"].to_pylist(), vectors):
                    self._vectors.setdefault(k, v)
        return self._vectors

    def get(self, keys) -> list[np.ndarray | None]:
        have = self._load()
        return [have.get(k) for k in keys]

    def put(self, keys, vectors) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if not len(keys):
            return
        os.makedirs(self.folder, exist_ok=True)
        table = pa.table({"key": pa.array(list(keys), pa.string()),
                          "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])})
        with atomic_path(os.path.join(self.folder, f"part-{uuid.uuid4().hex}.parquet")) as tmp:
            pq.write_table(table, tmp)
        have = self._load()
        for k, v in zip(keys, vectors):
            have.setdefault(k, v)

    def __len__(self) -> int:
        return len(self._load())
