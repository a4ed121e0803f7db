"""Fast late-interaction search over a ColBERT token store: centroid candidates, then exact MaxSim in torch.

Two stages, after PLAID (Santhanam et al., 2022, "PLAID: An Efficient Engine for Late Interaction Retrieval"):

1. **Centroid interaction.** Every stored token belongs to one IVF cell (the coarse lists of the FAISS token index).
   Each query token ``i`` scores all centroids, ``S[i, c] = q_i . c``, and probes its ``ncells`` best cells. A
   document's approximate score is ``sum_i max S[i, c]`` over the probed cells of ``i`` that hold one of its tokens,
   where a query token whose probed cells hold none of them counts the lowest probed score. The ``ndocs`` best
   documents become the candidates. No token vectors are read in this stage.
2. **Exact MaxSim** (ColBERT, Khattab & Zaharia, 2020): ``sum_i max_j q_i . d_j`` over each candidate's float16
   tokens from the memory-mapped store, in float32, as one ``(documents * tokens, dim) @ (dim, q_tokens)`` matmul.
   The scores are exact; only the candidate set is approximate.

Queries run in parallel threads with torch and numpy single-threaded inside each (on a busy machine, threads of one
matmul that wait for each other cost more than they bring).
"""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

DENSE_LIMIT = 1 << 22  # (query tokens x documents) up to which the candidate stage keeps a dense score table


def segments(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(starts[i], starts[i] + lens[i])``."""
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - (np.cumsum(lens) - lens), lens)
    return np.arange(total, dtype=np.int64) + shift


class Workspace(threading.local):
    """Per-thread buffers reused from query to query: a fresh large array per query costs page faults that, on a
    busy machine, take longer than the arithmetic."""

    def __init__(self):
        self.buffers = {}

    def get(self, name: str, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        n = int(np.prod(shape))
        buf = self.buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.numel() < n:
            buf = self.buffers[name] = torch.empty(max(n, 1 << 16), dtype=dtype)
        return buf[:n].view(shape)


PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def resident(tokens: np.ndarray, precision: str, chunk: int = 1 << 18) -> torch.Tensor:
    """A copy of the token store in memory in the arithmetic's dtype (no per-query conversion)."""
    out = torch.empty(tokens.shape, dtype=PRECISIONS[precision])
    for start in range(0, len(tokens), chunk):
        out[start : start + chunk].copy_(torch.from_numpy(np.array(tokens[start : start + chunk])))
    return out


def maxsim(tokens, offsets: np.ndarray, query: np.ndarray, docs: np.ndarray, precision: str = "float32",
           work: Workspace | None = None, block_docs: int = 32) -> np.ndarray:
    """MaxSim of one query (``(q_tokens, dim)``) with documents ``docs`` (row numbers): document ``d`` owns
    ``tokens[offsets[d]:offsets[d + 1]]``; ``tokens`` is a numpy array (float16 or float32, memory-mapped or not)
    or a torch tensor (e.g. from ``resident``). A document without tokens scores 0. ``float32``: exact (the stored
    tokens and the query in float32); ``bfloat16``: both rounded to bfloat16, products summed in float32 (about
    twice as fast; scores off by about 1e-3 per query token).

    Documents go by length in blocks of ``block_docs``, each padded to its longest by repeating a document's last
    token (which leaves every maximum unchanged) and scored with one ``(q_tokens, dim) @ (dim, block tokens)``
    matmul."""
    docs = np.asarray(docs, dtype=np.int64)
    out = np.zeros(len(docs), dtype=np.float32)
    if len(docs) == 0:
        return out
    work = work or Workspace()
    dtype = PRECISIONS[precision]
    q = torch.as_tensor(np.asarray(query, dtype=np.float32)).to(dtype)
    dim = q.shape[1]
    on_torch = isinstance(tokens, torch.Tensor)
    store = tokens.dtype if on_torch else torch.from_numpy(np.empty(0, dtype=tokens.dtype)).dtype
    lens = offsets[docs + 1] - offsets[docs]
    order = np.argsort(lens, kind="stable")
    for b in range(0, len(docs), block_docs):
        idx = order[b : b + block_docs]
        s, n = offsets[docs[idx]], lens[idx]
        w = int(n.max())
        if w == 0:
            continue
        rows = (s[:, None] + np.minimum(np.arange(w)[None, :], np.maximum(n[:, None] - 1, 0))).ravel()
        d = work.get("raw", (len(rows), dim), store)
        if on_torch:
            torch.index_select(tokens, 0, torch.from_numpy(rows), out=d)
        else:
            np.take(tokens, rows, axis=0, out=d.numpy(), mode="clip")  # rows are in range
        if store != dtype:
            d = work.get("cast", (len(rows), dim), dtype).copy_(d)
        sims = torch.mm(q, d.T, out=work.get("sims", (len(q), len(rows)), dtype))
        best = sims.view(len(q), len(s), w).amax(2).sum(0, dtype=torch.float32).numpy()
        out[idx] = np.where(n > 0, best, 0.0)
    return out


class CellPostings:
    """For every IVF cell, the documents owning at least one token in it (CSR ``ptr``/``docs``), and the centroids."""

    def __init__(self, centroids: np.ndarray, ptr: np.ndarray, docs: np.ndarray, documents: int):
        self.centroids = torch.as_tensor(np.ascontiguousarray(centroids, dtype=np.float32))
        self.ptr, self.docs, self.documents = ptr, docs, documents

    @classmethod
    def from_faiss(cls, index, offsets: np.ndarray) -> "CellPostings":
        """Read the cells of an IVF FAISS index whose ids are token row numbers (document ``d`` owns rows
        ``offsets[d]:offsets[d + 1]``)."""
        import faiss

        ivf = faiss.extract_index_ivf(index)
        documents, lists, pairs = len(offsets) - 1, ivf.invlists, []
        for c in range(ivf.nlist):
            n = lists.list_size(c)
            if n:
                rows = np.array(faiss.rev_swig_ptr(lists.get_ids(c), n), dtype=np.int64)
                pairs.append(np.unique(np.searchsorted(offsets, rows, side="right") - 1) + c * documents)
        pairs = np.concatenate(pairs) if pairs else np.empty(0, np.int64)  # sorted: by cell, then document
        ptr = np.searchsorted(pairs, np.arange(ivf.nlist + 1, dtype=np.int64) * documents)
        centroids = ivf.quantizer.reconstruct_n(0, ivf.nlist)
        return cls(centroids, ptr, (pairs % documents).astype(np.int32), documents)

    def candidates(self, query: np.ndarray, ncells: int, ndocs: int, work: Workspace | None = None) -> np.ndarray:
        """The ``ndocs`` documents with the best centroid-interaction score for one query (row numbers, unsorted)."""
        s = torch.as_tensor(np.asarray(query, dtype=np.float32)) @ self.centroids.T  # (q_tokens, cells)
        vals, top = torch.topk(s, min(ncells, s.shape[1]), dim=1)
        vals, top = vals.numpy(), top.numpy()
        gain = vals - vals[:, -1:]  # above the lowest probed score of that query token
        lens = (self.ptr[top + 1] - self.ptr[top]).ravel()
        docs = self.docs[segments(self.ptr[top].ravel(), lens)]
        gains = np.repeat(gain.ravel(), lens)
        keys = np.repeat(np.arange(top.size) // top.shape[1], lens) * self.documents + docs
        if len(s) * self.documents <= DENSE_LIMIT:
            best = (work or Workspace()).get("table", (len(s) * self.documents,), torch.float32).numpy()
            best.fill(0)
            np.maximum.at(best, keys, gains)  # per (query token, document): its best probed cell
            score = best.reshape(len(s), self.documents).sum(0)
            found = np.zeros(self.documents, dtype=bool)
            found[docs] = True
            found = np.flatnonzero(found)
            score = score[found]
        else:
            keys, inverse = np.unique(keys, return_inverse=True)
            best = np.zeros(len(keys), dtype=np.float32)
            np.maximum.at(best, inverse, gains)
            found, per_doc = np.unique(keys % self.documents, return_inverse=True)
            score = np.bincount(per_doc, weights=best, minlength=len(found))
        if len(found) <= ndocs:
            return found
        return found[np.argpartition(-score, ndocs - 1)[:ndocs]]


@contextlib.contextmanager
def single_threaded_ops():
    """torch and FAISS at one thread each while inside (restored after)."""
    import faiss

    before, faiss_before = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        faiss.omp_set_num_threads(faiss_before)


def parallel_map(fn, items: list, threads: int) -> list:
    """``[fn(x) for x in items]`` over ``threads`` threads, each op single-threaded; in order."""
    with single_threaded_ops():
        if threads <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(fn, items))
