"""Indexes for first-stage retrieval: BM25 (Lucene through pyserini), dense (FAISS), ColBERT (FAISS over tokens +
exact MaxSim) and SPLADE (a Lucene impact index)."""

from .bm25 import BM25Index, build_bm25, open_bm25
from .colbert import ColbertIndex, build_colbert
from .dense import KINDS, DenseIndex
from .encode import Embeddings, encode_corpus, encode_texts
from .retrieve import index_path, load_index, open_colbert, open_dense, open_splade, retrieve
from .splade import SpladeIndex, build_splade

__all__ = ["BM25Index", "build_bm25", "open_bm25", "DenseIndex", "KINDS", "Embeddings", "encode_corpus", "encode_texts",
           "index_path", "load_index", "open_dense", "retrieve", "ColbertIndex", "build_colbert", "open_colbert",
           "SpladeIndex", "build_splade", "open_splade"]
