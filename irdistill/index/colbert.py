"""ColBERT retrieval: FAISS over every document token embedding finds candidates, exact MaxSim ranks them.

An index folder holds

- ``tokens.npy``: float16 ``(tokens, dim)``, every scored token embedding, document after document (memory-mapped
  when searching, so the corpus never has to fit in memory);
- ``offsets.npy``: int64 ``(documents + 1,)``, document ``i`` owns ``tokens[offsets[i]:offsets[i + 1]]``;
- ``index.faiss``: a FAISS index over those tokens (IVF-PQ by default, ``flat`` for exact token search; on the
  GPU(s) when faiss has them); ``docids.txt`` and ``meta.json``.

Search (ColBERT v1's end-to-end retrieval): each query token fetches its ``token_k`` nearest document tokens, the
documents owning them are the candidates, and each candidate is re-scored exactly,
``sum_i max_j q_i . d_j``, from its stored token embeddings.
"""

from __future__ import annotations

import math
import os
import shutil

import numpy as np
import pandas as pd

from ..data.corpus import Corpus
from ..data.io import atomic_path
from ..data.runs import rank_run
from ..progress import bar as progress_bar
from ..errors import InputError
from ..models import load_colbert
from .base import Index, building, read_docids, register_index, write_docids
from .dense import _create, _faiss, _to_gpu
from .encode import encode_in_chunks, on_first_rank

KINDS = ("flat", "ivfpq")
SMALL = 100_000  # below this many tokens "auto" picks flat (exact, and too few tokens to train IVF-PQ well)


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
        vectors = {k: key[k] for k in ("corpus", "model", "version", "config")}
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

    def candidates(self, query_tokens: np.ndarray, token_k: int) -> np.ndarray:
        """Row numbers of the documents owning the ``token_k`` nearest tokens of any query token (sorted)."""
        k = min(token_k, self.index.ntotal)
        _, rows = self.device_index.search(np.ascontiguousarray(query_tokens, dtype=np.float32), k)
        rows = rows[rows >= 0]
        return np.unique(np.searchsorted(self.offsets, rows, side="right") - 1)

    def maxsim(self, query_tokens: np.ndarray, docs: np.ndarray, block: int = 512) -> np.ndarray:
        """Exact MaxSim of one query (``(q_tokens, dim)``) with documents ``docs`` (row numbers, each with tokens)."""
        q = np.asarray(query_tokens, dtype=np.float32)
        out = np.empty(len(docs), dtype=np.float32)
        for b in range(0, len(docs), block):
            chunk = docs[b : b + block]
            starts, lens = self.offsets[chunk], self.offsets[chunk + 1] - self.offsets[chunk]
            seg = np.cumsum(lens) - lens
            pos = np.arange(int(lens.sum())) - np.repeat(seg, lens) + np.repeat(starts, lens)
            sims = q @ np.asarray(self.tokens[pos], dtype=np.float32).T  # (q_tokens, tokens of the chunk)
            out[b : b + len(chunk)] = np.maximum.reduceat(sims, seg, axis=1).sum(0)
        return out

    def search_embeddings(self, queries: list[np.ndarray], k: int = 1000, token_k: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(document rows, scores)`` of the top ``k`` of each query's token embeddings, best first."""
        out = []
        for q in queries:
            docs = self.candidates(q, token_k)
            scores = self.maxsim(q, docs)
            top = np.argsort(-scores, kind="stable")[:k]
            out.append((docs[top], scores[top]))
        return out

    def search(self, queries: dict[str, str], k: int = 1000, batch_size: int | None = None, progress: bool = False,
               token_k: int = 64) -> pd.DataFrame:
        """Encode ``queries`` (the model's query marker and augmentation) and return the top ``k`` of each as a run
        DataFrame."""
        qids = list(queries)
        embs = self.query_encoder().encode_query([queries[q] for q in qids], batch_size=batch_size or self.batch_size,
                                                 convert_to_numpy=True, show_progress_bar=False) if qids else []
        ids = np.asarray(self.docids, dtype=object)
        frames = []
        searched = progress_bar(embs, show=progress, desc="searching (colbert)", unit="query")
        for qid, (rows, scores) in zip(qids, self.search_embeddings(searched, k, token_k)):
            frames.append(pd.DataFrame({"qid": qid, "docid": ids[rows], "score": scores}))
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["qid", "docid", "score"])
        return rank_run(df.astype({"score": "float32"}))
