"""First-stage retrieval for a Dataset: open (or build) its BM25, FAISS, ColBERT or SPLADE index under ``indexes/``
and search it."""

from __future__ import annotations

import hashlib
import json
import os
import re

import pandas as pd

from ..data.dataset import Dataset
from ..errors import InputError
from ..models import load_colbert, load_sentence_transformer, load_splade
from .bm25 import BM25Index, open_bm25
from .colbert import ColbertIndex, build_colbert
from .dense import KINDS, DenseIndex, default_params
from .encode import encode_corpus
from .splade import SpladeIndex, build_splade

RETRIEVERS = ("bm25", "dense", "colbert", "splade")
# encoding batch sizes: SPLADE's MLM head holds (batch, tokens, vocabulary) logits, 1 GB per 16 x 512 tokens
BATCH = {"dense": 64, "colbert": 32, "splade": 8}

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
    if retriever in ("colbert", "splade"):  # one index per model: the ColBERT FAISS kind is in its meta.json
        return os.path.join(root, dataset.name, slug(model), retriever)
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


def open_colbert(dataset: Dataset, model_name: str, kind: str = "auto", path: str | None = None,
                 rebuild: bool = False, batch_size: int = 32, model=None, progress: bool = True,
                 **params) -> tuple[ColbertIndex, object]:
    """The ColBERT index of ``dataset`` for ``model_name`` (``kind``: auto, flat or ivfpq), built when missing or
    stale. Returns ``(index, model)``."""
    path = path or index_path(dataset, "colbert", model_name)
    model = model or load_colbert(model_name)
    if not rebuild and os.path.exists(os.path.join(path, "meta.json")):
        index = ColbertIndex(path)
        m = index.meta
        if (m.get("corpus"), m.get("model"), m.get("requested_kind"), m.get("requested_params"), m.get("config")) == (
                dataset.corpus.fingerprint(), model_name, kind, params, _colbert_config(model)):
            return index, model
    return build_colbert(dataset.corpus, model, model_name, path, kind, batch_size, progress, **params), model


def _colbert_config(model) -> dict:
    from .colbert import _model_config

    return json.loads(json.dumps(_model_config(model)))  # as read back from meta.json


def open_splade(dataset: Dataset, model_name: str, path: str | None = None, rebuild: bool = False,
                batch_size: int = 8, model=None, progress: bool = True) -> tuple[SpladeIndex, object]:
    """The Lucene impact index of ``dataset`` for SPLADE model ``model_name``, built when missing or stale."""
    path = path or index_path(dataset, "splade", model_name)
    model = model or load_splade(model_name)
    if not rebuild and os.path.exists(os.path.join(path, "meta.json")):
        index = SpladeIndex(path)
        m = index.meta
        if (m.get("corpus"), m.get("model"), m.get("max_seq_length")) == (
                dataset.corpus.fingerprint(), model_name, model.max_seq_length):
            return index, model
    return build_splade(dataset.corpus, model, model_name, path, batch_size, progress=progress), model


def retrieve(dataset: Dataset, retriever: str = "bm25", model: str | None = None, kind: str | None = None,
             k: int = 1000, index: str | None = None, rebuild: bool = False, batch_size: int | None = None,
             progress: bool = True) -> pd.DataFrame:
    """Top-``k`` run of every query of ``dataset`` with BM25, a dense, ColBERT or SPLADE model (building the index
    when needed). ``kind``: the FAISS index (dense: flat, hnsw, ivfpq; colbert: auto, flat, ivfpq)."""
    if retriever == "bm25":
        return open_bm25(dataset.corpus, index or index_path(dataset, "bm25"), rebuild).search(dataset.queries, k)
    if retriever not in RETRIEVERS:
        raise InputError(f"unknown retriever {retriever!r} (choose from {', '.join(RETRIEVERS)})")
    if not model:
        raise InputError(f"--retriever {retriever} needs --model")
    batch_size = batch_size or BATCH[retriever]
    if retriever == "dense":
        searcher, encoder = open_dense(dataset, model, kind or "flat", index, rebuild, batch_size, progress=progress)
        return searcher.search(encoder, dataset.queries, k, batch_size)
    if retriever == "colbert":
        searcher, encoder = open_colbert(dataset, model, kind or "auto", index, rebuild, batch_size, progress=progress)
        return searcher.search(encoder, dataset.queries, k, batch_size=batch_size)
    searcher, encoder = open_splade(dataset, model, index, rebuild, batch_size, progress=progress)
    run = searcher.search(encoder, dataset.queries, k, batch_size)
    searcher.record_query_terms(f"{dataset.name}/{dataset.split}", searcher.last_query_terms)
    return run


def load_index(path):
    """Open a saved BM25, FAISS, ColBERT or SPLADE index folder, whichever it is."""
    meta = os.path.join(os.fspath(path), "meta.json")
    if not os.path.exists(meta):
        raise InputError("not an irdistill index (no meta.json)", path)
    with open(meta) as f:
        kind = json.load(f).get("kind")
    if kind == "colbert":
        return ColbertIndex(path)
    if kind == "splade":
        return SpladeIndex(path)
    return BM25Index(path) if kind == "bm25" else DenseIndex.load(path)
