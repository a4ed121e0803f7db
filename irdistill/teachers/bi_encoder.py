"""Bi-encoder teacher: the similarity of a sentence-transformers model's query and passage embeddings."""

from __future__ import annotations

import contextlib
import weakref
from collections import OrderedDict

import numpy as np

from ..index.encode import encode_texts, local_device, worker_pool
from ..models import fingerprint, load_sentence_transformer
from .base import Teacher, register_teacher


@register_teacher
class BiEncoderTeacher(Teacher):
    """Passage embeddings are memoised (up to ``memo`` passages), so a passage shared by many queries is encoded once.
    ``workers`` > 1 encodes through that many processes (one a GPU when there are GPUs; ``encode.worker_pool``),
    started on first use and stopped with the teacher; under torchrun each rank uses its own GPU."""

    kind = "bi-encoder"

    @property
    def scale(self) -> str:
        return "cosine" if self.model.similarity_fn_name == "cosine" else "dot"

    def __init__(self, model: str, batch_size: int = 64, device: str | None = None, memo: int = 200_000, encoder=None,
                 workers: int = 1):
        self.name, self.batch_size, self.workers = model, batch_size, workers
        self.model = encoder or load_sentence_transformer(model, device=device or local_device())
        self.version = fingerprint(model)
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memo_size = memo
        self._pool = None

    def config(self) -> dict:
        return {"model": self.name, "version": self.version, "max_seq_length": self.model.max_seq_length,
                "similarity": self.model.similarity_fn_name}

    def pool(self):
        """The worker pool (None for one worker), started on first use; it stops when the teacher is collected."""
        if self.workers > 1 and self._pool is None:
            stack = contextlib.ExitStack()
            self._pool = stack.enter_context(worker_pool(self.model, self.workers))
            weakref.finalize(self, stack.close)
        return self._pool

    def _encode(self, texts: list[str], role: str) -> np.ndarray:
        if role == "document":  # least recently used passages leave the memo, after this batch has its vectors
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
            for t, v in zip(missing, encode_texts(self.model, missing, "document", self.batch_size, pool=self.pool())):
                self._memo[t] = v
            out = np.stack([self._memo[t] for t in texts])
            for t in texts:
                self._memo.move_to_end(t)
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
            return out
        unique = list(dict.fromkeys(texts))
        vecs = dict(zip(unique, encode_texts(self.model, unique, "query", self.batch_size, pool=self.pool())))
        return np.stack([vecs[t] for t in texts])

    def embed(self, texts: list[str], role: str = "passage") -> np.ndarray:
        """The model's embeddings of ``texts`` as queries or passages (for embedding distillation)."""
        return self._encode(list(texts), "query" if role == "query" else "document")

    def score_pairs(self, queries: list[str], passages: list[str]) -> np.ndarray:
        q, p = self._encode(queries, "query"), self._encode(passages, "document")
        return np.einsum("ij,ij->i", q, p).astype(np.float32)  # vectors are unit length for cosine models
