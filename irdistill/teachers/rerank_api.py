"""A cross-encoder teacher behind a rerank API: ``POST /v1/rerank`` with a query and documents, answered by a relevance
score per document.

Two request shapes are common: ``documents`` (Cohere, Jina, vLLM, llama.cpp's server; answer
``{"results": [{"index", "relevance_score"}]}``) and ``texts`` (Hugging Face TEI's ``/rerank``; answer
``[{"index", "score"}]``). Every answer must score each document sent exactly once, with a finite number, or it is an
error and nothing is cached. The teacher's id covers the model the server names and the scores of a probe, so another
model behind the same name gets scores of its own."""

from __future__ import annotations

import hashlib
import math

import numpy as np

from ..errors import InputError
from ..models.http import JSONEndpoint
from .base import Teacher, register_teacher

PROBE = ("what is knowledge distillation?", ["A small model learns to rank like a large one.", "Green tea is brewed."])
SHAPES = ("documents", "texts")


def _scores(answer, n: int, url: str) -> np.ndarray:
    """The ``n`` scores of an answer, in input order; InputError if it does not score each document once."""
    results = answer.get("results") if isinstance(answer, dict) else answer
    if not isinstance(results, list) or len(results) != n or not all(isinstance(r, dict) for r in results):
        raise InputError(f"rerank endpoint {url} gave no answer to the request: expected {n} results")
    out = np.full(n, np.nan, dtype=np.float64)
    for r in results:
        i, s = r.get("index"), r.get("relevance_score", r.get("score"))
        ok = isinstance(i, int) and 0 <= i < n and math.isnan(out[i]) and isinstance(s, (int, float)) and \
            not isinstance(s, bool) and math.isfinite(s)
        if not ok:
            raise InputError(f"rerank endpoint {url} gave no answer to the request: a result without a new index "
                             f"0..{n - 1} and a finite score ({str(r)[:80]})")
        out[i] = s
    return out.astype(np.float32)


@register_teacher
class RerankAPITeacher(Teacher):
    """``shape``: ``documents`` (default) or ``texts`` (TEI); ``path``: where the API listens (``/v1/rerank``, TEI's
    ``/rerank``). ``batch_size`` documents go in one request. Credentials as for the embeddings teacher: ``api_key``
    or the variable ``api_key_env`` names, to this endpoint only."""

    kind = "rerank-api"

    def __init__(self, endpoint: str, model: str = "", path: str = "/v1/rerank", shape: str = "documents",
                 batch_size: int = 32, api_key: str | None = None, api_key_env: str | None = None,
                 rate_limit: float | None = None, retries: int = 4, timeout: float = 300, allow_insecure: bool = False):
        if shape not in SHAPES:
            raise InputError(f"rerank shape must be one of {', '.join(SHAPES)}, not {shape!r}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InputError(f"rerank path must start with '/', not {path!r}")
        self.model, self.path, self.shape, self.batch_size = model, path, shape, batch_size
        self.http = JSONEndpoint(endpoint, api_key, api_key_env, None, timeout, allow_insecure, retries,
                                 rate_limit=rate_limit, what="rerank endpoint")
        answer = self._request(*PROBE, raw=True)
        probe = _scores(answer, len(PROBE[1]), self.http.url(path))
        self.served = answer.get("model") if isinstance(answer, dict) and isinstance(answer.get("model"), str) else None
        self.version = hashlib.sha1(np.round(probe, 2).tobytes()).hexdigest()[:12]

    def config(self) -> dict:
        return {"model": self.model, "served": self.served, "version": self.version}

    def _request(self, query: str, docs: list[str], raw: bool = False):
        body = {"query": query, **({"model": self.model} if self.model else {})}
        if self.shape == "texts":
            body.update(texts=docs, raw_scores=True)
        else:
            body.update(documents=docs, top_n=len(docs), return_documents=False)
        answer = self.http.post(self.path, body)
        return answer if raw else _scores(answer, len(docs), self.http.url(self.path))

    def score_lists(self, lists, docids=None) -> list[np.ndarray]:
        out = []
        for query, passages in lists:
            parts = [self._request(query, passages[i : i + self.batch_size])
                     for i in range(0, len(passages), self.batch_size)]
            out.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
        return out
