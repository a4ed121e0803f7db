"""First-stage retrieval for a Dataset: open (or build) its BM25 or FAISS index under ``indexes/`` and search it."""

from __future__ import annotations

import hashlib
import json
import os
import re

import pandas as pd

from ..data.dataset import Dataset
from ..errors import InputError
from ..models import load_sentence_transformer
from .bm25 import BM25Index, open_bm25
from .dense import KINDS, DenseIndex, default_params
from .encode import encode_corpus

DEFAULT_ROOT = os.environ.get("IRDISTILL_INDEXES", "indexes")


def slug(name: str) -> str:
    """A folder name for a model: hub names keep their text; local folders get their name plus a hash of the path."""
    if os.path.exists(name):
        path = os.path.abspath(name).rstrip("/")
        name = f"{os.path.basename(path)}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def index_path(dataset: Dataset, retriever: str, model: str | None = None, kind: str = "flat", root: str = DEFAULT_ROOT) -> str:
    if retriever == "bm25":
        return os.path.join(root, dataset.name, "bm25")
    return os.path.join(root, dataset.name, slug(model), kind)


def open_dense(dataset: Dataset, model_name: str, kind: str = "flat", path: str | None = None, rebuild: bool = False,
               batch_size: int = 64, model=None, progress: bool = True, **params) -> tuple[DenseIndex, object]:
    """The FAISS index of ``dataset`` for ``model_name``, built when missing or stale. Returns ``(index, model)``.

    The encoded corpus is kept beside the index (``../embeddings``) so every index kind reuses one encoding."""
    if kind not in KINDS:
        raise InputError(f"unknown index kind {kind!r} (choose from {', '.join(KINDS)})")
    path = path or index_path(dataset, "dense", model_name, kind)
    model = model or load_sentence_transformer(model_name)
    if not rebuild and os.path.exists(os.path.join(path, "meta.json")):
        index = DenseIndex.load(path)
        wanted = {**default_params(kind, len(dataset.corpus), index.meta["dim"]), **params}
        if (index.meta["corpus"], index.meta["model"], index.meta["params"]) == (dataset.corpus.fingerprint(), model_name, wanted):
            return index, model
    embeddings = encode_corpus(model, dataset.corpus, os.path.join(os.path.dirname(os.path.abspath(path)), "embeddings"),
                               model_name, batch_size=batch_size, progress=progress)
    docids = dataset.corpus.ids.to_pylist()
    return DenseIndex.build(embeddings, docids, kind, path, progress=progress, **params), model


def retrieve(dataset: Dataset, retriever: str = "bm25", model: str | None = None, kind: str = "flat", k: int = 1000,
             index: str | None = None, rebuild: bool = False, batch_size: int = 64, progress: bool = True) -> pd.DataFrame:
    """Top-``k`` run of every query of ``dataset`` with BM25 or a dense model (building the index when needed)."""
    if retriever == "bm25":
        return open_bm25(dataset.corpus, index or index_path(dataset, "bm25"), rebuild).search(dataset.queries, k)
    if retriever == "dense":
        if not model:
            raise InputError("--retriever dense needs --model")
        searcher, encoder = open_dense(dataset, model, kind, index, rebuild, batch_size, progress=progress)
        return searcher.search(encoder, dataset.queries, k, batch_size)
    raise InputError(f"unknown retriever {retriever!r} (choose bm25 or dense)")


def load_index(path):
    """Open a saved BM25 or FAISS index folder, whichever it is."""
    meta = os.path.join(os.fspath(path), "meta.json")
    if not os.path.exists(meta):
        raise InputError("not an irdistill index (no meta.json)", path)
    with open(meta) as f:
        kind = json.load(f).get("kind")
    return BM25Index(path) if kind == "bm25" else DenseIndex.load(path)
