"""ColBERT retrieval: candidates from the token index, MaxSim over the stored token embeddings ranks them.

An index folder holds

- ``tokens.npy``: float16 ``(tokens, dim)``, every scored token embedding, document after document (memory-mapped
  when searching, so the corpus never has to fit in memory);
- ``offsets.npy``: int64 ``(documents + 1,)``, document ``i`` owns ``tokens[offsets[i]:offsets[i + 1]]``;
- ``index.faiss``: a FAISS index over those tokens (IVF-PQ by default, ``flat`` for exact token search; on the
  GPU(s) when faiss has them); ``docids.txt`` and ``meta.json``.

Search: candidates, then MaxSim ``sum_i max_j q_i . d_j`` of each candidate from its stored tokens (``maxsim.py``).
Over an IVF-PQ token index the candidates come from PLAID-style centroid interaction over the IVF cells (Santhanam
et al., 2022); over a flat one, as in ColBERT v1's end-to-end retrieval, each query token fetches its ``token_k``
nearest document tokens and the documents owning them are the candidates.
"""

from __future__ import annotations

import math
import os
import shutil

import numpy as np

from ..data.corpus import Corpus
from ..data.io import atomic_path
from ..data.runs import rank_run
from ..lazy import module
from ..progress import bar as progress_bar
from ..errors import InputError
from ..models import load_colbert
from .base import Index, building, read_docids, register_index, write_docids
from .dense import _create, _faiss, _to_gpu
from .encode import encode_in_chunks, on_first_rank

pd = module("pandas")  # imported on first use (lazy.py)
ms = module(__package__ + ".maxsim")  # torch: imported on first use

KINDS = ("flat", "ivfpq")
SMALL = 100_000  # below this many tokens "auto" picks flat (exact, and too few tokens to train IVF-PQ well)
RESIDENT_BYTES = 1 << 30  # token stores up to this size (in the MaxSim dtype) are copied into memory for search


def default_params(kind: str, tokens: int, dim: int) -> dict:
    """IVF-PQ: about sqrt(tokens) lists (a power of two, at least 39 training points per list), 8-bit codes of
    4 dimensions each (32 bytes a token for dim 128, 8x smaller than the float16 copy), 1/16 of the lists probed."""
    if kind != "ivfpq":
        return {}
    nlist = max(1, min(2 ** round(math.log2(max(1.0, math.sqrt(tokens)))), tokens // 39))
    m = next(m for m in (dim // 4, dim // 8, dim // 2, dim) if m and dim % m == 0)
    return {"nlist": nlist, "m": m, "nbits": 8, "nprobe": max(1, nlist // 16)}


def encode_tokens(model, corpus: Corpus, folder, key: dict, batch_size: int = 32, chunk: int = 2048,
                  progress: bool = True, rebuild: bool = False, workers: int = 1) -> tuple[list[str], list[str]]:
    """Encode ``corpus`` into ``part-NNNNN.npy`` (float16 tokens of ``chunk`` documents) and ``part-NNNNN.len.npy``
    (tokens per document), by this process, ``workers`` worker processes or the ranks of a torchrun job
    (``encode.encode_in_chunks``). Finished parts are kept, so an interrupted run resumes; parts of another ``key``
    (corpus, model and its settings) or ``rebuild`` start over. Returns the part files."""
    def paths(i: int) -> tuple[str, str]:
        return os.path.join(folder, f"part-{i:05d}.npy"), os.path.join(folder, f"part-{i:05d}.len.npy")

    def write(i, start, stop, pool, bar):
        part, lens = paths(i)
        embs = model.encode_document(corpus.texts(start=start, stop=stop), batch_size=batch_size,
                                     convert_to_numpy=True, show_progress_bar=False, pool=pool)
        with atomic_path(part) as tmp, open(tmp, "wb") as f:
            np.save(f, np.concatenate(embs).astype(np.float16))
        with atomic_path(lens) as tmp, open(tmp, "wb") as f:
            np.save(f, np.array([len(e) for e in embs], dtype=np.int64))
        bar.update(stop - start)

    encode_in_chunks(model, folder, {**key, "chunk": chunk}, len(corpus), chunk,
                     lambda i: all(map(os.path.exists, paths(i))), write, "encoding (colbert)", workers, progress,
                     rebuild)
    chunks = range(-(-len(corpus) // chunk))
    return [paths(i)[0] for i in chunks], [paths(i)[1] for i in chunks]


def _model_config(model) -> dict:
    """What decides the stored embeddings besides the weights: lengths, expansion, markers."""
    t = model[0]
    return {"document_length": getattr(t, "document_length", None), "max_seq_length": model.max_seq_length,
            "prompts": dict(model.prompts), "dim": model.get_embedding_dimension()}


@register_index
class ColbertIndex(Index):
    """Token embeddings on disk, their FAISS index, and exact MaxSim re-scoring.

    ``kind``: the FAISS token index, ``auto`` (flat under 100k tokens, else IVF-PQ), ``flat`` or ``ivfpq``."""

    name = "colbert"
    kinds = ("auto", *KINDS)
    loader = staticmethod(load_colbert)
    batch_size = 32

    def __init__(self, path):
        super().__init__(path)
        self.docids = read_docids(self.path)
        self.tokens = np.load(os.path.join(self.path, "tokens.npy"), mmap_mode="r")
        self.offsets = np.load(os.path.join(self.path, "offsets.npy"))
        self.index = _faiss().read_index(os.path.join(self.path, "index.faiss"))
        self.device_index = _to_gpu(self.index, self.meta["faiss_kind"])
        self._cells, self._work, self._resident = None, ms.Workspace(), {}
        if self.meta["faiss_kind"] == "ivfpq":
            self.set_nprobe(self.meta["params"]["nprobe"])

    @classmethod
    def settings(cls, corpus, model, kind, params) -> dict:
        return {"config": _model_config(model), "kind": kind, "params": params}

    @classmethod
    def build(cls, corpus, path, key, model, kind="auto", batch_size=32, progress=True, rebuild=False, workers=1,
              **params) -> "ColbertIndex":
        """Encode ``corpus`` (resumable parts in ``<path>.encoding``, removed once the index is built; ``workers``
        processes, or the ranks of a torchrun job) and index it (in rank 0)."""
        path = os.path.abspath(os.fspath(path))
        encoding = path + ".encoding"
        vectors = {k: key[k] for k in ("corpus", "model", "version", "config", "precision") if k in key}
        parts, lengths = encode_tokens(model, corpus, encoding, vectors, batch_size, progress=progress, rebuild=rebuild,
                                       workers=workers)

        def index() -> "ColbertIndex":
            built = cls.from_parts(parts, lengths, corpus.ids.to_pylist(), path, kind,
                                   {"model": key["model"], "key": key}, progress, **params)
            shutil.rmtree(encoding, ignore_errors=True)
            return built

        return on_first_rank(index, lambda: cls(path))

    def set_nprobe(self, nprobe: int) -> None:
        faiss = _faiss()
        faiss.extract_index_ivf(self.index).nprobe = nprobe
        if self.device_index is not self.index:
            faiss.GpuParameterSpace().set_index_parameter(self.device_index, "nprobe", nprobe)

    @classmethod
    def from_parts(cls, parts: list[str], lengths: list[str], docids: list[str], path, kind: str = "auto",
                   meta: dict | None = None, progress: bool = True, **params) -> "ColbertIndex":
        """Join the encoded parts into ``tokens.npy`` (streamed, never all in memory), train the FAISS index on a
        sample of tokens, add the tokens in chunks, and move the finished folder into place."""
        faiss = _faiss()
        lens = np.concatenate([np.load(p) for p in lengths])
        if len(lens) != len(docids):
            raise ValueError(f"{len(docids)} doc ids for {len(lens)} encoded documents")
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        n, dim = int(offsets[-1]), np.load(parts[0], mmap_mode="r").shape[1]
        if n == 0:
            raise InputError("the corpus has no tokens to index")
        if kind == "auto":
            kind = "flat" if n < SMALL else "ivfpq"
        if kind not in KINDS:
            raise InputError(f"unknown ColBERT index kind {kind!r} (choose from auto, {', '.join(KINDS)})")
        params = {**default_params(kind, n, dim), **params}
        meta = {**(meta or {}), "kind": cls.name, "faiss_kind": kind, "params": params, "dim": dim,
                "documents": len(docids), "tokens": n, "tokens_per_doc": n / max(1, len(docids)),
                "faiss": faiss.__version__}
        with building(path, meta) as work:
            tokens = np.lib.format.open_memmap(os.path.join(work, "tokens.npy"), "w+", np.float16, (n, dim))
            row = 0
            for p in parts:
                part = np.load(p, mmap_mode="r")
                tokens[row : row + len(part)] = part
                row += len(part)
            tokens.flush()
            np.save(os.path.join(work, "offsets.npy"), offsets)
            index = _create(kind, dim, params)
            if not index.is_trained:
                faiss.downcast_index(faiss.extract_index_ivf(index)).pq.cp.min_points_per_centroid = 1
                size = min(n, max(128 * params["nlist"], 64 * 2 ** params["nbits"]))  # k-means: lists and PQ codes
                sample = np.sort(np.random.default_rng(0).choice(n, size, replace=False))
                index.train(np.ascontiguousarray(tokens[sample], dtype=np.float32))
            step = 1 << 18
            with progress_bar(total=n, desc=f"indexing tokens ({kind})", unit="tok", show=progress) as bar:
                for start in range(0, n, step):
                    index.add(np.ascontiguousarray(tokens[start : start + step], dtype=np.float32))
                    bar.update(min(step, n - start))
            del tokens
            faiss.write_index(index, os.path.join(work, "index.faiss"))
            write_docids(work, docids)
        return cls(path)

    def cells(self) -> ms.CellPostings | None:
        """The IVF cells of the token index with the documents in each (read from the index once), or None for a
        flat token index."""
        if self.meta["faiss_kind"] != "ivfpq":
            return None
        if self._cells is None:
            self._cells = ms.CellPostings.from_faiss(self.index, self.offsets)
        return self._cells

    def candidates(self, query_tokens: np.ndarray, token_k: int = 64) -> np.ndarray:
        """ColBERT v1 candidates: row numbers of the documents owning the ``token_k`` nearest tokens of any query
        token (sorted)."""
        k = min(token_k, self.index.ntotal)
        _, rows = self.device_index.search(np.ascontiguousarray(query_tokens, dtype=np.float32), k)
        rows = rows[rows >= 0]
        return np.unique(np.searchsorted(self.offsets, rows, side="right") - 1)

    def maxsim(self, query_tokens: np.ndarray, docs: np.ndarray, precision: str = "float32") -> np.ndarray:
        """MaxSim of one query (``(q_tokens, dim)``) with documents ``docs`` (row numbers): exact in ``float32``,
        about twice as fast and within about 1e-3 per query token in ``bfloat16``."""
        return ms.maxsim(self.store(precision), self.offsets, query_tokens, docs, precision, self._work)

    def store(self, precision: str = "float32"):
        """The token store MaxSim reads: a copy in memory in the ``precision`` dtype when that takes at most
        ``RESIDENT_BYTES`` (made once), else the memory-mapped float16 file."""
        itemsize = ms.PRECISIONS[precision].itemsize
        if self.tokens.size * itemsize > RESIDENT_BYTES:
            return self.tokens
        if precision not in self._resident:
            self._resident[precision] = ms.resident(self.tokens, precision)
        return self._resident[precision]

    def search_embeddings(self, queries: list[np.ndarray], k: int = 1000, token_k: int = 64,
                          candidates: str = "auto", ncells: int = 4, ndocs: int | None = None,
                          precision: str = "float32", threads: int | None = None,
                          progress: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(document rows, MaxSim scores)`` of the top ``k`` of each query's token embeddings, best first.

        ``candidates``: ``cells`` (PLAID-style centroid interaction over the IVF cells, ``ncells`` probed per query
        token, the best ``ndocs`` documents re-scored, default ``max(k, 128)``), ``tokens`` (ColBERT v1: the
        documents of each query token's ``token_k`` nearest tokens, all re-scored), or ``auto``: cells for an IVF-PQ
        token index, tokens for a flat one. ``precision``: the MaxSim arithmetic (see ``maxsim``). Queries run on
        ``threads`` threads (default: one per CPU core), with a bar of finished queries if ``progress``."""
        if candidates == "auto":
            candidates = "cells" if self.meta["faiss_kind"] == "ivfpq" else "tokens"
        if precision not in ms.PRECISIONS:
            raise InputError(f"unknown MaxSim precision {precision!r} (choose from {', '.join(ms.PRECISIONS)})")
        if candidates not in ("cells", "tokens"):
            raise InputError(f"unknown ColBERT candidate generation {candidates!r} (choose from auto, cells, tokens)")
        cells = self.cells() if candidates == "cells" else None
        if candidates == "cells" and cells is None:
            raise InputError("cell candidates need an IVF-PQ token index (this one is flat)", self.path)
        ndocs = ndocs or max(k, 128)
        self.store(precision)  # made once, before the threads start

        queries = list(queries)
        with progress_bar(total=len(queries), show=progress, desc="searching (colbert)", unit="query") as bar:

            def one(q):
                docs = cells.candidates(q, ncells, ndocs, self._work) if cells is not None else self.candidates(q, token_k)
                scores = self.maxsim(q, docs, precision)
                top = np.lexsort((docs, -scores))[:k]  # best first, ties by row
                bar.update(1)
                return docs[top], scores[top]

            return ms.parallel_map(one, queries, threads or os.cpu_count() or 1)

    def search(self, queries: dict[str, str], k: int = 1000, batch_size: int | None = None, progress: bool = False,
               token_k: int = 64, **options) -> pd.DataFrame:
        """Encode ``queries`` (the model's query marker and augmentation) and return the top ``k`` of each as a run
        DataFrame (``options``: those of ``search_embeddings``)."""
        qids = list(queries)
        embs = self.query_encoder().encode_query([queries[q] for q in qids], batch_size=batch_size or self.batch_size,
                                                 convert_to_numpy=True, show_progress_bar=False) if qids else []
        ids = np.asarray(self.docids, dtype=object)
        frames = []
        for qid, (rows, scores) in zip(qids, self.search_embeddings(embs, k, token_k, progress=progress, **options)):
            frames.append(pd.DataFrame({"qid": qid, "docid": ids[rows], "score": scores}))
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["qid", "docid", "score"])
        return rank_run(df.astype({"score": "float32"}))
