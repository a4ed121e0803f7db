"""Indexes for first-stage retrieval: BM25 (Lucene through pyserini) and dense (FAISS)."""

from .bm25 import BM25Index, build_bm25, open_bm25
from .dense import KINDS, DenseIndex
from .encode import Embeddings, encode_corpus, encode_texts
from .retrieve import index_path, load_index, open_dense, retrieve

__all__ = ["BM25Index", "build_bm25", "open_bm25", "DenseIndex", "KINDS", "Embeddings", "encode_corpus", "encode_texts",
           "index_path", "load_index", "open_dense", "retrieve"]
