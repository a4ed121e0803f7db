"""SPLADE students and indexes: a sentence-transformers SparseEncoder."""

from __future__ import annotations

from .hub import loading, locate


def load_splade(name: str, device: str | None = None):
    """A SPLADE model (sentence-transformers SparseEncoder: MLM head + max pooling of log(1 + relu)) from a saved
    SparseEncoder or any masked-LM checkpoint (e.g. the packaged ``splade-tiny``)."""
    from sentence_transformers import SparseEncoder

    path = locate(name)
    with loading(name):
        return SparseEncoder(path, device=device)
