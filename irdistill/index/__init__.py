"""Indexes for first-stage retrieval, one kind per file, registered in ``base.INDEXES``: BM25 (Lucene through
pyserini), dense (FAISS), ColBERT (FAISS over tokens + exact MaxSim) and SPLADE (a Lucene impact index)."""

from .base import (INDEXES, Index, building, candidates, index_class, load_index, open_index, read_meta, register_index,
                   retrieve, slug)
from .bm25 import BM25Index
from .colbert import ColbertIndex
from .dense import DenseIndex
from .encode import Embeddings, encode_corpus, encode_texts, vectors_key
from .splade import SpladeIndex

__all__ = ["INDEXES", "Index", "building", "candidates", "read_meta", "index_class", "load_index", "open_index", "register_index", "retrieve", "slug",
           "BM25Index", "ColbertIndex", "DenseIndex", "SpladeIndex", "Embeddings", "encode_corpus", "encode_texts",
           "vectors_key"]
