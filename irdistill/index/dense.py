"""FAISS indexes over encoded corpora: exact inner product (flat), HNSW and IVF-PQ; on the GPU(s) when faiss has them."""

from __future__ import annotations

import math
import os

import numpy as np

from ..data.runs import rank_run
from ..lazy import module
from ..progress import bar as progress_bar
from ..progress import chunks
from ..errors import InputError
from ..models import load_sentence_transformer
from .base import Index, building, read_docids, register_index, write_docids
from .encode import Embeddings, embeddings_folder, encode_corpus, encode_texts, on_first_rank, vectors_key, wants_normalized

pd = module("pandas")  # imported on first use (lazy.py)

KINDS = ("flat", "hnsw", "ivfpq")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise RuntimeError("dense retrieval needs faiss: pip install 'irdistill[cpu]' (or [gpu])") from None
    return faiss


def default_params(kind: str, n: int, dim: int) -> dict:
    if kind == "hnsw":
        # efSearch 64 serves a top 10 from 1M MiniLM-like vectors at 16-26x exact search's QPS with recall 0.996
        # (benchmarks/bench_ann.py); a search for k > 64 widens the beam to k (hnswlib's rule: ef >= k)
        return {"M": 32, "ef_construction": 200, "ef_search": 64}
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


def _sharding(params: dict) -> dict:
    """``params`` with ``shards`` checked (a whole number >= 1), and left out when 1: one index, as without it."""
    shards = params.get("shards", 1)
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise InputError(f"shards must be a whole number >= 1, not {shards!r}")
    return {k: v for k, v in params.items() if k != "shards" or shards > 1}


def shard_files(folder, shards: int) -> list[str]:
    """The FAISS files of an index folder: ``index.faiss``, or ``shard-NNNNN.faiss`` for each of ``shards`` > 1."""
    if shards == 1:
        return [os.path.join(folder, "index.faiss")]
    return [os.path.join(folder, f"shard-{i:05d}.faiss") for i in range(shards)]


def join_shards(indexes: list):
    """One index searching ``indexes`` (consecutive row ranges) in parallel threads, numbering rows as one index of
    them all would; faiss merges each shard's top k into the top k of all."""
    joined = _faiss().IndexShards(indexes[0].d, True, True)  # threaded, successive ids
    for index in indexes:
        joined.add_shard(index)
    return joined


@register_index
class DenseIndex(Index):
    """A FAISS index over the corpus encoded by a sentence-transformers model, plus the doc id of every row.

    The encoded corpus is kept beside the index folder (``encode.embeddings_folder``: ``../embeddings-<key hash>``), so
    every FAISS kind of one model reuses one encoding; ``meta["embeddings"]`` names it."""

    name = "dense"
    kinds = KINDS
    loader = staticmethod(load_sentence_transformer)
    batch_size = 64
    chunk = 8192  # documents per encoded chunk: the unit of resuming, and of the work a torchrun rank takes

    def __init__(self, path):
        super().__init__(path)
        self.docids = read_docids(self.path)
        files = shard_files(self.path, self.meta["params"].get("shards", 1))
        shards = []
        for name in files:  # each shard gets the kind's search parameters, which _set_search_params sets on self.index
            self.index = _faiss().read_index(name)
            self.device_index = _to_gpu(self.index, self.meta["faiss_kind"])
            self._set_search_params()
            shards.append((self.index, self.device_index))
        if len(shards) > 1:
            self.shards = shards  # IndexShards does not own them: they live as long as the index
            self.index = join_shards([cpu for cpu, _ in shards])
            self.device_index = join_shards([device for _, device in shards])

    def _set_search_params(self):
        faiss, p = _faiss(), self.meta["params"]
        if self.meta["faiss_kind"] == "hnsw":
            self.index.hnsw.efSearch = p["ef_search"]  # search_vectors widens it to k
        elif self.meta["faiss_kind"] == "ivfpq":
            faiss.extract_index_ivf(self.index).nprobe = p["nprobe"]
            if self.device_index is not self.index:
                faiss.GpuParameterSpace().set_index_parameter(self.device_index, "nprobe", p["nprobe"])

    @classmethod
    def leaf(cls, kind):
        return kind or KINDS[0]

    @classmethod
    def run_name(cls, dataset, model=None, kind=None) -> str:
        return f"{super().run_name(dataset, model)}-{kind or KINDS[0]}"

    @classmethod
    def settings(cls, corpus, model, kind, params) -> dict:
        return {"max_seq_length": model.max_seq_length, "normalized": wants_normalized(model), "faiss_kind": kind,
                "params": {**default_params(kind, len(corpus), model.get_embedding_dimension()), **_sharding(params)}}

    @classmethod
    def build(cls, corpus, path, key, model, kind, batch_size=64, progress=True, rebuild=False, workers=1,
              **params) -> "DenseIndex":
        """Encode ``corpus`` into ``embeddings_folder`` (``workers`` processes, or the ranks of a torchrun job) and
        index it (in rank 0)."""
        vectors = vectors_key(corpus, key["model"], model)
        embeddings = encode_corpus(model, corpus, embeddings_folder(path, vectors), vectors, batch_size, cls.chunk,
                                   progress, rebuild, workers)
        return on_first_rank(lambda: cls.from_embeddings(embeddings, corpus.ids.to_pylist(), kind, path, key, progress,
                                                         **params), lambda: cls(path))

    @classmethod
    def from_embeddings(cls, embeddings: Embeddings, docids: list[str], kind: str, path, key: dict | None = None,
                        progress: bool = True, **params) -> "DenseIndex":
        """Build from encoded chunks, adding chunk by chunk; IVF-PQ first trains on a sample of at most 256 per list.

        ``shards=N`` splits the rows into N consecutive ranges, one FAISS index each (IVF-PQ shards share one trained
        quantiser), saved as ``shard-NNNNN.faiss`` and searched together through ``faiss.IndexShards`` (one thread a
        shard). Flat and IVF-PQ shards return what one index returns; HNSW shards are separate graphs (close, not
        equal)."""
        faiss = _faiss()
        if len(docids) != len(embeddings):
            raise ValueError(f"{len(docids)} doc ids for {len(embeddings)} vectors")
        params = {**default_params(kind, len(embeddings), embeddings.dim), **_sharding(params)}
        index = _create(kind, embeddings.dim, params)
        if not index.is_trained:
            faiss.downcast_index(faiss.extract_index_ivf(index)).pq.cp.min_points_per_centroid = 1  # quiet on small corpora
            train = np.ascontiguousarray(embeddings.sample(256 * params["nlist"]), dtype=np.float32)
            index.train(train)
        shards = params.get("shards", 1)
        indexes = [index] + [faiss.clone_index(index) for _ in range(shards - 1)]
        bounds = np.linspace(0, len(embeddings), shards + 1).round().astype(int)  # shard s: rows bounds[s]..bounds[s+1]
        row = 0
        with progress_bar(total=len(embeddings), desc=f"indexing ({kind})", unit="vec", show=progress) as bar:
            for part in embeddings.parts():
                for s, shard in enumerate(indexes):
                    lo, hi = max(bounds[s], row) - row, min(bounds[s + 1], row + len(part)) - row
                    if lo < hi:
                        shard.add(np.ascontiguousarray(part[lo:hi], dtype=np.float32))
                row += len(part)
                bar.update(len(part))
        meta = {"kind": cls.name, "faiss_kind": kind, "params": params, "dim": embeddings.dim, "documents": len(docids),
                "faiss": faiss.__version__, "model": embeddings.meta["model"], "normalized": embeddings.meta["normalized"],
                "embeddings": os.path.basename(embeddings.folder), "key": key}
        with building(path, meta) as work:
            for shard, name in zip(indexes, shard_files(work, shards)):
                faiss.write_index(shard, name)
            write_docids(work, docids)
        return cls(path)

    def search_vectors(self, vectors: np.ndarray, k: int = 1000, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row numbers (-1 where fewer than ``k`` were found) of the top ``k`` for each vector."""
        k = min(k, len(self.docids))
        if len(vectors) == 0:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        if self.meta["faiss_kind"] == "hnsw":  # a beam narrower than k returns k rows but misses many of the top k
            for cpu, _ in getattr(self, "shards", [(self.index, None)]):
                cpu.hnsw.efSearch = max(self.meta["params"]["ef_search"], k)
        parts = [self.device_index.search(np.ascontiguousarray(vectors[i : i + batch], dtype=np.float32), k)
                 for i in range(0, len(vectors), batch)]
        return np.concatenate([s for s, _ in parts]), np.concatenate([r for _, r in parts])

    def search(self, queries: dict[str, str], k: int = 1000, batch_size: int | None = None,
               progress: bool = False) -> pd.DataFrame:
        """Encode ``queries`` and return the top ``k`` of each as a run DataFrame."""
        qids, batch_size = list(queries), batch_size or self.batch_size
        parts = [self.search_vectors(np.empty((0, 0), np.float32), k)]  # a block of queries at a time, under a bar
        for block in chunks(qids, 4 * batch_size, progress, desc="searching (dense)", unit="query"):
            parts.append(self.search_vectors(encode_texts(self.query_encoder(), [queries[q] for q in block], "query",
                                                          batch_size), k))
        scores, rows = np.concatenate([s for s, _ in parts]), np.concatenate([r for _, r in parts])
        valid = rows >= 0
        ids = np.asarray(self.docids, dtype=object)
        df = pd.DataFrame({"qid": np.repeat(np.asarray(qids, dtype=object), valid.sum(1)),
                           "docid": ids[rows[valid]], "score": scores[valid].astype(np.float32)})
        return rank_run(df)
