"""FAISS indexes over encoded corpora: exact inner product (flat), HNSW and IVF-PQ; on the GPU(s) when faiss has them."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.runs import rank_run
from ..errors import InputError
from .encode import Embeddings, encode_texts

KINDS = ("flat", "hnsw", "ivfpq")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise RuntimeError("dense retrieval needs faiss: pip install 'irdistill[cpu]' (or [gpu])") from None
    return faiss


def default_params(kind: str, n: int, dim: int) -> dict:
    if kind == "hnsw":
        return {"M": 32, "ef_construction": 200, "ef_search": 256}
    if kind == "ivfpq":
        # 4*sqrt(n) lists, but >= 78 points per list for k-means on small corpora; probe half the lists, at most 128.
        # m = dim/4 sub-quantisers of 8 bits: 16x smaller than float32. On SciFact (n=5183): 66 lists, 33 probed.
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 78))
        m = next(m for m in (dim // 4, dim // 8, dim // 2, dim) if m and dim % m == 0)
        return {"nlist": nlist, "m": m, "nbits": 8, "nprobe": max(1, min(nlist // 2, 128))}
    return {}


def _create(kind: str, dim: int, params: dict):
    faiss = _faiss()
    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["ef_construction"]
        return index
    if kind == "ivfpq":
        return faiss.index_factory(dim, f"IVF{params['nlist']},PQ{params['m']}x{params['nbits']}", faiss.METRIC_INNER_PRODUCT)
    raise InputError(f"unknown index kind {kind!r} (choose from {', '.join(KINDS)})")


def _to_gpu(index, kind: str):
    """Copy to all GPUs when faiss was built with them (HNSW has no GPU version and stays on the CPU)."""
    faiss = _faiss()
    if kind == "hnsw" or not hasattr(faiss, "get_num_gpus") or faiss.get_num_gpus() == 0:
        return index
    options = faiss.GpuMultipleClonerOptions()
    options.useFloat16 = True  # needed for IVF-PQ with many sub-quantisers; halves memory for flat
    options.shard = True
    return faiss.index_cpu_to_all_gpus(index, co=options)


class DenseIndex:
    """A FAISS index plus the doc id of every row and the settings it was built with (``meta``)."""

    def __init__(self, index, docids: list[str], meta: dict, path: str | None = None):
        self.index, self.docids, self.meta, self.path = index, docids, meta, path
        self.device_index = _to_gpu(index, meta["kind"])
        self._set_search_params()

    def _set_search_params(self):
        faiss, p = _faiss(), self.meta["params"]
        if self.meta["kind"] == "hnsw":
            self.index.hnsw.efSearch = p["ef_search"]
        elif self.meta["kind"] == "ivfpq":
            faiss.extract_index_ivf(self.index).nprobe = p["nprobe"]
            if self.device_index is not self.index:
                faiss.GpuParameterSpace().set_index_parameter(self.device_index, "nprobe", p["nprobe"])

    @classmethod
    def build(cls, embeddings: Embeddings, docids: list[str], kind: str = "flat", path=None, progress: bool = True,
              **params) -> "DenseIndex":
        """Build from encoded chunks, adding chunk by chunk; IVF-PQ first trains on a sample of at most 256 per list."""
        faiss = _faiss()
        if len(docids) != len(embeddings):
            raise ValueError(f"{len(docids)} doc ids for {len(embeddings)} vectors")
        params = {**default_params(kind, len(embeddings), embeddings.dim), **params}
        index = _create(kind, embeddings.dim, params)
        if not index.is_trained:
            faiss.downcast_index(faiss.extract_index_ivf(index)).pq.cp.min_points_per_centroid = 1  # quiet on small corpora
            train = np.ascontiguousarray(embeddings.sample(256 * params["nlist"]), dtype=np.float32)
            index.train(train)
        with tqdm(total=len(embeddings), desc=f"indexing ({kind})", unit="vec", disable=not progress) as bar:
            for part in embeddings.parts():
                index.add(np.ascontiguousarray(part, dtype=np.float32))
                bar.update(len(part))
        meta = {"kind": kind, "params": params, "dim": embeddings.dim, "documents": len(docids),
                "faiss": faiss.__version__, **{k: embeddings.meta[k] for k in ("model", "corpus", "normalized")}}
        out = cls(index, docids, meta)
        if path is not None:
            out.save(path)
        return out

    def save(self, path) -> None:
        """Write ``index.faiss``, ``docids.txt`` and ``meta.json`` into a fresh folder, then swap it into place."""
        path = os.path.abspath(os.fspath(path))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        work = tempfile.mkdtemp(prefix=".tmp-index-", dir=os.path.dirname(path))
        try:
            _faiss().write_index(self.index, os.path.join(work, "index.faiss"))
            with open(os.path.join(work, "docids.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(self.docids) + "\n")
            with open(os.path.join(work, "meta.json"), "w") as f:
                json.dump(self.meta, f, indent=1)
            if os.path.exists(path):
                shutil.rmtree(path)
            os.replace(work, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.path = path

    @classmethod
    def load(cls, path) -> "DenseIndex":
        path = os.fspath(path)
        if not os.path.exists(os.path.join(path, "meta.json")):
            raise InputError("not a dense index (no meta.json)", path)
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
        with open(os.path.join(path, "docids.txt"), encoding="utf-8") as f:
            docids = f.read().split("\n")[:-1]
        return cls(_faiss().read_index(os.path.join(path, "index.faiss")), docids, meta, path)

    def search_vectors(self, vectors: np.ndarray, k: int = 1000, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers (-1 where fewer than ``k`` were found) of the top ``k`` for each vector."""
        k = min(k, len(self.docids))
        if len(vectors) == 0:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        parts = [self.device_index.search(np.ascontiguousarray(vectors[i : i + batch], dtype=np.float32), k)
                 for i in range(0, len(vectors), batch)]
        return np.concatenate([s for s, _ in parts]), np.concatenate([r for _, r in parts])

    def search(self, model, queries: dict[str, str], k: int = 1000, batch_size: int = 64) -> pd.DataFrame:
        """Encode ``queries`` with ``model`` and return the top ``k`` of each as a run DataFrame."""
        qids = list(queries)
        vectors = encode_texts(model, [queries[q] for q in qids], "query", batch_size)
        scores, rows = self.search_vectors(vectors, k)
        valid = rows >= 0
        ids = np.asarray(self.docids, dtype=object)
        df = pd.DataFrame({"qid": np.repeat(np.asarray(qids, dtype=object), valid.sum(1)),
                           "docid": ids[rows[valid]], "score": scores[valid].astype(np.float32)})
        return rank_run(df)
